"""The app as a real process on 127.0.0.1 against the local Slack and Genesys Cloud: start it the way an operator
does (`python app.py serve` with settings in the environment), wait for `/healthz`, talk to it.

Used by the tests, `bench/` and the demo; nothing here imports the app's packages (it runs the app as a process).
"""

from __future__ import annotations

import html
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from localdev.genesys_cloud import FakeGenesysCloud, JoinedParticipant
from localdev.slack_api import FakeSlack, event_envelope, signed_headers
from localdev.socket_mode import APP_TOKEN

REPO = Path(__file__).resolve().parent.parent
"""The repository: where `app.py` is."""

SIGNING_SECRET = "test-signing-secret"


def stop_process(process: subprocess.Popen[bytes], grace_s: float = 10.0) -> bool:
    """SIGTERM, as `docker stop` does, then SIGKILL after `grace_s` (the app joins its engine for up to 10 s).
    True when it stopped on SIGTERM (or had already exited)."""
    if process.poll() is not None:
        return True
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
        return False
    return True


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@dataclass
class Running:
    """The app process and what talks to it."""

    process: subprocess.Popen[bytes]
    url: str
    slack: FakeSlack
    genesys: FakeGenesysCloud
    log_path: Path

    def post(self, body: bytes, *, content_type: str | None = None, headers: dict[str, str] | None = None,
             timestamp: int | None = None) -> httpx.Response:
        sent = headers if headers is not None else signed_headers(SIGNING_SECRET, body, timestamp=timestamp,
                                                                 content_type=content_type)
        return httpx.post(f"{self.url}/slack/events", content=body, headers=sent, timeout=10)

    def event(self, event: dict[str, object], **envelope: object) -> httpx.Response:
        return self.post(json.dumps(event_envelope(event, **envelope)).encode())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def app_settings(slack: FakeSlack, genesys: FakeGenesysCloud, port: int) -> dict[str, str]:
    """The app's settings for the local fakes, with no DATABASE_URL (the container test uses the image's)."""
    return {
        "SLACK_BOT_TOKEN": "xoxb-fake-bot-token", "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url, "PORT": str(port),
        "GENESYS_API_URL": genesys.base_url, "GENESYS_LOGIN_URL": genesys.base_url,
        "GENESYS_CLIENT_ID": "fake-client-id", "GENESYS_CLIENT_SECRET": "fake-client-secret",
        "POLL_INTERVAL_SECONDS": "1", "SYNC_ADMINS": "UADMIN",
        # The poll alone, so a test of the poll sees it at its pace; the push tests turn this back on.
        "GENESYS_PUSH": "off",
    }


def app_environment(slack: FakeSlack, genesys: FakeGenesysCloud, tmp_path: Path, port: int, *,
                    database_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GENESYS_", "SYNC_"))}
    env.update(app_settings(slack, genesys, port))
    env["DATABASE_URL"] = database_url or f"sqlite:///{tmp_path}/sync.db"
    return env


class PortTaken(AssertionError):
    """The app exited because its port was taken (the line `app.py`'s `_listen` exits with)."""


def launch(slack: FakeSlack, genesys: FakeGenesysCloud, tmp_path: Path, *, name: str = "app",
           database_url: str | None = None, env_changes: Mapping[str, str | None] | None = None) -> Running:
    """Start the app as a real process and wait until /healthz answers 200; `env_changes` sets settings (None:
    removes one) over the fakes' defaults."""
    for _ in range(2):
        try:
            return _launch_on(free_port(), slack, genesys, tmp_path, name, database_url, env_changes)
        except PortTaken:
            # Another process (a test running in parallel) bound the port between free_port() and the app's own
            # bind a second later: start again on another one.
            pass
    return _launch_on(free_port(), slack, genesys, tmp_path, name, database_url, env_changes)


def _launch_on(port: int, slack: FakeSlack, genesys: FakeGenesysCloud, tmp_path: Path, name: str,
               database_url: str | None, env_changes: Mapping[str, str | None] | None) -> Running:
    env = app_environment(slack, genesys, tmp_path, port, database_url=database_url)
    for setting, value in (env_changes or {}).items():
        if value is None:
            env.pop(setting, None)
        else:
            env[setting] = value
    log_path = tmp_path / f"{name}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen([sys.executable, str(REPO / "app.py"), "serve"], cwd=tmp_path, env=env,
                                   stdout=log_file, stderr=subprocess.STDOUT)
    app = Running(process, f"http://127.0.0.1:{port}", slack, genesys, log_path)
    try:
        wait_healthy(app)
    except BaseException:
        process.kill()
        process.wait(timeout=10)
        if process.returncode == 2 and f"PORT: cannot listen on port {port}" in app.log():
            raise PortTaken(app.log()) from None
        raise
    return app


def wait_healthy(app: Running, timeout: float = 30) -> None:
    """Wait until /healthz answers 200; fail at once if the process exits."""
    wait_for(lambda: healthy(app), timeout, f"/healthz to answer 200; log:\n{app.log()}")


def healthy(app: Running) -> bool:
    if app.process.poll() is not None:
        raise AssertionError(f"the app exited with {app.process.returncode}:\n{app.log()}")
    try:
        return httpx.get(f"{app.url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def agent_on_a_call(app: Running, *, title: str = "Support Engineer") -> tuple[dict[str, object], JoinedParticipant]:
    user = app.slack.add_user("U0ADA", name="ada", real_name="Ada Lovelace", email="ada@example.com", title=title)
    genesys_user = app.genesys.add_user("ada@example.com", name="Ada Lovelace")
    return user, app.genesys.start_conversation(genesys_user, media_type="voice")


def launch_socket_mode(slack: FakeSlack, genesys: FakeGenesysCloud, tmp_path: Path,
                       settings: Mapping[str, str] | None = None) -> Running:
    """`launch` with SLACK_APP_TOKEN (and `settings`) set: healthy means the socket is connected (/healthz answers 503
    in Socket Mode until it is)."""
    app = launch(slack, genesys, tmp_path, env_changes={"SLACK_APP_TOKEN": APP_TOKEN, **(settings or {})})
    slack_part = httpx.get(f"{app.url}/healthz", timeout=5).json()["slack"]
    assert (slack_part["mode"], slack_part["connection"]) == ("socket", "connected"), slack_part
    return app


STATE_COOKIE = "slack-app-oauth-state"
"""Bolt's cookie for the OAuth `state` of an install in progress."""


def begin_install(app: Running) -> tuple[str, dict[str, list[str]]]:
    """GET /slack/install as a browser: the state cookie, and the query of the Slack authorize link."""
    page = httpx.get(f"{app.url}/slack/install", timeout=10)
    assert page.status_code == 200, page.text
    link = re.search(r'href="(https://slack\.com/oauth/v2/authorize\?[^"]+)"', page.text)
    assert link is not None, page.text
    query = parse_qs(urlsplit(html.unescape(link.group(1))).query)
    return page.cookies[STATE_COOKIE], query


def finish_install(app: Running, code: str, state: str, cookie: str) -> httpx.Response:
    """Slack's redirect back to the app after the person approved."""
    return httpx.get(f"{app.url}/slack/oauth_redirect", params={"code": code, "state": state},
                     cookies={STATE_COOKIE: cookie}, timeout=10)
