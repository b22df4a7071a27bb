"""The one retry layer: what is retried, how long it waits, and when it gives up."""

from __future__ import annotations

import random
import socket
import threading
import time
import traceback

import httpx
import pytest

from genesys import (
    GenesysUnavailable,
    RateLimited,
    RetryPolicy,
    Stopping,
    VoiceSafeLimits,
    check_attributes,
)
from genesys.rate_limit import RateLimiter
from genesys.retries import RetryingSender
from tests.genesys.support import FakeClock

URL = "https://api.mypurecloud.ie/api/v2/users/search"


def caused_by(os_error: OSError) -> httpx.ConnectError:
    """A ConnectError as httpx raises it: the OS error that stopped the connection is its cause."""
    error = httpx.ConnectError("connection failed")
    error.__cause__ = os_error
    return error


def send(answers: list, *, policy: RetryPolicy | None = None, limiter: bool = False
         ) -> tuple[httpx.Response, FakeClock, int]:
    """Send one request through a RetryingSender whose transport plays `answers` in order."""
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    clock = FakeClock()
    http = httpx.Client(transport=httpx.MockTransport(handler))
    rate = RateLimiter(300, clock=clock, sleep=clock.sleep) if limiter else None
    sender = RetryingSender(http, policy or RetryPolicy(), clock=clock, sleep=clock.sleep, rng=random.Random(7),
                            limiter=rate)
    try:
        return sender.send(http.build_request("POST", URL, json={}), operation="users search"), clock, calls
    except Exception as exc:
        exc.clock, exc.calls = clock, calls  # type: ignore[attr-defined]
        raise


def ok() -> httpx.Response:
    return httpx.Response(200, json={})


@pytest.mark.parametrize(
    ("failure", "low", "high"),
    [
        (httpx.Response(429, headers={"Retry-After": "2"}), 2.0, 2.5),
        (httpx.Response(503, headers={"Retry-After": "1"}), 1.0, 1.5),
        (httpx.Response(429, headers={"inin-ratelimit-reset": "4"}), 4.0, 4.5),
        (httpx.Response(503, headers={"inin-ratelimit-allowed": "300", "inin-ratelimit-count": "300",
                                      "inin-ratelimit-reset": "6"}), 6.0, 6.5),
        (httpx.Response(503, headers={"inin-ratelimit-allowed": "300", "inin-ratelimit-count": "0",
                                      "inin-ratelimit-reset": "60"}), 3.0, 3.5),
        (httpx.Response(429), 3.0, 3.5),
        (httpx.Response(503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}), 3.0, 3.5),
    ],
    ids=["429 retry-after", "503 retry-after", "429 reset", "503 window full", "503 window not full",
         "429 bare", "503 http-date"],
)
def test_429_and_503_wait_as_genesys_asks(failure: httpx.Response, low: float, high: float) -> None:
    """Retry-After first, then inin-ratelimit-reset when the window refused us, else 3 s; plus ≤ 0.5 s jitter."""
    response, clock, calls = send([failure, ok()])
    assert response.status_code == 200
    assert calls == 2
    (wait,) = clock.sleeps
    assert low <= wait <= high


@pytest.mark.parametrize("status", [502, 504])
def test_gateway_errors_back_off_exponentially(status: int) -> None:
    """502/504 back off 0.5, 1, 2, 4 s (jittered down to half) and succeed when Genesys recovers."""
    response, clock, calls = send([httpx.Response(status)] * 4 + [ok()])
    assert response.status_code == 200
    assert calls == 5
    for wait, ceiling in zip(clock.sleeps, [0.5, 1, 2, 4], strict=True):
        assert ceiling / 2 <= wait <= ceiling


@pytest.mark.parametrize(
    "error",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.ConnectTimeout("slow"),
     httpx.RemoteProtocolError("Server disconnected without sending a response."), httpx.ReadError("reset")],
    ids=lambda e: type(e).__name__,
)
def test_connection_errors_and_timeouts_are_retried(error: Exception) -> None:
    """Refused, reset or dropped connections and timeouts are retried with backoff."""
    response, clock, calls = send([error, ok()])
    assert response.status_code == 200
    assert calls == 2
    assert len(clock.sleeps) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 408, 409, 413, 415, 500])
