"""Every error the Genesys Cloud adapter raises: one tree, caught once by callers.

::

    GenesysError                    base; .status, .code, .context_id where Genesys gave them
    ├── GenesysSettingsError        a GENESYS_* setting is missing or invalid (also a ValueError)
    ├── AuthenticationFailed        Genesys refused the OAuth client credentials or a fresh token
    ├── PermissionMissing           403: the OAuth client's roles lack .permissions
    ├── ConversationGone            the conversation or participant has ended or does not exist
    ├── ChannelGone                 404: the notification channel expired or Genesys dropped it
    ├── RequestRejected             another 4xx: Genesys says the request itself is wrong
    │   └── AttributesRejected      400/413/422 on the participant attributes PATCH
    └── GenesysTransientError       try the work again later (the retry layer already tried)
        ├── Stopping                the process is stopping: a back-off was cut short, nothing more was sent
        ├── RateLimited             429 persisted through every retry
        └── GenesysUnavailable      5xx, an unreadable answer or another HTTP failure persisted through every
            │                       retry (or was not worth retrying), or this process ran out of connections
            └── GenesysUnreachable  no HTTP answer at all: the host name did not resolve, the connection was
                                    refused, the TLS handshake failed, it timed out, or the connection dropped

Outside the tree: `VoiceSafeSettingsError` (in `genesys/voice_safe.py`) is the settings error of the `[voice_safe]`
limits, a plain `ValueError` raised at start-up by `VoiceSafeLimits`; it never comes from a Genesys request.

When each is raised and what the operator should do:

- `GenesysSettingsError(setting, problem)`: at start-up, from `endpoints_for` or `ClientCredentials`. Fix the
  named environment setting (the message says how; for GENESYS_REGION it lists the valid regions).
- `AuthenticationFailed`: the token endpoint refused the client id/secret (`.host` is the login host), or the API
  refused a token obtained moments before (`.refused_token`, `.host` the API host). Check GENESYS_CLIENT_ID/
  GENESYS_CLIENT_SECRET, that the OAuth client uses the Client Credentials grant and still exists, and that
  GENESYS_REGION is the org's region (a client of another region's org gets the same 401 `invalid_client`). A
  404/405 from the token endpoint means the login URL is wrong: check GENESYS_LOGIN_URL (or GENESYS_REGION). Not
  retried.
- `PermissionMissing`: Genesys answered 403. `.permissions` lists what Genesys named (from `messageParams` or the
  message), else the permissions the call is documented to need; `.needs` joins them by meaning ("a or b" for a
  `missing.any.permissions`). Add them to a role of the OAuth client (in the divisions that hold the users and
  queues). Not retried.
- `ConversationGone`: the attributes PATCH found the conversation or participant ended or unknown (404, or a 400/403
  `conversation.error.…` code saying it is not active). Nothing to do: the engine drops the participant.
  (`live_participants` skips conversations that vanish between its query and its lookup without raising.)
- `ChannelGone`: a notification channel's subscription call or WebSocket upgrade answered 404: the channel expired
  (24 h after its last subscription call) or Genesys evicted it (a 21st channel of the same OAuth client). Nothing
  to do: `NotificationPool` creates a new channel and subscribes its topics again. Seen often, it means another
  process creates channels with the same OAuth client; give it its own client. Not retried as such.
- `RequestRejected`: a 4xx other than 401/403/404-on-a-conversation/429, e.g. a 400 on a search. Usually a bug or an
  API change here; report it with `.context_id`. Not retried.
- `AttributesRejected`: Genesys refused the attribute map with a 400 (`invalid.value`, ...), 413
  (`request.entity.too.large`) or 422 on the PATCH. `.message_params` holds Genesys' details. Adjust the field
  mapping or the `[voice_safe]` limits.
- `Stopping`: the process is stopping (SIGTERM) and a wait before a request (a back-off, the rate limit) was cut
  short; nothing more was sent. Nothing to do: the work is retried after the restart.
- `RateLimited`: 429 Too Many Requests persisted through every retry. `.retry_after` says when to come back. Lower
  the configured requests per minute, or ask Genesys support to raise the token's limit.
- `GenesysUnavailable`: 5xx, a timeout, a dropped connection or an unreadable answer persisted through every retry
  (within one time budget per call), or an HTTP failure that retrying cannot fix (a proxy refusal, a protocol error,
  an undecodable body: not retried; the message names only the exception type). `.host` names the host asked,
  `.attempts` and `.elapsed_s` how hard it was tried. Check https://status.mypurecloud.com and network access to the
  API host; the work is retried later. When this process itself had too many concurrent requests (every pooled
  connection busy), the message says so instead: that is no Genesys outage.
- `GenesysUnreachable`: the request got no HTTP answer; `.failure` (`genesys/network.py`) says why, `.failure.cause`
  being one of: `DNS` (the host name does not resolve: check the GENESYS_REGION/GENESYS_API_URL/GENESYS_LOGIN_URL
  spelling and this machine's DNS), `REFUSED` (nothing listens on that host and port, or a firewall rejects it:
  check the URL's port, that the service there runs, the firewall), `TLS` (the handshake failed: the host does not
  speak https on that port, or its certificate is expired, self-signed or for another name: check the URL's scheme
  and any TLS-intercepting proxy), `TIMEOUT` (no connection or no answer within the client's timeout: check the
  network path and, for a Genesys host, https://status.mypurecloud.com) or `DROPPED` (reset or closed before an
  answer: usually a proxy or an outage). Refused, timed-out and dropped connections are retried like any outage; a
  name that does not exist and a TLS failure are retried only when `RetryPolicy.retry_unfixable` (the service's
  default; `check` turns it off, since they fail the same way every time).

Secrets and tokens never appear in any message or repr: messages are built only from operation names, ids,
statuses and Genesys' own `code`/`message`, from which the client secret, the HTTP Basic `id:secret` value and the
bearer token are cut out (`ErrorBody`). Errors are raised `from None`: no exception chain holds an httpx request
(whose headers carry the credentials).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import httpx

from genesys.network import NetworkFailure

_MAX_GENESYS_MESSAGE_CHARS = 300
_PERMISSION = re.compile(r"\b[A-Za-z][A-Za-z0-9]*:[A-Za-z][A-Za-z0-9]*:[A-Za-z*][A-Za-z0-9*]*\b")


class GenesysError(Exception):
    """Base of every adapter error; `str()` says what failed and what to do."""

    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        context_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.context_id = context_id

    def __str__(self) -> str:
        details = [
            part
            for part in (
                f"HTTP {self.status}" if self.status is not None else "",
                f"code {self.code}" if self.code else "",
                f"contextId {self.context_id}" if self.context_id else "",
            )
            if part
        ]
        return f"{self.message} [{', '.join(details)}]" if details else self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class GenesysSettingsError(GenesysError, ValueError):
    """A GENESYS_* setting is missing or invalid; `setting` names it and `problem` says what is wrong."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting
        self.problem = problem


