"""Installing into many workspaces through Slack OAuth, with the app as a real process.

Two fake workspaces sit behind one Slack API URL (localdev/slack_workspaces.py), which also exchanges OAuth
codes as Slack does. The browser's part of the flow is played with plain HTTP: /slack/install, the person's
approval (a code from the fake), the redirect back to /slack/oauth_redirect with the state cookie.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from localdev.app_process import SIGNING_SECRET, Running, launch, wait_for
from localdev.genesys_cloud import FakeGenesysCloud
from localdev.slack_api import FakeSlack, event_envelope, signed_headers
from localdev.slack_workspaces import FakeSlackWorkspaces

STATE_COOKIE = "slack-app-oauth-state"


@dataclass
class World:
    acme: FakeSlack
    globex: FakeSlack
    slack: FakeSlackWorkspaces
    genesys: FakeGenesysCloud
    tmp_path: Path


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with (FakeSlack(team_id="TACME", bot_token="xoxb-acme", team_name="Acme") as acme,
          FakeSlack(team_id="TGLOBEX", bot_token="xoxb-globex", team_name="Globex") as globex,
          FakeSlackWorkspaces(acme, globex) as slack, FakeGenesysCloud() as genesys):
        yield World(acme, globex, slack, genesys, tmp_path)


def start(world: World, *, name: str = "app") -> Running:
    """The app in OAuth mode (no SLACK_BOT_TOKEN), serving HTTP, until /healthz answers 200."""
    return launch(world.acme, world.genesys, world.tmp_path, name=name, env_changes={
        "SLACK_BOT_TOKEN": None, "SLACK_CLIENT_ID": world.slack.client_id,
        "SLACK_CLIENT_SECRET": world.slack.client_secret, "SLACK_API_URL": world.slack.api_url,
    })


@pytest.fixture
def app(world: World) -> Iterator[Running]:
    running = start(world)
    try:
        yield running
    finally:
        running.process.terminate()
        running.process.wait(timeout=10)


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


def install(app: Running, world: World, workspace: FakeSlack) -> httpx.Response:
    cookie, query = begin_install(app)
    return finish_install(app, world.slack.authorize(workspace), query["state"][0], cookie)


def send_event(app: Running, event: dict[str, object], team_id: str, **envelope: object) -> httpx.Response:
    body = json.dumps(event_envelope(event, team_id=team_id, **envelope)).encode()
    return httpx.post(f"{app.url}/slack/events", content=body, headers=signed_headers(SIGNING_SECRET, body),
                      timeout=10)


def health(app: Running) -> dict[str, object]:
    return dict(httpx.get(f"{app.url}/healthz", timeout=5).json()["slack"])


def test_install_page_asks_slack_for_exactly_the_manifest_scopes(app: Running, world: World) -> None:
    """/slack/install links to Slack's authorize page with our client id, the bot scopes and a one-time state."""
    cookie, query = begin_install(app)
    assert query["client_id"] == [world.slack.client_id]
    assert query["scope"] == ["commands,users:read,users:read.email,users.profile:read"]
    assert query["state"] == [cookie]


def test_an_installed_workspace_is_synced_with_its_own_token(app: Running, world: World) -> None:
    """After the OAuth flow, the workspace's members are read with its bot token and its live calls written."""
    world.globex.add_user("UGLOBEX1", name="gina", email="gina@globex.example", title="Globex Supervisor")
    genesys_user = world.genesys.add_user("gina@globex.example")
    leg = world.genesys.start_conversation(genesys_user, media_type="voice")
    answer = install(app, world, world.globex)
    assert answer.status_code == 200, answer.text
    assert world.slack.exchanges == ["TGLOBEX"]
    assert health(app)["workspaces"] == 1
    # The first sync of a new workspace reads every member: the live call gets the title without any event.
    wait_for(lambda: world.genesys.attributes(leg.conversation_id, leg.participant_id).get("slack.title")
             == "Globex Supervisor", 15, "the new workspace's member to be written")
    assert world.globex.call_count("users.list") >= 1
    assert world.acme.call_count("users.list") == 0
    changed = world.globex.update_profile("UGLOBEX1", title="Globex Director")
    assert send_event(app, {"type": "user_change", "user": changed}, "TGLOBEX").status_code == 200
    wait_for(lambda: world.genesys.attributes(leg.conversation_id, leg.participant_id).get("slack.title")
             == "Globex Director", 10, "the change to be written")
    assert {call.token for call in world.globex.requests} == {"xoxb-globex"}
    assert "xoxb-globex" not in app.log()


def test_a_state_works_once_and_only_with_its_cookie(app: Running, world: World) -> None:
    """A replayed redirect, a forged state or a missing cookie is refused, and nothing gets installed."""
    cookie, query = begin_install(app)
    state = query["state"][0]
    forged = finish_install(app, world.slack.authorize(world.acme), "forged-state", "forged-state")
    no_cookie = finish_install(app, world.slack.authorize(world.acme), state, "another-value")
    assert forged.status_code >= 400
    assert no_cookie.status_code >= 400
    assert world.slack.exchanges == []
    assert health(app)["workspaces"] == 0
    assert finish_install(app, world.slack.authorize(world.acme), state, cookie).status_code == 200
    replayed = finish_install(app, world.slack.authorize(world.acme), state, cookie)
    assert replayed.status_code >= 400
    assert world.slack.exchanges == ["TACME"]


def test_installations_survive_a_restart_and_uninstall_forgets_the_workspace(world: World) -> None:
    """Installations live in the database; app_uninstalled deletes the workspace's installation and profiles."""
    first = start(world, name="first")
    try:
        assert install(first, world, world.acme).status_code == 200
        assert install(first, world, world.globex).status_code == 200
    finally:
        first.process.terminate()
        first.process.wait(timeout=10)
    second = start(world, name="second")
    try:
        assert health(second)["workspaces"] == 2
        world.acme.add_user("UACME1", name="al", email="al@acme.example", title="Agent")
        user = world.acme.user("UACME1")
        assert send_event(second, {"type": "user_change", "user": user}, "TACME").status_code == 200
        wait_for(lambda: world.acme.call_count("users.profile.get") >= 1, 10, "the profile to be read")
        uninstall = send_event(second, {"type": "app_uninstalled"}, "TACME")
        assert uninstall.status_code == 200
        wait_for(lambda: health(second)["workspaces"] == 1, 5, "the installation to be deleted")
        assert "uninstalled from Slack workspace TACME" in second.log()
    finally:
        second.process.terminate()
        second.process.wait(timeout=10)


def test_an_event_from_a_workspace_without_installation_records_nothing(app: Running, world: World) -> None:
    """A signed event for a workspace that never installed the app reads no profile and writes nothing."""
    world.acme.add_user("UACME2", name="bo", email="bo@acme.example", title="Agent")
    response = send_event(app, {"type": "user_change", "user": world.acme.user("UACME2")}, "TACME")
    assert response.status_code < 500
    assert world.acme.call_count("users.profile.get") == 0
    assert app.process.poll() is None
