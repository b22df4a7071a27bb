"""The one retry layer for every Genesys Cloud request (token and API alike).

Hand-written, not stamina/tenacity: stamina's synchronous sleep and timeout clock are not injectable, and this
layer must honour each answer's Retry-After and feed 429s to the shared rate limiter; it is ~100 lines.

- 429 and 503: wait `Retry-After` (else `inin-ratelimit-reset` when the rate-limit window is what refused the
  request, i.e. a 429 or count ≥ allowed; else 3 s) plus a little jitter.
- 502, 504, timeouts and dropped or refused connections: exponential backoff with jitter. A host name that does not
  exist and a failed TLS handshake too, unless `RetryPolicy.retry_unfixable` is off (`check`): they fail the same
  way every time, so a one-shot command reports them at once. Every transport failure is classified
  (`genesys/network.py`) and leaves as `GenesysUnreachable` naming the cause and the host.
- Every other httpx failure (a proxy refusal, an unsupported URL scheme, a protocol error on our side, an
  undecodable body, ...) is `GenesysUnavailable` at once, as is `PoolTimeout` (too many concurrent requests in this
  process, not a Genesys problem: retrying would only add to the queue).
- Everything else (200s, 400, 401, 403, 404, ...) is returned to the caller at once, never retried.
- Bounded by attempts (5) and by a deadline (60 s after the call began, or one the caller shares between several
  sends): a retry is made only if its wait plus the request's read timeout still ends before the deadline. Then
  `RateLimited` or `GenesysUnavailable`.

Outages are logged by state, not per attempt (`Reachability`): one warning naming the cause when requests start
failing, one line when Genesys answers again, however many requests and retries fail in between. Each retry is a
DEBUG line (a 429's stays a warning: it is no outage, and says the request budget is too high).

Errors are raised `from None` and outside the `except` block, so no exception chain keeps an httpx exception, whose
`.request.headers` hold the bearer token or the Basic credentials; messages name only the exception type.

Every retried call is safe to repeat: token requests, searches and analytics queries read, and the attributes
PATCH sends the same map again.
"""

from __future__ import annotations

import logging
import math
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from genesys.errors import ErrorBody, GenesysUnavailable, GenesysUnreachable, RateLimited, Stopping
from genesys.network import NetworkCause, NetworkFailure, classify, host_name, host_of
from genesys.observer import NO_OBSERVER, RequestObserver
from genesys.rate_limit import RateLimiter, Sleep, header_number
from genesys.regions import STATUS_PAGE, region_of_host

log = logging.getLogger(__name__)

RETRY_AFTER_STATUSES = frozenset({429, 503})
BACKOFF_STATUSES = frozenset({502, 504})
RETRYABLE_TRANSPORT_ERRORS: tuple[type[Exception], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)
"""Transient httpx failures worth another attempt (except `httpx.PoolTimeout`, a `TimeoutException` of this process)."""

