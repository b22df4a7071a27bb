"""The durable work queue: coalescing enqueue, atomic claims with leases, generations, retries and dead letters."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from store import Store, WorkItem, open_store
from tests.clocks import FakeClock
from tests.store.conftest import run_together


def claim_one(store: Store, worker: str = "w1", **kwargs: float) -> WorkItem:
    items = store.claim(worker=worker, limit=1, **kwargs)  # type: ignore[arg-type]
    assert len(items) == 1, items
    return items[0]


def test_enqueue_then_claim_leases_the_item(store: Store, clock: FakeClock) -> None:
    """A claimed item carries its payload and is not handed out again while its lease lives."""
    store.enqueue("refresh", "T1:U1", {"team_id": "T1", "user_id": "U1"})
    item = claim_one(store)
    assert (item.kind, item.key, item.attempts) == ("refresh", "T1:U1", 0)
    assert item.payload == {"team_id": "T1", "user_id": "U1"}
    assert (item.next_attempt_at, item.created_at, item.generation) == (clock.now, clock.now, 1)
    assert store.claim(worker="w1") == []
    assert store.claim(worker="w2") == []
    assert store.pending_count() == 1


def test_claim_only_due_items_oldest_first_up_to_limit(store: Store, clock: FakeClock) -> None:
    """Items come out in due order, only once due, at most `limit` per claim."""
    store.enqueue("refresh", "later", {}, not_before=clock.now + 30)
    store.enqueue("refresh", "second", {}, not_before=clock.now - 5)
    store.enqueue("refresh", "first", {}, not_before=clock.now - 10)
    store.enqueue("refresh", "third", {})
    assert [item.key for item in store.claim(worker="w", limit=2)] == ["first", "second"]
    assert [item.key for item in store.claim(worker="w", limit=2)] == ["third"]
    assert store.claim(worker="w") == []
    assert [item.key for item in store.claim(worker="w", now=clock.now + 30)] == ["later"]


@pytest.mark.parametrize(("offset", "expected_offset"), [(-50, -50), (+50, -10), (None, -10)])
def test_enqueue_again_replaces_payload_and_only_moves_due_time_earlier(
    store: Store, clock: FakeClock, offset: float | None, expected_offset: float
) -> None:
    """Re-enqueueing a pending (kind, key) keeps one row, takes the new payload and the earlier of the due times."""
    store.enqueue("refresh", "k", {"v": 1}, not_before=clock.now - 10)
    store.enqueue("refresh", "k", {"v": 2}, not_before=None if offset is None else clock.now + offset)
    assert store.pending_count() == 1
    item = claim_one(store, now=clock.now + 100)
    assert (item.payload, item.generation, item.next_attempt_at) == ({"v": 2}, 2, clock.now + expected_offset)


def test_same_key_of_another_kind_is_separate_work(store: Store) -> None:
    """Coalescing is per (kind, key)."""
    store.enqueue("refresh", "k", {"v": 1})
    store.enqueue("rewrite", "k", {"v": 2})
    assert store.pending_count() == 2


def test_complete_deletes_the_item(store: Store) -> None:
    """complete() of an unchanged item removes it for good."""
    store.enqueue("refresh", "k", {"v": 1})
    store.complete(claim_one(store))
    assert store.pending_count() == 0
    assert store.claim(worker="w1", now=1e12) == []


def test_enqueue_while_claimed_then_complete_keeps_the_new_version(store: Store) -> None:
    """A payload enqueued while the item is claimed survives complete() and is claimable with its new payload."""
    store.enqueue("refresh", "k", {"v": 1})
    item = claim_one(store)
    store.enqueue("refresh", "k", {"v": 2})
    assert store.claim(worker="w2") == []  # still leased: one pair of hands per item
    store.complete(item)
    assert store.pending_count() == 1
    newer = claim_one(store, worker="w2")
    assert (newer.id, newer.payload, newer.generation, newer.attempts) == (item.id, {"v": 2}, 2, 0)
    store.complete(newer)
    assert store.pending_count() == 0


def test_enqueue_keeps_attempts_of_a_claimed_item_but_resets_an_idle_one(store: Store, clock: FakeClock) -> None:
    """A new version of an item in backoff is fresh work (attempts 0); a claimed item's attempts are kept."""
    store.enqueue("refresh", "k", {"v": 1})
    store.retry_later(claim_one(store), delay_s=0, error="e1")
    claimed = claim_one(store)
    assert claimed.attempts == 1
    store.enqueue("refresh", "k", {"v": 2})
    store.retry_later(claimed, delay_s=60, error="e2")
    again = claim_one(store)
    assert (again.payload, again.attempts) == ({"v": 2}, 2)
    store.retry_later(again, delay_s=60, error="e3")
    store.enqueue("refresh", "k", {"v": 3})
    fresh = claim_one(store)
    assert (fresh.payload, fresh.attempts) == ({"v": 3}, 0)


