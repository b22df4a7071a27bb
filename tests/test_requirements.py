"""The lock files: every requirement that ./run.sh, ./test.sh and the image install is pinned with hashes, and the
test environment runs the very versions production runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import REPO

LOCKED = ("requirements.txt", "requirements-dev.txt")
_REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)((?:\s+--hash=sha256:[0-9a-f]{64})*)")


def requirements(path: Path) -> dict[str, tuple[str, frozenset[str]]]:
    """Each requirement of a pip-compile'd file: its normalised name, version and hashes."""
    text = re.sub(r"\s*\\\n", " ", path.read_text())  # join the continued lines
    found: dict[str, tuple[str, frozenset[str]]] = {}
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        match = _REQUIREMENT.match(line)
        assert match is not None, f"{path.name}: not an exact pin with hashes: {line!r}"
        name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
        found[name] = (match.group(2), frozenset(re.findall(r"sha256:([0-9a-f]{64})", match.group(3))))
    return found


@pytest.mark.parametrize("name", LOCKED)
def test_every_requirement_is_pinned_with_hashes(name: str) -> None:
    """Every line is `name==version` with at least one sha256, and nothing is pulled in by -r or a URL."""
    locked = requirements(REPO / name)
    assert locked
    assert all(hashes for _, hashes in locked.values()), [key for key, (_, h) in locked.items() if not h]


@pytest.mark.parametrize(("source", "lock"), [("requirements.in", "requirements.txt"),
                                              ("requirements-dev.in", "requirements-dev.txt")])
def test_each_chosen_dependency_is_in_its_lock_at_its_version(source: str, lock: str) -> None:
    """What a .in file pins is what the generated file pins: the lock was regenerated after the last edit."""
    locked = requirements(REPO / lock)
    chosen = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(\S+)", (REPO / source).read_text(),
                        re.MULTILINE)
    assert chosen
    for raw_name, version in chosen:
        name = re.sub(r"[-_.]+", "-", raw_name).lower()
        assert locked.get(name, ("missing",))[0] == version, f"{lock}: {name} is not {version}; run " \
            "./scripts/lock-requirements.sh"


def test_tests_run_the_versions_and_files_production_runs() -> None:
    """Each runtime package is in requirements-dev.txt at the same version with the same hashes."""
    runtime, dev = requirements(REPO / "requirements.txt"), requirements(REPO / "requirements-dev.txt")
    assert {name: dev.get(name) for name in runtime} == runtime
