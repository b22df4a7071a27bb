"""The first install as an operator walks it: `.env` made from `.env.example`, `./run.sh`, a change reaching a live
call; the same for `docker run --env-file` (every name present, most of them empty); one answer for what is missing.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from slack_sdk import WebClient

import config
from config import read_environment, read_service_settings, withhold_from_libraries
from handlers.app import build_slack_app
from localdev.app_process import (
    REPO,
    SIGNING_SECRET,
    Running,
    agent_on_a_call,
    free_port,
    healthy,
    wait_for,
)
from localdev.genesys_cloud import FakeGenesysCloud
from localdev.slack_api import FakeSlack, event_envelope, slash_command_body
from localdev.socket_mode import APP_TOKEN, SocketModeSlack

ENV_EXAMPLE = REPO / ".env.example"


def example_settings() -> dict[str, str]:
    """Every `NAME=value` line of .env.example, as shipped."""
    lines = ENV_EXAMPLE.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if re.match(r"^[A-Z][A-Z0-9_]*=", line))


def filled_in(slack: FakeSlack, genesys: FakeGenesysCloud, port: int, *, socket_mode: bool) -> dict[str, str]:
    """What an operator fills in for one workspace; the API URLs point at the local stand-ins."""
    values = {
        "SLACK_BOT_TOKEN": slack.bot_token, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "GENESYS_CLIENT_ID": "fake-client-id", "GENESYS_CLIENT_SECRET": "fake-client-secret",
        "SLACK_API_URL": slack.api_url, "GENESYS_API_URL": genesys.base_url, "GENESYS_LOGIN_URL": genesys.base_url,
        "PORT": str(port),
    }
    if socket_mode:
        values["SLACK_APP_TOKEN"] = APP_TOKEN
    return values


def write_dotenv(directory: Path, values: Mapping[str, str]) -> None:
    """`cp .env.example .env`, then the operator edits the lines they fill in and leaves the rest as shipped."""
    text = ENV_EXAMPLE.read_text()
    for name, value in values.items():
        text, count = re.subn(rf"^{name}=.*$", f"{name}={value}", text, flags=re.MULTILINE)
        assert count == 1, f"{name} has no line in .env.example"
    (directory / ".env").write_text(text)


def bare_environment() -> dict[str, str]:
    """A login shell's environment: nothing of the app's set."""
    return {name: value for name, value in os.environ.items()
            if name in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH")}


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A fresh checkout of the repository (the tracked files as they are now) with the test run's .venv."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            check=True, capture_output=True).stdout.decode().split("\0")
    target = tmp_path / "slack-genesys-sync"
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)  # keeps mtimes, so run.sh sees the venv as up to date
    (target / ".venv").symlink_to(Path(sys.prefix))
    return target


def start(command: list[str], cwd: Path, env: Mapping[str, str], port: int, slack: FakeSlack,
          genesys: FakeGenesysCloud) -> Running:
    log_path = cwd / "app.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(command, cwd=cwd, env=dict(env), stdout=log_file, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    return Running(process, f"http://127.0.0.1:{port}", slack, genesys, log_path)


def stop(app: Running) -> None:
    if app.process.poll() is None:
        os.killpg(app.process.pid, signal.SIGTERM)
        try:
            app.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(app.process.pid, signal.SIGKILL)
            app.process.wait(timeout=10)


def assert_single_workspace_mode(app: Running) -> None:
    """Healthy, in the mode the settings chose, with the token verified, and Bolt never switched to OAuth."""
    wait_for(lambda: healthy(app), 30, f"/healthz to answer 200; log:\n{app.log()}")
    slack_health = httpx.get(f"{app.url}/healthz", timeout=5).json()["slack"]
    assert slack_health["workspace"] == app.slack.team_id
    assert slack_health["ok"] is True
    assert [call.token for call in app.slack.calls("auth.test")][:1] == [app.slack.bot_token]
    log = app.log()
    assert f"Slack: one workspace, {app.slack.team_name} ({app.slack.team_id})" in log
    assert "installation" not in log.lower()


def assert_change_reaches_the_call(app: Running, deliver: Callable[[dict[str, Any]], object]) -> None:
    """A title change during a live call, delivered by `deliver(envelope)`, is written to that participant."""
    user, participant = agent_on_a_call(app)
    changed = app.slack.update_profile("U0ADA", title="Escalations Lead")
    deliver(event_envelope({"type": "user_change", "user": changed}, event_id="EvFirstInstall"))
    wait_for(lambda: app.genesys.attributes(participant.conversation_id, participant.participant_id).get("slack.title")
             == "Escalations Lead", 20, f"the new title on the live call; log:\n{app.log()}")
    assert user["id"] == "U0ADA"


def test_readme_steps_word_for_word_sync_a_live_call(clone: Path) -> None:
    """`cp .env.example .env`, fill in one workspace's settings, `./run.sh`: a profile change reaches a live call."""
    port = free_port()
    with FakeSlack() as slack, FakeGenesysCloud() as genesys:
        subprocess.run(["cp", ".env.example", ".env"], cwd=clone, check=True)
        write_dotenv(clone, filled_in(slack, genesys, port, socket_mode=False))
        app = start(["./run.sh"], clone, bare_environment(), port, slack, genesys)
        try:
            assert_single_workspace_mode(app)
            assert_change_reaches_the_call(app, lambda envelope: app.post(json.dumps(envelope).encode()))
        finally:
            stop(app)
        assert app.process.returncode == 0, app.log()


