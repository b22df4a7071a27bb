"""The store's contracts, method by method, on SQLite and PostgreSQL: dedupe, desired state, links, writes, audit."""

from __future__ import annotations

from dataclasses import replace

import pytest

from store import LATEST_VERSION, DesiredRow, Store, StoreError, UserLink, WriteRecord, open_store
from store.database_url import parse_database_url
from tests.clocks import FakeClock
from tests.store.conftest import RawSql

# A trigger that makes every audit insert fail, in each dialect.
_REFUSE_AUDIT = {
    "sqlite": ["CREATE TRIGGER no_audit BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'audit refused'); END"],
    "postgresql": [
        "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN RAISE EXCEPTION 'audit refused'; END $$",
        "CREATE TRIGGER no_audit BEFORE INSERT ON audit FOR EACH ROW EXECUTE FUNCTION refuse_audit()",
    ],
}


def desired_row(user_id: str = "U1", **changes: object) -> DesiredRow:
    row = DesiredRow(
        team_id="T1",
        user_id=user_id,
        email=f"{user_id.lower()}@example.com",
        deleted=False,
        attributes={"slack.title": "Engineer", "slack.department": "R&D"},
        attributes_hash="hash-a",
        profile_updated=1_000,
        refreshed_at=1_700_000_000.0,
    )
    return replace(row, **changes)  # type: ignore[arg-type]


def write_record(result: str = "written", **changes: object) -> WriteRecord:
    record = WriteRecord(
        conversation_id="c1",
        participant_id="p1",
        genesys_user_id="g1",
        team_id="T1",
        user_id="U1",
        attributes_hash="hash-a",
        keys=("slack.title", "slack.department"),
        result=result,  # type: ignore[arg-type]
        context_id="ctx-1",
        detail="",
        at=1_700_000_000.0,
    )
    return replace(record, **changes)  # type: ignore[arg-type]


# --- Slack event dedupe --------------------------------------------------------------------------------------------


def test_remember_event_is_true_once_then_false(store: Store) -> None:
    """The first sighting of an event_id is new; every later one within the TTL is a duplicate."""
    assert store.remember_event("Ev1") is True
    assert store.remember_event("Ev1") is False
    assert store.remember_event("Ev1") is False
    assert store.remember_event("Ev2") is True


def test_remember_event_forgets_after_ttl_even_before_purge(store: Store, clock: FakeClock) -> None:
    """An event_id whose TTL passed counts as new again, whether or not retention deleted it."""
    assert store.remember_event("Ev1", ttl_s=60)
    clock.advance(59)
    assert not store.remember_event("Ev1", ttl_s=60)
    clock.advance(1)
    assert store.remember_event("Ev1", ttl_s=60)
    assert not store.remember_event("Ev1", ttl_s=60)


def test_remember_event_survives_reopen(database_url: str, clock: FakeClock) -> None:
    """A remembered event_id is still a duplicate after the store is closed and opened again."""
    first = open_store(database_url, clock=clock)
    assert first.remember_event("Ev1")
    first.close()
    second = open_store(database_url, clock=clock)
    assert not second.remember_event("Ev1")
    second.close()


# --- Desired state -------------------------------------------------------------------------------------------------


def test_save_desired_new_row_round_trips(store: Store) -> None:
    """A new row is reported as a change and reads back equal."""
    row = desired_row()
    assert store.save_desired(row) is True
    assert store.desired("T1", "U1") == row
    assert store.desired("T1", "U2") is None
    assert store.desired("T2", "U1") is None


@pytest.mark.parametrize(
    ("changes", "changed"),
    [
        ({}, False),
        ({"refreshed_at": 1_700_000_500.0}, False),
        ({"attributes": {"slack.title": "Lead"}, "attributes_hash": "hash-b"}, True),
        ({"deleted": True}, True),
        ({"profile_updated": 2_000, "attributes": {"slack.title": "Lead"}, "attributes_hash": "hash-b"}, True),
    ],
)
def test_save_desired_reports_whether_attributes_changed(store: Store, changes: dict, changed: bool) -> None:
    """save_desired is True only when the hash (or the deleted flag) differs from the stored row, and stores it."""
    store.save_desired(desired_row())
    updated = desired_row(**changes)
    assert store.save_desired(updated) is changed
    assert store.desired("T1", "U1") == updated


