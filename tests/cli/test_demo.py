"""`python app.py demo`: the whole product locally against the stand-ins, run the way a person runs it."""

from __future__ import annotations

import io
import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cli.demo import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, DemoOptions, StopFlag, attribute_lines, demo
from tests.conftest import REPO

CHANGE_COMMAND = re.compile(r"^\s+(curl -sS --data-urlencode '[^']*' (http://127\.0\.0\.1:\d+)/demo/title)$")


def minimal_environment(tmp_path: Path) -> dict[str, str]:
    """PATH and HOME only, plus TMPDIR inside the test's directory so what the demo makes there can be checked."""
    temp = tmp_path / "tmp"
    temp.mkdir(exist_ok=True)
    return {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(tmp_path), "TMPDIR": str(temp)}


def run_demo(cwd: Path, env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REPO / "app.py"), "demo", *arguments], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=90, check=False)


def assert_the_story(stdout: str) -> None:
    assert "Local Slack and Genesys Cloud started on 127.0.0.1" in stdout
    assert re.search(r"Ada Lovelace \(ada@example\.com\) is on a voice call: conversation \w{8}…", stdout)
    assert "  slack.title = Support Engineer" in stdout
    assert "Title changed in Slack: Support Engineer → Team Lead" in stdout
    assert re.search(r"Change written to the live call in \d+ ms: slack\.title = Team Lead", stdout)
    pushed = re.search(r"next call \(a new conversation\) carried her attributes in (\d+) ms: Genesys notified", stdout)
    assert pushed is not None
    assert int(pushed.group(1)) < 1000  # pushed: with push healthy the app polls once a minute


@pytest.fixture
def empty_directory(tmp_path: Path) -> Path:
    directory = tmp_path / "cwd"
    directory.mkdir()
    return directory


def test_demo_runs_with_no_settings_and_leaves_nothing_behind(tmp_path: Path, empty_directory: Path) -> None:
    """In an empty directory with only PATH and HOME, the demo tells the story, exits 0 and leaves nothing."""
    env = minimal_environment(tmp_path)
    started = time.monotonic()
    result = run_demo(empty_directory, env)
    assert result.returncode == EXIT_OK, result.stderr
    assert time.monotonic() - started < 30
    assert_the_story(result.stdout)
    assert re.search(r"Demo finished in [\d.]+ s: nothing was left behind\.\n$", result.stdout)
    assert result.stderr == ""
    assert list(empty_directory.iterdir()) == []
    assert list(Path(env["TMPDIR"]).iterdir()) == []


@pytest.mark.parametrize("where", ["a .env file", "the environment"])
def test_the_operators_settings_are_neither_read_nor_needed(tmp_path: Path, empty_directory: Path,
                                                            where: str) -> None:
    """Garbage settings in the working directory's .env or in the environment change nothing."""
    garbage = {"SLACK_BOT_TOKEN": "not-a-token", "SLACK_SIGNING_SECRET": "wrong", "GENESYS_REGION": "mars",
               "DATABASE_URL": "postgresql://nowhere.invalid/none", "LOG_LEVEL": "LOUD", "PORT": "99999",
               "POLL_INTERVAL_SECONDS": "never", "SYNC_SETTINGS_FILE": "/no/such/sync.toml"}
    env = minimal_environment(tmp_path)
    if where == "a .env file":
        text = "".join(f"{name}={value}\n" for name, value in garbage.items()) + "this is { not dotenv\n"
        (empty_directory / ".env").write_text(text)
    else:
        env |= garbage
    result = run_demo(empty_directory, env)
    assert result.returncode == EXIT_OK, result.stderr
    assert_the_story(result.stdout)
    assert result.stderr == ""
    assert [path.name for path in empty_directory.iterdir()] == ([".env"] if where == "a .env file" else [])
    assert list(Path(env["TMPDIR"]).iterdir()) == []


class LineReader:
    """The demo's standard output line by line, with a timeout (a thread reads the pipe)."""

    def __init__(self, stream: io.TextIOBase) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: io.TextIOBase) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def until(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern.pattern!r} in {timeout} s: {self.lines}") from None
            if line is None:
                raise AssertionError(f"output ended before a line matching {pattern.pattern!r}: {self.lines}")
            self.lines.append(line)
            match = pattern.search(line)
            if match:
                return match


