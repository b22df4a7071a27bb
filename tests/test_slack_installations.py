"""The OAuth installation and state stores over the app's store (a real SQLite file), as Bolt calls them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from slack_sdk.oauth.installation_store import Bot, Installation

from handlers.events import record_lifecycle_event
from slack_directory import SlackDirectoryError, StoreInstallationStore, StoreOAuthStateStore, WorkspaceClients
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
