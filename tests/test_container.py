"""The image from the Dockerfile, built and started as a container, against the local Slack and Genesys Cloud.

This machine kind has no Docker engine and no Docker Hub, so the test uses Debian's podman (as root, runc, builds
with `--isolation chroot`) and makes the base image itself: debootstrap's minimal bookworm with python3, imported
with `podman import` and passed as BASE_IMAGE. docs/container.md explains each choice.

Needs root, podman, runc and debootstrap (scripts/install-test-services.sh installs them). Without them the test
is skipped, unless REQUIRE_CONTAINER=1 (CI sets it), when it fails. Everything podman stores, images and
containers, lives in a temporary folder of its own (`--root`, `--runroot`, `--tmpdir`) that is removed at the end:
the machine's own image store is not touched, and a failed run leaves nothing that a later run trips over.

Run it alone with `./test.sh -m container` (about three minutes on a 2-core machine, most of it debootstrap);
leave it out of a quick run with `./test.sh -m "not container"`.
"""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from localdev.app_process import Running, agent_on_a_call, app_settings, free_port, wait_for, wait_healthy
from localdev.genesys_cloud import FakeGenesysCloud
from localdev.slack_api import FakeSlack
from tests.conftest import REPO

pytestmark = pytest.mark.container

DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
BASE_PACKAGES = "python3,python3-venv,ca-certificates"
TOOLS = ("podman", "runc", "debootstrap")
# pip settings copied from the host's configuration into the build's /etc/pip.conf; paths they name are mounted.
PIP_LIST_KEYS = ("find-links", "extra-index-url", "trusted-host")
PIP_SCALAR_KEYS = ("index-url", "cert", "client-cert", "proxy", "timeout", "default-timeout", "retries")


def _why_not_runnable() -> str | None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return (f"{', '.join(missing)} not installed (scripts/install-test-services.sh installs podman, runc and "
                "debootstrap with apt, as root)")
    if os.geteuid() != 0:
        return "needs root: podman's storage here and debootstrap run as root"
    return None


def _require_tools() -> None:
    reason = _why_not_runnable()
    if reason is None:
        return
    if os.environ.get("REQUIRE_CONTAINER") == "1":
        pytest.fail(f"REQUIRE_CONTAINER=1 but the container test cannot run: {reason}", pytrace=False)
    pytest.skip(f"container test: {reason}; set REQUIRE_CONTAINER=1 to make this a failure")


@dataclass
class Podman:
    """podman with a storage, run and temporary folder of its own under `home`, and this machine's settings."""

    home: Path

    def __post_init__(self) -> None:
        # Without default_ulimits = [] every container fails to start here: "error setting rlimit type 7".
        self.conf = self.home / "containers.conf"
        self.conf.write_text("[containers]\ndefault_ulimits = []\n")

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "CONTAINERS_CONF": str(self.conf)}

    def command(self, *args: str) -> list[str]:
        return ["podman", "--root", str(self.home / "root"), "--runroot", str(self.home / "run"),
                "--tmpdir", str(self.home / "tmp"), "--runtime", "runc", *args]

    def run(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(self.command(*args), env=self.env, capture_output=True, text=True, timeout=timeout,
                              check=False, stdin=subprocess.DEVNULL)
        if check and done.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
        return done

    def remove_everything(self) -> None:
        """Remove this store's containers and images, then the folder (containers/storage leaves no mounts)."""
        self.run("rm", "--all", "--force", "--time", "0", timeout=60, check=False)
        self.run("rmi", "--all", "--force", timeout=60, check=False)
        shutil.rmtree(self.home)


def _logged(command: list[str], log: Path, *, timeout: float, what: str, **options: object) -> None:
    """Run a command with its output in `log`; on failure raise with the log's end."""
    with log.open("wb") as out:
        code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              timeout=timeout, check=False, **options).returncode  # type: ignore[call-overload]
    if code != 0:
        raise AssertionError(f"{what} exited {code}; the end of {log}:\n{log.read_text(errors='replace')[-4000:]}")