class AuthenticationFailed(GenesysError):
    """Genesys refused the OAuth client credentials, or refused a token it had just issued."""

    def __init__(self, reason: str, *, client_id: str, status: int | None = None, code: str | None = None,
                 context_id: str | None = None, host: str = "", refused_token: bool = False) -> None:
        super().__init__(
            f"Genesys Cloud authentication failed for OAuth client {client_id!r}: {reason}. Check"
            " GENESYS_CLIENT_ID and GENESYS_CLIENT_SECRET, that the OAuth client uses the Client Credentials grant"
            " and still exists, and that GENESYS_REGION is the org's region",
            status=status, code=code, context_id=context_id,
        )
        self.client_id = client_id
        self.reason = reason
        self.host = host
        """The login host that refused the credentials, or the API host that refused the token (`host[:port]`)."""
        self.refused_token = refused_token
        """True when the API refused a token the login host had just issued; False for refused credentials."""


class PermissionMissing(GenesysError):
    """Genesys answered 403: the OAuth client's roles lack `permissions`."""

    def __init__(self, operation: str, permissions: tuple[str, ...], *, genesys_message: str = "",
                 status: int | None = 403, code: str | None = None, context_id: str | None = None) -> None:
        named = needs(permissions, code)
        said = f" (Genesys: {genesys_message})" if genesys_message else ""
        super().__init__(
            f"Genesys Cloud refused the {operation}: the OAuth client needs {named}{said}. Add it to a role"
            " granted to the OAuth client, in the divisions that hold the users and conversations",
            status=status, code=code, context_id=context_id,
        )
        self.operation = operation
        self.permissions = permissions
        self.needs = named
        """What to add, joined by meaning: "a and b" (all missing), "a or b" (any one would do)."""


