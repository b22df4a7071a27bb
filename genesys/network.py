"""Why a request never got an HTTP answer: the network cause behind an httpx transport error.

httpx says little on its own: a host name that does not resolve, a refused connection and a failed TLS handshake
are all `httpx.ConnectError`. The cause sits further down the exception chain httpx keeps (`__cause__` /
`__context__`): `socket.gaierror`, `ConnectionRefusedError`, `ssl.SSLError`. `classify` walks that chain once,
inside the retry layer's `except` block, and keeps only what an operator needs: the cause, a short detail from the
OS or the TLS library (never the request, whose headers hold credentials) and the httpx exception's type name.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from enum import StrEnum

import httpx

_MAX_CHAIN = 8
"""Links of the exception chain looked at; httpx → httpcore → OS error is three."""

_TEMPORARY_DNS_ERRORS = frozenset({socket.EAI_AGAIN})
"""getaddrinfo's "temporary failure" (the resolver did not answer): worth retrying, unlike "no such name"."""


class NetworkCause(StrEnum):
    """What stopped the request before any HTTP answer."""

    DNS = "dns"
    """The host name did not resolve."""
    REFUSED = "refused"
    """Nothing accepted the TCP connection (no listener on that port, or a firewall rejecting it)."""
    TLS = "tls"
    """The TLS handshake failed: not TLS on that port, an untrusted or expired certificate, a name mismatch."""
    TIMEOUT = "timeout"
    """Connecting, sending or waiting for the answer took longer than the client's timeout."""
    DROPPED = "dropped"
    """The connection was reset or closed before a complete answer."""


@dataclass(frozen=True, slots=True)
class NetworkFailure:
    """One classified transport failure."""

    cause: NetworkCause
    exception: str
    """The httpx exception's type name, e.g. ConnectError."""
    detail: str = ""
    """From the OS or TLS library ("Name or service not known", "certificate has expired"), or the timeout phase."""
    timeout_s: float | None = None
    """The timeout that ran out (TIMEOUT only), if the request carried one."""
    temporary: bool = True
    """False when the same request will fail the same way at once: a name that does not exist, a TLS failure."""

    @property
    def short(self) -> str:
        """A few words for a log line or a service-side message, e.g. "connection refused (ConnectError)"."""
        words = {
            NetworkCause.DNS: "host name not resolved",
            NetworkCause.REFUSED: "connection refused",
            NetworkCause.TLS: "TLS handshake failed",
            NetworkCause.TIMEOUT: "timed out",
            NetworkCause.DROPPED: "connection failed",
        }[self.cause]
        return f"{words} ({self.exception})"

    def sentence(self, host: str) -> str:
        """What happened, in one clause naming `host` (host[:port]); no advice."""
        name = host_name(host)
        detail = f": {self.detail}" if self.detail else ""
        within = f" within {self.timeout_s:g} s" if self.timeout_s is not None else ""
        match self.cause:
            case NetworkCause.DNS:
                return f"the host name {name} does not resolve (DNS lookup failed{detail})"
            case NetworkCause.REFUSED:
                return f"{host} refused the connection (nothing listens on that port, or a firewall rejects it)"
            case NetworkCause.TLS:
                return f"the TLS handshake with {host} failed ({self.exception}{detail})"
            case NetworkCause.TIMEOUT if self.detail == "read":
                return f"{host} accepted the connection but sent no answer{within} (read timeout)"
            case NetworkCause.TIMEOUT if self.detail == "connect":
                return f"{host} did not complete the connection{within} (connect timeout)"
            case NetworkCause.TIMEOUT:
                return f"{host} timed out{within} ({self.exception})"
            case _:
                return f"{host} closed or reset the connection before answering ({self.exception}{detail})"


def classify(error: Exception, timeout_s: float | None = None) -> NetworkFailure:
    """The cause of `error`; `timeout_s` is the request's timeout for the phase that ran out, if known."""
    kind = type(error).__name__
    if isinstance(error, httpx.TimeoutException):
        phase = {httpx.ConnectTimeout: "connect", httpx.ReadTimeout: "read", httpx.WriteTimeout: "write"}
        return NetworkFailure(NetworkCause.TIMEOUT, kind, phase.get(type(error), ""), timeout_s)
    for link in _chain(error):
        # Order matters: SSLCertVerificationError is also a ValueError, and SSLError an OSError.
        if isinstance(link, ssl.SSLCertVerificationError):
            # verify_message/reason are set by the ssl module's own raise; an SSLError built elsewhere may lack them.
            detail = getattr(link, "verify_message", None) or getattr(link, "reason", None) or ""
            return NetworkFailure(NetworkCause.TLS, kind, f"certificate: {detail}", temporary=False)
        if isinstance(link, ssl.SSLError):
            reason = getattr(link, "reason", None) or type(link).__name__
            return NetworkFailure(NetworkCause.TLS, kind, reason, temporary=False)
        if isinstance(link, socket.gaierror):
            return NetworkFailure(NetworkCause.DNS, kind, link.strerror or "",
                                  temporary=link.errno in _TEMPORARY_DNS_ERRORS)
        if isinstance(link, ConnectionRefusedError):
            return NetworkFailure(NetworkCause.REFUSED, kind)
        if isinstance(link, ConnectionError):  # reset, aborted, broken pipe
            return NetworkFailure(NetworkCause.DROPPED, kind, link.strerror or "")
    return NetworkFailure(NetworkCause.DROPPED, kind)


def host_of(url: httpx.URL) -> str:
    """`host[:port]` of a URL, the port only when it is not the scheme's default; IPv6 in brackets."""
    host = url.host
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{url.port}" if url.port is not None else host


def host_name(host: str) -> str:
    """`host[:port]` without the port."""
    if host.startswith("["):
        return host[: host.index("]") + 1]
    return host.rsplit(":", 1)[0] if ":" in host else host


def _chain(error: BaseException) -> list[BaseException]:
    links: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and len(links) < _MAX_CHAIN and current not in links:
        links.append(current)
        current = current.__cause__ or current.__context__
    return links
