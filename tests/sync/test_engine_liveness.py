"""The engine's guards and liveness through its seams: a real SQLite store, a fake clock, stub Slack and Genesys.

No exception ends the engine: an unexpected error in a work item is retried with back-off, then dead-lettered (the
traceback logged once); permanent errors are dead-lettered at once; a failing step of the loop is logged and the
loop goes on. /healthz reports how long ago the loop last turned and answers 503 past the threshold.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.client import IncompleteRead
from typing import Any

import pytest

from genesys import (
    AttributesRejected,
    GenesysError,
    GenesysUnavailable,
    GenesysUser,
    LiveParticipant,
    PermissionMissing,
    RequestRejected,
    WriteResult,
)
from handlers.app import SlackAuthorization
from localdev.app_process import wait_for
from profiles import FieldLabels
from slack_directory import SlackDirectoryError, SlackUserRecord
from store import Store
from sync import AttributeRules
from sync.engine import EngineSettings, GenesysStatus, SyncEngine
from sync.rejected import RejectedWrites
from sync.timer import SYSTEM_TIMER
from tests.clocks import FakeClock, RealWaits
from web import wsgi_application
from web.health import health_report

ADA = {"id": "U0ADA", "name": "ada", "profile": {"email": "ada@example.com", "title": "Agent"}}


class StubSlack:
    """A Slack directory whose profile reads raise `failures` in turn, then answer Ada."""

    def __init__(self, *failures: BaseException) -> None:
        self.failures = list(failures)

    def user(self, team_id: str, user_id: str) -> SlackUserRecord:
        if self.failures:
            raise self.failures.pop(0)
        return SlackUserRecord(team_id, user_id, ADA)

    def labels(self, team_id: str) -> FieldLabels:
        return FieldLabels.empty()


class StubGenesys:
    """A Genesys whose calls do what the test sets: `search` for the user search, `poll` for the live participants."""

    def __init__(self) -> None:
        self.search: Callable[[], GenesysUser | None] = lambda: None
        self.poll: Callable[[], tuple[LiveParticipant, ...]] = lambda: ()
        self.write: Callable[[str, str], WriteResult] = lambda c, p: WriteResult(c, p, 202, "ctx")

    def find_user_by_email(self, email: str) -> GenesysUser | None:
        return self.search()

    def live_participants(self, user_id: str) -> tuple[LiveParticipant, ...]:
        return ()

    def org_live_participants(self) -> tuple[LiveParticipant, ...]:
        return self.poll()

    def write_attributes(self, conversation_id: str, participant_id: str, attributes: Any) -> WriteResult:
        return self.write(conversation_id, participant_id)

    def participant_attributes(self, conversation_id: str, participant_id: str) -> None:
        return None


def engine_with(store: Store, clock: FakeClock, slack: StubSlack, genesys: StubGenesys | None = None,
                monotonic: FakeClock | None = None, **settings: Any) -> SyncEngine:
    return SyncEngine(store=store, genesys=genesys or StubGenesys(), slack=slack, rules=AttributeRules(),  # type: ignore[arg-type]
                      settings=EngineSettings(worker="test", **settings), clock=clock,
                      timer=SYSTEM_TIMER if monotonic is None else RealWaits(monotonic))


def engine_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "sync.engine"]


@pytest.mark.parametrize("error", [IncompleteRead(b"{\"ok\":tr", 20), KeyError("profile"), RuntimeError("boom")],
                         ids=["incomplete-read", "key-error", "runtime-error"])
def test_an_unexpected_error_is_retried_with_back_off_then_dead_lettered(
        store: Store, clock: FakeClock, caplog: pytest.LogCaptureFixture, error: Exception) -> None:
    """Attempts 2, 4, 8 s apart; the traceback logged once (ERROR), then one line per attempt; a dead letter."""
    engine = engine_with(store, clock, StubSlack(*[error] * 4), max_attempts=4)
    engine.user_changed("T1", {"id": "U0ADA"}, None)
    with caplog.at_level(logging.DEBUG, logger="sync.engine"):
        assert engine.work_once() == 1
        for delay in (2, 4, 8):
            clock.advance(delay - 0.5)
            assert engine.work_once() == 0, "retried before its back-off"
            clock.advance(0.5)
            assert engine.work_once() == 1
    lines = engine_lines(caplog)
    assert [(r.levelno, bool(r.exc_info)) for r in lines] == [
        (logging.ERROR, True), (logging.WARNING, False), (logging.WARNING, False), (logging.WARNING, False)]
    assert lines[0].getMessage().startswith("refresh T1:U0ADA failed (attempt 1), retrying in 2 s: unexpected error:")
    assert lines[-1].getMessage().startswith("giving up on refresh T1:U0ADA after 4 attempt(s): unexpected error:")
    [letter] = store.dead_letters()
    assert letter.reason.startswith(f"unexpected error: {type(error).__name__}")
    assert store.pending_count() == 0


def found_ada() -> GenesysUser:
    return GenesysUser("g-ada", "ada@example.com", "Ada", "active")


def raise_(error: Exception) -> Callable[[], Any]:
    def raising() -> Any:
        raise error
    return raising


@pytest.mark.parametrize(("slack_error", "genesys_error"), [
    (SlackDirectoryError("users.info", "user_not_found"), None),
    (None, RequestRejected("user search", status=400)),
    (None, PermissionMissing("user search", ("directory:user:view",))),
    (None, RequestRejected("user search", status=404)),
], ids=["slack-user-not-found", "genesys-400", "genesys-403", "genesys-404"])
def test_permanent_errors_are_dead_lettered_at_once(store: Store, clock: FakeClock, slack_error: Exception | None,
                                                    genesys_error: GenesysError | None) -> None:
    """A Slack user_not_found or a Genesys error that is not retryable becomes a dead letter on the first attempt."""
    genesys = StubGenesys()
    if genesys_error is not None:
        genesys.search = raise_(genesys_error)
    engine = engine_with(store, clock, StubSlack(*[slack_error] if slack_error else []), genesys)
    engine.user_changed("T1", {"id": "U0ADA"}, None)
    assert engine.work_once() == 1
    [letter] = store.dead_letters()
    assert letter.attempts == 1
    assert store.pending_count() == 0


@pytest.mark.parametrize("error", [
    SlackDirectoryError("users.info", "could not reach Slack (URLError)"),
    GenesysUnavailable("user search", "HTTP 503", attempts=5, elapsed_s=60),
], ids=["slack-unreachable", "genesys-503"])
def test_transient_errors_are_retried_and_then_succeed(store: Store, clock: FakeClock, error: Exception) -> None:
    """A transient Slack or Genesys failure is retried after its back-off, and the item then completes."""
    genesys = StubGenesys()
    failures = [error]
    genesys.search = lambda: raise_(failures.pop())() if failures else found_ada()
    slack = StubSlack(error) if isinstance(error, SlackDirectoryError) else StubSlack()
    if isinstance(error, SlackDirectoryError):
        failures.clear()
    engine = engine_with(store, clock, slack, genesys)
    engine.user_changed("T1", {"id": "U0ADA"}, None)
    assert engine.work_once() == 1
    assert store.pending_count() == 1
    clock.advance(2)
    assert engine.work_once() == 1
    assert store.pending_count() == 0
    assert store.dead_letters() == []


def run_in_thread(engine: SyncEngine) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    worker = threading.Thread(target=engine.run, args=(stop,), name="sync-engine-test")
    worker.start()
    return stop, worker


def test_a_failing_step_is_logged_and_the_loop_goes_on(store: Store, clock: FakeClock,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    """A poll that raises unexpectedly three times: traceback once, one line per repeat, work still done meanwhile,
    health says the poll fails, then "works again"."""
    genesys = StubGenesys()
    failures = [RuntimeError("analytics answer without conversations")] * 3
    polled = threading.Event()

    def poll() -> tuple[LiveParticipant, ...]:
        if failures:
            raise failures.pop()
        polled.set()
        return ()

    genesys.poll = poll
    engine = engine_with(store, clock, StubSlack(), genesys, poll_interval_s=0.05, database_retry_s=0.05)
    engine.user_changed("T1", {"id": "U0ADA"}, None)
    with caplog.at_level(logging.INFO, logger="sync.engine"):
        stop, worker = run_in_thread(engine)
        try:
            wait_for(polled.is_set, 10, "a poll that works")
            wait_for(lambda: store.pending_count() == 0, 10, "the queued item to be worked on")
            wait_for(lambda: engine.genesys_status() == GenesysStatus(True, ""), 10, "the poll to be reported working")
            assert worker.is_alive()
            assert engine.liveness().failing == {}
        finally:
            stop.set()
            worker.join(timeout=5)
    about_poll = [r for r in engine_lines(caplog) if "polling Genesys" in r.getMessage()]
    assert [(r.levelno, bool(r.exc_info)) for r in about_poll] == [
        (logging.ERROR, True), (logging.ERROR, False), (logging.ERROR, False), (logging.INFO, False)]
    assert about_poll[1].getMessage() == ("sync engine: polling Genesys failed again: RuntimeError: analytics answer "
                                          "without conversations")
    assert about_poll[-1].getMessage() == "sync engine: polling Genesys works again"


def test_a_failing_poll_is_reported_by_health(store: Store, clock: FakeClock) -> None:
    """While the poll raises unexpectedly, genesys_status and liveness say so; the engine stays alive (ok)."""
    genesys = StubGenesys()
    genesys.poll = raise_(ValueError("bad page"))
    engine = engine_with(store, clock, StubSlack(), genesys, poll_interval_s=0.05, database_retry_s=0.05)
    stop, worker = run_in_thread(engine)
    try:
        wait_for(lambda: engine.genesys_status().ok is False, 10, "the poll failure to be reported")
        assert engine.genesys_status().error == "the poll failed unexpectedly: ValueError: bad page"
        liveness = engine.liveness()
        assert liveness.ok
        assert liveness.failing == {"polling Genesys": "ValueError: bad page"}
    finally:
        stop.set()
        worker.join(timeout=5)


def health(store: Store, engine: SyncEngine) -> tuple[str, dict[str, Any]]:
    """/healthz through the WSGI app: its status line and the engine part."""
    import json

    app = wsgi_application(None, lambda: health_report(store, engine, None, SlackAuthorization(None)))
    statuses: list[str] = []
    body = b"".join(app({"PATH_INFO": "/healthz", "REQUEST_METHOD": "GET"}, lambda s, h: statuses.append(s)))
    return statuses[0], json.loads(body)["engine"]


@pytest.mark.parametrize(("stuck_for_s", "status", "ok"), [
    (0.0, "200 OK", True), (179.9, "200 OK", True), (180.0, "503 Service Unavailable", False),
    (3600.0, "503 Service Unavailable", False),
])
def test_healthz_reports_the_age_of_the_last_tick_and_503_past_the_threshold(
        store: Store, clock: FakeClock, stuck_for_s: float, status: str, ok: bool) -> None:
    """An engine stuck in a call answers 200 with its age until 180 s without a tick, then 503 naming the hang."""
    monotonic = FakeClock(5_000.0)
    genesys = StubGenesys()
    stuck, release = threading.Event(), threading.Event()

    def hang() -> tuple[LiveParticipant, ...]:
        stuck.set()
        release.wait(10)
        return ()

    genesys.poll = hang
    engine = engine_with(store, clock, StubSlack(), genesys, monotonic=monotonic)
    stop, worker = run_in_thread(engine)
    try:
        wait_for(stuck.is_set, 10, "the poll to hang")
        monotonic.advance(stuck_for_s)
        answered, part = health(store, engine)
        assert (answered, part["ok"], part["last_tick_s_ago"]) == (status, ok, round(stuck_for_s, 1))
        assert ("detail" in part) is not ok
        if not ok:
            assert part["detail"].startswith(f"the sync engine has not turned for {stuck_for_s:.0f} s (stuck")
        release.set()
        wait_for(lambda: health(store, engine)[0] == "200 OK", 10, "a tick after the hang")
    finally:
        release.set()
        stop.set()
        worker.join(timeout=5)


def test_healthz_answers_503_once_the_engine_stopped(store: Store, clock: FakeClock) -> None:
    """An engine whose loop returned (or never started) is not ok, whatever its last tick's age."""
    engine = engine_with(store, clock, StubSlack())
    assert health(store, engine) == ("503 Service Unavailable", {"ok": False,
                                                                 "detail": "the sync engine is not running"})
    stop, worker = run_in_thread(engine)
    wait_for(lambda: health(store, engine)[0] == "200 OK", 10, "the engine to run")
    stop.set()
    worker.join(timeout=5)
    answered, part = health(store, engine)
    assert (answered, part["ok"], part["detail"]) == ("503 Service Unavailable", False, "the sync engine stopped")


