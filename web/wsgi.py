"""One WSGI application: `POST /slack/events` goes to Bolt, `GET /healthz` reports health, `GET /metrics` the
Prometheus metrics (when given), the rest is 404.

Served by waitress (see the README for why): one process, a thread pool, no forking — the sync engine's
background thread lives in the same process. web.server sets waitress's limits; this module answers what gets
past them.

What a hostile or broken request to /slack/… gets (never a 5xx, never a traceback; one log line, quoted with %r):
- a Content-Length that is not a number: 400; over MAX_BODY_BYTES: 413, unread (waitress itself answers a body
  over the limit with 413 before this runs; this check stays for other servers and in-process callers);
- a body that is not a Slack payload at all (not UTF-8, not JSON, not a JSON object, nested deeper than
  web.slack_request.MAX_NESTING): 400 naming the reason, before the signature is looked at, as Bolt would fail
  to read it anyway. Slack never sends one, so no delivery of Slack's is refused by it;
- signature headers Bolt cannot even compare (a timestamp that is not a number, a non-ASCII signature): 401;
- a JSON object with a wrong type or a malformed id at a key Bolt or the listeners read (see web.slack_request):
  401 when it is not signed with the signing secret; **200** and nothing recorded when it is. A signed request is
  Slack's own delivery (or someone holding the secret): Slack delivers again after any non-2xx, three times over
  about five minutes, and counts failures against the app, while a payload it cannot use today will not become
  usable on redelivery. So it is acknowledged, recorded nowhere, and logged once for the operator;
- anything else goes to Bolt, which checks the signature (401, logged in one line here) and routes it: kinds this
  app has no listener for are screened out above (a SHAPE problem), so what Bolt gets it handles. A failure inside
  Bolt after that is a bug, and goes on to the server as a 500 with its traceback, not disguised as the body's fault.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from slack_sdk.signature import SignatureVerifier

from web.slack_request import SHAPE, screen

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 1024 * 1024
"""Slack's payloads are a few KB; anything far larger is not from Slack."""

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True, slots=True)
class HealthReport:
    """Health as reported by /healthz: healthy only when every part is."""

    parts: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return all(part.get("ok") is not False for part in self.parts.values())

    def body(self) -> bytes:
        return json.dumps({"status": "ok" if self.healthy else "unhealthy", **self.parts}).encode()


class WebMetrics(Protocol):
    """The metrics page, and what this layer measures for it."""

    def page(self) -> tuple[bytes, str]:
        """The metrics in Prometheus' text format, and its Content-Type."""
        ...

    def slack_request_answered(self, seconds: float) -> None:
        """A request to the Slack path was answered (its status line sent) `seconds` after it arrived: Slack's
        acknowledgement latency, which must stay under 3 s."""


def wsgi_application(slack: WsgiApp | None, health: Callable[[], HealthReport], *,
                     verifier: SignatureVerifier | None = None, slack_path: str = "/slack/events",
                     metrics: WebMetrics | None = None) -> WsgiApp:
    """Route Slack's requests to Bolt (when serving HTTP), health checks to `health` and scrapes to `metrics`;
    `verifier` (the signing secret's, required with `slack`) tells a signed misshapen payload from an unsigned one."""
    if slack is not None and verifier is None:
        raise ValueError("serving Slack's requests needs the signing secret's verifier")

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
        if metrics is not None and path == slack_path:
            start_response = _timing_answer(start_response, metrics)
        if metrics is not None and path == "/metrics" and method in ("GET", "HEAD"):
            # No secret is in it (counts and durations, labelled by result, status, operation and Slack method),
            # and like /healthz it is unauthenticated: the port should be reachable by the scraper only.
            page, content_type = metrics.page()
            start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(page))),
                                      ("Cache-Control", "no-store")])
            return [] if method == "HEAD" else [page]
        if path == "/healthz" and method in ("GET", "HEAD"):
            report = health()
            body = report.body()
            start_response("200 OK" if report.healthy else "503 Service Unavailable",
                           [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                            ("Cache-Control", "no-store")])
            return [] if method == "HEAD" else [body]
        if slack is not None and verifier is not None and (path == slack_path or path.startswith("/slack/")):
            refusal = _refuse_oversized(environ)
            if refusal is None:
                body = _buffer_body(environ)
                refusal = _screen(verifier, body, environ)
                if refusal is None:
                    return slack(environ, _logging_refusals(start_response, path))
            status, message = refusal
            log.warning("%s a request to %r: %s", "ignored" if status.startswith("200") else "refused", path,
                        message)
            answer = json.dumps({"ignored" if status.startswith("200") else "error": message}).encode()
            start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))])
            return [answer]
        body = b'{"error": "not found"}'
        start_response("404 Not Found", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return application


def _refuse_oversized(environ: dict[str, Any]) -> tuple[str, str] | None:
    """(status, reason) for a Content-Length that is not a number or is too large for a Slack payload, else None."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return "400 Bad Request", "Content-Length is not a number"
    if length < 0:
        return "400 Bad Request", "Content-Length is negative"
    if length > MAX_BODY_BYTES:
        return "413 Content Too Large", f"body of {length:,} bytes is over {MAX_BODY_BYTES:,}"
    return None


def _buffer_body(environ: dict[str, Any]) -> bytes:
    """Read the body and put it back, so `_screen` can look at it and Bolt still reads it."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _screen(verifier: SignatureVerifier, body: bytes, environ: dict[str, Any]) -> tuple[str, str] | None:
    """(status, reason) for a request Bolt must not be handed (see the module docstring), else None."""
    problem = screen(body, environ.get("CONTENT_TYPE", ""))
    if problem is not None and problem.kind != SHAPE:
        return "400 Bad Request", problem.reason
    timestamp, signature = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP"), environ.get("HTTP_X_SLACK_SIGNATURE")
    if _malformed(timestamp, signature):
        return "401 Unauthorized", "the signature headers are malformed"
    if problem is None:
        return None  # Bolt checks the signature again and answers 401 itself
    if timestamp is None or signature is None or not verifier.is_valid(body, timestamp, signature):
        return "401 Unauthorized", "the request is not signed with the signing secret"
    return "200 OK", f"{problem.reason}; nothing recorded (answered 200 so Slack does not deliver it again)"


def _malformed(timestamp: str | None, signature: str | None) -> bool:
    """Whether Bolt's verifier would raise on these headers rather than refuse them: it takes int() of the timestamp
    (a missing one counts as "0") and compares the signature with hmac.compare_digest, which refuses non-ASCII."""
    if timestamp is not None:
        try:
            int(timestamp)
        except ValueError:
            return True
    return signature is not None and not signature.isascii()


def _timing_answer(start_response: Callable[..., Any], metrics: WebMetrics) -> Callable[..., Any]:
    """`start_response` that tells `metrics` how long after now the answer's status line went out."""
    arrived = time.monotonic()

    def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        metrics.slack_request_answered(time.monotonic() - arrived)
        return start_response(status, headers, exc_info)

    return start


def _logging_refusals(start_response: Callable[..., Any], path: str) -> Callable[..., Any]:
    """`start_response` that also logs Bolt's 401 (a wrong or stale signature) in one line, as every refusal is;
    Bolt's own line about it carries the whole body, so it is kept below the app's log level
    (config.LIBRARY_LOG_FLOORS)."""

    def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        if status.startswith("401"):
            log.warning("refused a request to %r: the signature is wrong or more than five minutes old", path)
        return start_response(status, headers, exc_info)

    return start