@pytest.fixture
def kept(tmp_path: Path, empty_directory: Path) -> Iterator[tuple[subprocess.Popen[str], LineReader]]:
    env = minimal_environment(tmp_path)
    process = subprocess.Popen([sys.executable, str(REPO / "app.py"), "demo", "--keep"], cwd=empty_directory,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        yield process, LineReader(process.stdout)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def test_keep_serves_until_ctrl_c_and_its_command_changes_the_title(
        kept: tuple[subprocess.Popen[str], LineReader], tmp_path: Path, empty_directory: Path) -> None:
    """--keep prints the URLs and a change command that works, answers /healthz, and stops cleanly on SIGINT."""
    process, output = kept
    health = output.until(re.compile(r"App health:\s+(http://127\.0\.0\.1:\d+/healthz)$"), 60).group(1)
    assert output.until(re.compile(r"Local Slack API:\s+http://127\.0\.0\.1:\d+/api/"), 5)
    assert output.until(re.compile(r"Local Genesys API:\s+http://127\.0\.0\.1:\d+"), 5)
    change = output.until(CHANGE_COMMAND, 5)
    assert_the_story("\n".join(output.lines))
    assert httpx.get(health, timeout=5).status_code == 200

    command, control = change.group(1), change.group(2)
    if shutil.which("curl"):
        answer = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=30, check=True).stdout
    else:  # the same request curl makes
        answer = httpx.post(f"{control}/demo/title", data={"value": "Head of Support"}, timeout=30).text
    assert re.match(r"Change written to the live call in \d+ ms: slack\.title = Head of Support\n$", answer)
    output.until(re.compile(r"^Change written to the live call in \d+ ms: slack\.title = Head of Support$"), 5)
    assert "slack.title = Head of Support\n" in httpx.get(f"{control}/demo/attributes", timeout=5).text
    assert httpx.post(f"{control}/demo/title", data={"value": ""}, timeout=5).status_code == 400
    assert httpx.get(f"{control}/demo/title", timeout=5).status_code == 405

    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=5) == EXIT_OK
    output.until(re.compile(r"^Stopped \(SIGINT\): .* nothing was left behind\. Goodbye\.$"), 5)
    assert process.stderr is not None
    assert process.stderr.read() == ""
    assert list(empty_directory.iterdir()) == []
    assert list((tmp_path / "tmp").iterdir()) == []


def test_run_sh_demo(tmp_path: Path) -> None:
    """`./run.sh demo`, word for word, tells the story and leaves no new file in the repository."""
    before = sorted(path.name for path in REPO.iterdir())
    result = subprocess.run(["./run.sh", "demo"], cwd=REPO, env=minimal_environment(tmp_path), capture_output=True,
                            text=True, timeout=90, check=False)
    assert result.returncode == EXIT_OK, result.stderr
    assert_the_story(result.stdout)
    assert sorted(path.name for path in REPO.iterdir()) == before
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_failing_app_is_reported_in_one_line_with_its_log(tmp_path: Path) -> None:
    """When the app cannot start, the demo says why in one line, shows the app's last log lines, exits 1."""
    out, err = io.StringIO(), io.StringIO()
    options = DemoOptions(app=tmp_path / "no-such-app.py", temp_root=tmp_path)
    assert demo(options, out=out, err=err, stop=StopFlag()) == EXIT_FAILED
    lines = err.getvalue().splitlines()
    assert re.match(r"demo: the app exited with status \d+ while waiting for the app's /healthz", lines[0])
    assert lines[1] == "The app's last log lines:"
    assert "no-such-app.py" in err.getvalue()
    assert "Traceback" not in err.getvalue()
    assert list(tmp_path.iterdir()) == []


def test_a_stop_request_ends_the_scripted_demo_cleanly(tmp_path: Path) -> None:
    """SIGTERM during the scripted steps stops the app and the stand-ins and removes everything (exit 130)."""
    out, err = io.StringIO(), io.StringIO()
    stop = StopFlag()
    stop.request("SIGTERM")
    assert demo(DemoOptions(temp_root=tmp_path), out=out, err=err, stop=stop) == EXIT_INTERRUPTED
    assert out.getvalue().splitlines()[-1] == \
        "Demo interrupted (SIGTERM): everything stopped, nothing was left behind."
    assert err.getvalue() == ""
    assert list(tmp_path.iterdir()) == []


def test_without_localdev_the_demo_says_so_and_serve_still_starts(tmp_path: Path) -> None:
    """In a copy of what the Dockerfile copies (no localdev/), demo is a one-line refusal and serve imports fine."""
    image = tmp_path / "app"
    image.mkdir()
    for line in (REPO / "Dockerfile").read_text().splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and "--from" not in line and words[-1].startswith("/app/"):
            for source in words[1:-1]:
                if (REPO / source).is_dir():
                    shutil.copytree(REPO / source, image / source, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy(REPO / source, image / source)
    assert not (image / "localdev").exists()
    assert (image / "cli" / "demo.py").exists()
    env = minimal_environment(tmp_path) | {"PYTHONDONTWRITEBYTECODE": "1"}
    refused = subprocess.run([sys.executable, "app.py", "demo"], cwd=image, env=env, capture_output=True, text=True,
                             timeout=60, check=False)
    assert refused.returncode == 2
    assert refused.stderr == "demo: needs localdev/ from a clone of the repository (the production image leaves it " \
        "out)\n"
    serve = subprocess.run([sys.executable, "app.py", "serve"], cwd=image, env=env, capture_output=True, text=True,
                           timeout=60, check=False)
    assert serve.returncode == 2
    assert serve.stderr.startswith("serve: 5 settings to fix:")  # the settings are missing, not a module
    assert "Traceback" not in serve.stderr


def test_attribute_lines_show_a_few_and_count_the_rest() -> None:
    """The attribute summary names the telling keys in a fixed order and counts the others."""
    attributes = {"slack.deleted": "false", "slack.title": "Team Lead", "slack.user_id": "U0ADA", "slack.name": "ada"}
    assert attribute_lines(attributes) == [
        "slack.title = Team Lead", "slack.user_id = U0ADA", "… and 2 more (4 attributes in all)"]