@pytest.mark.parametrize("source", ["dotenv", "env-file"])
def test_socket_mode_from_the_example_settings_syncs_a_live_call(tmp_path: Path, source: str) -> None:
    """Socket Mode from .env.example's names, as a .env file or as `--env-file` gives them: a change reaches a call."""
    port = free_port()
    with SocketModeSlack() as slack, FakeGenesysCloud() as genesys:
        values = filled_in(slack, genesys, port, socket_mode=True)
        env = bare_environment()
        if source == "dotenv":
            write_dotenv(tmp_path, values)
        else:
            env |= example_settings() | values
        app = start([sys.executable, str(REPO / "app.py")], tmp_path, env, port, slack, genesys)
        try:
            assert_single_workspace_mode(app)
            assert httpx.get(f"{app.url}/healthz", timeout=5).json()["slack"]["connection"] == "connected"
            assert_change_reaches_the_call(app, slack.socket_mode.push_event)
        finally:
            stop(app)


def test_env_file_environment_serves_http_in_the_settings_mode(tmp_path: Path) -> None:
    """`docker run --env-file .env` semantics (every name set, the unused ones empty) serve one workspace over HTTP."""
    port = free_port()
    with FakeSlack() as slack, FakeGenesysCloud() as genesys:
        env = bare_environment() | example_settings() | filled_in(slack, genesys, port, socket_mode=False)
        assert env["SLACK_CLIENT_ID"] == ""
        assert env["SLACK_CLIENT_SECRET"] == ""
        app = start([sys.executable, str(REPO / "app.py")], tmp_path, env, port, slack, genesys)
        try:
            assert_single_workspace_mode(app)
            assert_change_reaches_the_call(app, lambda envelope: app.post(json.dumps(envelope).encode()))
            command = app.post(slash_command_body("", user_id="U0ADA", response_url=slack.response_url("me")),
                               content_type="application/x-www-form-urlencoded")
            assert command.status_code == 200
        finally:
            stop(app)