def test_retry_later_counts_the_attempt_and_waits(store: Store, clock: FakeClock) -> None:
    """retry_later adds an attempt, frees the lease and makes the item due only after the delay."""
    store.enqueue("refresh", "k", {"v": 1})
    store.retry_later(claim_one(store), delay_s=30, error="Slack said ratelimited")
    assert store.claim(worker="w1") == []
    assert store.claim(worker="w1", now=clock.now + 29.9) == []
    item = claim_one(store, worker="w2", now=clock.now + 30)
    assert (item.attempts, item.next_attempt_at) == (1, clock.now + 30)


def test_retry_later_of_a_replaced_item_does_not_push_the_new_version_back(store: Store, clock: FakeClock) -> None:
    """When a newer version arrived during the claim, retry_later keeps its earlier due time."""
    store.enqueue("refresh", "k", {"v": 1})
    item = claim_one(store)
    store.enqueue("refresh", "k", {"v": 2})
    store.retry_later(item, delay_s=300, error="boom")
    newer = claim_one(store)
    assert (newer.payload, newer.attempts) == ({"v": 2}, 1)


def test_dead_letter_moves_the_item_with_reason(store: Store, clock: FakeClock) -> None:
    """dead_letter removes the item from the queue and keeps it, its attempts, last error and reason."""
    store.enqueue("refresh", "k", {"v": 1})
    store.retry_later(claim_one(store), delay_s=0, error="timeout")
    store.dead_letter(claim_one(store), reason="user_not_found")
    assert store.pending_count() == 0
    assert store.dead_letter_count() == 1
    (dead,) = store.dead_letters()
    assert (dead.kind, dead.key, dead.payload, dead.attempts) == ("refresh", "k", {"v": 1}, 2)
    assert (dead.reason, dead.last_error, dead.at) == ("user_not_found", "timeout", clock.now)


def test_dead_letters_newest_first_with_limit(store: Store) -> None:
    """dead_letters() lists the newest first, at most `limit`."""
    for key in ("a", "b", "c"):
        store.enqueue("refresh", key, {})
        store.dead_letter(claim_one(store), reason=f"gave up on {key}")
    assert [dead.key for dead in store.dead_letters(limit=2)] == ["c", "b"]
    assert store.dead_letter_count() == 3


def test_dead_letter_keeps_a_newer_version_pending(store: Store) -> None:
    """Giving up on a claimed version does not drop a newer payload enqueued meanwhile."""
    store.enqueue("refresh", "k", {"v": 1})
    item = claim_one(store)
    store.enqueue("refresh", "k", {"v": 2})
    store.dead_letter(item, reason="bad payload")
    assert [dead.payload for dead in store.dead_letters()] == [{"v": 1}]
    newer = claim_one(store)
    assert (newer.payload, newer.attempts) == ({"v": 2}, 0)


def test_expired_lease_lets_another_worker_claim(store: Store, clock: FakeClock) -> None:
    """Once the lease runs out another worker gets the item, counted as a failed attempt; not a moment before."""
    store.enqueue("refresh", "k", {"v": 1})
    claim_one(store, worker="w1", lease_s=60)
    assert store.claim(worker="w2", now=clock.now + 59.9) == []
    taken = claim_one(store, worker="w2", now=clock.now + 60)
    assert (taken.payload, taken.attempts) == ({"v": 1}, 1)
    assert store.claim(worker="w3", now=clock.now + 61) == []