def needs(permissions: tuple[str, ...], code: str | None) -> str:
    """Permission names joined as Genesys meant them: all of them for `missing.permissions`, else any one."""
    joiner = " and " if code == "missing.permissions" else " or "
    return joiner.join(permissions) if permissions else "a permission Genesys did not name"


class ConversationGone(GenesysError):
    """The conversation or participant has ended or does not exist; nothing to write."""

    def __init__(self, conversation_id: str, participant_id: str | None = None, *, genesys_message: str = "",
                 status: int | None = None, code: str | None = None, context_id: str | None = None) -> None:
        who = f"conversation {conversation_id}"
        if participant_id:
            who += f" participant {participant_id}"
        said = f" (Genesys: {genesys_message})" if genesys_message else ""
        super().__init__(
            f"Genesys Cloud {who} has ended or does not exist{said}; nothing to do, it is skipped",
            status=status, code=code, context_id=context_id,
        )
        self.conversation_id = conversation_id
        self.participant_id = participant_id


class ChannelGone(GenesysError):
    """A notification channel answered 404 (expired or evicted); a new one must be created."""

    def __init__(self, channel: str, operation: str, *, status: int | None = 404, code: str | None = None,
                 context_id: str | None = None) -> None:
        super().__init__(
            f"Genesys Cloud notification channel {channel} is gone (the {operation} answered 404: it expired or was"
            " evicted); nothing to do, a new channel is created and its topics subscribed again",
            status=status, code=code, context_id=context_id,
        )
        self.channel = channel
        """The channel id's first characters only (`channels.short_id`): the full id lets anyone read its events."""
        self.operation = operation


class RequestRejected(GenesysError):
    """Genesys answered a 4xx that retrying cannot fix (the request itself is wrong)."""

    def __init__(self, operation: str, *, genesys_message: str = "", advice: str = "", status: int | None = None,
                 code: str | None = None, context_id: str | None = None,
                 message_params: Mapping[str, str] | None = None) -> None:
        said = f": {genesys_message}" if genesys_message else ""
        advice = advice or ("this is likely a bug or a Genesys API change; report it with the contextId")
        super().__init__(
            f"Genesys Cloud rejected the {operation}{said}; {advice}",
            status=status, code=code, context_id=context_id,
        )
        self.operation = operation
        self.genesys_message = genesys_message
        self.message_params: Mapping[str, str] = dict(message_params or {})


class AttributesRejected(RequestRejected):
    """Genesys refused the participant attribute map (400/413/422 on the PATCH)."""

    def __init__(self, conversation_id: str, participant_id: str, *, genesys_message: str = "",
                 status: int | None = None, code: str | None = None, context_id: str | None = None,
                 message_params: Mapping[str, str] | None = None) -> None:
        super().__init__(
            f"participant attributes for conversation {conversation_id} participant {participant_id}",
            genesys_message=genesys_message,
            advice="adjust the field mapping or lower the [voice_safe] limits so the map fits",
            status=status, code=code, context_id=context_id, message_params=message_params,
        )
        self.conversation_id = conversation_id
        self.participant_id = participant_id


class GenesysTransientError(GenesysError):
    """Genesys could not serve the request now; the same work may succeed later (`retry_after` seconds)."""

    retryable: ClassVar[bool] = True

    def __init__(self, message: str, *, retry_after: float | None = None, status: int | None = None,
                 code: str | None = None, context_id: str | None = None) -> None:
        super().__init__(message, status=status, code=code, context_id=context_id)
        self.retry_after = retry_after


class Stopping(GenesysTransientError):
    """The process is stopping: a wait before a Genesys request (a retry's back-off, the rate limit) was cut short,
    and nothing more was sent. The work is picked up again after the restart."""

    def __init__(self, operation: str) -> None:
        super().__init__(f"the Genesys {operation} was not sent: the app is stopping")
        self.operation = operation


class RateLimited(GenesysTransientError):
    """429 Too Many Requests persisted through every retry."""

    def __init__(self, operation: str, *, attempts: int, elapsed_s: float, retry_after: float | None = None,
                 status: int | None = 429, code: str | None = None, context_id: str | None = None) -> None:
        later = f"; Genesys asks to wait {retry_after:.0f} s" if retry_after else ""
        super().__init__(
            f"Genesys Cloud rate-limited the {operation} through {attempts} attempt(s) over {elapsed_s:.1f} s"
            f"{later}. Lower the configured requests per minute, or ask Genesys support to raise the token's limit",
            retry_after=retry_after, status=status, code=code, context_id=context_id,
        )
        self.operation = operation
        self.attempts = attempts