def test_other_statuses_are_returned_unretried(status: int) -> None:
    """400/401/403/404 and the rest never change on retry: answered at once, no sleep."""
    response, clock, calls = send([httpx.Response(status)])
    assert response.status_code == status
    assert calls == 1
    assert clock.sleeps == []


def test_429_storm_exhausts_attempts_as_rate_limited() -> None:
    """Five 429s in a row raise RateLimited after 4 waits, carrying the last wait as retry_after."""
    with pytest.raises(RateLimited) as caught:
        send([httpx.Response(429, headers={"Retry-After": "1"}, json={"code": "too.many.requests",
                                                                      "contextId": "ctx-429"})] * 5)
    error = caught.value
    assert error.calls == 5
    assert len(error.clock.sleeps) == 4
    assert (error.status, error.code, error.context_id, error.attempts) == (429, "too.many.requests", "ctx-429", 5)
    assert 1 <= error.retry_after <= 1.5


@pytest.mark.parametrize(
    ("answers", "reason"),
    [
        ([httpx.Response(503)] * 5, "503 Service Unavailable"),
        ([httpx.Response(502)] * 5, "502"),
        ([caused_by(ConnectionRefusedError(111, "Connection refused"))] * 5, "connection refused (ConnectError)"),
        ([caused_by(socket.gaierror(-3, "Temporary failure in name resolution"))] * 5,
         "host name not resolved (ConnectError)"),
        ([httpx.ConnectError("something else")] * 5, "connection failed (ConnectError)"),
        ([httpx.ReadTimeout("slow")] * 5, "timed out (ReadTimeout)"),
    ],
)
def test_persistent_failures_exhaust_as_unavailable(answers: list, reason: str) -> None:
    """Five transient failures raise GenesysUnavailable naming the last reason."""
    with pytest.raises(GenesysUnavailable) as caught:
        send(answers)
    assert reason in str(caught.value)
    assert caught.value.attempts == 5
    assert caught.value.calls == 5  # type: ignore[attr-defined]


def test_total_time_is_bounded() -> None:
    """Long Retry-After waits stop the retries once the next wait would pass 60 s in total."""
    with pytest.raises(GenesysUnavailable) as caught:
        send([httpx.Response(503, headers={"Retry-After": "25"})] * 5)
    clock = caught.value.clock  # type: ignore[attr-defined]
    assert caught.value.calls == 3
    assert sum(clock.sleeps) <= 60
    assert 25 <= caught.value.retry_after <= 25.5


def test_retry_after_beyond_the_budget_gives_up_at_once() -> None:
    """A Retry-After longer than the whole budget is not slept; the caller gets it as retry_after."""
    with pytest.raises(RateLimited) as caught:
        send([httpx.Response(429, headers={"Retry-After": "3600"})])
    assert caught.value.calls == 1
    assert caught.value.clock.sleeps == []
    assert caught.value.retry_after >= 3600


def test_policy_is_configurable() -> None:
    """max_attempts bounds the tries."""
    with pytest.raises(GenesysUnavailable):
        send([httpx.Response(502)] * 2, policy=RetryPolicy(max_attempts=2))


@pytest.mark.parametrize("bad", [{"max_attempts": 0}, {"max_total_s": -1}, {"jitter_s": float("nan")}])
def test_policy_refuses_nonsense(bad: dict) -> None:
    """Zero attempts or negative times are refused."""
    with pytest.raises(ValueError, match="must be"):
        RetryPolicy(**bad)


