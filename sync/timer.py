"""The engine's timer: how it measures elapsed time and how it waits, behind one seam.

Two clocks, on purpose. The wall clock (`clock`, a callable giving epoch seconds, as the store takes it) stamps what
is stored: refreshed_at, audit rows, resolved links. The timer measures and waits: liveness, the poll's pace, the
resync's progress, heartbeats. It is monotonic, so setting the system clock back or forward never makes the engine
look stuck or skip a poll; and since every wait goes through it, a test hands in a timer that does not sleep.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Timer(Protocol):
    """Elapsed time and waiting, for the engine and its heartbeats."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (only differences mean anything)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait `seconds`, come what may."""
        ...

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """Wait until `event` is set or `timeout` seconds passed; whether it is set (as `Event.wait`)."""
        ...


class SystemTimer:
    """The real thing: `time.monotonic`, `time.sleep` and `Event.wait`."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def wait(self, event: threading.Event, timeout: float) -> bool:
        return event.wait(timeout)


SYSTEM_TIMER: Timer = SystemTimer()
