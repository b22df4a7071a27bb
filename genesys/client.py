"""`GenesysClient`: the calls the app makes to Genesys Cloud, over one `httpx.Client` per process.

Every request goes: token (cached, `auth.py`) → rate limiter (`rate_limit.py`) → the one retry layer
(`retries.py`) → httpx. A 401 invalidates the token, fetches a new one and repeats the request once. Answers are
parsed here or in `users.py`/`participants.py` and leave as frozen dataclasses; failures leave as the
`errors.py` tree.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Self
from urllib.parse import quote

import httpx

from genesys.auth import AccessToken, ClientCredentials, TokenProvider
from genesys.errors import (
    AttributesRejected,
    AuthenticationFailed,
    ConversationGone,
    ErrorBody,
    GenesysError,
    GenesysUnavailable,
    PermissionMissing,
    RateLimited,
    RequestRejected,
)
from genesys.participants import (
    LiveParticipant,
    live_conversations_query,
    live_in_analytics,
    live_in_conversation,
    probe_query,
)
from genesys.permissions import PermissionCheck, PermissionReport
from genesys.rate_limit import RateLimiter
from genesys.regions import GenesysEndpoints
from genesys.retries import RetryingSender, RetryPolicy
from genesys.users import GenesysUser, UserCache, normalize_email, pick_user, user_search_body
from genesys.voice_safe import VoiceSafeAttributes

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=15.0, write=15.0, pool=5.0)
DEFAULT_LIMITS = httpx.Limits(max_connections=20, max_keepalive_connections=10, keepalive_expiry=30.0)

USERS_SEARCH = "/api/v2/users/search"
DETAILS_QUERY = "/api/v2/analytics/conversations/details/query"

PERMISSIONS_USERS_SEARCH = ("directory:user:view",)
PERMISSIONS_ANALYTICS = ("analytics:conversationDetail:view", "analytics:agentConversationDetail:view")
PERMISSIONS_CONVERSATION = ("conversation:communication:view",)

USER_PAGE_SIZE = 25
ORG_PAGE_SIZE = 100
MAX_ANALYTICS_PAGES = 100
"""10,000 live conversations at 100 per page; beyond that the query stops with a warning."""

_GONE_CODE_HINTS = ("not.found", "no.active", "not.active", "not.conversation.participant", "ended")


@dataclass(frozen=True, slots=True)
class WriteResult:
    """Genesys accepted a participant attributes PATCH."""

    ok: bool
    conversation_id: str
    participant_id: str
    status: int
    context_id: str | None
    """Genesys' `ININ-Correlation-Id` for the request, to quote to Genesys support."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