@pytest.mark.parametrize(("late_updated", "applied"), [(999, False), (1_000, True), (None, True)])
def test_save_desired_ignores_out_of_order_profiles(store: Store, late_updated: int | None, applied: bool) -> None:
    """A row whose profile_updated is older than the stored one is a late delivery: ignored; equal or unknown apply."""
    store.save_desired(desired_row(profile_updated=1_000))
    late = desired_row(profile_updated=late_updated, attributes={"slack.title": "Old"}, attributes_hash="hash-old")
    assert store.save_desired(late) is applied
    assert store.desired("T1", "U1") == (late if applied else desired_row(profile_updated=1_000))


def test_users_due_for_refresh_oldest_first_with_limit(store: Store) -> None:
    """Users refreshed strictly before the cutoff come back least recently refreshed first, at most `limit`."""
    for user_id, refreshed_at in [("U1", 300.0), ("U2", 100.0), ("U3", 200.0), ("U4", 400.0)]:
        store.save_desired(desired_row(user_id, refreshed_at=refreshed_at))
    assert store.users_due_for_refresh(older_than=400.0, limit=10) == [("T1", "U2"), ("T1", "U3"), ("T1", "U1")]
    assert store.users_due_for_refresh(older_than=400.0, limit=2) == [("T1", "U2"), ("T1", "U3")]
    assert store.users_due_for_refresh(older_than=100.0, limit=10) == []


# --- User links ----------------------------------------------------------------------------------------------------


def test_link_user_links_both_ways(store: Store) -> None:
    """A link reads back from the Slack side and the Genesys side; desired rows are found through it."""
    store.save_desired(desired_row("U1"))
    store.save_desired(desired_row("U2"))
    store.link_user("T1", "U1", "u1@example.com", "g1", resolved_at=10.0)
    store.link_user("T1", "U2", "u2@example.com", "g2", resolved_at=11.0)
    assert store.genesys_user_for("T1", "U1") == UserLink("T1", "U1", "u1@example.com", "g1", 10.0)
    assert store.slack_users_for("g1") == [UserLink("T1", "U1", "u1@example.com", "g1", 10.0)]
    assert store.desired_for_genesys_user("g1") == [desired_row("U1")]
    assert store.desired_for_genesys_user("g-unknown") == []
    assert store.genesys_user_for("T1", "U9") is None


def test_link_user_remembers_no_match_and_can_be_resolved_later(store: Store) -> None:
    """genesys_user_id None is stored as a negative answer, then replaced when a match appears."""
    store.link_user("T1", "U1", "u1@example.com", None, resolved_at=10.0)
    assert store.genesys_user_for("T1", "U1") == UserLink("T1", "U1", "u1@example.com", None, 10.0)
    store.link_user("T1", "U1", "u1@example.com", "g1", resolved_at=20.0)
    assert store.genesys_user_for("T1", "U1") == UserLink("T1", "U1", "u1@example.com", "g1", 20.0)
    store.link_user("T1", "U1", "new@example.com", "g7", resolved_at=30.0)
    assert store.slack_users_for("g1") == []
    assert [link.user_id for link in store.slack_users_for("g7")] == ["U1"]


# --- Last written and audit ----------------------------------------------------------------------------------------


def test_record_write_written_sets_last_written_and_audits(store: Store) -> None:
    """A 'written' result stores the participant's hash and appends an audit row with keys and contextId."""
    assert store.last_written("c1", "p1") is None
    store.record_write(write_record())
    assert store.last_written("c1", "p1") == "hash-a"
    store.record_write(write_record(attributes_hash="hash-b", at=1_700_000_001.0))
    assert store.last_written("c1", "p1") == "hash-b"
    newest = store.audit()[0]
    assert (newest.result, newest.attributes_hash, newest.keys, newest.context_id) == (
        "written",
        "hash-b",
        ("slack.title", "slack.department"),
        "ctx-1",
    )
    assert (newest.conversation_id, newest.participant_id, newest.genesys_user_id) == ("c1", "p1", "g1")


@pytest.mark.parametrize("result", ["gone", "rejected", "failed"])
def test_record_write_other_results_only_audit(store: Store, result: str) -> None:
    """Results other than 'written' append to the audit but leave last_written alone."""
    store.record_write(write_record())
    store.record_write(write_record(result, attributes_hash="hash-b", detail="why", context_id=None))
    assert store.last_written("c1", "p1") == "hash-a"
    assert [(entry.result, entry.detail) for entry in store.audit()] == [(result, "why"), ("written", "")]


