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
from urllib.parse import parse_qsl

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
            refusal = _refuse_oversized(environ)
            if refusal is None:
                body = _buffer_body(environ)
                try:
                    return slack(environ, start_response)
                except Exception:
                    # Bolt parses the body first, so a good request is parsed once; its dispatch answers every error
                    # of its own, so what escapes comes from reading the request. A body that is to blame gets 400
                    # with the reason; any other failure goes on to the server (500), as before.
                    refusal = _unparsable(body, environ.get("CONTENT_TYPE", ""))
                    if refusal is None:
                        raise
            status, message = refusal
            log.warning("refused a request to %s: %s", path, message)
            body = json.dumps({"error": message}).encode()
            start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
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
    if length > MAX_BODY_BYTES:
        return "413 Content Too Large", f"body of {length:,} bytes is over {MAX_BODY_BYTES:,}"
    return None


def _buffer_body(environ: dict[str, Any]) -> bytes:
    """Read the body and put it back, so Bolt still reads it and `_unparsable` can say what is wrong with it."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _unparsable(body: bytes, content_type: str) -> tuple[str, str] | None:
    """Why Bolt could not read this body into a request, as (status, reason); None when nothing is wrong with it.

    Called only after Bolt failed, so a good request pays for no second parse. Bolt reads UTF-8, then JSON when the
    type is JSON or the body starts with "{", else a form whose `payload` field (if any) is JSON; either JSON must be
    an object.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "400 Bad Request", "the body is not UTF-8"
    if "json" in content_type or text.startswith("{"):
        what, document = "the body", text
    else:
        payload = dict(parse_qsl(text, keep_blank_values=True)).get("payload")
        if payload is None:
            return None
        what, document = "the form's payload", payload
    try:
        parsed = json.loads(document)
    except ValueError:
        return "400 Bad Request", f"{what} is not JSON"
    if not isinstance(parsed, dict):
        return "400 Bad Request", f"{what} is not a JSON object"
    return None