@pytest.mark.parametrize(("limit", "added", "kept"), [(3, 5, [2, 3, 4]), (10, 4, [0, 1, 2, 3]), (1, 2, [1])])
def test_rejected_writes_keep_at_most_their_limit_newest_first(limit: int, added: int, kept: list[int]) -> None:
    """Past its limit the set forgets its oldest refusals."""
    rejected = RejectedWrites(limit)
    for n in range(added):
        rejected.add((f"c{n}", "p", "h"))
    assert len(rejected) == len(kept)
    assert all((f"c{n}", "p", "h") in rejected for n in kept)


def test_the_poll_forgets_refusals_of_participants_no_longer_live(store: Store, clock: FakeClock) -> None:
    """A refusal is remembered while its participant is live (no resend) and forgotten once the call ended."""
    participant = LiveParticipant("c1", "p1", "g-ada", "voice")
    genesys = StubGenesys()
    genesys.search = found_ada
    genesys.poll = lambda: (participant,)
    sent: list[str] = []

    def refuse(conversation_id: str, participant_id: str) -> WriteResult:
        sent.append(conversation_id)
        raise AttributesRejected(conversation_id, participant_id, status=400)

    genesys.write = refuse
    engine = engine_with(store, clock, StubSlack(), genesys)
    engine.user_changed("T1", {"id": "U0ADA"}, None)
    engine.work_once()
    engine.poll_once()
    engine.poll_once()
    assert sent == ["c1"]  # refused once, not sent again while live
    assert len(engine._rejected) == 1
    genesys.poll = lambda: ()
    engine.poll_once()
    assert len(engine._rejected) == 0
