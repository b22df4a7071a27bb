"""One Slack user per Genesys user, on SQLite and PostgreSQL: a second Slack user with the same e-mail (another
workspace, or a changed e-mail) is never linked over the first; the conflict is recorded once and counted."""

from __future__ import annotations

import sqlite3
import threading

import psycopg
import pytest

from store import LinkConflict, LinkResult, Store, StoreError, UserLink, open_store
from store import schema as store_schema
from tests.clocks import FakeClock
from tests.store.conftest import RawSql


def test_a_second_slack_user_does_not_take_the_first_ones_link(store: Store) -> None:
    """The first link stays; the second Slack user is left unlinked with the conflict naming the holder."""
    assert store.link_user("TACME", "U1", "ada@example.com", "g1", resolved_at=10.0) == LinkResult("g1")
    second = store.link_user("TGLOBEX", "U2", "ada@example.com", "g1", resolved_at=20.0)
    conflict = LinkConflict("TGLOBEX", "U2", "g1", "TACME", "U1", 20.0)
    assert second == LinkResult(None, conflict, new_conflict=True)
    assert store.slack_users_for("g1") == [UserLink("TACME", "U1", "ada@example.com", "g1", 10.0)]
    assert store.genesys_user_for("TGLOBEX", "U2") == UserLink("TGLOBEX", "U2", "ada@example.com", None, 20.0)
    assert store.link_conflict("TGLOBEX", "U2") == conflict
    assert store.link_conflict("TACME", "U1") is None
    assert store.link_conflict_count() == 1


def test_the_same_conflict_seen_again_is_not_new(store: Store) -> None:
    """Resolving the second Slack user again (the paced refresh) keeps the conflict, not new, with its first time."""
    store.link_user("TACME", "U1", "ada@example.com", "g1", resolved_at=10.0)
    store.link_user("TGLOBEX", "U2", "ada@example.com", "g1", resolved_at=20.0)
    again = store.link_user("TGLOBEX", "U2", "ada@example.com", "g1", resolved_at=30.0)
    assert again.new_conflict is False
    assert again.conflict == LinkConflict("TGLOBEX", "U2", "g1", "TACME", "U1", 20.0)
    assert store.link_conflict_count() == 1
    assert store.link_user("TACME", "U1", "ada@example.com", "g1", resolved_at=40.0) == LinkResult("g1")


def test_a_changed_email_matching_someone_elses_genesys_user_is_a_conflict(store: Store) -> None:
    """A Slack user whose e-mail changes to another person's loses its old link and does not take the other's."""
    store.link_user("T1", "U1", "ada@example.com", "g1", resolved_at=10.0)
    store.link_user("T1", "U2", "bo@example.com", "g2", resolved_at=10.0)
    moved = store.link_user("T1", "U2", "ada@example.com", "g1", resolved_at=20.0)
    assert moved.conflict is not None
    assert moved.new_conflict
    assert [link.user_id for link in store.slack_users_for("g1")] == ["U1"]
    assert store.slack_users_for("g2") == []


@pytest.mark.parametrize("resolution", ["own e-mail again", "no match", "holder moved away"])
def test_a_conflict_ends_when_the_slack_user_resolves_without_one(store: Store, resolution: str) -> None:
    """The conflict is gone once the Slack user links elsewhere, matches no one, or the Genesys user is free."""
    store.link_user("T1", "U1", "ada@example.com", "g1", resolved_at=10.0)
    store.link_user("T1", "U2", "ada@example.com", "g1", resolved_at=20.0)
    if resolution == "own e-mail again":
        assert store.link_user("T1", "U2", "bo@example.com", "g2", resolved_at=30.0) == LinkResult("g2")
    elif resolution == "no match":
        assert store.link_user("T1", "U2", "nobody@example.com", None, resolved_at=30.0) == LinkResult(None)
    else:
        store.link_user("T1", "U1", "ada@new.example.com", "g9", resolved_at=30.0)
        assert store.link_user("T1", "U2", "ada@example.com", "g1", resolved_at=40.0) == LinkResult("g1")
    assert store.link_conflict("T1", "U2") is None
    assert store.link_conflict_count() == 0


