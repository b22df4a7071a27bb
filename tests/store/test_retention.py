"""Retention: recorded Slack events and audit rows older than the cutoff go; work, desired state, write intents and
dead letters stay. On a SQLite file and on PostgreSQL (`database_url` is parametrized over both)."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from localdev.app_process import wait_for
from slack_directory import SlackDirectory
from store import Retained, Store, open_store
from sync import AttributeRules
from sync.engine import EngineSettings, SyncEngine
from tests.clocks import FakeClock
from tests.store.conftest import RawSql
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
    assert store.delete_older_than(clock.now - retention_days * DAY) == deleted
    after = counts(raw_sql)
    assert after["slack_events"] == before["slack_events"] - deleted.events
    assert after["audit"] == before["audit"] - deleted.audit
    for table in ("work", "desired", "write_intents", "dead_letters", "last_written"):
        assert after[table] == before[table], table
    assert store.delete_older_than(clock.now - retention_days * DAY) == Retained(0, 0)


def test_an_event_inside_its_dedupe_window_is_kept_whatever_the_cutoff(store: Store, clock: FakeClock) -> None:
    """Retention never lets a retried delivery through: an id still inside its dedupe window stays."""
    assert store.remember_event("EvLong", ttl_s=10 * DAY)
    clock.advance(2 * DAY)
    assert store.delete_older_than(clock.now - DAY) == Retained(events=0, audit=0)
    assert not store.remember_event("EvLong")


def test_the_newest_audit_rows_remain_readable(store: Store, clock: FakeClock) -> None:
    """After retention, audit() shows the rows inside it, newest first."""
    for age_days, participant in ((45, "old"), (3, "recent"), (0, "new")):
        store.record_write(write_record(at=clock.now - age_days * DAY, participant_id=participant))
    store.delete_older_than(clock.now - 30 * DAY)
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
                        rules=AttributeRules(), settings=EngineSettings(worker="test", retention_s=30 * DAY),
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
    assert lines == ["retention: deleted 0 events and 1 audit rows older than 30 days"] * 2
