"""What replicas share through the store: leases (one holder at a time, taken over when it runs out) and request
budgets (one fixed-window count for all), on both backends, also with many stores asking at the same moment."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import pytest

from store import Store, WriteRecord, open_store
from tests.clocks import FakeClock
from tests.store.conftest import RawSql

T = TypeVar("T")
WINDOW_START = 1_700_000_040.0  # a multiple of 60: the start of a one-minute window


def all_at_once(database_url: str, clock: FakeClock, calls: list[Callable[[Store], T]]) -> list[T]:
    """Run each call in its own thread with its own store (as replicas would), all released together."""
    stores = [open_store(database_url, clock=clock) for _ in calls]
    results: list[T | None] = [None] * len(calls)
    errors: list[BaseException] = []
    start = threading.Barrier(len(calls))

    def run(index: int) -> None:
        start.wait()
        try:
            results[index] = calls[index](stores[index])
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for store in stores:
        store.close()
    assert errors == []
    return [result for result in results if result is not None]


# --- Leases --------------------------------------------------------------------------------------------------------


def test_a_lease_has_one_holder_until_it_runs_out(store: Store, clock: FakeClock) -> None:
    """The first asker holds the lease; others are refused until it runs out, then the next asker takes it."""
    assert store.hold_lease("poll", "replica-a", ttl_s=30) is True
    assert store.hold_lease("poll", "replica-b", ttl_s=30) is False
    clock.advance(29.9)
    assert store.hold_lease("poll", "replica-b", ttl_s=30) is False
    clock.advance(0.1)
    assert store.hold_lease("poll", "replica-b", ttl_s=30) is True
    assert store.hold_lease("poll", "replica-a", ttl_s=30) is False  # the old holder lost it


def test_renewing_extends_the_lease(store: Store, clock: FakeClock) -> None:
    """The holder asking again keeps the lease and pushes its end to ttl_s from now."""
    assert store.hold_lease("poll", "replica-a", ttl_s=30)
    clock.advance(25)
    assert store.hold_lease("poll", "replica-a", ttl_s=30)
    clock.advance(25)  # 50 s after the first take: still held thanks to the renewal
    assert store.hold_lease("poll", "replica-b", ttl_s=30) is False
    clock.advance(5)
    assert store.hold_lease("poll", "replica-b", ttl_s=30) is True


def test_the_token_marks_one_tenure(store: Store, clock: FakeClock, raw_sql: RawSql) -> None:
    """Renewals keep the lease's token; taking it afresh (another holder, or after it ran out) gives a new one."""

    def token() -> str:
        [(value,)] = raw_sql("SELECT token FROM leases WHERE name = 'poll'")
        return str(value)

    store.hold_lease("poll", "replica-a", ttl_s=30)
    first = token()
    clock.advance(10)
    store.hold_lease("poll", "replica-a", ttl_s=30)
    assert token() == first
    clock.advance(31)
    store.hold_lease("poll", "replica-a", ttl_s=30)
    second = token()
    assert second != first
    clock.advance(31)
    store.hold_lease("poll", "replica-b", ttl_s=30)
    assert token() not in (first, second)


def test_release_hands_the_lease_over_at_once(store: Store) -> None:
    """Releasing frees the lease for the next asker right away; a release by a non-holder changes nothing."""
    assert store.hold_lease("poll", "replica-a", ttl_s=30)
    store.release_lease("poll", "replica-b")
    assert store.hold_lease("poll", "replica-b", ttl_s=30) is False
    store.release_lease("poll", "replica-a")
    assert store.hold_lease("poll", "replica-b", ttl_s=30) is True
    store.release_lease("poll", "replica-a")
    assert store.hold_lease("poll", "replica-a", ttl_s=30) is False


def test_leases_are_independent_by_name(store: Store) -> None:
    """Holding one lease says nothing about another."""
    assert store.hold_lease("poll", "replica-a", ttl_s=30)
    assert store.hold_lease("refresh", "replica-b", ttl_s=30)