_UNAVAILABLE_ADVICE = ("Check https://status.mypurecloud.com and network access to the Genesys API; the work is"
                       " retried later")


class GenesysUnavailable(GenesysTransientError):
    """5xx, timeouts, dropped connections or unreadable answers persisted through every retry (or were not
    retryable); `advice` replaces the default next step when the cause is not Genesys (e.g. pool exhaustion)."""

    def __init__(self, operation: str, reason: str, *, attempts: int = 1, elapsed_s: float = 0.0,
                 retry_after: float | None = None, status: int | None = None, code: str | None = None,
                 context_id: str | None = None, advice: str = _UNAVAILABLE_ADVICE, host: str = "") -> None:
        super().__init__(
            f"Genesys Cloud did not complete the {operation} ({reason}) after {attempts} attempt(s) over"
            f" {elapsed_s:.1f} s. {advice}",
            retry_after=retry_after, status=status, code=code, context_id=context_id,
        )
        self.operation = operation
        self.reason = reason
        self.attempts = attempts
        self.elapsed_s = elapsed_s
        self.host = host
        """`host[:port]` of the request that failed; empty when no request was sent."""


class GenesysUnreachable(GenesysUnavailable):
    """No HTTP answer: `failure` says why (DNS, refused, TLS, timeout, dropped) and `host` where."""

    def __init__(self, operation: str, host: str, failure: NetworkFailure, *, attempts: int, elapsed_s: float,
                 advice: str) -> None:
        super().__init__(operation, f"{failure.short} at {host}", attempts=attempts, elapsed_s=elapsed_s,
                         advice=advice, host=host)
        self.failure = failure


@dataclass(frozen=True, slots=True)
class ErrorBody:
    """The parts of a Genesys `ErrorBody` (or an OAuth error) this adapter uses; every field optional."""

    status: int
    code: str | None = None
    message: str = ""
    message_params: Mapping[str, str] = field(default_factory=dict)
    context_id: str | None = None

    @classmethod
    def from_response(cls, response: httpx.Response, *, hide: tuple[str, ...] = ()) -> ErrorBody:
        """Parse an error response defensively (non-JSON bodies, missing fields).

        Every text field has the `hide` strings, and the credentials the request carried (its bearer token, or its
        Basic `id:secret` value and the secret in it), replaced by <hidden>: Genesys or a proxy may echo them.
        """
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = {}
        if not isinstance(body, dict):
            body = {}
        secrets = _longest_first((*hide, *_credentials_sent(response)))
        params = body.get("messageParams")
        code = body.get("code") or body.get("error")
        message = body.get("message") or body.get("error_description") or body.get("description") or ""
        context_id = body.get("contextId") or response.headers.get("inin-correlation-id")
        return cls(
            status=response.status_code,
            code=_hidden(str(code), secrets) if code else None,
            message=_shorten(_hidden(str(message), secrets)),
            message_params=(
                {_hidden(str(k), secrets): _hidden(str(v), secrets) for k, v in params.items()}
                if isinstance(params, dict) else {}
            ),
            context_id=_hidden(str(context_id), secrets) if context_id else None,
        )

    def permissions(self) -> tuple[str, ...]:
        """Permission names (`domain:entity:action`) Genesys named in `messageParams` or the message."""
        found: list[str] = []
        for text in (*self.message_params.values(), self.message):
            for name in _PERMISSION.findall(text):
                if name not in found:
                    found.append(name)
        return tuple(found)


def _credentials_sent(response: httpx.Response) -> tuple[str, ...]:
    """The credentials in the Authorization header of the request that got `response` (none if unknown)."""
    try:
        authorization = response.request.headers.get("authorization", "")
    except RuntimeError:  # a Response built by hand has no request
        return ()
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if not value:
        return ()
    if scheme.lower() != "basic":
        return (value,)
    try:
        pair = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return (value,)
    _, colon, secret = pair.partition(":")
    return (value, pair, secret) if colon and secret else (value, pair)


def _longest_first(secrets: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sorted({s for s in secrets if s}, key=len, reverse=True))


def _hidden(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<hidden>")
    return text


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_GENESYS_MESSAGE_CHARS else text[: _MAX_GENESYS_MESSAGE_CHARS] + "…"