def test_429_holds_the_shared_limiter() -> None:
    """A 429 holds the shared limiter: another thread acquiring during the retry wait waits about the Retry-After;
    the retry itself does not wait twice."""
    answers = [httpx.Response(429, headers={"Retry-After": "2"}), ok()]
    clock = FakeClock()
    rate = RateLimiter(300, clock=clock, sleep=clock.sleep)
    retry_waits: list[float] = []
    others_waited: list[float] = []

    def sleep(seconds: float) -> None:  # the retry's wait: meanwhile another thread asks the limiter for a slot
        retry_waits.append(seconds)
        others_waited.append(rate.acquire())

    http = httpx.Client(transport=httpx.MockTransport(lambda request: answers.pop(0)))
    sender = RetryingSender(http, RetryPolicy(), clock=clock, sleep=sleep, rng=random.Random(7), limiter=rate)
    assert sender.send(http.build_request("POST", URL, json={}), operation="users search").status_code == 200
    (retry_wait,) = retry_waits
    assert 2 <= retry_wait <= 2.5
    assert others_waited == [pytest.approx(retry_wait)]
    assert clock.sleeps == [pytest.approx(retry_wait)]  # the other thread's wait; the retry did not wait again


def test_retried_patch_sends_the_same_body() -> None:
    """A retried request is byte-for-byte the same (the attributes PATCH is safe to repeat)."""
    bodies: list[bytes] = []
    answers = [httpx.Response(503, headers={"Retry-After": "0"}), httpx.Response(202)]

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(request.read())
        return answers.pop(0)

    clock = FakeClock()
    http = httpx.Client(transport=httpx.MockTransport(handler))
    sender = RetryingSender(http, RetryPolicy(), clock=clock, sleep=clock.sleep, rng=random.Random(1))
    attributes = check_attributes({"slack.title": "Engineer"}, VoiceSafeLimits()).sendable()
    request = http.build_request("PATCH", URL, json=attributes.body())
    assert sender.send(request, operation="attributes write").status_code == 202
    assert bodies == [b'{"attributes":{"slack.title":"Engineer"}}'] * 2


TOKEN = "tok-SECRET-bearer-value"