@pytest.mark.parametrize("ttl_s", [0, -1])
def test_hold_lease_rejects_a_ttl_that_is_not_positive(store: Store, ttl_s: float) -> None:
    """A lease that ends before it begins is a caller bug."""
    with pytest.raises(ValueError, match="ttl_s"):
        store.hold_lease("poll", "replica-a", ttl_s=ttl_s)


def test_replicas_asking_at_once_get_one_holder(database_url: str, clock: FakeClock) -> None:
    """Eight stores asking for each of ten leases at the same moment: exactly one wins each."""

    def asker(name: str, holder: str) -> Callable[[Store], bool]:
        return lambda store: store.hold_lease(name, holder, ttl_s=30)

    for round_number in range(10):
        won = all_at_once(database_url, clock, [asker(f"lease-{round_number}", f"replica-{i}") for i in range(8)])
        assert sorted(won) == [False] * 7 + [True]


# --- Shared request budgets ----------------------------------------------------------------------------------------


def test_budget_grants_until_the_window_is_spent(store: Store, clock: FakeClock) -> None:
    """Requests are granted in full while the window has room, then partly, then not at all."""
    clock.now = WINDOW_START
    assert store.take_budget("genesys", 100, per_window=300, window_s=60) == 100
    assert store.take_budget("genesys", 150, per_window=300, window_s=60) == 150
    assert store.take_budget("genesys", 100, per_window=300, window_s=60) == 50
    assert store.take_budget("genesys", 1, per_window=300, window_s=60) == 0
    assert store.take_budget("genesys", 0, per_window=300, window_s=60) == 0


def test_budget_windows_are_aligned_to_the_clock(store: Store, clock: FakeClock) -> None:
    """A window starts at a multiple of window_s, however late in it the first request comes, and then resets."""
    clock.now = WINDOW_START + 59.5
    assert store.take_budget("genesys", 300, per_window=300, window_s=60) == 300
    assert store.take_budget("genesys", 1, per_window=300, window_s=60) == 0
    clock.now = WINDOW_START + 60
    assert store.take_budget("genesys", 300, per_window=300, window_s=60) == 300


def test_a_replica_with_a_clock_behind_counts_in_the_current_window(database_url: str) -> None:
    """A store whose clock is still in the previous window draws from the current one instead of starting its own."""
    ahead, behind = FakeClock(WINDOW_START + 60.5), FakeClock(WINDOW_START + 59.5)
    first, second = open_store(database_url, clock=ahead), open_store(database_url, clock=behind)
    try:
        assert first.take_budget("genesys", 250, per_window=300, window_s=60) == 250
        assert second.take_budget("genesys", 100, per_window=300, window_s=60) == 50
        assert first.take_budget("genesys", 10, per_window=300, window_s=60) == 0
    finally:
        first.close()
        second.close()


def test_budgets_are_independent_by_name(store: Store, clock: FakeClock) -> None:
    """Each name (an OAuth client, say) has its own count."""
    clock.now = WINDOW_START
    assert store.take_budget("client-a", 300, per_window=300, window_s=60) == 300
    assert store.take_budget("client-b", 300, per_window=300, window_s=60) == 300


@pytest.mark.parametrize(("want", "per_window", "window_s"), [(-1, 300, 60), (1, -1, 60), (1, 300, 0)])
def test_take_budget_rejects_nonsense(store: Store, want: int, per_window: int, window_s: float) -> None:
    """A negative request or budget, or an empty window, is a caller bug."""
    with pytest.raises(ValueError, match="take_budget"):
        store.take_budget("genesys", want, per_window=per_window, window_s=window_s)


def test_replicas_taking_at_once_share_one_budget(database_url: str, clock: FakeClock) -> None:
    """Eight stores each taking 3 at a time, 50 times, at the same moment: exactly 300 granted between them."""
    clock.now = WINDOW_START

    def take_fifty_times(store: Store) -> int:
        return sum(store.take_budget("genesys", 3, per_window=300, window_s=60) for _ in range(50))

    granted = all_at_once(database_url, clock, [take_fifty_times] * 8)
    assert sum(granted) == 300


# --- Lease tenures (fencing) ---------------------------------------------------------------------------------------


