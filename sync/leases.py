"""A heartbeat that keeps a store lease alive while slow work runs.

Why a thread and not renewals at safe points inside the engine's loops: the slow part is often one call with no
safe point inside it (a paged Genesys query, a write waiting out the shared request budget, a Slack read waiting out
a rate limit with its retries), and such a call can outlast a lease on its own. A thread renews whatever the
worker is blocked on. What it must not do is keep a hung worker's lease alive for ever, so it renews only while
`progressing()` says the worker is still turning (the engine's liveness, the same 180 s /healthz goes by): a stuck
engine's lease runs out and another replica takes the work over.

Renewing is not checking: a holder still checks its lease (its tenure's token) right before each write, since a
renewal can fail (the database was slow, the process was paused) and another replica may have taken the lease.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from types import TracebackType

from store import StoreError
from sync.timer import SYSTEM_TIMER, Timer

log = logging.getLogger(__name__)


class Heartbeat:
    """Calls `renew` every `every_s` seconds from a daemon thread until stopped or `renew` says the lease is lost.

    `renew` returns False once the lease is no longer the holder's (then `lost` is True and the beat stops); a
    StoreError counts as a missed beat, not a loss (the lease may well still hold; the next beat tries again)."""

    def __init__(self, what: str, renew: Callable[[], bool], every_s: float, *,
                 progressing: Callable[[], bool] = lambda: True, timer: Timer = SYSTEM_TIMER) -> None:
        if every_s <= 0:
            raise ValueError(f"Heartbeat: every_s must be > 0 (got {every_s})")
        self._what = what
        self._renew = renew
        self._every_s = every_s
        self._progressing = progressing
        self._timer = timer
        """Its beats are waited out on it: a test's timer beats without sleeping."""
        self._stop = threading.Event()
        self._lost = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat: {what}", daemon=True)

    @property
    def lost(self) -> bool:
        """Whether a renewal found the lease gone (ran out, or another holder took it)."""
        return self._lost.is_set()

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop beating; returns once no renewal is under way (so none lands after the holder let go)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)

    def __enter__(self) -> Heartbeat:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def _beat(self) -> None:
        while not self._timer.wait(self._stop, self._every_s):
            if not self._progressing():
                continue  # the worker is stuck: let the lease run out so that another replica takes over
            try:
                held = self._renew()
            except StoreError as error:
                log.debug("could not renew %s (tried again in %.1f s): %s", self._what, self._every_s, error)
                continue
            if not held:
                self._lost.set()
                return
