"""One WSGI application: `POST /slack/events` goes to Bolt, `GET /healthz` reports health, the rest is 404.

Served by waitress (see the README for why): one process, a thread pool, no forking — the sync engine's
background thread lives in the same process.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

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


def wsgi_application(slack: WsgiApp | None, health: Callable[[], HealthReport], *,
                     slack_path: str = "/slack/events") -> WsgiApp:
    """Route Slack's requests to Bolt (when serving HTTP) and health checks to `health`."""

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
        if path == "/healthz" and method in ("GET", "HEAD"):
            report = health()
            body = report.body()
            start_response("200 OK" if report.healthy else "503 Service Unavailable",
                           [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                            ("Cache-Control", "no-store")])
            return [] if method == "HEAD" else [body]
        if slack is not None and (path == slack_path or path.startswith("/slack/")):
            refusal = _refuse_unreadable(environ)
            if refusal is not None:
                status, message = refusal
                log.warning("refused a request to %s: %s", path, message)
                body = json.dumps({"error": message}).encode()
                start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
                return [body]
            return slack(environ, start_response)
        body = b'{"error": "not found"}'
        start_response("404 Not Found", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return application


def _refuse_unreadable(environ: dict[str, Any]) -> tuple[str, str] | None:
    """(status, reason) for a body Bolt would choke on (oversized, or JSON that does not parse), else None.

    Reads the body and puts it back, so Bolt still sees it; Bolt checks the signature itself.
    """
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return "400 Bad Request", "Content-Length is not a number"
    if length > MAX_BODY_BYTES:
        return "413 Content Too Large", f"body of {length:,} bytes is over {MAX_BODY_BYTES:,}"
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    if "json" in environ.get("CONTENT_TYPE", "") and body:
        try:
            json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return "400 Bad Request", "the body is not JSON"
    return None