def test_a_tenure_is_renewed_by_its_holder_until_it_runs_out(store: Store, clock: FakeClock) -> None:
    """Renewing keeps the tenure; one that ran out is not revived, even when nobody took the lease meanwhile."""
    tenure = store.take_lease("poll", "replica-a", ttl_s=15)
    assert tenure is not None
    assert store.lease_holds(tenure)
    for _ in range(10):  # a slow poll renewed from a heartbeat outlives the lease's length many times over
        clock.advance(10)
        assert store.renew_lease(tenure, ttl_s=15)
    assert store.take_lease("poll", "replica-b", ttl_s=15) is None
    clock.advance(16)
    assert store.lease_holds(tenure) is False
    assert store.renew_lease(tenure, ttl_s=15) is False  # ran out: its holder must take the lease afresh
    again = store.take_lease("poll", "replica-a", ttl_s=15)
    assert again is not None
    assert again.token != tenure.token
    assert store.lease_holds(tenure) is False
    assert store.lease_holds(again)


def test_a_tenure_taken_over_fences_its_old_holder(store: Store, clock: FakeClock) -> None:
    """Once another replica took the lease, the old tenure neither holds nor renews, and the taker keeps it."""
    old = store.take_lease("poll", "replica-a", ttl_s=15)
    assert old is not None
    clock.advance(20)
    new = store.take_lease("poll", "replica-b", ttl_s=15)
    assert new is not None
    assert (store.lease_holds(old), store.renew_lease(old, ttl_s=15)) == (False, False)
    assert store.lease_holds(new)
    assert store.take_lease("poll", "replica-a", ttl_s=15) is None


# --- Compare-and-set of the last write -----------------------------------------------------------------------------


def written(hash_: str, title: str = "") -> WriteRecord:
    return WriteRecord(conversation_id="c1", participant_id="p1", genesys_user_id="g1", team_id="T1", user_id="U1",
                       attributes_hash=hash_, keys=("slack.title",), result="written", context_id=None, detail=title,
                       at=1.0)


def test_a_write_is_recorded_only_over_the_hash_it_was_decided_from(store: Store) -> None:
    """Two writers decided from nothing: the first records, the second is refused (re-decides); then on top."""
    assert store.record_write_if(written("old"), expected=None) is True
    assert store.record_write_if(written("new"), expected=None) is False
    assert store.last_written("c1", "p1") == "old"
    assert store.record_write_if(written("new"), expected="stale") is False
    assert store.record_write_if(written("new"), expected="old") is True
    assert store.last_written("c1", "p1") == "new"
    assert [entry.attributes_hash for entry in store.audit()] == ["new", "old"]  # refused writes leave no audit row


def test_a_refused_record_keeps_the_write_in_doubt(store: Store) -> None:
    """The loser's intent stays (its write may be the one Genesys carries) until its re-decision records."""
    store.record_write(written("new"))
    store.intend_write("c1", "p1", "old")
    assert store.record_write_if(written("old"), expected=None) is False
    assert store.write_intents() == [("c1", "p1", "old")]


@pytest.mark.parametrize("expected", [None, "h0"])
def test_writers_recording_at_once_from_one_state_one_wins(database_url: str, clock: FakeClock,
                                                           expected: str | None) -> None:
    """Eight stores recording writes decided from the same last write at the same moment: exactly one records."""
    for round_number in range(5):
        participant = f"p{round_number}"
        if expected is not None:
            setup = open_store(database_url, clock=clock)
            setup.record_write(WriteRecord(f"c-{expected}", participant, None, "T1", "U1", expected, (), "written",
                                           None, "", 1.0))
            setup.close()

        def writer(n: int, participant: str) -> Callable[[Store], bool]:
            return lambda store: store.record_write_if(
                WriteRecord(f"c-{expected}", participant, None, "T1", "U1", f"h{n + 1}", (), "written", None, "",
                            2.0), expected=expected)

        won = all_at_once(database_url, clock, [writer(n, participant) for n in range(8)])
        assert sorted(won) == [False] * 7 + [True]