def send_with_token(raise_or_answer, *, policy: RetryPolicy | None = None, timeout: float = 5.0,
                    clock: FakeClock | None = None) -> tuple[FakeClock, list[httpx.Request]]:
    """Send one request carrying a bearer token; `raise_or_answer(request)` plays the transport."""
    clock = clock or FakeClock()
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return raise_or_answer(request)

    http = httpx.Client(transport=httpx.MockTransport(handler), timeout=timeout)
    sender = RetryingSender(http, policy or RetryPolicy(), clock=clock, sleep=clock.sleep, rng=random.Random(7))
    request = http.build_request("POST", URL, json={}, headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        sender.send(request, operation="users search")
    except Exception as exc:
        exc.clock, exc.seen = clock, seen  # type: ignore[attr-defined]
        raise
    return clock, seen


def assert_no_trace_of_the_token(error: BaseException) -> None:
    """No chain, and neither the message nor the formatted traceback shows the token."""
    assert error.__cause__ is None
    assert error.__context__ is None
    shown = "".join(traceback.format_exception(error))
    for text in (str(error), repr(error), shown):
        assert TOKEN not in text


@pytest.mark.parametrize(
    "error_type",
    [httpx.ProxyError, httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.DecodingError,
     httpx.TooManyRedirects],
    ids=lambda t: t.__name__,
)
def test_other_httpx_errors_become_unavailable_without_the_request(error_type: type[httpx.HTTPError]) -> None:
    """Any other httpx error is GenesysUnavailable at once, naming only its type, with no chain to the request."""
    def fail(request: httpx.Request) -> httpx.Response:
        raise error_type(f"failed with {request.headers['authorization']}", request=request)

    with pytest.raises(GenesysUnavailable) as caught:
        send_with_token(fail)
    error = caught.value
    assert f"({error_type.__name__})" in str(error)
    assert len(error.seen) == 1  # type: ignore[attr-defined]
    assert error.clock.sleeps == []  # type: ignore[attr-defined]
    assert_no_trace_of_the_token(error)


def test_exhausted_transport_retries_keep_no_chain_to_the_request() -> None:
    """Connection errors that outlast the retries raise GenesysUnavailable with no __cause__/__context__."""
    def fail(request: httpx.Request) -> httpx.Response:
        # As httpx raises it: the OS error is the cause, and the message may quote anything of the request.
        raise httpx.ConnectError(f"refused {request.headers['authorization']}",
                                 request=request) from ConnectionRefusedError(111, "Connection refused")

    with pytest.raises(GenesysUnavailable, match=r"connection refused \(ConnectError\)") as caught:
        send_with_token(fail)
    assert len(caught.value.seen) == 5  # type: ignore[attr-defined]
    assert_no_trace_of_the_token(caught.value)


def test_pool_exhaustion_is_not_retried_and_says_why() -> None:
    """PoolTimeout (every pooled connection busy in this process) is no outage: one attempt, its own message."""
    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.PoolTimeout("no connection", request=request)

    with pytest.raises(GenesysUnavailable) as caught:
        send_with_token(fail)
    error = caught.value
    assert "too many concurrent Genesys requests in this process" in str(error)
    assert "status.mypurecloud.com" not in str(error)
    assert len(error.seen) == 1  # type: ignore[attr-defined]
    assert error.clock.sleeps == []  # type: ignore[attr-defined]
    assert_no_trace_of_the_token(error)


def test_the_next_attempts_read_timeout_counts_against_the_budget() -> None:
    """Attempts that each time out after 15 s stop early enough that the call ends within its 60 s."""
    clock = FakeClock()

    def slow(request: httpx.Request) -> httpx.Response:
        clock.advance(15)  # the read timeout passes
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(GenesysUnavailable, match=r"timed out \(ReadTimeout\)") as caught:
        send_with_token(slow, timeout=15.0, clock=clock)
    assert len(caught.value.seen) == 3  # type: ignore[attr-defined]
    assert clock() - 1_000.0 <= 60


def test_a_shared_deadline_bounds_the_retries() -> None:
    """With a deadline passed in, retries stop at it rather than at max_total_s from this send."""
    clock = FakeClock()
    http = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(503,
                                                                                  headers={"Retry-After": "2"})))
    sender = RetryingSender(http, RetryPolicy(), clock=clock, sleep=clock.sleep, rng=random.Random(7))
    request = http.build_request("POST", URL, json={}, timeout=1.0)
    with pytest.raises(GenesysUnavailable):
        sender.send(request, operation="users search", deadline=clock() + 6)
    assert clock() <= 1_000.0 + 6
    assert len(clock.sleeps) == 2  # a third wait (~2 s) plus the 1 s read timeout would pass the deadline
    with pytest.raises(GenesysUnavailable, match="no time was left"):
        sender.send(request, operation="users search", deadline=clock() - 1)


@pytest.mark.parametrize(
    "answer",
    [httpx.Response(503, headers={"Retry-After": "30"}), httpx.Response(502), httpx.ConnectError("Connection refused")],
)
def test_a_wait_cut_short_by_stopping_sends_nothing_more(answer: object) -> None:
    """When the sleep seam reports the process stopping, the back-off ends at once in Stopping, with no new attempt."""
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]

    stop = threading.Event()
    stop.set()
    clock = FakeClock()
    http = httpx.Client(transport=httpx.MockTransport(handler))
    sender = RetryingSender(http, RetryPolicy(), clock=clock, sleep=stop.wait, rng=random.Random(7))
    started = time.monotonic()
    with pytest.raises(Stopping, match="the Genesys users search was not sent: the app is stopping"):
        sender.send(http.build_request("POST", URL, json={}), operation="users search")
    assert time.monotonic() - started < 0.5
    assert calls == 1


def test_the_rate_limit_wait_is_cut_short_by_stopping() -> None:
    """A request waiting for the rate limit's next slot raises Stopping at once when the process stops."""
    stop = threading.Event()
    stop.set()
    limiter = RateLimiter(1, clock=FakeClock(), sleep=stop.wait)
    limiter.acquire()
    with pytest.raises(Stopping):
        limiter.acquire()