def build_base_image(podman: Podman, tag: str) -> None:
    """A minimal Debian with python3 and venv, made with debootstrap and `podman import` (Docker Hub is out of
    reach here). The rootfs is deleted once imported."""
    rootfs = podman.home / "rootfs"
    started = time.monotonic()
    _logged(["debootstrap", "--variant=minbase", f"--include={BASE_PACKAGES}", DEBIAN_SUITE, str(rootfs),
             DEBIAN_MIRROR], podman.home / "debootstrap.log", timeout=900, what="debootstrap")
    for cache in (rootfs / "var/cache/apt/archives", rootfs / "var/lib/apt/lists"):  # 275 MB -> 183 MB
        for entry in cache.glob("*"):
            if entry.is_file():
                entry.unlink()
    bootstrapped = time.monotonic()
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    try:
        imported = subprocess.run(podman.command("import", "--change", 'CMD ["/usr/bin/python3"]', "-", tag),
                                  stdin=tar.stdout, env=podman.env, capture_output=True, text=True, timeout=300,
                                  check=False)
    finally:
        assert tar.stdout is not None
        tar.stdout.close()
        tar_code = tar.wait(timeout=60)
    if tar_code != 0 or imported.returncode != 0:
        raise AssertionError(f"tar exited {tar_code}, podman import exited {imported.returncode}:\n"
                             f"{imported.stdout}{imported.stderr}")
    shutil.rmtree(rootfs)
    print(f"debootstrap {bootstrapped - started:.0f} s, podman import {time.monotonic() - bootstrapped:.0f} s")


def host_pip_configuration() -> dict[str, str]:
    """The host's effective pip settings (files and PIP_* variables) that matter for reaching an index."""
    listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                            timeout=60, check=False).stdout
    from_files: dict[str, str] = {}
    from_env: dict[str, str] = {}
    lists: dict[str, list[str]] = {}
    for line in listed.splitlines():
        name, sep, raw = line.partition("=")
        if not sep:
            continue
        key = name.rsplit(".", 1)[-1]
        value = raw.strip().strip("'\"")
        if key in PIP_LIST_KEYS:
            values = lists.setdefault(key, [])
            values.extend(item for item in value.split() if item not in values)
        elif key in PIP_SCALAR_KEYS:
            (from_env if name.startswith(":env:") else from_files)[key] = value
    return {**from_files, **from_env, **{key: " ".join(values) for key, values in lists.items()}}


def pip_build_mounts(home: Path) -> list[str]:
    """`podman build -v` options giving pip in the build the host's way to the package index: a pip.conf made
    from the host's settings, the CA bundle it names, and the local wheel folders and file:// indexes it names.
    Settings naming paths that do not exist here are left out."""
    settings = host_pip_configuration()
    mounts: set[Path] = set()

    def kept_local(item: str, key: str) -> bool:
        """Whether to keep one value: a URL is kept as it is, a local path only if it exists (then mounted)."""
        path = item.removeprefix("file://")
        if not path.startswith("/"):
            return not item.startswith("file:")
        if key in ("cert", "client-cert"):
            mount = Path(path) if Path(path).is_file() else None
        elif key == "find-links":
            mount = Path(path) if Path(path).is_dir() else None
        else:  # a file:// index: its pages link to ../../files/..., so mount the folder above `simple`
            mount = Path(path).parent if Path(path).is_dir() else None
        if mount is not None:
            mounts.add(mount)
        return mount is not None

    kept: dict[str, str] = {}
    for key, value in settings.items():
        if key in ("cert", "client-cert", "find-links", "extra-index-url", "index-url"):
            items = [item for item in value.split() if kept_local(item, key)]
            if items:
                kept[key] = " ".join(items)
        else:
            kept[key] = value
    config = configparser.ConfigParser(interpolation=None)
    config["global"] = kept
    pip_conf = home / "pip.conf"
    with pip_conf.open("w") as out:
        config.write(out)
    options = ["-v", f"{pip_conf}:/etc/pip.conf:ro"]
    for mount in sorted(mounts):
        options += ["-v", f"{mount.resolve()}:{mount}:ro"]
    return options


@pytest.fixture(scope="module")
def podman() -> Iterator[Podman]:
    _require_tools()
    # A short path: podman's sockets live under --runroot and a socket path is limited to 108 bytes.
    store = Podman(Path(tempfile.mkdtemp(prefix="sgs-podman-")))
    try:
        yield store
    finally:
        store.remove_everything()


@pytest.fixture(scope="module")
def image(podman: Podman) -> str:
    """The project's Dockerfile built on the debootstrap base, as CI would build it without Docker Hub."""
    base = "localhost/sgs-test-base:bookworm"
    build_base_image(podman, base)
    started = time.monotonic()
    tag = "localhost/slack-genesys-sync:test"
    # --format docker keeps the HEALTHCHECK (the OCI format drops it); --layers=false leaves no build-stage image.
    _logged(podman.command("build", "--isolation", "chroot", "--format", "docker", "--layers=false",
                           "--build-arg", f"BASE_IMAGE={base}", *pip_build_mounts(podman.home), "-t", tag,
                           "-f", str(REPO / "Dockerfile"), str(REPO)),
            podman.home / "build.log", timeout=900, what="podman build", env=podman.env)
    print(f"podman build {time.monotonic() - started:.0f} s")
    return tag


