"""The client-side rate limiter: pacing to the budget and adapting to inin-ratelimit-* headers."""

from __future__ import annotations

import threading

import pytest

from genesys.rate_limit import RateLimiter
from tests.genesys.support import FakeClock


def limiter(budget: int = 300, clock: FakeClock | None = None) -> tuple[RateLimiter, FakeClock]:
    """A limiter on a fake clock whose sleep advances it."""
    clock = clock or FakeClock()
    return RateLimiter(budget, clock=clock, sleep=clock.sleep), clock


def test_under_budget_never_waits() -> None:
    """300 requests in a minute at the default budget go straight through."""
    rate, clock = limiter()
    assert sum(rate.acquire() for _ in range(300)) == 0
    assert clock.sleeps == []


def test_over_budget_waits_for_the_window() -> None:
    """The 301st request within a minute waits until the first one is 60 s old."""
    rate, clock = limiter()
    start = clock()
    for _ in range(300):
        rate.acquire()
    clock.advance(10)
    assert rate.acquire() == pytest.approx(50)
    assert clock() == pytest.approx(start + 60)


def test_no_sixty_second_window_exceeds_the_budget() -> None:
    """Paced request times never put more than the budget into any 60-second window."""
    rate, clock = limiter(5)
    times = []
    for _ in range(23):
        rate.acquire()
        times.append(clock())
        clock.advance(1)
    for i, t in enumerate(times):
        assert sum(1 for u in times[i:] if u < t + 60) <= 5


