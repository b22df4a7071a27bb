"""Slack OAuth installations and install states in the store: saved, replaced, listed, deleted, consumed once."""

from __future__ import annotations

import pytest

from store import SlackInstallation, Store, open_store
from tests.clocks import FakeClock
from tests.store.test_sqlite_store import desired_row


def installation(team_id: str = "T1", *, enterprise_id: str = "", token: str = "xoxb-1", at: float = 1.0
                 ) -> SlackInstallation:
    return SlackInstallation(enterprise_id, team_id, installation=f'{{"team_id": "{team_id}"}}',
                             bot=f'{{"bot_token": "{token}"}}', installed_at=at)


def test_saved_installation_reads_back(store: Store) -> None:
    """An installation saved for a workspace is found by that workspace's key, and only by it."""
    store.save_installation(installation("T1", token="xoxb-a"))
    found = store.installation("", "T1")
    assert found == installation("T1", token="xoxb-a")
    assert store.installation("", "T2") is None
    assert store.installation("E1", "T1") is None


def test_reinstalling_replaces_the_earlier_installation(store: Store) -> None:
    """A second install of one workspace (new scopes, new token) replaces the first; one row per workspace."""
    store.save_installation(installation("T1", token="xoxb-old", at=1.0))
    store.save_installation(installation("T1", token="xoxb-new", at=2.0))
    found = store.installation("", "T1")
    assert found == installation("T1", token="xoxb-new", at=2.0)
    assert store.installed_workspaces() == [("", "T1")]


def test_installations_survive_reopening(database_url: str, clock: FakeClock) -> None:
    """Installations are durable: a restart still knows every installed workspace."""
    first = open_store(database_url, clock=clock)
    first.save_installation(installation("T1", at=1.0))
    first.save_installation(installation("T2", enterprise_id="E1", at=2.0))
    first.close()
    again = open_store(database_url, clock=clock)
    try:
        assert again.installed_workspaces() == [("", "T1"), ("E1", "T2")]
    finally:
        again.close()


def test_delete_installation_forgets_the_workspace(store: Store) -> None:
    """Deleting (uninstall, tokens revoked) removes the row and says whether there was one."""
    store.save_installation(installation("T1"))
    assert store.delete_installation("", "T1") is True
    assert store.delete_installation("", "T1") is False
    assert store.installation("", "T1") is None
    assert store.installed_workspaces() == []


def test_installation_repr_hides_tokens() -> None:
    """The value's repr (logs, tracebacks) names the workspace but never the bot token."""
    assert "xoxb" not in repr(installation("T1", token="xoxb-secret"))


@pytest.mark.parametrize(
    ("advance_s", "expected"),
    [(0.0, True), (599.0, True), (600.0, False), (3600.0, False)],
)
def test_oauth_state_is_good_once_before_it_expires(store: Store, clock: FakeClock, advance_s: float,
                                                    expected: bool) -> None:
    """A state issued with a 600 s lifetime is consumed once if used before it expires, never after."""
    store.issue_oauth_state("state-1", ttl_s=600.0)
    clock.advance(advance_s)
    assert store.consume_oauth_state("state-1") is expected
    assert store.consume_oauth_state("state-1") is False


def test_unknown_oauth_state_is_refused(store: Store) -> None:
    """A state the app never issued does not pass."""
    assert store.consume_oauth_state("forged") is False


def test_workspace_profiles_are_known_per_workspace_and_forgotten_on_uninstall(store: Store) -> None:
    """workspace_has_profiles tells a workspace's first sync apart; forget_workspace drops only that workspace."""
    assert store.workspace_has_profiles("T1") is False
    store.save_desired(desired_row("U1"))
    store.save_desired(desired_row("U2", team_id="T2"))
    store.link_user("T1", "U1", "u1@example.com", "g1", resolved_at=1.0)
    assert store.workspace_has_profiles("T1") is True
    assert store.forget_workspace("T1") == 1
    assert store.workspace_has_profiles("T1") is False
    assert store.genesys_user_for("T1", "U1") is None
    assert store.desired("T2", "U2") is not None