class GenesysClient:
    """The Genesys Cloud adapter; thread-safe, one per process, closes the `httpx.Client` it built."""

    def __init__(
        self,
        credentials: ClientCredentials,
        endpoints: GenesysEndpoints,
        *,
        http: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        utcnow: Callable[[], datetime] = _utcnow,
        rng: random.Random | None = None,
        requests_per_minute: int = 300,
        retry_policy: RetryPolicy | None = None,
        user_ttl_s: float = 600.0,
        missing_user_ttl_s: float = 60.0,
    ) -> None:
        if http is not None and transport is not None:
            raise ValueError("pass either http or transport, not both")
        self._owns_http = http is None
        self._http = http if http is not None else httpx.Client(
            transport=transport,
            timeout=DEFAULT_TIMEOUT,
            limits=DEFAULT_LIMITS,
            headers={"Accept": "application/json", "User-Agent": "slack-genesys-sync"},
        )
        self._credentials = credentials
        self._endpoints = endpoints
        self._utcnow = utcnow
        policy = retry_policy or RetryPolicy()
        rng = rng or random.Random()
        self._limiter = RateLimiter(requests_per_minute, clock=clock, sleep=sleep)
        self._api = RetryingSender(self._http, policy, clock=clock, sleep=sleep, rng=rng, limiter=self._limiter)
        login = RetryingSender(self._http, policy, clock=clock, sleep=sleep, rng=rng)
        self._tokens = TokenProvider(credentials, endpoints.login_url, login, clock=clock)
        self._users = UserCache(clock=clock, found_ttl_s=user_ttl_s, missing_ttl_s=missing_user_ttl_s)

    def __repr__(self) -> str:
        return f"GenesysClient(api_url={self._endpoints.api_url!r}, client_id={self._credentials.client_id!r})"

    # ----------------------------------------------------------------- users

    def find_user_by_email(self, email: str) -> GenesysUser | None:
        """The Genesys user with this e-mail (ignoring case), or None; answers are cached, misses briefly."""
        key = normalize_email(email)
        hit, user = self._users.get(key)
        if hit:
            return user
        user = self._search_user(email)
        self._users.put(key, user)
        return user

    def _search_user(self, email: str) -> GenesysUser | None:
        operation = "users search"
        response = self._call("POST", USERS_SEARCH, operation=operation, body=user_search_body(email))
        if response.status_code != 200:
            raise self._error(response, operation, PERMISSIONS_USERS_SEARCH)
        return pick_user(self._json(response, operation), email)

    # ---------------------------------------------------------- live legs

    def live_participants(self, user_id: str) -> tuple[LiveParticipant, ...]:
        """Every live participant of `user_id`: analytics finds candidates, a conversation GET confirms each."""
        _require_id("user_id", user_id)
        live: list[LiveParticipant] = []
        for conversation_id in self._live_conversation_ids(user_id):
            operation = "conversation lookup"
            response = self._call("GET", _conversation_path(conversation_id), operation=operation)
            if response.status_code in (404, 410):
                continue  # ended and gone between the query and the lookup
            if response.status_code != 200:
                raise self._error(response, operation, PERMISSIONS_CONVERSATION)
            live.extend(live_in_conversation(self._json(response, operation), user_id))
        return tuple(live)

    def org_live_participants(self) -> tuple[LiveParticipant, ...]:
        """Every live user participant in the org, from one paged analytics query (no per-conversation GETs)."""
        return tuple(live_in_analytics(self._live_conversations(None, ORG_PAGE_SIZE)))

    def _live_conversation_ids(self, user_id: str) -> list[str]:
        ids: list[str] = []
        for conversation in self._live_conversations(user_id, USER_PAGE_SIZE):
            conversation_id = conversation.get("conversationId")
            if isinstance(conversation_id, str) and conversation_id and conversation_id not in ids \
                    and not conversation.get("conversationEnd"):
                ids.append(conversation_id)
        return ids

    def _live_conversations(self, user_id: str | None, page_size: int) -> list[Mapping[str, Any]]:
        operation = "analytics conversation query"
        now = self._utcnow()
        conversations: list[Mapping[str, Any]] = []
        page = 1
        while True:
            body = live_conversations_query(now, user_id=user_id, page_size=page_size, page_number=page)
            response = self._call("POST", DETAILS_QUERY, operation=operation, body=body)
            if response.status_code != 200:
                raise self._error(response, operation, PERMISSIONS_ANALYTICS)
            payload = self._json(response, operation)
            batch = payload.get("conversations")
            batch = [c for c in batch if isinstance(c, Mapping)] if isinstance(batch, list) else []
            conversations.extend(batch)
            total = payload.get("totalHits")
            covered = page * page_size >= total if isinstance(total, int) else len(batch) < page_size
            if not batch or covered:
                return conversations
            if page >= MAX_ANALYTICS_PAGES:
                log.warning("Genesys analytics query: stopped after %d pages of %d (totalHits %s)",
                            page, page_size, total)
                return conversations
            page += 1

    # ---------------------------------------------------------------- write

    def write_attributes(self, conversation_id: str, participant_id: str,
                         attributes: VoiceSafeAttributes) -> WriteResult:
        """PATCH the participant's attributes; only a `VoiceSafeAttributes` (from `check_attributes`) is sent."""
        if not isinstance(attributes, VoiceSafeAttributes):
            raise TypeError(
                f"write_attributes sends only VoiceSafeAttributes (from check_attributes), not "
                f"{type(attributes).__name__}"
            )
        _require_id("conversation_id", conversation_id)
        _require_id("participant_id", participant_id)
        operation = "attributes write"
        path = f"{_conversation_path(conversation_id)}/participants/{quote(participant_id, safe='')}/attributes"
        response = self._call("PATCH", path, operation=operation, body=attributes.body())
        if not 200 <= response.status_code < 300:
            raise self._error(response, operation, (), conversation_id=conversation_id,
                              participant_id=participant_id, write=True)
        result = WriteResult(
            ok=True, conversation_id=conversation_id, participant_id=participant_id,
            status=response.status_code, context_id=response.headers.get("inin-correlation-id"),
        )
        log.debug("Genesys attributes written: conversation %s participant %s (%d keys, contextId %s)",
                  conversation_id, participant_id, len(attributes.attributes), result.context_id)
        return result

    # ---------------------------------------------------------------- check

    def check_permissions(self) -> PermissionReport:
        """Obtain a token, then exercise each call the app needs harmlessly; one check per permission."""
        try:
            self._tokens.token()
        except GenesysError as exc:
            failed = PermissionCheck("token", "", False, str(exc))
            skipped = tuple(
                PermissionCheck(name, permissions[0], False, "skipped: no token")
                for name, permissions, _ in self._probes()
            )
            return PermissionReport((failed, *skipped))
        checks = [PermissionCheck("token", "", True, f"obtained from {self._endpoints.login_url}")]
        for name, permissions, probe in self._probes():
            try:
                response, ok_statuses = probe()
            except GenesysError as exc:
                checks.append(PermissionCheck(name, permissions[0], False, str(exc)))
                continue
            if response.status_code in ok_statuses:
                checks.append(PermissionCheck(name, permissions[0], True, "permitted"))
            else:
                checks.append(PermissionCheck(name, permissions[0], False, str(self._error(response, name,
                                                                                          permissions))))
        return PermissionReport(tuple(checks))

    def _probes(self) -> tuple[tuple[str, tuple[str, ...], Callable[[], tuple[httpx.Response, set[int]]]], ...]:
        nobody = f"permission-check-{uuid.uuid4().hex}@example.invalid"
        return (
            ("users search", PERMISSIONS_USERS_SEARCH,
             lambda: (self._call("POST", USERS_SEARCH, operation="users search",
                                 body=user_search_body(nobody)), {200})),
            ("analytics conversation query", PERMISSIONS_ANALYTICS,
             lambda: (self._call("POST", DETAILS_QUERY, operation="analytics conversation query",
                                 body=probe_query(self._utcnow())), {200})),
            ("conversation lookup", PERMISSIONS_CONVERSATION,
             lambda: (self._call("GET", _conversation_path(str(uuid.uuid4())), operation="conversation lookup"),
                      {200, 404})),
        )

    # ------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the `httpx.Client` if this client built it."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -------------------------------------------------------------- private

    def _call(self, method: str, path: str, *, operation: str, body: Any = None) -> httpx.Response:
        url = f"{self._endpoints.api_url}{path}"
        token = self._tokens.token()
        response = self._api.send(self._request(method, url, token, body), operation=operation)
        if response.status_code != 401:
            return response
        log.info("Genesys refused the token for the %s (401); obtaining a new token and repeating once", operation)
        self._tokens.invalidate(token)
        token = self._tokens.token()
        response = self._api.send(self._request(method, url, token, body), operation=operation)
        if response.status_code == 401:
            error = ErrorBody.from_response(response)
            raise AuthenticationFailed(
                f"the API refused a token obtained moments before ({operation} answered 401)",
                client_id=self._credentials.client_id, status=401, code=error.code, context_id=error.context_id,
            )
        return response

    def _request(self, method: str, url: str, token: AccessToken, body: Any) -> httpx.Request:
        headers = {"Authorization": token.authorization, "Accept": "application/json"}
        if body is None:
            return self._http.build_request(method, url, headers=headers)
        return self._http.build_request(method, url, headers=headers, json=body)

    @staticmethod
    def _json(response: httpx.Response, operation: str) -> Mapping[str, Any]:
        try:
            payload = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            payload = None
        if not isinstance(payload, Mapping):
            body = ErrorBody.from_response(response)
            raise GenesysUnavailable(operation, "the answer was not a JSON object", status=response.status_code,
                                     context_id=body.context_id)
        return payload

    def _error(self, response: httpx.Response, operation: str, permissions: tuple[str, ...], *,
               conversation_id: str | None = None, participant_id: str | None = None,
               write: bool = False) -> GenesysError:
        body = ErrorBody.from_response(response, hide=(self._credentials.client_secret,))
        message = body.message
        status = response.status_code
        where = {"status": status, "code": body.code, "context_id": body.context_id}
        if conversation_id is not None and (status in (404, 410) or _means_gone(body.code)):
            return ConversationGone(conversation_id, participant_id, genesys_message=message, **where)
        if status == 403:
            return PermissionMissing(operation, body.permissions() or permissions, genesys_message=message, **where)
        if status == 429:
            return RateLimited(operation, attempts=1, elapsed_s=0.0, **where)
        if status >= 500 or status == 408:
            return GenesysUnavailable(operation, f"HTTP {status}", **where)
        if write and status in (400, 413, 422):
            return AttributesRejected(conversation_id or "", participant_id or "", genesys_message=message,
                                      message_params=body.message_params, **where)
        return RequestRejected(operation, genesys_message=message, message_params=body.message_params, **where)


def _means_gone(code: str | None) -> bool:
    return bool(code) and code.startswith("conversation.") and any(hint in code for hint in _GONE_CODE_HINTS)


def _conversation_path(conversation_id: str) -> str:
    return f"/api/v2/conversations/{quote(conversation_id, safe='')}"


def _require_id(name: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, not {value!r}")
