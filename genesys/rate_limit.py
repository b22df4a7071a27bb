"""A client-side limiter that keeps this process under the OAuth token's request budget.

Genesys allows 300 requests per minute per client-credentials token by default and says so on every answer
(`inin-ratelimit-allowed`, `-count`, `-reset` in seconds). The limiter paces requests so that no 60-second window
holds more than the budget (the configured one, lowered to `allowed` when Genesys reports less), and when Genesys'
own count nears `allowed` (another process may share the token) it holds every thread until the window resets.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

_LOGGED_WAIT_S = 1.0
"""Waits at least this long are logged at INFO; shorter pacing waits at DEBUG."""


class RateLimiter:
    """Thread-safe pacing for one token's requests; `acquire()` before each request, `observe()` after."""

    def __init__(
        self,
        requests_per_minute: int = 300,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        window_s: float = 60.0,
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
            self._sleep(wait)
            waited += wait
            with self._lock:
                if self._hold_until <= seen_hold:
                    break
                seen_hold = self._hold_until
                now = self._clock()
            wait, reason = seen_hold - now, "Genesys asked to hold requests meanwhile"
        return waited

    def hold(self, seconds: float) -> None:
        """Hold every request for `seconds` from now (e.g. after a 429 with Retry-After)."""
        with self._lock:
            self._hold_until = max(self._hold_until, self._clock() + max(seconds, 0.0))

    def observe(self, headers: Mapping[str, str]) -> None:
        """Adapt to Genesys' `inin-ratelimit-*` headers from any answer."""
        allowed = _number(headers.get("inin-ratelimit-allowed"))
        count = _number(headers.get("inin-ratelimit-count"))
        reset = _number(headers.get("inin-ratelimit-reset"))
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


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None
