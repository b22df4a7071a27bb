"""The one fake clock the tests share, and the engine timers built on it (see `sync.timer`)."""

from __future__ import annotations

import threading


class FakeClock:
    """A clock that stands still until the test moves it: ``advance`` it, or ``sleep`` on it (recorded in ``sleeps``).

    Call it for the time (``now`` and ``monotonic()`` too). Thread-safe: the local fakes read it from their server
    threads. It is also a `sync.timer.Timer` that never blocks, for code that runs on the test's own thread: a
    ``wait`` returns at once (moving the clock unless the event is set).
    """

    def __init__(self, start: float = 1_000.0) -> None:
        self._now = start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    @property
    def now(self) -> float:
        return self()

    @now.setter
    def now(self, value: float) -> None:
        with self._lock:
            self._now = value

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        """What code under test gets as its sleep: records the wait and moves the clock (never backwards)."""
        with self._lock:
            self.sleeps.append(seconds)
            self._now += max(seconds, 0.0)

    def monotonic(self) -> float:
        return self()

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """As `Event.wait`, without waiting: True at once if set, else the wait is recorded and the clock moved."""
        if event.is_set():
            return True
        self.sleep(timeout)
        return event.is_set()


class RealWaits:
    """A `sync.timer.Timer` that measures on a fake clock but waits for real (briefly): for an engine whose loop runs
    on a thread of its own, which must yield between turns, while the test decides how much time has passed."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock

    def monotonic(self) -> float:
        return self.clock()

    def sleep(self, seconds: float) -> None:
        threading.Event().wait(seconds)

    def wait(self, event: threading.Event, timeout: float) -> bool:
        return event.wait(timeout)