POOL_EXHAUSTED = (
    "too many concurrent Genesys requests in this process; no pooled connection came free in time, PoolTimeout"
)
POOL_ADVICE = (
    "This is not a Genesys outage: fewer threads should call Genesys at once than the HTTP client has connections;"
    " the work is retried later"
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to retry one request."""

    max_attempts: int = 5
    max_total_s: float = 60.0
    """Deadline of one call (its sends, retries and any token fetch between them), from when it began."""
    default_wait_s: float = 3.0
    """Wait after a 429/503 that carries neither Retry-After nor inin-ratelimit-reset."""
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 10.0
    jitter_s: float = 0.5
    """At most this much is added to a Retry-After wait, so clients do not return in lockstep."""
    max_paged_query_s: float = 300.0
    """Deadline of a whole paged analytics query (up to 100 pages, each with its own retries)."""
    retry_unfixable: bool = True
    """Retry a host name that does not exist and a failed TLS handshake. The service does: it has time, and a
    resolver or middlebox may hiccup. A one-shot command turns it off: the operator waits, and a misspelt host, a
    wrong scheme or an untrusted certificate fails the same way on every attempt."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        for name in ("max_total_s", "default_wait_s", "backoff_initial_s", "backoff_max_s", "jitter_s",
                     "max_paged_query_s"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be zero or more")


class Reachability:
    """Whether Genesys answers, shared by a client's senders (API and login): a warning when an outage starts, naming
    its cause, and one line when it ends, instead of a line per failed attempt. Thread-safe."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._down_since: float | None = None

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def failed(self, cause: str) -> None:
        """A request got no usable answer (refused, timed out, 5xx): logs the first one of an outage."""
        with self._lock:
            if self._down_since is not None:
                return
            self._down_since = self._clock()
        log.warning("Genesys unreachable: %s; requests are retried, and a line follows when it answers again", cause)

    def answered(self) -> None:
        """Genesys gave an answer that is no outage (any status but 502/503/504): logs the end of one."""
        with self._lock:
            since, self._down_since = self._down_since, None
        if since is not None:
            log.info("Genesys reachable again after %.0f s", self._clock() - since)


class RetryingSender:
    """Sends a request through one `httpx.Client`, retrying transient failures per `RetryPolicy`."""

    def __init__(
        self,
        http: httpx.Client,
        policy: RetryPolicy,
        *,
        clock: Callable[[], float],
        sleep: Sleep,
        rng: random.Random,
        limiter: RateLimiter | None = None,
        reachability: Reachability | None = None,
        observer: RequestObserver = NO_OBSERVER,
    ) -> None:
        self._http = http
        self._observer = observer
        self._policy = policy
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        self._limiter = limiter
        self._reachability = reachability or Reachability(clock)

    def build_request(self, method: str, url: str, **kwargs: Any) -> httpx.Request:
        """A request carrying the client's timeouts and default headers."""
        return self._http.build_request(method, url, **kwargs)

    def send(self, request: httpx.Request, *, operation: str, deadline: float | None = None) -> httpx.Response:
        """The first answer that is not transient; raises RateLimited/GenesysUnavailable when retries run out.

        `deadline` (on this sender's clock) bounds the retries; default: `max_total_s` from now. No attempt starts
        after it, and no retry starts unless its wait plus the request's read timeout ends before it.
        """
        policy = self._policy
        started = self._clock()
        if deadline is None:
            deadline = started + policy.max_total_s
        elif started >= deadline:
            raise GenesysUnavailable(operation, "no time was left of the call's time budget", attempts=0)
        attempt_s = _read_timeout(request)
        attempt = 0
        while True:
            attempt += 1
            if self._limiter is not None:
                self._limiter.acquire()
            response: httpx.Response | None = None
            final: dict[str, str] | None = None  # GenesysUnavailable's reason (and advice): not worth retrying
            network: NetworkFailure | None = None
            try:
                response = self._http.send(request)
            except httpx.PoolTimeout:
                self._observer.genesys_request(operation, None)
                final = {"reason": POOL_EXHAUSTED, "advice": POOL_ADVICE}
            except RETRYABLE_TRANSPORT_ERRORS as exc:
                self._observer.genesys_request(operation, None)
                network = classify(exc, _timeout_of(request, exc))
                failure = network.short
                wait, source = self._backoff(attempt), "backoff"
                self._reachability.failed(f"{failure} at {_host(request)}")
            except httpx.HTTPError as exc:
                self._observer.genesys_request(operation, None)
                final = {"reason": f"the HTTP request failed ({type(exc).__name__})"}
                self._reachability.failed(f"{final['reason']} at {_host(request)}")
            else:
                self._observer.genesys_request(operation, response.status_code)
                if self._limiter is not None:
                    self._limiter.observe(response.headers)
                status = response.status_code
                if status in RETRY_AFTER_STATUSES:
                    wait, source = self._server_wait(response)
                elif status in BACKOFF_STATUSES:
                    wait, source = self._backoff(attempt), "backoff"
                else:
                    self._reachability.answered()
                    return response
                failure = f"{status} {_reason(response)}"
                if status == 429:
                    self._reachability.answered()  # throttled, not down
                else:
                    self._reachability.failed(f"{failure} from {_host(request)}")
            # Raised here, after the except blocks: the new error has no __context__ holding the httpx exception.
            now = self._clock()
            elapsed = now - started
            host = host_of(request.url)
            if final is not None:
                raise GenesysUnavailable(operation, attempts=attempt, elapsed_s=elapsed, host=host, **final) from None
            if network is not None and (attempt >= policy.max_attempts or now + wait + attempt_s > deadline
                                        or not (network.temporary or policy.retry_unfixable)):
                raise GenesysUnreachable(operation, host, network, attempts=attempt, elapsed_s=elapsed,
                                         advice=unreachable_advice(host, network)) from None
            if attempt >= policy.max_attempts or now + wait + attempt_s > deadline:
                raise _exhausted(operation, response, failure, attempt, elapsed, wait, host) from None
            if response is not None and response.status_code == 429 and self._limiter is not None:
                self._limiter.hold(wait)
            # The outage itself is Reachability's line; a 429 is worth a warning each time (the budget is too high).
            log.log(
                logging.WARNING if response is not None and response.status_code == 429 else logging.DEBUG,
                "Genesys %s failed (%s); retry %d of %d in %.1f s (%s)",
                operation, failure, attempt, policy.max_attempts - 1, wait, source,
            )
            if self._sleep(wait):  # the process is stopping: a back-off may be a minute long, SIGTERM must not wait
                raise Stopping(operation)

    def _server_wait(self, response: httpx.Response) -> tuple[float, str]:
        headers = response.headers
        candidates = ["retry-after"]
        # The rate-limit window's reset says when to come back only if the window is what refused us.
        count = header_number(headers.get("inin-ratelimit-count"))
        allowed = header_number(headers.get("inin-ratelimit-allowed"))
        if response.status_code == 429 or (count is not None and allowed is not None and count >= allowed):
            candidates.append("inin-ratelimit-reset")
        for header in candidates:
            seconds = header_number(headers.get(header))
            if seconds is not None:
                return seconds + self._rng.uniform(0, self._policy.jitter_s), header
        default = self._policy.default_wait_s
        return default + self._rng.uniform(0, self._policy.jitter_s), f"the {default:g} s default"

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self._policy.backoff_max_s, self._policy.backoff_initial_s * 2 ** (attempt - 1))
        return self._rng.uniform(ceiling / 2, ceiling)