def test_concurrent_acquires_reserve_distinct_slots() -> None:
    """Threads acquiring at once are spread over windows: never more than the budget per 60 s."""
    clock = FakeClock()
    due: list[float] = []
    lock = threading.Lock()

    def frozen_sleep(seconds: float) -> None:  # records only, so the due times are what was reserved
        with lock:
            due.append(seconds)

    rate = RateLimiter(10, clock=clock, sleep=frozen_sleep)
    threads = [threading.Thread(target=rate.acquire) for _ in range(35)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    waits = sorted([0.0] * (35 - len(due)) + due)
    assert waits.count(0.0) == 10
    assert [round(w) for w in waits[10:]] == [60] * 10 + [120] * 10 + [180] * 5


@pytest.mark.parametrize(("allowed", "expected"), [("180", 180), ("600", 300), ("5", 5)])
def test_budget_follows_a_lower_allowed_header(allowed: str, expected: int) -> None:
    """inin-ratelimit-allowed lowers the budget; a higher value keeps the configured one."""
    rate, _ = limiter(300)
    rate.observe({"inin-ratelimit-allowed": allowed, "inin-ratelimit-count": "1", "inin-ratelimit-reset": "59"})
    assert rate.budget == expected


@pytest.mark.parametrize(
    ("count", "reset", "expected_wait"),
    [("294", "7", 7.0), ("300", "12", 12.0), ("293", "7", 0.0), ("300", "600", 60.0)],
)
def test_count_near_allowed_holds_until_reset(count: str, reset: str, expected_wait: float) -> None:
    """When Genesys' count nears allowed (another process shares the token), wait until the window resets."""
    rate, _ = limiter(300)
    rate.observe({"inin-ratelimit-allowed": "300", "inin-ratelimit-count": count, "inin-ratelimit-reset": reset})
    assert rate.acquire() == pytest.approx(expected_wait)
    assert rate.acquire() == 0


def test_hold_pauses_every_request() -> None:
    """hold() (after a 429) delays the next request by the given seconds."""
    rate, _ = limiter()
    rate.hold(4)
    assert rate.acquire() == pytest.approx(4)


def test_hold_reaches_a_thread_already_sleeping_on_its_slot() -> None:
    """A hold issued while a thread sleeps until its paced slot keeps that thread waiting until the hold ends."""
    clock = FakeClock()
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 1:  # 50 s into the 60 s pacing wait, another thread gets a 429 with Retry-After 30
            clock.advance(50)
            rate.hold(30)
            clock.advance(seconds - 50)
        else:
            clock.advance(seconds)

    rate = RateLimiter(1, clock=clock, sleep=sleep)
    start = clock()
    rate.acquire()
    assert rate.acquire() == pytest.approx(80)
    assert sleeps == [pytest.approx(60), pytest.approx(20)]
    assert clock() == pytest.approx(start + 80)


@pytest.mark.parametrize(
    "headers",
    [{}, {"inin-ratelimit-allowed": "lots"}, {"inin-ratelimit-allowed": "0"}, {"inin-ratelimit-allowed": "nan"},
     {"inin-ratelimit-allowed": "300", "inin-ratelimit-count": "300", "inin-ratelimit-reset": "inf"},
     {"inin-ratelimit-allowed": "300", "inin-ratelimit-count": "-3", "inin-ratelimit-reset": "5"}],
)
def test_garbage_headers_change_nothing(headers: dict[str, str]) -> None:
    """Missing or unparsable headers leave the budget and timing alone."""
    rate, clock = limiter(300)
    rate.observe(headers)
    assert rate.budget == 300
    assert rate.acquire() == 0
    assert clock.sleeps == []


@pytest.mark.parametrize("budget", [0, -1, 1.5, True, "300"])
def test_budget_must_be_a_positive_whole_number(budget: object) -> None:
    """A nonsensical requests_per_minute is refused at construction."""
    with pytest.raises(ValueError, match="requests_per_minute"):
        RateLimiter(budget, clock=FakeClock(), sleep=lambda s: None)  # type: ignore[arg-type]


class WindowBudget:
    """A shared fixed-window budget as the database keeps it, on the test's clock."""

    def __init__(self, per_window: int, clock: FakeClock, window_s: float = 60.0) -> None:
        self.per_window, self.clock, self.window_s = per_window, clock, window_s
        self.used: dict[int, int] = {}

    def take(self, want: int) -> tuple[int, float]:
        window = int(self.clock() // self.window_s)
        granted = max(0, min(want, self.per_window - self.used.get(window, 0)))
        self.used[window] = self.used.get(window, 0) + granted
        return granted, (window + 1) * self.window_s - self.clock()


def test_replicas_share_one_budget_instead_of_one_each() -> None:
    """Two limiters drawing on one shared 300/min budget send 300 in its window between them, not 600."""
    clock = FakeClock()
    shared = WindowBudget(300, clock)
    first = RateLimiter(300, clock=clock, sleep=clock.sleep, shared=shared)
    second = RateLimiter(300, clock=clock, sleep=clock.sleep, shared=shared)
    window = int(clock() // 60)
    sent = 0
    while int(clock() // 60) == window:
        (first if sent % 2 else second).acquire()
        if int(clock() // 60) == window:
            sent += 1
    assert sent == 300
    assert sum(shared.used.values()) <= 300 + 2 * 5  # the draw that crossed into the next window


def test_a_spent_shared_budget_waits_for_the_next_window() -> None:
    """When the other replicas used the window up, the request waits until the shared window ends."""
    clock = FakeClock(1_000_020.0)
    shared = WindowBudget(10, clock)
    shared.used[int(clock() // 60)] = 10
    rate = RateLimiter(300, clock=clock, sleep=clock.sleep, shared=shared)
    waited = rate.acquire()
    assert waited == pytest.approx(60 - (1_000_020.0 % 60))
    assert int(clock() // 60) == 1_000_020 // 60 + 1


def test_requests_drawn_but_unsent_expire_with_their_window() -> None:
    """Requests drawn in one window are not spent in the next: the limiter draws again there."""
    clock = FakeClock(0.0)
    shared = WindowBudget(300, clock)
    rate = RateLimiter(300, clock=clock, sleep=clock.sleep, shared=shared)
    rate.acquire()
    clock.advance(61)
    rate.acquire()
    assert shared.used == {0: 5, 1: 5}
