"""Retention: recorded Slack events, audit rows, expired OAuth states and write intents of ended conversations go
after their cutoffs; work, desired state, live participants' intents and dead letters stay. On a SQLite file and on
PostgreSQL (`database_url` is parametrized over both)."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from localdev.app_process import wait_for
from slack_directory import SlackDirectory
from store import Cutoffs, Retained, Store, open_store
from store.schema import LATEST_VERSION
from sync import AttributeRules
from sync.engine import POLL_LEASE, EngineSettings, SyncEngine
from tests.clocks import FakeClock
from tests.store.conftest import RawSql, run_raw_sql
from tests.store.test_sqlite_store import desired_row, write_record

DAY = 86400.0


def fill(store: Store, clock: FakeClock, *, age_days: float, tag: str) -> None:
    """One row of every kind, recorded `age_days` before the clock's present moment (the clock is put back)."""
    clock.advance(-age_days * DAY)
    try:
        assert store.enqueue("refresh", f"T1:U{tag}", {"team_id": "T1", "user_id": f"U{tag}"}, event_id=f"Ev{tag}")
        store.save_desired(desired_row(f"U{tag}", refreshed_at=clock.now))
        store.record_write(write_record(at=clock.now, participant_id=f"p{tag}", conversation_id=f"c{tag}"))
        store.intend_write(f"c{tag}-open", f"p{tag}", "hash-b")
        store.enqueue("refresh", f"T1:dead{tag}", {})
        [item] = [i for i in store.claim(worker="w", lease_s=60, limit=10) if i.key == f"T1:dead{tag}"]
        store.dead_letter(item, reason="gave up")
    finally:
        clock.advance(age_days * DAY)


def counts(raw_sql: RawSql) -> dict[str, int]:
    tables = ("slack_events", "audit", "work", "desired", "write_intents", "dead_letters", "last_written")
    return {table: raw_sql(f"SELECT COUNT(*) FROM {table}")[0][0] for table in tables}


@pytest.mark.parametrize(
    ("ages", "retention_days", "deleted"),
    [
        ((40.0, 10.0), 30, Retained(events=1, audit=1)),
        ((40.0, 31.0), 30, Retained(events=2, audit=2)),
        ((2.0, 0.5), 1, Retained(events=1, audit=1)),
        ((29.0, 0.0), 30, Retained(events=0, audit=0)),
    ],
)
def test_old_events_and_audit_rows_go_and_nothing_else(store: Store, clock: FakeClock, raw_sql: RawSql,
                                                       ages: tuple[float, ...], retention_days: int,
                                                       deleted: Retained) -> None:
    """Events and audit rows older than the cutoff are deleted and counted; work, desired state, write intents, dead
    letters and last_written rows all stay."""
    for n, age in enumerate(ages):
        fill(store, clock, age_days=age, tag=str(n))
    before = counts(raw_sql)
    cutoff = clock.now - retention_days * DAY
    assert store.delete_older_than(Cutoffs(events=cutoff, audit=cutoff)) == deleted
    after = counts(raw_sql)
    assert after["slack_events"] == before["slack_events"] - deleted.events
    assert after["audit"] == before["audit"] - deleted.audit
    for table in ("work", "desired", "write_intents", "dead_letters", "last_written"):
        assert after[table] == before[table], table
    assert store.delete_older_than(Cutoffs(events=cutoff, audit=cutoff)) == Retained(0, 0)


def test_an_event_inside_its_dedupe_window_is_kept_whatever_the_cutoff(store: Store, clock: FakeClock) -> None:
    """Retention never lets a retried delivery through: an id still inside its dedupe window stays."""
    assert store.remember_event("EvLong", ttl_s=10 * DAY)
    clock.advance(2 * DAY)
    assert store.delete_older_than(Cutoffs(events=clock.now - DAY, audit=clock.now - DAY)) == Retained(0, 0)
    assert not store.remember_event("EvLong")


