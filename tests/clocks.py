"""The one fake clock the tests share."""

from __future__ import annotations

import threading


class FakeClock:
    """A clock that stands still until the test moves it: ``advance`` it, or ``sleep`` on it (recorded in ``sleeps``).

    Call it for the time (``now`` too). Thread-safe: the local fakes read it from their server threads.
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
