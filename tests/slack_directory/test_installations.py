"""The OAuth installation and state stores over the app's store (a real SQLite file), as Bolt calls them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from slack_bolt.error import BoltError
from slack_sdk.oauth.installation_store import Bot, Installation

from handlers.events import record_lifecycle_event
from handlers.install import refused_install
from handlers.workspaces import WorkspaceGate
from slack_directory import (
    TEAM_NOT_ALLOWED,
    SlackDirectoryError,
    StoreInstallationStore,
    StoreOAuthStateStore,
    WorkspaceClients,
    WorkspaceNotAllowed,
)
from store import Store, open_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path}/sync.db")
    yield opened
    opened.close()


def installation(team_id: str = "T1", *, token: str = "xoxb-1", enterprise_id: str | None = None,
                 installer: str = "UINSTALLER") -> Installation:
    return Installation(app_id="A1", enterprise_id=enterprise_id, team_id=team_id, team_name="Team",
                        bot_token=token, bot_id="B1", bot_user_id="UBOT", bot_scopes=["commands", "users:read"],
                        user_id=installer, installed_at=1_700_000_000.0)


def test_an_installation_reads_back_as_bolt_needs_it(store: Store) -> None:
    """find_installation and find_bot give back the token, scopes and ids that were saved."""
    installed: list[str] = []
    installations = StoreInstallationStore(store, on_installed=installed.append)
    installations.save(installation("T1", token="xoxb-t1"))
    found = installations.find_installation(enterprise_id=None, team_id="T1")
    bot = installations.find_bot(enterprise_id=None, team_id="T1")
    assert found is not None
    assert (found.bot_token, found.bot_user_id, found.bot_scopes) == ("xoxb-t1", "UBOT", ["commands", "users:read"])
    assert bot is not None
    assert bot.bot_token == "xoxb-t1"
    assert installations.find_bot(enterprise_id=None, team_id="T2") is None
    assert installed == ["T1"]


def test_a_rotated_bot_token_replaces_the_old_one(store: Store) -> None:
    """save_bot (Bolt's token refresh) keeps the installation and makes the new token the one found."""
    installations = StoreInstallationStore(store)
    installations.save(installation("T1", token="xoxe.xoxb-old"))
    installations.save_bot(Bot(app_id="A1", enterprise_id=None, team_id="T1", bot_token="xoxe.xoxb-new",
                               bot_id="B1", bot_user_id="UBOT", installed_at=1_700_000_100.0))
    found = installations.find_installation(enterprise_id=None, team_id="T1")
    assert found is not None
    assert found.bot_token == "xoxe.xoxb-new"


def test_no_per_user_installation_is_made_up(store: Store) -> None:
    """Asked for another user's installation, the store has none (the app keeps no user tokens)."""
    installations = StoreInstallationStore(store)
    installations.save(installation("T1", installer="UINSTALLER"))
    assert installations.find_installation(enterprise_id=None, team_id="T1", user_id="UINSTALLER") is not None
    assert installations.find_installation(enterprise_id=None, team_id="T1", user_id="USOMEONE") is None


@pytest.mark.parametrize("delete", ["delete_all", "delete_bot", "delete_installation"])
def test_every_way_bolt_deletes_forgets_the_workspace(store: Store, delete: str) -> None:
    """delete_all, delete_bot and delete_installation (without a user) each remove the workspace's install."""
    uninstalled: list[str] = []
    installations = StoreInstallationStore(store, on_uninstalled=uninstalled.append)
    installations.save(installation("T1"))
    getattr(installations, delete)(enterprise_id=None, team_id="T1")
    assert installations.find_bot(enterprise_id=None, team_id="T1") is None
    assert uninstalled == ["T1"]


def test_a_revoked_user_token_leaves_the_installation(store: Store) -> None:
    """delete_installation for one user (tokens_revoked naming user tokens) keeps the workspace installed."""
    installations = StoreInstallationStore(store)
    installations.save(installation("T1"))
    installations.delete_installation(enterprise_id=None, team_id="T1", user_id="UINSTALLER")
    assert installations.find_bot(enterprise_id=None, team_id="T1") is not None


def test_workspace_clients_use_each_workspaces_token(store: Store) -> None:
    """The engine's client for a workspace carries that workspace's bot token, enterprise workspaces included."""
    installations = StoreInstallationStore(store)
    installations.save(installation("T1", token="xoxb-t1"))
    installations.save(installation("T2", token="xoxb-t2", enterprise_id="E1"))
    made: list[str] = []

    def make(token: str) -> object:
        made.append(token)
        return object()

    clients = WorkspaceClients(installations, make)  # type: ignore[arg-type]
    assert clients("T1") is clients("T1")
    clients("T2")
    assert made == ["xoxb-t1", "xoxb-t2"]
    with pytest.raises(SlackDirectoryError, match="not installed in workspace T3"):
        clients("T3")


def test_oauth_state_is_issued_unique_and_consumed_once(store: Store) -> None:
    """Each state is new, and passes consume() once."""
    states = StoreOAuthStateStore(store)
    first, second = states.issue(), states.issue()
    assert first != second
    assert states.consume(first) is True
    assert states.consume(first) is False
    assert states.consume("never-issued") is False


@pytest.mark.parametrize(
    ("event", "expected", "calls"),
    [
        ({"type": "app_uninstalled"}, "uninstalled", [(None, "T1")]),
        ({"type": "tokens_revoked", "tokens": {"bot": ["UBOT"]}}, "uninstalled", [(None, "T1")]),
        ({"type": "tokens_revoked", "tokens": {"oauth": ["U1"]}}, "ignored: only user tokens revoked", []),
    ],
)
def test_lifecycle_events(event: dict[str, object], expected: str, calls: list[tuple[str | None, str]]) -> None:
    """app_uninstalled and a revoked bot token uninstall; revoked user tokens change nothing."""
    seen: list[tuple[str | None, str]] = []
    result = record_lifecycle_event(lambda enterprise, team: seen.append((enterprise, team)),
                                    {"team_id": "T1", "event": event}, event)
    assert result == expected
    assert seen == calls


def test_an_installation_from_a_workspace_not_allowed_is_refused_before_it_is_stored(store: Store) -> None:
    """save() raises WorkspaceNotAllowed (a BoltError, for Bolt's failure handler); nothing is stored or synced."""
    installed: list[str] = []
    installations = StoreInstallationStore(store, on_installed=installed.append,
                                           allowed=lambda enterprise_id, team_id: team_id == "T1")
    installations.save(installation("T1"))
    with pytest.raises(WorkspaceNotAllowed) as refused:
        installations.save(installation("T2", token="xoxb-t2"))
    assert isinstance(refused.value, BoltError)
    assert (refused.value.team_id, refused.value.bot_token) == ("T2", "xoxb-t2")
    assert "xoxb-t2" not in repr(refused.value)
    assert installations.installed_workspaces() == [("", "T1")]
    assert installed == ["T1"]


def test_workspace_clients_refuse_a_workspace_no_longer_allowed(store: Store) -> None:
    """The engine gets no client for an installed workspace the allow-list left (its Grid organisation counts)."""
    allowed = {"T1", "E1"}
    installations = StoreInstallationStore(store, allowed=lambda e, t: bool({e, t} & allowed))
    installations.save(installation("T1", token="xoxb-t1"))
    installations.save(installation("T3", token="xoxb-t3", enterprise_id="E1"))
    allowed.discard("T1")
    clients = WorkspaceClients(installations, lambda token: object())  # type: ignore[arg-type,return-value]
    with pytest.raises(SlackDirectoryError) as refused:
        clients("T1")
    assert refused.value.error == TEAM_NOT_ALLOWED
    clients("T3")


@pytest.mark.parametrize(
    ("body", "team_id", "admitted"),
    [
        ({"event": {"type": "user_change"}}, "T1", True),
        ({"event": {"type": "user_change"}}, "T2", False),
        ({"command": "/genesys-sync"}, "T2", False),
        ({"event": {"type": "app_uninstalled"}}, "T2", True),
        ({"event": {"type": "tokens_revoked"}}, "T2", True),
    ],
)
def test_the_workspace_gate(body: dict[str, object], team_id: str, admitted: bool) -> None:
    """Requests of listed workspaces pass; others are ignored, except the uninstall events that forget them."""
    assert WorkspaceGate(lambda e, t: t == "T1").admits(body, None, team_id) is admitted


def test_the_workspace_gate_logs_each_refused_workspace_once(caplog: pytest.LogCaptureFixture) -> None:
    """One line per workspace, however many of its requests are ignored."""
    gate = WorkspaceGate(lambda e, t: False)
    for team_id in ("T2", "T2", "T3", "T2"):
        gate.admits({}, None, team_id)
    assert [record.getMessage().split(":")[0] for record in caplog.records] == [
        "ignoring Slack requests from workspace T2", "ignoring Slack requests from workspace T3"]


@pytest.mark.parametrize("revoke_fails", [False, True])
def test_a_refused_install_revokes_its_token_and_explains(revoke_fails: bool) -> None:
    """The refusal page names the workspace and the setting; the token is revoked, or the page says how to remove
    the app when Slack could not be reached."""
    revoked: list[str] = []

    def revoke(token: str) -> None:
        if revoke_fails:
            raise OSError("unreachable")
        revoked.append(token)

    refused = WorkspaceNotAllowed(installation("T2", token="xoxb-t2"))
    response = refused_install(refused, revoke, clear_state_cookie="state=; Max-Age=0")
    assert response.status == 403
    assert "Team (T2)" in response.body
    assert "add T2 to SLACK_ALLOWED_TEAMS" in response.body
    assert revoked == ([] if revoke_fails else ["xoxb-t2"])
    assert ("Manage apps" in response.body) is revoke_fails