def test_the_newest_audit_rows_remain_readable(store: Store, clock: FakeClock) -> None:
    """After retention, audit() shows the rows inside it, newest first."""
    for age_days, participant in ((45, "old"), (3, "recent"), (0, "new")):
        store.record_write(write_record(at=clock.now - age_days * DAY, participant_id=participant))
    store.delete_older_than(Cutoffs(events=clock.now - 30 * DAY, audit=clock.now - 30 * DAY))
    assert [entry.participant_id for entry in store.audit()] == ["new", "recent"]


class NothingLive:
    """A Genesys with no live conversation: the engine's poll finds nothing to write."""

    def org_live_participants(self) -> tuple[()]:
        return ()


def test_the_engine_applies_retention_at_start_and_then_hourly(database_url: str, clock: FakeClock,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    """The running engine deletes rows past RETENTION_DAYS at start and again an hour later on its clock, with one
    log line per pass that deleted something."""
    store = open_store(database_url, clock=clock)
    store.record_write(write_record(at=clock.now - 31 * DAY, participant_id="old"))
    store.record_write(write_record(at=clock.now - 30 * DAY + 1800, participant_id="next-hour"))
    engine = SyncEngine(store=store, genesys=NothingLive(), slack=SlackDirectory(lambda team_id: None),  # type: ignore[arg-type]
                        rules=AttributeRules(), settings=EngineSettings(worker="test", audit_retention_s=30 * DAY),
                        clock=clock)
    stop = threading.Event()
    worker = threading.Thread(target=engine.run, args=(stop,))
    kept = lambda: [entry.participant_id for entry in store.audit()]  # noqa: E731
    try:
        with caplog.at_level(logging.INFO, logger="sync.engine"):
            worker.start()
            wait_for(lambda: kept() == ["next-hour"], 10, "retention at start")
            time.sleep(1.5)  # several loop turns: the clock has not moved, so no second pass
            assert kept() == ["next-hour"]
            clock.advance(3600)
            wait_for(lambda: kept() == [], 10, "retention an hour later")
    finally:
        stop.set()
        worker.join(timeout=5)
        store.close()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("retention:")]
    assert lines == ["retention: deleted 0 Slack events older than 7 days, 1 audit rows older than 30 days, 0 expired "
                     "OAuth states and 0 write intents of ended conversations"] * 2


@pytest.mark.parametrize(("events_days", "audit_days", "deleted"), [
    (7, 30, Retained(events=2, audit=1)),
    (30, 7, Retained(events=1, audit=2)),
    (60, 60, Retained(events=0, audit=0)),
])
def test_events_and_audit_rows_have_their_own_cutoffs(store: Store, clock: FakeClock, events_days: int,
                                                      audit_days: int, deleted: Retained) -> None:
    """Event ids and audit rows are each deleted by their own retention."""
    for n, age in enumerate((10.0, 40.0)):
        fill(store, clock, age_days=age, tag=str(n))
    cutoffs = Cutoffs(events=clock.now - events_days * DAY, audit=clock.now - audit_days * DAY)
    assert store.delete_older_than(cutoffs) == deleted


def test_expired_oauth_states_go_and_usable_ones_stay(store: Store, clock: FakeClock, raw_sql: RawSql) -> None:
    """An OAuth state past its 10-minute life is deleted; one still usable stays and can still be consumed."""
    store.issue_oauth_state("old", ttl_s=600)
    clock.advance(601)
    store.issue_oauth_state("fresh", ttl_s=600)
    raw_sql("INSERT INTO oauth_states (state, expires_at) VALUES ('left-behind', 0)")  # e.g. from an older version
    deleted = store.delete_older_than(Cutoffs(events=clock.now - DAY, audit=clock.now - DAY))
    assert deleted.oauth_states == 1
    assert raw_sql("SELECT state FROM oauth_states") == [("fresh",)]
    assert store.consume_oauth_state("fresh")


