"""A client-side limiter that keeps this process under the OAuth token's request budget.

Genesys allows 300 requests per minute per client-credentials token by default and says so on every answer
(`inin-ratelimit-allowed`, `-count`, `-reset` in seconds). The limiter paces requests so that no 60-second window
holds more than the budget (the configured one, lowered to `allowed` when Genesys reports less), and when Genesys'
own count nears `allowed` (another process may share the token) it holds every thread until the window resets.

Several replicas of the app share one budget, not one each: given a `SharedBudget` (the app backs it with the
database), the limiter also draws requests from it a few at a time, and waits for the next shared window when
the others used it up.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import Protocol

from genesys.errors import Stopping

log = logging.getLogger(__name__)

_LOGGED_WAIT_S = 1.0
"""Waits at least this long are logged at INFO; shorter pacing waits at DEBUG."""


class SharedBudget(Protocol):
    """Requests per window shared by every process using the same Genesys OAuth client."""

    def take(self, want: int) -> tuple[int, float]:
        """Take up to `want` requests from the current window: (how many were granted, seconds until the window
        ends). Granted requests not sent by then are lost; none granted means wait for the next window."""
        ...


SHARED_DRAW = 5
"""Requests drawn from a shared budget at a time: few, so a replica never sits on much of the others' budget."""


Sleep = Callable[[float], bool | None]
"""The wait seam of the Genesys client: waits up to the seconds given; a true result means it was cut short because
the process is stopping (a stop event's `wait` behaves so), and no request may follow. `time.sleep` never is."""


class RateLimiter:
    """Thread-safe pacing for one token's requests; `acquire()` before each request, `observe()` after."""

    def __init__(
        self,
        requests_per_minute: int = 300,
        *,
        clock: Callable[[], float],
        sleep: Sleep,
        window_s: float = 60.0,
        shared: SharedBudget | None = None,
    ) -> None:
        if isinstance(requests_per_minute, bool) or not isinstance(requests_per_minute, int) \
                or requests_per_minute < 1:
            raise ValueError(f"requests_per_minute must be a whole number ≥ 1, not {requests_per_minute!r}")
        self._configured = requests_per_minute
        self._limit = requests_per_minute
        self._window_s = window_s
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._slots: deque[float] = deque()
        self._hold_until = 0.0
        self._shared = shared
        self._shared_lock = threading.Lock()  # one draw at a time; the others wait for its result
        self._drawn = 0
        self._drawn_until = 0.0

    @property
    def budget(self) -> int:
        """Requests per window this limiter currently allows (configured, or less if Genesys said so)."""
        return self._limit

    def acquire(self) -> float:
        """Reserve a slot for one request, sleeping until it is due; returns the seconds waited.

        A `hold()` that arrives while this thread sleeps (another thread got a 429) is honoured too: after
        sleeping, a hold that was extended meanwhile is waited out before the request goes.
        """
        with self._lock:
            now = self._clock()
            due = max(now, self._hold_until)
            if len(self._slots) >= self._limit:
                due = max(due, self._slots[-self._limit] + self._window_s)
            self._slots.append(due)
            while len(self._slots) > self._limit:
                self._slots.popleft()
            held = self._hold_until > now and due == self._hold_until
            seen_hold = self._hold_until
        wait, waited = due - now, 0.0
        reason = "Genesys' rate-limit window resets" if held else f"pacing to {self._limit} requests/min"
        while wait > 0:
            log.log(
                logging.INFO if wait >= _LOGGED_WAIT_S else logging.DEBUG,
                "Genesys rate limit: waiting %.1f s before the next request (%s)", wait, reason,
            )
            if self._sleep(wait):
                raise Stopping("request")
            waited += wait
            with self._lock:
                if self._hold_until <= seen_hold:
                    break
                seen_hold = self._hold_until
                now = self._clock()
            wait, reason = seen_hold - now, "Genesys asked to hold requests meanwhile"
        if self._shared is not None:
            waited += self._draw_shared(self._shared)
        return waited

    def _draw_shared(self, shared: SharedBudget) -> float:
        """Take one request from the shared budget, waiting for the next shared window while it is spent."""
        waited = 0.0
        with self._shared_lock:
            while True:
                now = self._clock()
                if self._drawn > 0 and now < self._drawn_until:
                    self._drawn -= 1
                    return waited
                granted, window_left_s = shared.take(SHARED_DRAW)
                self._drawn, self._drawn_until = granted, now + max(window_left_s, 0.0)
                if granted > 0:
                    continue
                wait = max(window_left_s, 0.05)
                log.info("Genesys rate limit: the budget shared by every replica is spent; waiting %.1f s for the "
                         "next window", wait)
                if self._sleep(wait):
                    raise Stopping("request")
                waited += wait

    def hold(self, seconds: float) -> None:
        """Hold every request for `seconds` from now (e.g. after a 429 with Retry-After)."""
        with self._lock:
            self._hold_until = max(self._hold_until, self._clock() + max(seconds, 0.0))

    def observe(self, headers: Mapping[str, str]) -> None:
        """Adapt to Genesys' `inin-ratelimit-*` headers from any answer."""
        allowed = header_number(headers.get("inin-ratelimit-allowed"))
        count = header_number(headers.get("inin-ratelimit-count"))
        reset = header_number(headers.get("inin-ratelimit-reset"))
        if allowed is None or allowed < 1:
            return
        allowed_n = int(allowed)
        with self._lock:
            limit = min(self._configured, allowed_n)
            if limit != self._limit:
                log.info("Genesys rate limit: Genesys allows %d requests/min; pacing to %d", allowed_n, limit)
                self._limit = limit
        if count is None or reset is None:
            return
        headroom = allowed_n // 50
        if allowed_n - count <= headroom and reset > 0:
            reset = min(reset, self._window_s)
            with self._lock:
                until = self._clock() + reset
                if until <= self._hold_until:
                    return
                self._hold_until = until
            log.info(
                "Genesys rate limit: %d of %d requests used in this window; holding requests for %.1f s until it"
                " resets", int(count), allowed_n, reset,
            )


def header_number(value: str | None) -> float | None:
    """A header's non-negative finite number (`inin-ratelimit-*`, `Retry-After` in seconds), else None: a missing,
    malformed, negative or infinite value is no instruction to wait or to pace (float() ignores white space)."""
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None
