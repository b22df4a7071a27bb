"""Audit rows name the participant written (the person's own or the customer's), and a participant's keys last
written are read back (the customer's participant clears a previous person's keys from them); on both databases."""

from __future__ import annotations

import pytest

import store.schema as store_schema
from store import Store, WriteRecord, open_store
from tests.clocks import FakeClock
from tests.store.conftest import RawSql


def write(conversation: str, participant: str, keys: tuple[str, ...], result: str = "written", *,
          target: str = "customer", at: float = 1.0) -> WriteRecord:
    return WriteRecord(conversation, participant, "g1", "T1", "U1", f"h-{'-'.join(keys)}", keys, result,  # type: ignore[arg-type]
                       None, "", at, target)  # type: ignore[arg-type]


def test_audit_rows_name_their_target(store: Store) -> None:
    """A write to the customer's participant and one to the person's own come back with their target."""
    store.record_write(write("c1", "customer-1", ("slack.agent.title",)))
    store.record_write(write("c1", "agent-1", ("slack.title",), target="agent"))
    assert [(entry.participant_id, entry.target) for entry in store.audit(user_id="U1")] == [
        ("agent-1", "agent"), ("customer-1", "customer")]


def test_written_keys_are_those_of_the_newest_write_that_landed(store: Store) -> None:
    """The keys of the newest 'written' row of that participant: refused and failed writes do not count, nor other
    participants' writes; none recorded → ()."""
    assert store.written_keys("c1", "customer-1") == ()
    store.record_write(write("c1", "customer-1", ("slack.agent.pronouns", "slack.agent.title")))
    store.record_write(write("c1", "customer-1", ("slack.agent.x",), "rejected"))
    store.record_write(write("c1", "customer-2", ("slack.agent.y",)))
    store.record_write(write("c2", "customer-1", ("slack.agent.z",)))
    assert store.written_keys("c1", "customer-1") == ("slack.agent.pronouns", "slack.agent.title")
    store.forget_participants(set())  # the call had nobody on it for a while: the keys still come from the audit
    assert store.written_keys("c1", "customer-1") == ("slack.agent.pronouns", "slack.agent.title")


def test_the_migration_gives_older_audit_rows_the_agent_target(database_url: str, raw_sql: RawSql,
                                                               clock: FakeClock,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows written before targets existed were all to the person's own participant: they read as agent."""
    with monkeypatch.context() as before:
        before.setattr(store_schema, "MIGRATIONS", store_schema.MIGRATIONS[:5])
        before.setattr(store_schema, "LATEST_VERSION", 5)
        open_store(database_url, clock=clock).close()
    raw_sql("INSERT INTO audit (at, team_id, user_id, genesys_user_id, conversation_id, participant_id, keys, result,"
            " context_id, detail, attributes_hash) VALUES (1.0, 'T1', 'U1', 'g1', 'c1', 'p1', '[\"slack.title\"]',"
            " 'written', NULL, '', 'h')")
    migrated = open_store(database_url, clock=clock)
    try:
        [entry] = migrated.audit(user_id="U1")
        assert entry.target == "agent"
        assert migrated.written_keys("c1", "p1") == ("slack.title",)
    finally:
        migrated.close()
