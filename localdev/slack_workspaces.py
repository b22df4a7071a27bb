"""Several Slack workspaces behind one Web API URL, and Slack's OAuth code exchange (`oauth.v2.access`).

An app installed through OAuth calls one Slack (`SLACK_API_URL`) with a different bot token per workspace. This
fake fronts several `FakeSlack` workspaces: `/api/<method>` goes to the workspace whose bot token the call
carries (the `Authorization: Bearer` header or a form `token`), unchanged, and comes back unchanged; an unknown
token is `invalid_auth`, none is `not_authed`, as one workspace would answer.

`oauth.v2.access` it answers itself, as Slack documents it (docs.slack.dev/reference/methods/oauth.v2.access):
- the client authenticates with HTTP Basic (`client_id:client_secret`, what slack_sdk sends) or with
  `client_id` / `client_secret` form fields; an unknown id → `invalid_client_id`, a wrong secret →
  `bad_client_secret`;
- `code` is what Slack put on the redirect after the person approved (`authorize()` here stands in for the
  browser's visit to slack.com/oauth/v2/authorize); a code works once and for 10 minutes, else `invalid_code`;
- a `redirect_uri` given to the authorize step must be given again, identical, else `bad_redirect_uri`;
- the answer: `access_token` (the workspace's bot token), `token_type: bot`, `scope` (the granted bot scopes,
  comma separated), `bot_user_id`, `app_id`, `team {id, name}`, `enterprise: null`, `is_enterprise_install:
  false`, `authed_user {id}`.
"""

from __future__ import annotations

import base64
import http.client
import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

from localdev.http_server import LocalHttpServer, Request, RequestHandler, form_fields
from localdev.slack_api import FakeSlack

APP_ID = "AFAKEAPP"
CODE_LIFETIME_S = 600.0


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json; charset=utf-8"),)


@dataclass(frozen=True)
class _Grant:
    workspace: FakeSlack
    installer: str
    redirect_uri: str | None
    expires_at: float


def _error(error: str) -> _Answer:
    return _Answer(200, json.dumps({"ok": False, "error": error}).encode())


class _Handler(RequestHandler):
    def framing_error(self) -> _Answer:
        return _Answer(400, b"bad_request", (("Content-Type", "text/plain"),))

    def answer(self, request: Request) -> _Answer | None:
        return cast(FakeSlackWorkspaces, self.server.owner).answer(request)


class FakeSlackWorkspaces(LocalHttpServer):
    """One Slack API URL for several fake workspaces, with the OAuth code exchange; see the module docstring."""

    def __init__(self, *workspaces: FakeSlack, client_id: str = "1111.2222", client_secret: str = "fake-secret",
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(handler=_Handler, thread_name="fake-slack-workspaces")
        self.workspaces = list(workspaces)
        self.client_id = client_id
        self.client_secret = client_secret
        self.exchanges: list[str] = []
        """The team id of each successful oauth.v2.access, in order."""
        self._clock = clock
        self._grants: dict[str, _Grant] = {}
        self._lock = threading.Lock()

    @property
    def api_url(self) -> str:
        return self.base_url + "/api/"

    def authorize(self, workspace: FakeSlack, *, installer: str = "UINSTALLER", redirect_uri: str | None = None
                  ) -> str:
        """What Slack does when a person approves the install in `workspace`: a code for the redirect."""
        code = f"{workspace.team_id}.{secrets.token_hex(8)}"
        with self._lock:
            self._grants[code] = _Grant(workspace, installer, redirect_uri, self._clock() + CODE_LIFETIME_S)
        return code

    def answer(self, request: Request) -> _Answer | None:
        if request.path == "/api/oauth.v2.access":
            return self._exchange(request.headers, request.body)
        if not request.path.startswith("/api/"):
            return _Answer(404, b"not_found", (("Content-Type", "text/plain"),))
        token = _token(request.headers, request.body)
        if token is None:
            return _error("not_authed")
        workspace = next((w for w in self.workspaces if w.bot_token == token), None)
        if workspace is None:
            return _error("invalid_auth")
        return _forward(workspace, request.method, request.target, request.headers, request.body)

    def _exchange(self, headers: Mapping[str, str], body: bytes) -> _Answer:
        form = form_fields(body.decode("utf-8", "replace"))
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        scheme, _, encoded = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            client_id, _, client_secret = base64.b64decode(encoded).decode().partition(":")
        if client_id != self.client_id:
            return _error("invalid_client_id")
        if client_secret != self.client_secret:
            return _error("bad_client_secret")
        with self._lock:
            grant = self._grants.pop(form.get("code", ""), None)
        if grant is None or grant.expires_at <= self._clock():
            return _error("invalid_code")
        if grant.redirect_uri is not None and form.get("redirect_uri") != grant.redirect_uri:
            return _error("bad_redirect_uri")
        workspace = grant.workspace
        with self._lock:
            self.exchanges.append(workspace.team_id)
        return _Answer(200, json.dumps({
            "ok": True, "access_token": workspace.bot_token, "token_type": "bot",
            "scope": ",".join(sorted(workspace.scopes)), "bot_user_id": workspace.bot_user_id, "app_id": APP_ID,
            "team": {"id": workspace.team_id, "name": workspace.team_name}, "enterprise": None,
            "is_enterprise_install": False, "authed_user": {"id": grant.installer},
        }).encode())


def _token(headers: Mapping[str, str], body: bytes) -> str | None:
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if "x-www-form-urlencoded" in headers.get("content-type", ""):
        return form_fields(body.decode("utf-8", "replace")).get("token") or None
    return None


def _forward(workspace: FakeSlack, method: str, path: str, headers: Mapping[str, str], body: bytes) -> _Answer:
    target = urlsplit(workspace.base_url)
    connection = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=30)
    try:
        passed = {k: v for k, v in headers.items() if k not in ("host", "connection", "content-length")}
        connection.request(method, path, body=body, headers=passed)
        response = connection.getresponse()
        answer_body = response.read()
        kept = tuple((k, v) for k, v in response.getheaders()
                     if k.lower() not in ("content-length", "connection", "transfer-encoding", "date", "server"))
        return _Answer(response.status, answer_body, kept)
    finally:
        connection.close()
