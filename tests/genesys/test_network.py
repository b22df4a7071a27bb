"""Transport failures classified by cause (genesys/network.py), the retry layer's use of it, and check's wording."""

from __future__ import annotations

import random
import socket
import ssl
from collections.abc import Iterator

import httpx
import pytest

from genesys import GenesysEndpoints, GenesysUnreachable, NetworkCause, NetworkFailure, RetryPolicy
from genesys.diagnosis import explain
from genesys.network import classify, host_name, host_of
from genesys.regions import region_of_host
from genesys.retries import RetryingSender
from localdev.genesys_cloud import FakeGenesysCloud
from tests.genesys.support import FakeClock


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose socket completes TCP handshakes (backlog) but never reads or answers."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        yield silent.getsockname()[1]


def free_port() -> int:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        return free.getsockname()[1]


def failure_of(url: str, timeout: float = 2.0) -> NetworkFailure:
    try:
        httpx.get(url, timeout=timeout)
    except httpx.TransportError as exc:
        return classify(exc, timeout)
    raise AssertionError(f"{url} answered")


def test_a_name_under_invalid_does_not_resolve() -> None:
    """The reserved .invalid TLD fails to resolve at once, permanently (not a temporary resolver failure)."""
    failure = failure_of("https://api.genesys.invalid/")
    assert failure.cause is NetworkCause.DNS
    assert not failure.temporary


def test_a_port_nobody_listens_on_refuses() -> None:
    """A free loopback port refuses the connection: REFUSED, worth retrying."""
    failure = failure_of(f"http://127.0.0.1:{free_port()}/")
    assert (failure.cause, failure.temporary) == (NetworkCause.REFUSED, True)


def test_https_to_a_plain_http_server_is_a_tls_failure() -> None:
    """https:// to a plain-HTTP server fails the handshake: TLS, not worth retrying, the library's reason kept."""
    with FakeGenesysCloud() as fake:
        failure = failure_of(fake.base_url.replace("http://", "https://") + "/")
    assert (failure.cause, failure.temporary) == (NetworkCause.TLS, False)
    assert failure.detail


@pytest.mark.parametrize(("scheme", "phase"), [("http", "read"), ("https", "connect")])
def test_a_silent_server_times_out(silent_port: int, scheme: str, phase: str) -> None:
    """No answer is a read timeout; no TLS handshake is a connect timeout; either names the timeout."""
    failure = failure_of(f"{scheme}://127.0.0.1:{silent_port}/", timeout=0.2)
    assert (failure.cause, failure.detail, failure.timeout_s) == (NetworkCause.TIMEOUT, phase, 0.2)
    assert "within 0.2 s" in failure.sentence(f"127.0.0.1:{silent_port}")


