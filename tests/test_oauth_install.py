"""Installing into many workspaces through Slack OAuth, with the app as a real process.

Two fake workspaces sit behind one Slack API URL (localdev/slack_workspaces.py), which also exchanges OAuth
codes as Slack does. The browser's part of the flow is played with plain HTTP: /slack/install, the person's
approval (a code from the fake), the redirect back to /slack/oauth_redirect with the state cookie.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from localdev.app_process import (
    SIGNING_SECRET,
    STATE_COOKIE,
    Running,
    begin_install,
    finish_install,
    launch,
    wait_for,
)
from localdev.genesys_cloud import FakeGenesysCloud
from localdev.slack_api import FakeSlack, event_envelope, signed_headers, slash_command_body
from localdev.slack_workspaces import FakeSlackWorkspaces


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


def start(world: World, *, name: str = "app", allowed: str = "TACME TGLOBEX") -> Running:
    """The app in OAuth mode (no SLACK_BOT_TOKEN), serving HTTP, until /healthz answers 200; `allowed` is
    SLACK_ALLOWED_TEAMS."""
    return launch(world.acme, world.genesys, world.tmp_path, name=name, env_changes={
        "SLACK_BOT_TOKEN": None, "SLACK_CLIENT_ID": world.slack.client_id,
        "SLACK_CLIENT_SECRET": world.slack.client_secret, "SLACK_API_URL": world.slack.api_url,
        "SLACK_ALLOWED_TEAMS": allowed,
    })


def stop(app: Running) -> None:
    app.process.terminate()
    app.process.wait(timeout=10)


@pytest.fixture
def app(world: World) -> Iterator[Running]:
    running = start(world)
    try:
        yield running
    finally:
        running.process.terminate()
        running.process.wait(timeout=10)


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
    participant = world.genesys.start_conversation(genesys_user, media_type="voice")
    answer = install(app, world, world.globex)
    assert answer.status_code == 200, answer.text
    assert world.slack.exchanges == ["TGLOBEX"]
    assert health(app)["workspaces"] == 1
    # The first sync of a new workspace reads every member: the live call gets the title without any event.
    wait_for(lambda: world.genesys.attributes(participant.conversation_id,
                                              participant.participant_id).get("slack.title")
             == "Globex Supervisor", 15, "the new workspace's member to be written")
    assert world.globex.call_count("users.list") >= 1
    assert world.acme.call_count("users.list") == 0
    changed = world.globex.update_profile("UGLOBEX1", title="Globex Director")
    assert send_event(app, {"type": "user_change", "user": changed}, "TGLOBEX").status_code == 200
    wait_for(lambda: world.genesys.attributes(participant.conversation_id,
                                              participant.participant_id).get("slack.title")
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


# --- SLACK_ALLOWED_TEAMS -------------------------------------------------------------------------------------------


def test_an_install_from_a_workspace_not_allowed_is_refused_explained_and_revoked(world: World) -> None:
    """The allowed workspace installs; another one gets a page naming it and what to ask for, its token is revoked
    and nothing of it is stored, read or synced."""
    world.globex.add_user("UGLOBEX1", name="gina", email="gina@globex.example", title="Globex Supervisor")
    app = start(world, allowed="TACME")
    try:
        assert install(app, world, world.acme).status_code == 200
        refused = install(app, world, world.globex)
        assert refused.status_code == 403
        page = html.unescape(refused.text)
        assert "not enabled for the Slack workspace Globex (TGLOBEX)" in page
        assert "ask the person who runs this app to add TGLOBEX to SLACK_ALLOWED_TEAMS" in page
        assert STATE_COOKIE in refused.headers.get("set-cookie", "")
        assert world.slack.exchanges == ["TACME", "TGLOBEX"]
        assert world.globex.call_count("auth.revoke") == 1
        assert world.globex.calls("auth.revoke")[0].token == "xoxb-globex"
        assert health(app)["workspaces"] == 1
        time.sleep(1)  # a bootstrap would have listed the workspace by now
        assert world.globex.call_count("users.list") == 0
        assert "refused to install into Slack workspace Globex (TGLOBEX)" in app.log()
        assert "xoxb-globex" not in app.log()
    finally:
        stop(app)
    again = start(world, name="again", allowed="TACME TGLOBEX")
    try:
        assert health(again)["workspaces"] == 1  # the refused install left nothing to find after a restart
    finally:
        stop(again)


def test_a_workspace_removed_from_the_list_is_ignored_and_not_bootstrapped(world: World) -> None:
    """An installation stored before its workspace left SLACK_ALLOWED_TEAMS: its events and commands are acknowledged
    and do nothing (one log line), and the first-start sync skips it with a line saying why."""
    first = start(world, name="first")
    try:
        assert install(first, world, world.globex).status_code == 200
        wait_for(lambda: world.globex.call_count("users.list") == 1, 10, "the first sync to list Globex")
    finally:
        stop(first)
    world.globex.add_user("UGLOBEX1", name="gina", email="gina@globex.example", title="Globex Supervisor")
    genesys_user = world.genesys.add_user("gina@globex.example")
    participant = world.genesys.start_conversation(genesys_user, media_type="voice")
    app = start(world, name="narrowed", allowed="TACME")
    try:
        user = world.globex.user("UGLOBEX1")
        for attempt in range(2):
            answer = send_event(app, {"type": "user_change", "user": user}, "TGLOBEX", event_id=f"Ev{attempt}")
            assert answer.status_code == 200
        body = slash_command_body("", user_id="UGLOBEX1", team_id="TGLOBEX",
                                  response_url=world.globex.response_url("sync"))
        command = httpx.post(f"{app.url}/slack/events", content=body, timeout=10,
                             headers=signed_headers(SIGNING_SECRET, body,
                                                    content_type="application/x-www-form-urlencoded"))
        assert command.status_code == 200
        assert command.text == ""
        time.sleep(2)  # two polls: time for anything that was recorded to be read and written
        assert world.globex.call_count("users.list") == 1
        assert world.globex.call_count("users.profile.get") == 0
        assert world.globex.call_count("users.info") == 0
        assert world.globex.responses_to("sync") == []
        assert world.genesys.attributes(participant.conversation_id, participant.participant_id) == {}
        log = app.log()
        assert log.count("ignoring Slack requests from workspace TGLOBEX: it is not in SLACK_ALLOWED_TEAMS") == 1
        assert "Slack workspace TGLOBEX is installed but not in SLACK_ALLOWED_TEAMS: not synced" in log
        assert "allowed: TACME" in log
        uninstall = send_event(app, {"type": "app_uninstalled"}, "TGLOBEX")
        assert uninstall.status_code == 200
        wait_for(lambda: health(app)["workspaces"] == 0, 5, "the uninstalled workspace to be forgotten")
    finally:
        stop(app)


def test_a_star_allows_any_workspace_with_a_warning(world: World) -> None:
    """SLACK_ALLOWED_TEAMS=* lets any workspace install, and the start-up log warns about it."""
    app = start(world, allowed="*")
    try:
        assert install(app, world, world.globex).status_code == 200
        assert "WARNING app: SLACK_ALLOWED_TEAMS=*: any Slack workspace can install the app" in app.log()
    finally:
        stop(app)


def test_two_workspaces_members_with_one_email_share_no_genesys_user(world: World) -> None:
    """The member synced first keeps the Genesys user; the other workspace's member with the same e-mail is not
    written to the call, logged once and counted in /healthz."""
    world.acme.add_user("UACME1", name="ada", email="ada@example.com", title="Support Engineer")
    world.globex.add_user("UGLOBEX1", name="eve", email="ada@example.com", title="Not Ada")
    participant = world.genesys.start_conversation(world.genesys.add_user("ada@example.com"), media_type="voice")
    app = start(world)
    try:
        assert install(app, world, world.acme).status_code == 200
        wait_for(lambda: world.genesys.attributes(participant.conversation_id,
                                                  participant.participant_id).get("slack.title")
                 == "Support Engineer", 15, "Acme's member to be written")
        assert install(app, world, world.globex).status_code == 200
        wait_for(lambda: httpx.get(f"{app.url}/healthz", timeout=5).json()["links"] == {"conflicts": 1}, 15,
                 "the conflict to be counted")
        changed = world.globex.update_profile("UGLOBEX1", title="Still Not Ada")
        assert send_event(app, {"type": "user_change", "user": changed}, "TGLOBEX").status_code == 200
        wait_for(lambda: world.globex.call_count("users.profile.get") >= 2, 10, "the change to be read")
        time.sleep(1.5)
        assert world.genesys.attributes(participant.conversation_id,
                                        participant.participant_id)["slack.title"] == "Support Engineer"
        assert app.log().count("Slack user UGLOBEX1 (workspace TGLOBEX) has the e-mail of Genesys user") == 1
    finally:
        stop(app)


def test_one_workspace_with_an_allow_list_missing_its_own_team_does_not_start(world: World) -> None:
    """With SLACK_BOT_TOKEN, SLACK_ALLOWED_TEAMS must include the token's workspace (auth.test): else exit 2."""
    with pytest.raises(AssertionError, match="the app exited with 2") as failed:
        launch(world.acme, world.genesys, world.tmp_path, env_changes={
            "SLACK_BOT_TOKEN": "xoxb-acme", "SLACK_API_URL": world.acme.api_url, "SLACK_ALLOWED_TEAMS": "TGLOBEX"})
    assert ("SLACK_ALLOWED_TEAMS: the bot token's workspace Acme (TACME) is not listed (TGLOBEX); add TACME"
            in str(failed.value))