def test_stale_lease_holder_cannot_reschedule_or_bury(store: Store, clock: FakeClock) -> None:
    """retry_later/dead_letter by a worker whose lease was taken over change nothing; the new holder decides."""
    store.enqueue("refresh", "k", {"v": 1})
    stale = claim_one(store, worker="w1", lease_s=10)
    current = claim_one(store, worker="w2", now=clock.now + 10, lease_s=60)
    store.retry_later(stale, delay_s=0, error="late report")
    store.dead_letter(stale, reason="late report")
    assert store.dead_letter_count() == 0
    assert store.claim(worker="w3", now=clock.now + 11) == []
    store.complete(current)
    assert store.pending_count() == 0


def test_stale_complete_of_the_same_version_finishes_it(store: Store, clock: FakeClock) -> None:
    """A late complete() of the unchanged version still removes it: that exact work was done."""
    store.enqueue("refresh", "k", {"v": 1})
    stale = claim_one(store, worker="w1", lease_s=10)
    current = claim_one(store, worker="w2", now=clock.now + 10)
    store.complete(stale)
    assert store.pending_count() == 0
    store.complete(current)
    store.retry_later(current, delay_s=0, error="gone already")
    assert store.pending_count() == 0


def test_work_survives_reopen(database_url: str, clock: FakeClock) -> None:
    """Pending work, its attempts and live leases are all still there after closing and reopening."""
    first = open_store(database_url, clock=clock)
    first.enqueue("refresh", "idle", {"v": 1})
    first.enqueue("refresh", "leased", {"v": 2}, not_before=clock.now - 1)
    claim_one(first, lease_s=60)
    first.close()
    second = open_store(database_url, clock=clock)
    assert second.pending_count() == 2
    assert [item.key for item in second.claim(worker="w2", lease_s=600)] == ["idle"]
    assert [item.key for item in second.claim(worker="w2", now=clock.now + 60)] == ["leased"]
    second.close()