def test_a_wrong_bot_token_stops_the_start_instead_of_serving_unauthorized(tmp_path: Path) -> None:
    """A bot token Slack refuses (auth.test: invalid_auth) stops the start with one line: never a healthy /healthz."""
    port = free_port()
    with FakeSlack() as slack, FakeGenesysCloud() as genesys:
        write_dotenv(tmp_path, filled_in(slack, genesys, port, socket_mode=False) | {"SLACK_BOT_TOKEN": "xoxb-stale"})
        result = subprocess.run([sys.executable, str(REPO / "app.py")], cwd=tmp_path, env=bare_environment(),
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "SLACK_BOT_TOKEN: Slack refused it at start (auth.test: invalid_auth)" in result.stderr
    assert "Traceback" not in result.stderr
    assert "xoxb-stale" not in result.stderr


def test_an_uninstall_makes_health_say_slack_cannot_authorize(tmp_path: Path) -> None:
    """After app_uninstalled in one-workspace mode, /healthz answers 503 naming Slack, not ok."""
    port = free_port()
    with FakeSlack() as slack, FakeGenesysCloud() as genesys:
        write_dotenv(tmp_path, filled_in(slack, genesys, port, socket_mode=False))
        app = start([sys.executable, str(REPO / "app.py")], tmp_path, bare_environment(), port, slack, genesys)
        try:
            wait_for(lambda: healthy(app), 30, f"/healthz to answer 200; log:\n{app.log()}")
            app.post(json.dumps(event_envelope({"type": "app_uninstalled"}, event_id="EvGone")).encode())
            answer = httpx.get(f"{app.url}/healthz", timeout=5)
            assert answer.status_code == 503
            assert "reinstall" in answer.json()["slack"]["detail"]
        finally:
            stop(app)


@pytest.mark.parametrize(
    ("dotenv", "named", "source_line"),
    [
        (None, ["GENESYS_REGION", "GENESYS_CLIENT_ID", "GENESYS_CLIENT_SECRET", "SLACK_BOT_TOKEN",
                "SLACK_SIGNING_SECRET"], "No .env file in"),
        ("as shipped", ["GENESYS_CLIENT_ID", "GENESYS_CLIENT_SECRET", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"],
         "Settings were read from"),
        ("some wrong", ["GENESYS_CLIENT_SECRET", "SLACK_BOT_TOKEN", "PORT", "POLL_INTERVAL_SECONDS", "LOG_LEVEL"],
         "Settings were read from"),
    ],
)
def test_nothing_or_half_configured_gets_one_answer_naming_everything(
        clone: Path, dotenv: str | None, named: list[str], source_line: str) -> None:
    """`./run.sh` names every missing or invalid setting (Slack and Genesys) at once, where they were read, exit 2."""
    if dotenv is not None:
        shutil.copy(clone / ".env.example", clone / ".env")
    if dotenv == "some wrong":
        write_dotenv(clone, {"GENESYS_CLIENT_ID": "id", "SLACK_BOT_TOKEN": "xoxp-user-token",
                             "SLACK_SIGNING_SECRET": "s", "PORT": "http", "POLL_INTERVAL_SECONDS": "0",
                             "LOG_LEVEL": "LOUD"})
    result = subprocess.run(["./run.sh"], cwd=clone, env=bare_environment(), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2, result.stderr
    problems = [line.strip().split(":", 1)[0] for line in result.stderr.splitlines() if line.startswith("  ")]
    assert sorted(problems) == sorted(named), result.stderr
    assert source_line in result.stderr
    assert ".env.example" in result.stderr
    assert "Traceback" not in result.stderr
    assert "xoxp-user-token" not in result.stderr


HOSTILE_ENVIRONMENT = {
    "SLACK_CLIENT_ID": "", "SLACK_CLIENT_SECRET": "", "SLACK_BOT_TOKEN": "xoxb-from-the-environment",
    "SLACK_SIGNING_SECRET": "secret-from-the-environment", "SLACK_VERIFICATION_TOKEN": "legacy",
    "SLACK_SCOPES": "admin", "SLACK_INSTALL_PATH": "/elsewhere", "SLACK_APP_TOKEN": "xapp-from-the-environment",
}


def test_bolt_never_sees_a_setting_the_app_did_not_pass(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    """With every SLACK_* name Bolt reads set in the environment, the Bolt app is built from the settings alone."""
    for name, value in HOSTILE_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    (tmp_path / ".env").write_text("SLACK_BOT_TOKEN=xoxb-ours\nSLACK_SIGNING_SECRET=ours\n")
    monkeypatch.delenv("SLACK_BOT_TOKEN")
    monkeypatch.delenv("SLACK_SIGNING_SECRET")
    environment = read_environment(tmp_path)
    withhold_from_libraries()
    assert not [name for name in os.environ if name.startswith("SLACK_")]
    service = read_service_settings(environment.values)
    caplog.set_level(logging.DEBUG)
    app = build_slack_app(service, engine=object(), client=WebClient(token=service.bot_token),  # type: ignore[arg-type]
                          uninstalled=lambda enterprise_id, team_id: None)
    assert app.oauth_flow is None
    assert app.installation_store is None
    assert app.client.token == "xoxb-ours"
    assert app._signing_secret == "ours"
    assert app._verification_token is None
    assert "from-the-environment" not in caplog.text
    assert "installation" not in caplog.text.lower()


def test_dotenv_values_stay_out_of_the_process_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`.env` is read into the settings value, never into os.environ, and real environment variables win."""
    monkeypatch.setenv("PORT", "4000")
    monkeypatch.delenv("LOG_LEVEL", raising=False)
    (tmp_path / ".env").write_text("PORT=5000\nLOG_LEVEL=DEBUG\nSLACK_CLIENT_ID=\n")
    environment = read_environment(tmp_path)
    assert environment.dotenv_found
    assert (environment.values["PORT"], environment.values["LOG_LEVEL"]) == ("4000", "DEBUG")
    assert "LOG_LEVEL" not in os.environ
    assert config.read_settings(environment.values).log_level == "DEBUG"


@pytest.fixture(autouse=True)
def _restore_environment() -> Iterator[None]:
    """withhold_from_libraries edits os.environ; put it back for the tests that follow."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
