"""The running app in Socket Mode (SLACK_APP_TOKEN set) against the local Socket Mode endpoint and Web API."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import pytest

from localdev.app_process import Running, agent_on_a_call, launch_socket_mode, wait_for
from localdev.genesys_cloud import FakeGenesysCloud
from localdev.slack_api import block_actions_body, event_envelope, slash_command_body
from localdev.socket_mode import APP_TOKEN, SocketModeSlack


@pytest.fixture
def socket_app(tmp_path: Path) -> Iterator[tuple[Running, SocketModeSlack]]:
    with SocketModeSlack() as slack, FakeGenesysCloud() as genesys:
        app = launch_socket_mode(slack, genesys, tmp_path)
        try:
            yield app, slack
        finally:
            if app.process.poll() is None:
                app.process.kill()
            app.process.wait(timeout=10)


def test_the_app_opens_a_socket_with_the_app_token(socket_app: tuple[Running, SocketModeSlack]) -> None:
    """serve calls apps.connections.open with the xapp- token, connects, and /healthz says socket + connected."""
    app, slack = socket_app
    opens = slack.calls("apps.connections.open")
    assert [call.token for call in opens] == [APP_TOKEN]
    assert slack.socket_mode.connection_count == 1
    assert slack.socket_mode.refused_handshakes == []
    assert httpx.post(f"{app.url}/slack/events", content=b"{}", timeout=5).status_code == 404


def test_an_event_is_acked_written_once_and_its_retry_is_not(socket_app: tuple[Running, SocketModeSlack]) -> None:
    """A user_change envelope is acked within 3 s and written; its retry (same event_id) is acked, not rewritten."""
    app, slack = socket_app
    user, participant = agent_on_a_call(app)
    body = event_envelope({"type": "user_change", "user": user}, event_id="EvSock1")
    first = slack.socket_mode.push_event(body)
    ack = slack.socket_mode.wait_for_ack(first, timeout=3)
    assert ack.latency_s is not None
    assert ack.latency_s < 3
    assert ack.payload is None
    wait_for(lambda: app.genesys.attributes(participant.conversation_id, participant.participant_id).get("slack.title")
             == "Support Engineer", 10, f"the title to be written; log:\n{app.log()}")
    retry = slack.socket_mode.push_event(body, retry_attempt=1, retry_reason="timeout")
    assert retry != first
    slack.socket_mode.wait_for_ack(retry, timeout=3)
    time.sleep(2.5)  # two poll intervals
    assert len(app.genesys.patches) == 1
    assert slack.call_count("users.profile.get") == 1


def test_a_slash_command_is_acked_with_its_answer(socket_app: tuple[Running, SocketModeSlack]) -> None:
    """/genesys-sync over the socket is acked with the ephemeral answer as payload, then answers at response_url."""
    app, slack = socket_app
    _user, participant = agent_on_a_call(app)
    url = slack.response_url("sync")
    fields = dict(parse_qsl(slash_command_body("", user_id="U0ADA", response_url=url).decode()))
    ack = slack.socket_mode.wait_for_ack(slack.socket_mode.push_slash_command(fields), timeout=3)
    assert ack.payload is not None
    assert ack.payload["response_type"] == "ephemeral"
    wait_for(lambda: bool(slack.responses_to(url)), 10, f"the answer; log:\n{app.log()}")
    assert participant.conversation_id in slack.responses_to(url)[-1]["text"]


def test_the_home_tab_works_over_the_socket(socket_app: tuple[Running, SocketModeSlack]) -> None:
    """app_home_opened and a Sync now click come over the socket, are acked within 3 s, and publish the view."""
    app, slack = socket_app
    _user, participant = agent_on_a_call(app)
    opened = slack.socket_mode.push_event(event_envelope(
        {"type": "app_home_opened", "user": "U0ADA", "channel": "D0HOME", "tab": "home", "event_ts": "1.2"}))
    slack.socket_mode.wait_for_ack(opened, timeout=3)
    wait_for(lambda: slack.home_view("U0ADA") is not None, 10, f"the Home view; log:\n{app.log()}")
    view = slack.home_view("U0ADA")
    assert view is not None
    payload = json.loads(dict(parse_qsl(block_actions_body(
        view, {"action_id": "home_sync_now", "block_id": "home_person_actions", "type": "button", "value": "sync"},
        user_id="U0ADA").decode()))["payload"])
    slack.socket_mode.wait_for_ack(slack.socket_mode.push_interactive(payload), timeout=3)
    wait_for(lambda: len(slack.published_views["U0ADA"]) >= 2, 10, f"the view after Sync now; log:\n{app.log()}")
    assert "Synced your profile" in json.dumps(slack.home_view("U0ADA"))
    assert app.genesys.attributes(participant.conversation_id, participant.participant_id)["slack.title"] == \
        "Support Engineer"


def test_sigterm_stops_the_socket_mode_app_quickly(socket_app: tuple[Running, SocketModeSlack]) -> None:
    """SIGTERM ends the Socket Mode process cleanly within a few seconds."""
    app, _slack = socket_app
    started = time.monotonic()
    app.process.send_signal(signal.SIGTERM)
    assert app.process.wait(timeout=10) == 0
    assert time.monotonic() - started < 5
    assert "stopped" in app.log()