def test_record_write_rejects_unknown_result(store: Store) -> None:
    """An unknown result is a caller bug: ValueError, nothing stored."""
    with pytest.raises(ValueError, match="not one of"):
        store.record_write(write_record("maybe"))
    assert store.audit() == []


def test_record_write_is_one_transaction(store: Store, backend: str, raw_sql: RawSql) -> None:
    """If the audit row cannot be written, last_written is not updated either."""
    for statement in _REFUSE_AUDIT[backend]:
        raw_sql(statement)
    with pytest.raises(StoreError, match="audit refused"):
        store.record_write(write_record())
    assert store.last_written("c1", "p1") is None


def test_audit_newest_first_filtered_and_limited(store: Store) -> None:
    """audit() lists newest first, optionally for one Slack user, at most `limit` rows."""
    for index, user_id in enumerate(["U1", "U2", "U1", "U1"]):
        store.record_write(write_record(user_id=user_id, participant_id=f"p{index}", at=100.0 + index))
    assert [entry.participant_id for entry in store.audit()] == ["p3", "p2", "p1", "p0"]
    assert [entry.participant_id for entry in store.audit(user_id="U1", limit=2)] == ["p3", "p2"]
    assert [entry.participant_id for entry in store.audit(user_id="U2")] == ["p1"]
    assert store.audit(user_id="U9") == []


def test_forget_participants_drops_only_those_not_live(store: Store) -> None:
    """Participants no longer live lose their last_written row; live ones keep it; the count is returned."""
    for conversation_id, participant_id in [("c1", "p1"), ("c1", "p2"), ("c2", "p3")]:
        store.record_write(write_record(conversation_id=conversation_id, participant_id=participant_id))
    assert store.forget_participants({("c1", "p2"), ("c9", "p9")}) == 2
    assert store.last_written("c1", "p1") is None
    assert store.last_written("c1", "p2") == "hash-a"
    assert store.last_written("c2", "p3") is None
    assert store.forget_participants({("c1", "p2")}) == 0
    assert len(store.audit()) == 3


# --- Maintenance and health ----------------------------------------------------------------------------------------


def test_health_runs_a_real_query(store: Store, database_url: str) -> None:
    """health() is ok while the database answers and names the database and schema version."""
    health = store.health()
    assert health.ok
    assert parse_database_url(database_url).describe() in health.detail
    assert f"schema version {LATEST_VERSION}" in health.detail


def test_closed_store_is_unhealthy_and_refuses_work(store: Store) -> None:
    """After close(), health() says so and every method raises StoreError; closing again is harmless."""
    store.close()
    store.close()
    assert not store.health().ok
    assert "closed" in store.health().detail
    with pytest.raises(StoreError, match="closed"):
        store.enqueue("refresh", "T1:U1", {})


def test_write_intents_are_cleared_by_any_recorded_outcome(database_url: str) -> None:
    """An intent stays until the write's outcome is recorded, whatever the outcome."""
    store = open_store(database_url)
    try:
        store.intend_write("C1", "P1", "h1")
        store.intend_write("C2", "P2", "h2")
        store.intend_write("C1", "P1", "h1b")
        assert store.write_intents() == [("C2", "P2", "h2"), ("C1", "P1", "h1b")]
        for conversation, participant, result in (("C1", "P1", "written"), ("C2", "P2", "gone")):
            store.record_write(WriteRecord(conversation, participant, "G", "T", "U", "h", ("k",), result, None, "",
                                           1.0))
        assert store.write_intents() == []
    finally:
        store.close()


def test_enqueue_with_an_event_id_dedupes_in_one_step(database_url: str) -> None:
    """Enqueueing with an event id records the event; the same id again enqueues nothing."""
    store = open_store(database_url)
    try:
        assert store.enqueue("refresh", "T:U1", {"n": 1}, event_id="Ev1")
        assert not store.enqueue("refresh", "T:U1", {"n": 2}, event_id="Ev1")
        assert not store.remember_event("Ev1")
        [item] = store.claim(worker="w")
        assert item.payload == {"n": 1}
    finally:
        store.close()