@pytest.mark.timeout(1800)  # the module's fixtures (debootstrap and the build) count against the first test
def test_the_image_runs_syncs_as_non_root_and_stops_on_sigterm(podman: Podman, image: str, tmp_path: Path) -> None:
    """The built image, started with an env file and a /data volume: healthy, writes a profile change to the live
    call, runs as the image's non-root user, and `podman stop` ends it at once and removes it (`--rm`)."""
    user_spec = podman.run("image", "inspect", "--format", "{{.Config.User}}", image).stdout.strip()
    uid, _, gid = user_spec.partition(":")
    assert uid.isdigit(), f"the image's USER is {user_spec!r}; want a numeric uid (Kubernetes runAsNonRoot)"
    assert int(uid) != 0, f"the image's USER is {user_spec!r}: root"
    data = tmp_path / "data"
    data.mkdir()
    os.chown(data, int(uid), int(gid or uid))  # a bind mount must be writable by the image's user
    name = f"sgs-test-{uuid.uuid4().hex[:12]}"
    with FakeSlack() as slack, FakeGenesysCloud() as genesys:
        port = free_port()
        env_file = tmp_path / "sync.env"
        # No DATABASE_URL: the image's own (sqlite:////data/sync.db) is what this checks.
        env_file.write_text("".join(f"{key}={value}\n" for key, value in app_settings(slack, genesys, port).items()))
        log_path = tmp_path / "container.log"
        with log_path.open("wb") as log_file:
            # Attached, so this process's exit code is the container's; --network host: the fakes on 127.0.0.1.
            process = subprocess.Popen(podman.command("run", "--rm", "--name", name, "--network", "host",
                                                      "--env-file", str(env_file), "-v", f"{data}:/data", image),
                                       env=podman.env, stdin=subprocess.DEVNULL, stdout=log_file,
                                       stderr=subprocess.STDOUT)
        app = Running(process, f"http://127.0.0.1:{port}", slack, genesys, log_path)
        try:
            wait_healthy(app, timeout=60)
            assert podman.run("healthcheck", "run", name, check=False).returncode == 0, "the image's HEALTHCHECK"

            pid = podman.run("inspect", "--format", "{{.State.Pid}}", name).stdout.strip()
            status = Path(f"/proc/{pid}/status").read_text()
            uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
            assert uids == [uid] * 4, f"the app's process runs as {uids}, not the image's user {uid}"
            assert b"app.py\0serve" in Path(f"/proc/{pid}/cmdline").read_bytes()

            user, participant = agent_on_a_call(app)
            assert app.event({"type": "user_change", "user": user}, event_id="EvContainer").status_code == 200
            wait_for(lambda: bool(genesys.patches), 20, "the PATCH to reach the local Genesys")
            patch = genesys.patches[0]
            where = (participant.conversation_id, participant.participant_id)
            assert (patch.conversation_id, patch.participant_id) == where
            assert patch.attributes["slack.title"] == "Support Engineer"
            assert patch.attributes["slack.real_name"] == "Ada Lovelace"
            assert (data / "sync.db").is_file(), "the SQLite file belongs in the /data volume"
            wait_for(lambda: 'genesys_sync_writes_total{result="written"} 1.0' in httpx.get(
                f"{app.url}/metrics", timeout=5).text, 10, "the image's /metrics to count the write")

            started = time.monotonic()
            podman.run("stop", "--time", "10", name, timeout=30)
            assert process.wait(timeout=15) == 0
            stopped_in = time.monotonic() - started
            assert stopped_in < 5, f"podman stop took {stopped_in:.1f} s: SIGTERM was not honoured"
            assert "stopped" in app.log()
            wait_for(lambda: podman.run("container", "exists", name, check=False).returncode == 1, 10,
                     "the container to be removed")
        except BaseException:
            print(f"--- container log ({log_path}):\n{app.log()}")
            raise
        finally:
            if process.poll() is None:
                podman.run("rm", "--force", "--time", "0", name, timeout=60, check=False)
                process.kill()
                process.wait(timeout=10)
