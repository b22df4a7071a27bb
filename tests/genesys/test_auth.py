"""OAuth client credentials: the token request, caching, refresh, concurrency and secrecy."""

from __future__ import annotations

import base64
import logging
import random
import threading
import time
from urllib.parse import parse_qs

import httpx
import pytest

from genesys import AuthenticationFailed, ClientCredentials, GenesysSettingsError, GenesysUnavailable, RetryPolicy
from genesys.auth import TokenProvider
from genesys.retries import RetryingSender
from localdev.genesys_cloud import FakeGenesysCloud
from tests.genesys.support import CLIENT_ID, CREDENTIALS, SECRET, FakeClock, token_response

LOGIN = "https://login.mypurecloud.ie"


def provider(handler, clock: FakeClock, *, credentials: ClientCredentials = CREDENTIALS) -> TokenProvider:
    """A TokenProvider whose token requests go to `handler`."""
    http = httpx.Client(transport=httpx.MockTransport(handler))
    sender = RetryingSender(http, RetryPolicy(), clock=clock, sleep=clock.sleep, rng=random.Random(1))
    return TokenProvider(credentials, LOGIN, sender, clock=clock)


def test_token_request_is_client_credentials_with_basic_auth() -> None:
    """POST {login}/oauth/token, HTTP Basic id:secret, form grant_type=client_credentials."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return token_response()

    token = provider(handler, FakeClock()).token()
    (request,) = seen
    assert (request.method, str(request.url)) == ("POST", f"{LOGIN}/oauth/token")
    scheme, _, encoded = request.headers["authorization"].partition(" ")
    assert (scheme, base64.b64decode(encoded).decode()) == ("Basic", f"{CLIENT_ID}:{SECRET}")
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request.content.decode()) == {"grant_type": ["client_credentials"]}
    assert token.authorization == "Bearer tok-1"


@pytest.mark.parametrize(
    ("expires_in", "renewed_after"),
    [(86400, 86340), (3600, 3540), (300, 270), (100, 90)],
)
def test_token_is_cached_until_shortly_before_expiry(expires_in: int, renewed_after: float) -> None:
    """The token is reused until 60 s (or 10 % of a short lifetime) before it expires, then fetched anew."""
    issued: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        issued.append(f"tok-{len(issued) + 1}")
        return token_response(issued[-1], expires_in)

    clock = FakeClock()
    tokens = provider(handler, clock)
    first = tokens.token()
    clock.advance(renewed_after - 0.5)
    assert tokens.token() is first
    clock.advance(1.0)
    assert tokens.token().value == "tok-2"
    assert len(issued) == 2


def test_invalidate_forgets_only_the_stale_token() -> None:
    """After a 401, invalidating the stale token forces one fetch; a newer token is kept."""
    count = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal count
        count += 1
        return token_response(f"tok-{count}")

    tokens = provider(handler, FakeClock())
    stale = tokens.token()
    tokens.invalidate(stale)
    fresh = tokens.token()
    tokens.invalidate(stale)  # a second thread reporting the same 401 late
    assert tokens.token() is fresh
    assert count == 2


def test_concurrent_callers_share_one_refresh() -> None:
    """Eight threads asking at once cause one token request and all get the same token."""
    count = 0
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal count
        with lock:
            count += 1
        time.sleep(0.1)
        return token_response(f"tok-{count}")

    tokens = provider(handler, FakeClock())
    barrier = threading.Barrier(8)
    got: list[str] = []

    def ask() -> None:
        barrier.wait()
        got.append(tokens.token().value)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert count == 1
    assert got == ["tok-1"] * 8


def test_threads_that_waited_through_a_failed_fetch_share_its_error() -> None:
    """Eight threads queue for a token while Genesys is down: one retry cycle (5 requests), all get its error."""
    count = 0
    lock = threading.Lock()
    release = threading.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal count
        with lock:
            count += 1
        release.wait(5)  # the first request holds the fetch until every thread is queued on the lock
        return httpx.Response(503, headers={"Retry-After": "0"})

    tokens = provider(handler, FakeClock())
    barrier = threading.Barrier(9)
    errors: list[Exception] = []

    def ask() -> None:
        barrier.wait()
        try:
            tokens.token()
        except GenesysUnavailable as exc:
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    barrier.wait()
    time.sleep(0.2)
    release.set()
    for thread in threads:
        thread.join(5)
    assert count == 5
    assert len(errors) == 8
    assert {str(e) for e in errors} == {str(errors[0])}
    assert all(e.__context__ is None and e.__cause__ is None for e in errors)


def test_a_later_caller_fetches_again_after_a_failure() -> None:
    """Only threads that waited through the failed fetch share its error; the next call tries again."""
    answers = [httpx.Response(500), token_response("tok-2")]
    tokens = provider(lambda request: answers.pop(0), FakeClock())
    with pytest.raises(GenesysUnavailable):
        tokens.token()
    assert tokens.token().value == "tok-2"


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (401, {"error": "invalid_client", "error_description": "authentication failed"}, "answered 401"),
        (400, {"error": "invalid_request"}, "answered 400"),
        (403, {}, "answered 403"),
        (404, {"code": "not.found"}, "login URL is wrong: check GENESYS_LOGIN_URL"),
    ],
)
def test_refused_credentials_raise_authentication_failed(status: int, body: dict, expected: str) -> None:
    """400/401/403 (and 404: wrong login host, naming GENESYS_LOGIN_URL) raise AuthenticationFailed, unretried."""
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(status, json=body)

    clock = FakeClock()
    with pytest.raises(AuthenticationFailed) as caught:
        provider(handler, clock).token()
    assert expected in str(caught.value)
    assert caught.value.status == status
    assert CLIENT_ID in str(caught.value)
    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value)
    assert calls == 1
    assert clock.sleeps == []


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, text="<html>login</html>"),
        httpx.Response(200, json={"token_type": "bearer", "expires_in": 10}),
        httpx.Response(200, json={"access_token": "t", "expires_in": 0}),
        httpx.Response(200, json=["access_token"]),
        httpx.Response(500, json={"code": "internal.server.error"}),
    ],
)
def test_unusable_token_answers_raise_unavailable(response: httpx.Response) -> None:
    """A 200 without a usable token, or a 500, is GenesysUnavailable (transient)."""
    with pytest.raises(GenesysUnavailable) as caught:
        provider(lambda request: response, FakeClock()).token()
    assert "token request" in str(caught.value)


def test_token_endpoint_503_is_retried() -> None:
    """The token request goes through the one retry layer: a 503 with Retry-After is waited out."""
    answers = [httpx.Response(503, headers={"Retry-After": "2"}), token_response("tok-ok")]
    clock = FakeClock()
    token = provider(lambda request: answers.pop(0), clock).token()
    assert token.value == "tok-ok"
    assert len(clock.sleeps) == 1
    assert 2 <= clock.sleeps[0] <= 2.5


@pytest.mark.parametrize(
    ("client_id", "secret", "setting"),
    [("", "x", "GENESYS_CLIENT_ID"), ("id", "", "GENESYS_CLIENT_SECRET"), ("id", "   ", "GENESYS_CLIENT_SECRET")],
)
def test_missing_credentials_name_the_setting(client_id: str, secret: str, setting: str) -> None:
    """Empty credentials are a settings error naming the environment variable."""
    with pytest.raises(GenesysSettingsError) as caught:
        ClientCredentials(client_id, secret)
    assert caught.value.setting == setting


def test_token_endpoint_echoing_the_basic_value_is_hidden() -> None:
    """An error that echoes the Basic header (base64 id:secret) shows <hidden>, not the value or the secret."""
    basic = CREDENTIALS.basic_authorization().partition(" ")[2]

    def handler(request: httpx.Request) -> httpx.Response:
        echo = f"bad client authentication {request.headers['authorization']}"
        return httpx.Response(401, json={"error": "invalid_client", "error_description": echo})

    with pytest.raises(AuthenticationFailed) as caught:
        provider(handler, FakeClock()).token()
    assert "<hidden>" in str(caught.value)
    for secret in (basic, SECRET):
        assert secret not in str(caught.value)
        assert secret not in repr(caught.value)


def test_reprs_hide_the_secret_and_the_token() -> None:
    """Neither ClientCredentials nor AccessToken shows the secret or token in repr/str."""
    tokens = provider(lambda request: token_response("tok-SECRET-VALUE"), FakeClock())
    token = tokens.token()
    for text in (repr(CREDENTIALS), str(CREDENTIALS), repr(token), str(token)):
        assert SECRET not in text
        assert "tok-SECRET-VALUE" not in text
    assert CLIENT_ID in repr(CREDENTIALS)


def test_token_log_line_has_expiry_and_no_token(caplog: pytest.LogCaptureFixture) -> None:
    """One INFO line says a token was obtained and for how long, without the token."""
    caplog.set_level(logging.DEBUG, logger="genesys")
    provider(lambda request: token_response("tok-SECRET-VALUE", 3600), FakeClock()).token()
    (line,) = [r.getMessage() for r in caplog.records if r.name == "genesys.auth"]
    assert line == "Genesys token obtained for OAuth client fake-client-id; valid 3600 s, renewed after 3540 s"
    assert "tok-SECRET-VALUE" not in caplog.text
    assert SECRET not in caplog.text


def test_real_http_token_against_the_fake() -> None:
    """Against the fake Genesys over HTTP: good credentials get a token, bad ones AuthenticationFailed."""
    with FakeGenesysCloud(client_id=CLIENT_ID, client_secret=SECRET) as fake:
        clock = FakeClock()
        http = httpx.Client()
        sender = RetryingSender(http, RetryPolicy(), clock=clock, sleep=clock.sleep, rng=random.Random(1))
        good = TokenProvider(CREDENTIALS, fake.base_url, sender, clock=clock)
        assert good.token().expires_in_s == 86400
        bad = TokenProvider(ClientCredentials(CLIENT_ID, "wrong-secret-XYZ"), fake.base_url, sender, clock=clock)
        with pytest.raises(AuthenticationFailed) as caught:
            bad.token()
        assert caught.value.code == "invalid_client"
        assert "wrong-secret-XYZ" not in str(caught.value)
        assert fake.request_count("POST", "/oauth/token") == 2
        http.close()