@pytest.mark.parametrize("shared", [True, False], ids=["one-store-shared", "store-per-thread"])
def test_concurrent_claims_never_hand_out_an_item_twice(database_url: str, shared: bool) -> None:
    """Four threads claiming 800 items (through one store or a connection each) get every item exactly once."""
    setup = open_store(database_url)
    for index in range(800):
        setup.enqueue("refresh", f"k{index}", {"i": index})
    stores = [setup] * 4 if shared else [open_store(database_url) for _ in range(4)]
    claimed: list[list[str]] = [[] for _ in stores]
    start = threading.Barrier(len(stores))

    def work(index: int) -> None:
        store = stores[index]
        start.wait()
        while items := store.claim(worker=f"w{index}", limit=5, lease_s=600):
            for item in items:
                claimed[index].append(item.key)
                store.complete(item)

    threads = [threading.Thread(target=work, args=(index,)) for index in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    counts = Counter(key for keys in claimed for key in keys)
    assert len(counts) == 800
    assert set(counts.values()) == {1}
    assert setup.pending_count() == 0
    for store in {id(store): store for store in stores}.values():
        store.close()


# A replica: opens its own store, says ready, and on "go" claims and completes until nothing is left, printing keys.
_REPLICA = """
import sys
import store
s = store.open_store(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
while items := s.claim(worker=sys.argv[2], limit=5, lease_s=600):
    for item in items:
        print(item.key, flush=True)
        s.complete(item)
s.close()
"""


def test_replicas_claiming_at_once_never_share_an_item(postgres_url: str) -> None:
    """Four processes, each with its own store on one PostgreSQL database, claim 1,000 items: each exactly once."""
    setup = open_store(postgres_url)
    for index in range(1000):
        setup.enqueue("refresh", f"k{index}", {"i": index})
    outcomes = run_together(_REPLICA, [[postgres_url, f"replica-{index}"] for index in range(4)])
    assert [code for code, _, _ in outcomes] == [0] * 4, [err for _, _, err in outcomes]
    claimed = [out.split() for _, out, _ in outcomes]
    counts = Counter(key for keys in claimed for key in keys)
    assert len(counts) == 1000
    assert set(counts.values()) == {1}
    assert sum(1 for keys in claimed if keys) >= 2  # they really competed
    assert setup.pending_count() == 0
    setup.close()


@pytest.mark.parametrize(("lease_s", "limit"), [(0, 1), (-1, 1), (60, 0)])
def test_claim_rejects_nonsense_arguments(store: Store, lease_s: float, limit: int) -> None:
    """A non-positive lease or limit is a caller bug."""
    with pytest.raises(ValueError, match="claim"):
        store.claim(worker="w", lease_s=lease_s, limit=limit)


def test_renewing_a_claim_keeps_slow_work_from_other_workers(store: Store, clock: FakeClock) -> None:
    """A worker renewing its items past their first lease keeps them: no other worker takes them, no attempt counts."""
    store.enqueue("refresh", "T1:U1", {"n": 1})
    store.enqueue("refresh", "T1:U2", {"n": 2})
    items = store.claim(worker="slow", lease_s=10, limit=2)
    for _ in range(6):  # a Slack read waiting out rate limits for a minute
        clock.advance(8)
        assert store.renew_claim(items, lease_s=10) == 2
        assert store.claim(worker="other", lease_s=10) == []
    store.complete(items[0])
    assert store.renew_claim(items, lease_s=10) == 1  # a finished item is not renewed
    clock.advance(11)
    [taken] = store.claim(worker="other", lease_s=10)  # once renewals stop, the lease runs out as before
    assert (taken.key, taken.attempts) == ("T1:U2", 1)
    assert store.renew_claim(items, lease_s=10) == 0  # the slow worker's claim no longer holds it


def bury(store: Store, key: str, payload: dict[str, object] | None = None) -> int:
    """Enqueue `key`, give up on it at once; returns its dead letter's id."""
    store.enqueue("refresh", key, payload or {"key": key})
    store.dead_letter(claim_one(store), reason=f"gave up on {key}")
    return store.dead_letters(limit=1)[0].id


def test_requeuing_a_dead_letter_makes_it_due_now_with_a_fresh_budget(store: Store, clock: FakeClock) -> None:
    """A requeued dead letter leaves the dead letters and is claimable at once, payload kept, attempts from zero."""
    kept, requeued = bury(store, "a"), bury(store, "b", {"team_id": "T1", "user_id": "U1"})
    clock.advance(3600)
    [dead] = store.requeue_dead_letters([requeued])
    assert (dead.id, dead.key, dead.reason) == (requeued, "b", "gave up on b")
    assert [letter.id for letter in store.dead_letters()] == [kept]
    item = claim_one(store)
    assert (item.kind, item.key, item.payload, item.attempts) == ("refresh", "b", {"team_id": "T1", "user_id": "U1"}, 0)


def test_requeuing_every_dead_letter(store: Store) -> None:
    """`ids` None requeues them all, oldest first; a second call finds none."""
    ids = [bury(store, key) for key in ("a", "b", "c")]
    assert [dead.id for dead in store.requeue_dead_letters()] == ids
    assert (store.dead_letter_count(), store.pending_count()) == (0, 3)
    assert store.requeue_dead_letters() == []


def test_requeuing_an_unknown_id_changes_nothing(store: Store) -> None:
    """An id that is no dead letter (or one already requeued) is left out of the answer; the rest are requeued."""
    known = bury(store, "a")
    assert [dead.id for dead in store.requeue_dead_letters([known + 100, known, known])] == [known]
    assert store.requeue_dead_letters([known]) == []
    assert store.pending_count() == 1


def test_a_requeued_dead_letter_joins_pending_work_of_its_key(store: Store) -> None:
    """Work of the same key queued again meanwhile (a newer event) is joined, not doubled."""
    dead = bury(store, "a")
    store.enqueue("refresh", "a", {"key": "a"})
    assert len(store.requeue_dead_letters([dead])) == 1
    assert store.pending_count() == 1
    assert len(store.claim(worker="w1", limit=5)) == 1