def unreachable_advice(host: str, failure: NetworkFailure) -> str:
    """The service-side next step for `GenesysUnreachable`; the status page only for a real Genesys host."""
    status = f" and {STATUS_PAGE}" if region_of_host(host) is not None else ""
    match failure.cause:
        case NetworkCause.DNS:
            what = (f"Check that {host_name(host)} is spelt right (GENESYS_REGION, GENESYS_API_URL,"
                    " GENESYS_LOGIN_URL) and that this machine can resolve names")
        case NetworkCause.TLS:
            what = (f"Check that {host} speaks https (the URL's scheme and port) and that its certificate is valid;"
                    " a TLS-intercepting proxy needs its CA trusted")
        case _:
            what = f"Check network access to {host}{status}"
    return f"{what}; the work is retried later"


def _exhausted(operation: str, response: httpx.Response | None, failure: str, attempts: int, elapsed: float,
               wait: float, host: str) -> Exception:
    if response is None:
        return GenesysUnavailable(operation, failure, attempts=attempts, elapsed_s=elapsed, host=host)
    body = ErrorBody.from_response(response)
    if response.status_code == 429:
        return RateLimited(operation, attempts=attempts, elapsed_s=elapsed, retry_after=wait,
                           status=429, code=body.code, context_id=body.context_id)
    return GenesysUnavailable(operation, failure, attempts=attempts, elapsed_s=elapsed,
                              retry_after=wait if response.status_code == 503 else None,
                              status=response.status_code, code=body.code, context_id=body.context_id, host=host)


def _read_timeout(request: httpx.Request) -> float:
    """How long the next attempt may take to answer: the request's read timeout (0 if none is set)."""
    timeout = request.extensions.get("timeout")
    read = timeout.get("read") if isinstance(timeout, dict) else None
    return float(read) if isinstance(read, int | float) and math.isfinite(read) and read > 0 else 0.0


def _reason(response: httpx.Response) -> str:
    code = ErrorBody.from_response(response).code
    return code or response.reason_phrase or "error"


def _timeout_of(request: httpx.Request, exc: Exception) -> float | None:
    """The request's timeout for the phase `exc` ran out in (None if it is no timeout or carried none)."""
    phase = {httpx.ConnectTimeout: "connect", httpx.ReadTimeout: "read", httpx.WriteTimeout: "write"}.get(type(exc))
    timeout = request.extensions.get("timeout")
    value = timeout.get(phase) if phase and isinstance(timeout, dict) else None
    return float(value) if isinstance(value, int | float) else None


def _host(request: httpx.Request) -> str:
    """The host (and port) a request went to, for the outage line: never its path, query or headers."""
    port = request.url.port
    return f"{request.url.host}:{port}" if port else request.url.host