@pytest.mark.parametrize(("age_days", "live", "known", "gone"), [
    (31, False, True, True),    # ended long ago: nothing can write there again
    (31, True, True, False),    # still live: the next poller must read the participant before writing again
    (1, False, True, False),    # recent: the poll may just not see it yet
    (31, False, False, False),  # who is live is not known (the last poll failed): keep everything
])
def test_write_intents_go_only_when_old_and_their_participant_ended(store: Store, clock: FakeClock, age_days: float,
                                                                     live: bool, known: bool, gone: bool) -> None:
    """An intent is deleted only when older than the cutoff, its participant is not live, and liveness is known."""
    clock.advance(-age_days * DAY)
    store.intend_write("c1", "p1", "hash-1")
    clock.advance(age_days * DAY)
    cutoffs = Cutoffs(events=clock.now - 30 * DAY, audit=clock.now - 30 * DAY,
                      write_intents=clock.now - 30 * DAY if known else None,
                      live=frozenset({("c1", "p1")}) if live else frozenset({("c9", "p9")}))
    assert store.delete_older_than(cutoffs).write_intents == int(gone)
    assert store.write_intents() == ([] if gone else [("c1", "p1", "hash-1")])


PURGE_INDEXES = {"slack_events_by_seen": "slack_events", "audit_by_time": "audit",
                 "oauth_states_by_expiry": "oauth_states", "write_intents_by_time": "write_intents"}


def test_every_purge_has_an_index(store: Store, backend: str, raw_sql: RawSql) -> None:
    """Each purge's WHERE column is indexed (migration 4), so the hourly purge does not read whole tables."""
    if backend == "sqlite":
        found = dict(raw_sql("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index'"))
    else:
        found = dict(raw_sql("SELECT indexname, tablename FROM pg_indexes WHERE schemaname = current_schema()"))
    assert {name: found.get(name) for name in PURGE_INDEXES} == PURGE_INDEXES
    assert raw_sql("SELECT MAX(version) FROM schema_version") == [(LATEST_VERSION,)]


@pytest.mark.parametrize(("statement", "index"), [
    ("DELETE FROM slack_events WHERE seen_at < 1 AND expires_at <= 2", "slack_events_by_seen"),
    ("DELETE FROM audit WHERE at < 1", "audit_by_time"),
    ("DELETE FROM oauth_states WHERE expires_at <= 1", "oauth_states_by_expiry"),
    ("SELECT conversation_id, participant_id FROM write_intents WHERE at < 1", "write_intents_by_time"),
])
def test_sqlite_purges_use_their_index(sqlite_url: str, statement: str, index: str) -> None:
    """SQLite's plan for each purge searches its index instead of scanning the table."""
    open_store(sqlite_url).close()
    plan = " ".join(str(row[-1]) for row in run_raw_sql(sqlite_url, f"EXPLAIN QUERY PLAN {statement}"))
    assert f"USING INDEX {index}" in plan or f"USING COVERING INDEX {index}" in plan, plan


def test_only_the_replica_that_polls_applies_retention(database_url: str, clock: FakeClock) -> None:
    """A replica that does not hold the poll lease deletes nothing; the poller does."""
    store = open_store(database_url, clock=clock)
    store.record_write(write_record(at=clock.now - 31 * DAY, participant_id="old"))
    assert store.hold_lease(POLL_LEASE, "the-poller", ttl_s=3600)
    engine = SyncEngine(store=store, genesys=NothingLive(), slack=SlackDirectory(lambda team_id: None),  # type: ignore[arg-type]
                        rules=AttributeRules(), clock=clock,
                        # Asking for the poll five times a second: five refusals in the second below, and the
                        # released lease is taken at once (the default 5 s would make it wait that long).
                        settings=EngineSettings(worker="not-the-poller", poll_interval_s=0.2))
    stop = threading.Event()
    worker = threading.Thread(target=engine.run, args=(stop,))
    try:
        worker.start()
        time.sleep(1.0)
        assert [entry.participant_id for entry in store.audit()] == ["old"]
        store.release_lease(POLL_LEASE, "the-poller")
        wait_for(lambda: store.audit() == [], 15, "the replica that now polls to apply retention")
    finally:
        stop.set()
        worker.join(timeout=5)
        store.close()