@pytest.mark.parametrize(
    ("cause", "expected"),
    [
        (socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"), (NetworkCause.DNS, True)),
        (ssl.SSLCertVerificationError(1, "certificate verify failed"), (NetworkCause.TLS, False)),
        (ConnectionResetError(104, "Connection reset by peer"), (NetworkCause.DROPPED, True)),
        (None, (NetworkCause.DROPPED, True)),
    ],
    ids=["temporary-dns", "certificate", "reset", "no-chain"],
)
def test_the_chain_below_httpx_decides_the_cause(cause: BaseException | None,
                                                 expected: tuple[NetworkCause, bool]) -> None:
    """The OS or TLS error httpx chains below its ConnectError decides; a bare error counts as dropped."""
    error = httpx.ConnectError("failed")
    error.__cause__ = cause
    failure = classify(error)
    assert (failure.cause, failure.temporary) == expected


@pytest.mark.parametrize(
    ("url", "host"),
    [("https://api.mypurecloud.ie/x", "api.mypurecloud.ie"), ("https://api.mypurecloud.ie:443/x", "api.mypurecloud.ie"),
     ("http://127.0.0.1:8080/x", "127.0.0.1:8080"), ("http://[::1]:9/x", "[::1]:9")],
)
def test_host_of_names_host_and_port(url: str, host: str) -> None:
    """host_of keeps a non-default port and brackets IPv6; host_name drops the port."""
    assert host_of(httpx.URL(url)) == host
    assert ":" not in host_name(host).strip("[]").replace("::1", "")


@pytest.mark.parametrize(
    ("host", "region"),
    [("login.mypurecloud.ie", "eu_west_1"), ("api.usw2.pure.cloud", "us_west_2"), ("api.mypurecloud.com:443",
                                                                                     "us_east_1"),
     ("127.0.0.1:8080", None), ("api.mypurecloud.ie:8443", None), ("api.genesys.invalid", None)],
)
def test_region_of_host_knows_only_real_genesys_hosts(host: str, region: str | None) -> None:
    """Only api./login. hosts of the region table (on the https port) count as Genesys."""
    assert region_of_host(host) == region


def _send(error: BaseException, policy: RetryPolicy) -> GenesysUnreachable:
    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("failed", request=request) from error

    clock = FakeClock()
    http = httpx.Client(transport=httpx.MockTransport(fail))
    sender = RetryingSender(http, policy, clock=clock, sleep=clock.sleep, rng=random.Random(1))
    with pytest.raises(GenesysUnreachable) as caught:
        sender.send(http.build_request("POST", "https://login.mypurecloud.ie/oauth/token"), operation="token request")
    return caught.value


@pytest.mark.parametrize(
    ("error", "retry_unfixable", "attempts"),
    [
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), True, 5),
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), False, 1),
        (ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"), False, 1),
        (socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"), False, 5),
        (ConnectionRefusedError(111, "Connection refused"), False, 5),
    ],
    ids=["dns-service", "dns-check", "tls-check", "temporary-dns-check", "refused-check"],
)
def test_unfixable_failures_fail_fast_only_when_asked(error: BaseException, retry_unfixable: bool,
                                                     attempts: int) -> None:
    """With retry_unfixable off (check), DNS and TLS failures raise after one attempt; the rest still retry."""
    raised = _send(error, RetryPolicy(retry_unfixable=retry_unfixable))
    assert raised.attempts == attempts
    assert raised.host == "login.mypurecloud.ie"
    assert raised.__cause__ is None
    assert raised.__context__ is None


ENDPOINTS = GenesysEndpoints("https://api.mypurecloud.ie", "https://login.mypurecloud.ie")
LOCAL = GenesysEndpoints("http://127.0.0.1:8080", "http://127.0.0.1:8080")


@pytest.mark.parametrize(
    ("host", "cause", "endpoints", "status_page"),
    [
        ("login.mypurecloud.ie", NetworkCause.REFUSED, ENDPOINTS, True),
        ("api.mypurecloud.ie", NetworkCause.TIMEOUT, ENDPOINTS, True),
        ("login.mypurecloud.ie", NetworkCause.DNS, ENDPOINTS, False),
        ("127.0.0.1:8080", NetworkCause.REFUSED, LOCAL, False),
        ("127.0.0.1:8080", NetworkCause.TIMEOUT, LOCAL, False),
    ],
)
def test_the_status_page_is_named_only_for_a_genesys_outage(host: str, cause: NetworkCause,
                                                            endpoints: GenesysEndpoints, status_page: bool) -> None:
    """check's line names the status page for a real Genesys host that may be down, never for an override."""
    failure = NetworkFailure(cause, "ConnectError", temporary=cause is not NetworkCause.DNS)
    line = explain(GenesysUnreachable("token request", host, failure, attempts=4, elapsed_s=9.25, advice=""),
                   endpoints)
    assert ("status.mypurecloud.com" in line) is status_page
    assert host_name(host) in line
    assert "retried later" not in line
    assert "\n" not in line
    if failure.temporary:
        assert "gave up after 4 attempts over 9.2 s" in line or "gave up after 4 attempts over 9.3 s" in line