def test_forgetting_a_workspace_forgets_its_conflicts_both_ways(store: Store) -> None:
    """An uninstalled workspace's conflicts go, as do the conflicts its users held others out of."""
    store.link_user("TACME", "U1", "ada@example.com", "g1", resolved_at=10.0)
    store.link_user("TGLOBEX", "U2", "ada@example.com", "g1", resolved_at=20.0)
    store.link_user("TGLOBEX", "U3", "cy@example.com", "g3", resolved_at=20.0)
    store.link_user("TACME", "U4", "cy@example.com", "g3", resolved_at=30.0)
    assert store.link_conflict_count() == 2
    store.forget_workspace("TACME")
    assert store.link_conflict_count() == 0
    assert store.link_user("TGLOBEX", "U2", "ada@example.com", "g1", resolved_at=40.0) == LinkResult("g1")


def test_the_database_refuses_a_second_link_written_behind_the_stores_back(store: Store, raw_sql: RawSql) -> None:
    """The rule is the database's too: a unique index refuses a second Slack user for one Genesys user."""
    store.link_user("T1", "U1", "ada@example.com", "g1", resolved_at=10.0)
    with pytest.raises((sqlite3.IntegrityError, psycopg.errors.UniqueViolation), match=r"(?i)unique"):
        raw_sql("INSERT INTO user_links (team_id, user_id, email, genesys_user_id, resolved_at)"
                " VALUES ('T2', 'U2', 'ada@example.com', 'g1', 20.0)")


def test_concurrent_links_to_one_genesys_user_leave_one_link_and_conflicts(database_url: str,
                                                                           clock: FakeClock) -> None:
    """Eight Slack users linking to one Genesys user at once: one link, seven conflicts, no error."""
    stores = [open_store(database_url, clock=clock) for _ in range(2)]
    results: list[LinkResult] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def link(index: int) -> None:
        start.wait()
        try:
            results.append(stores[index % 2].link_user("T1", f"U{index}", "ada@example.com", "g1",
                                                      resolved_at=float(index)))
        except StoreError as error:
            errors.append(error)

    threads = [threading.Thread(target=link, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        assert sum(result.genesys_user_id == "g1" for result in results) == 1
        assert sum(result.new_conflict for result in results) == 7
        assert len(stores[0].slack_users_for("g1")) == 1
        assert stores[0].link_conflict_count() == 7
    finally:
        for opened in stores:
            opened.close()


def test_the_migration_splits_links_shared_before_it(database_url: str, raw_sql: RawSql, clock: FakeClock,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A database from before (several Slack users on one Genesys user) keeps the first by workspace and user id,
    the one the engine was writing, and records the others as conflicts."""
    with monkeypatch.context() as before:
        before.setattr(store_schema, "MIGRATIONS", store_schema.MIGRATIONS[:3])
        before.setattr(store_schema, "LATEST_VERSION", 3)
        open_store(database_url, clock=clock).close()
    raw_sql("INSERT INTO user_links (team_id, user_id, email, genesys_user_id, resolved_at) VALUES"
            " ('TGLOBEX', 'U2', 'ada@example.com', 'g1', 5.0), ('TACME', 'U9', 'ada@example.com', 'g1', 30.0),"
            " ('TACME', 'U1', 'ada@example.com', 'g1', 20.0), ('TACME', 'U3', 'bo@example.com', 'g2', 1.0),"
            " ('TACME', 'U4', 'no-match@example.com', NULL, 1.0)")
    migrated = open_store(database_url, clock=clock)
    try:
        assert [link.user_id for link in migrated.slack_users_for("g1")] == ["U1"]
        assert [link.user_id for link in migrated.slack_users_for("g2")] == ["U3"]
        assert migrated.link_conflict("TGLOBEX", "U2") == LinkConflict("TGLOBEX", "U2", "g1", "TACME", "U1", 5.0)
        assert migrated.link_conflict("TACME", "U9") == LinkConflict("TACME", "U9", "g1", "TACME", "U1", 30.0)
        assert migrated.link_conflict_count() == 2
        again = migrated.link_user("TGLOBEX", "U2", "ada@example.com", "g1", resolved_at=40.0)
        assert again.conflict is not None
        assert not again.new_conflict
    finally:
        migrated.close()
