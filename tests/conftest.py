"""Shared fixtures: the real Slack payloads in ../shared/fixtures/slack and the repository's examples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_SLACK_FIXTURES = REPO.parent / "shared" / "fixtures" / "slack"
EXAMPLES = REPO / "examples"


def load_json(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)


def slack_fixture(name: str) -> Any:
    """A payload from ../shared/fixtures/slack; these tests need the shared folder beside the repository."""
    path = SHARED_SLACK_FIXTURES / name
    if not path.is_file():
        pytest.fail(f"{path} is missing: clone the repository with ../shared beside it")
    return load_json(path)
