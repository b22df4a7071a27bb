"""A faithful local Genesys Cloud: a real HTTP server on 127.0.0.1 for adapter tests and benchmarks.

One ``ThreadingHTTPServer`` on a daemon thread serves both hosts of a region on one port:
the login host (``POST /oauth/token``) and the API host (``/api/v2/...``). The facts it follows are
in ``/work/shared/reference/genesys-cloud-api.md`` (section numbers below refer to it).

Served endpoints
----------------
* ``POST /oauth/token``: client credentials, HTTP Basic, form body ``grant_type=client_credentials``.
* ``POST /api/v2/users/search`` and ``GET /api/v2/users/search?q64=...`` (``directory:user:view``).
* ``GET /api/v2/users/{userId}`` (no permission declared).
* ``POST /api/v2/analytics/conversations/details/query`` (ANY of ``analytics:conversationDetail:view``,
  ``analytics:agentConversationDetail:view``).
* ``GET /api/v2/conversations/{conversationId}`` (``conversation:communication:view``).
* ``PATCH /api/v2/conversations/{conversationId}/participants/{participantId}/attributes``
  (no permission declared; 202 Accepted with an empty body).
* ``POST|GET /api/v2/notifications/channels`` and ``GET|POST|PUT|DELETE
  /api/v2/notifications/channels/{channelId}/subscriptions``, with the channels' WebSocket on a listener of its
  own (``connectUri``): see ``localdev/genesys_notifications.py`` for the facts and choices. Every control method
  that changes a conversation (and an accepted attributes PATCH) publishes the conversation on
  ``v2.users.{userId}.conversations`` of each user in it, also one who has left. Constructor knobs:
  ``heartbeat_interval_s`` (30), ``channel_lifetime_s`` (24 h, measured with ``clock``).
* Anything else: 404 ``not.found``.

Every API answer carries ``inin-ratelimit-allowed``, ``inin-ratelimit-count``, ``inin-ratelimit-reset``
and ``ININ-Correlation-Id``; error bodies are ``ErrorBody`` (§3) with a fresh ``contextId`` equal to
that header. Error messages are the ones Genesys uses (the templates quoted in §3 and in the
``gcloudcx`` Go client's catalogue of Genesys errors).

Python API beyond the brief
---------------------------
``FakeGenesysCloud(..., wall_clock=time.time)``; ``customer_participant_id(conversation_id)``; conversations:
``start_conversation(user_id)`` (a customer participant, purpose ``customer``, and the user's), then
``add_participant(cid, user_id)`` (a transfer's or consult's new leg; ``user_id`` None with purpose ``external``: a
party outside the org), ``end_participant(cid, pid)`` (that leg leaves), ``end_conversation(cid)``; each publishes the
conversation on the Notifications API. Each join is stamped at least 1 ms after the one before it (``connectedTime``);
``server_errors`` (exceptions the fake raised itself, answered as 500; should stay empty);
``division_id`` (the home division every user and conversation is in); ``stopping``; ``close()`` (= ``stop()``).
Notifications (tests drive them; see ``localdev/genesys_notifications.py``): ``drop_sockets()``,
``announce_socket_closing(grace_s)``, ``expire_channels()``, ``pause_heartbeats()``/``resume_heartbeats()``, and the
read-outs ``notification_channels()``, ``subscribed_topics()``, ``socket_connections()``, ``published_events()``.

Two switches model the other outcome of an undocumented behaviour (see below), so tests can prove the adapter
does not depend on the fake's default choice:

* ``FakeGenesysCloud(..., email_match="exact")``: EXACT/TERM/TERMS criteria on ``email`` and ``username``
  compare case-sensitively (the default ``"ignore_case"`` compares case-insensitively, §9.10).
* ``end_conversation(cid, keep_in_analytics=True)`` / ``end_participant(cid, pid, keep_in_analytics=True)``:
  the conversation (or participant) ends (GET shows ``endTime`` and ``disconnected``, PATCH is refused) but the
  analytics detail query still reports it as live (no ``conversationEnd``/``segmentEnd``), as a lagging analytics index
  would (§9.5). ``catch_up_analytics()`` ends the lag for every conversation.

Order of checks for an ``/api/v2`` request
------------------------------------------
injected fault (``drop_next``/``fail_next``/``fail_for``) → latency → bearer token (401) → rate limit
(429) → route (404) → body size (413) → Content-Type (415) → permission (403) → body syntax and
schema (400) → entity lookup (404) → entity state (400). So a forbidden GET of an unknown
conversation is 403 and a permitted one is 404.

Undocumented behaviour and the choice this fake makes
-----------------------------------------------------
The reference marks these [U] (not documented); the fake picks one outcome so tests are
deterministic. Code under test should not depend on more than the status class where the real
service may differ.

* **Token endpoint errors** (§9.9): bad, missing or non-Basic client authentication → 401
  ``{"error": "invalid_client", "description": "authentication failed", "error_description": ...}``
  (the shape real Genesys was seen returning to unknown credentials, [S]). Client authentication is checked first; then
  a Content-Type other than ``application/x-www-form-urlencoded`` or a missing ``grant_type`` → 400
  ``invalid_request``, and any other grant → 400 ``unsupported_grant_type``. Credentials sent in the
  form body instead of Basic are not accepted (401). Login-host answers carry no ``inin-ratelimit-*``
  headers: those belong to the API host.
* **Token validity** is measured with the injected ``clock``; an expired, unknown or
  ``expire_tokens()``-invalidated token is 401 ``bad.credentials`` (not ``credentials.expired``).
  A non-Bearer ``Authorization`` header counts as missing: 401 ``authentication.required``.
* **Rate limit**: one fixed 60-second window per token, opened by that token's first API request and
  measured with the injected clock. Only requests that reach the service count; a 429 answer does not
  (so ``inin-ratelimit-count`` never exceeds ``allowed``). ``Retry-After`` and
  ``inin-ratelimit-reset`` are the whole seconds left in the window, at least 1. Answers to requests
  without a valid token report ``count`` 0 and ``reset`` 60; injected faults report the token's window
  as it stands without counting themselves. The 429 body carries ``limit``
  ``{key: "client.credentials.token.rate.per.minute", namespace: "platform.api", value}``.
* **403 bodies**: ``missing.permissions`` ("Unable to perform the requested action. You are missing the
  following permission(s): [p]") or, for ANY-of operations, ``missing.any.permissions`` ("... You must
  have at least one of the following permissions assigned: [p1, p2]"); ``messageParams`` is
  ``{"permissions": "[p1, p2]"}`` and ``messageWithParams`` has ``{permissions}`` in its place.
* **User search**: EXACT, TERM and TERMS compare case-insensitively on every field (e-mail addresses
  are case-insensitive in practice, §9.10; ``email_match="exact"`` makes them case-sensitive on ``email``
  and ``username``); STARTS_WITH and CONTAINS too; MATCH_ALL matches all;
  REQUIRED_FIELDS needs every named field non-empty. Other real criterion types (REGEX, QUERY_STRING,
  RANGE, ...) are refused with 400 ``bad.request`` saying the fake does not support them; a type that is
  not a Genesys type at all is 400 ``bad.request`` too. Criteria ANDed by default, ``operator`` OR/NOT
  and nested ``group`` honoured. Searchable fields: ``id``, ``name``, ``email``, ``username`` (the
  e-mail), ``state``; a criterion on any other field matches nobody. **Without a criterion on
  ``state`` only active users are returned** (as ``GET /api/v2/users`` defaults to ``state=active``).
  Results sort by ``sortBy`` (default ``name``), then id; ``pageSize`` 1..100 (default 25, more is 400),
  ``pageNumber`` ≥ 1. **No match: 200 with ``total`` 0, ``pageCount`` 0 and no ``results`` key.**
  ``expand`` is accepted and ignored. ``nextPage``/``previousPage``/``currentPage`` are
  ``/api/v2/users/search?q64=<base64 of the request>`` links that ``GET`` serves. The fake does not
  enforce unique e-mails, so a test can model a deleted and a new user sharing an address.
* **Analytics detail query**: results are immediately consistent with the fake's state (§9.5 freshness is
  undocumented), unless a conversation or participant was ended with ``keep_in_analytics=True``. ``interval`` is
  **required** (missing, not ``start/end`` ISO-8601 datetimes, or end before start → 400 ``bad.request``
  naming ``interval``; a datetime without an offset is UTC; ISO durations are not supported). A conversation
  is included when it started on a UTC day touched by the interval (the documented rule); no maximum interval
  length is enforced. ``paging.pageSize`` 1..100 (default 25; above 100 → 400), ``pageNumber`` ≥ 1. ``order``
  ``asc`` (default), ``desc`` or ``unordered``; ``orderBy`` ``conversationStart`` (default),
  ``conversationEnd``, ``segmentStart``, ``segmentEnd``. Filters: ``type`` ``and``/``or`` with ``predicates``
  and/or ``clauses``; predicates of type ``dimension`` with ``matches`` (exact, case-sensitive), ``exists``,
  ``notExists``. A conversation passes a segment filter when one of its segments satisfies it, and must pass
  every filter. Metric or property predicates, non-empty ``evaluationFilters``/``surveyFilters``/
  ``resolutionFilters``/``mediaEndpointStatFilters``/``aggregations``, and dimensions outside the supported set are 400
  ``bad.request`` ("not supported by this fake") rather than silently ignored; other unknown top-level keys
  are ignored. Each participant has one session with one ``interact`` segment from its start to its end; analytics
  ``participantId`` equals the conversation participant ``id`` (§9.7). Nothing matching: ``{"totalHits": 0}``
  with no ``conversations`` key (as real Genesys does).
* **GET conversation**: unknown id → 404 ``not.found``. ``endTime`` (conversation and participant) and
  ``disconnectedTime`` are absent, not null, while live. Ended conversations stay readable forever.
  Communications live under the media's key (``calls``, ``messages``, ``emails``, ``callbacks``,
  ``chats``, ``videos``, ``cobrowsesessions``, ``screenshares``) with ``state`` ``connected`` or
  ``disconnected``.
* **Attributes PATCH**: **merge** semantics (sent keys overwrite, other keys stay; §9.1); keys cannot
  be deleted (a ``null`` value is 400 ``invalid.value``); ``{"attributes": {}}`` is accepted and changes
  nothing. A missing or null ``attributes`` → 400 ``conversation.error.participant.attribute.null``; a
  non-object ``attributes``, an unknown top-level property, non-JSON, non-UTF-8 or NaN/Infinity → 400
  ``bad.request`` (``details[].fieldName`` names the field); a non-string value (number, boolean, null,
  object, array) → 400 ``invalid.value`` with one ``details`` entry per bad key
  (``fieldName`` ``attributes.<key>``). No key or value length limit besides the 512,000-byte body
  (over it → 413 ``request.entity.too.large``, checked for every API request). Unknown conversation or
  participant → 404 ``not.found``. **An ended conversation or an ended participant → 400
  ``conversation.error.participant.no.active.conversations``** (§9.4: real may be 404, 400 or 202).
  No division or participant-ownership check (§9.2). Any participant may be patched, the customer too.
* **Injected faults**: ``fail_next``/``fail_for`` answer an ``ErrorBody`` whose code follows the status
  (500 ``internal.server.error``, 502 ``bad.gateway``, 503 ``service.unavailable``, 504
  ``request.timeout``, 429 ``too.many.requests``, 408 ``client.timeout``, ...), plus ``Retry-After``
  when given (``bad.gateway`` is the fake's own word: Genesys declares no 502 code). ``fail_next``
  rules are consumed in the order they were added; ``drop_next`` rules are checked before them. A
  dropped request is recorded with status 0. ``path_prefix`` matches the path without the query
  string; ``""`` matches everything, the token endpoint included.
* **Timestamps** in bodies come from ``wall_clock`` (default ``time.time``), not from the injected
  ``clock``, so advancing a fake clock past a token lifetime does not move conversations out of a
  realistic analytics interval. ``RecordedPatch.at`` is the injected ``clock``'s value.
* A conversation stays live until ``end_conversation`` even when all its participants have ended.
* ``add_user`` without a name uses the e-mail's local part (real users always have a name). Users and
  conversations may reference unknown user ids (the participant then has no ``participantName``).
* ``requests`` is in order of answering (requests answered concurrently may interleave).
* Paths outside ``/api/v2`` and ``/oauth/token`` are 404 without an authentication check; unknown
  paths under ``/api/v2`` need a valid token first (401 before 404).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, Self, cast

from localdev.genesys_notifications import (
    DEFAULT_CHANNEL_LIFETIME_S,
    DEFAULT_HEARTBEAT_INTERVAL_S,
    ChannelInfo,
    ChannelNotFound,
    NotificationService,
    TooManyTopics,
    TopicState,
)
from localdev.http_server import LocalHttpServer, Reply, Request, RequestHandler, form_fields, media_type

MAX_BODY_BYTES = 512_000
RATE_WINDOW_S = 60
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 25

PERM_USER_VIEW = "directory:user:view"
PERM_ANALYTICS_DETAIL = "analytics:conversationDetail:view"
PERM_ANALYTICS_AGENT_DETAIL = "analytics:agentConversationDetail:view"
PERM_COMMUNICATION_VIEW = "conversation:communication:view"
DEFAULT_PERMISSIONS = frozenset({PERM_USER_VIEW, PERM_ANALYTICS_DETAIL, PERM_COMMUNICATION_VIEW})
# What subscribing to v2.users.{id}.conversations(.calls) needs: assumed, see localdev/genesys_notifications.py.
PERM_USER_CONVERSATIONS_TOPIC = PERM_COMMUNICATION_VIEW
_USER_CONVERSATIONS_TOPIC = re.compile(r"v2\.users\.(?P<user_id>[^.\s]+)\.conversations(?:\.calls)?")

# Media type (analytics spelling) → the key of its communications on a conversation participant.
MEDIA_KEYS: Mapping[str, str] = {
    "voice": "calls",
    "callback": "callbacks",
    "email": "emails",
    "message": "messages",
    "chat": "chats",
    "video": "videos",
    "cobrowse": "cobrowsesessions",
    "screenshare": "screenshares",
}

_MSG_BAD_REQUEST = "The request could not be understood by the server due to malformed syntax."
_MSG_NOT_FOUND = "The requested resource was not found."
_JSON_CT = "application/json"
_FORM_CT = "application/x-www-form-urlencoded"

# Code and message for a status injected by fail_next / fail_for.
_FAULT_ERRORS: Mapping[int, tuple[str, str]] = {
    400: ("bad.request", _MSG_BAD_REQUEST),
    401: ("bad.credentials", "Invalid login credentials."),
    403: ("not.authorized", "You are not authorized to perform the requested action."),
    404: ("not.found", _MSG_NOT_FOUND),
    408: ("client.timeout", "The client did not produce a request within the time the server was prepared to wait."),
    409: ("general.conflict", "The request conflicts with the current state of the resource."),
    413: ("request.entity.too.large", "The request is over the maximum allowed size."),
    415: (
        "unsupported.media.type",
        "Unsupported Media Type - Unsupported or incorrect media type, such as an incorrect Content-Type "
        "value in the header.",
    ),
    429: ("too.many.requests", "Rate limit exceeded the maximum [%s] requests within [%s] seconds"),
    500: (
        "internal.server.error",
        "The server encountered an unexpected condition which prevented it from fulfilling the request.",
    ),
    502: ("bad.gateway", "The server received an invalid response from an upstream server."),
    503: (
        "service.unavailable",
        "Service Unavailable - The server is currently unavailable (because it is overloaded or down for maintenance).",
    ),
    504: ("request.timeout", "The request timed out."),
}


# ---------------------------------------------------------------------------------------------------
# Public values


@dataclass(frozen=True)
class JoinedParticipant:
    """One participant (a user or the customer) in a conversation, as the tests set it up."""

    conversation_id: str
    participant_id: str
    user_id: str
    media_type: str


@dataclass(frozen=True)
class RecordedRequest:
    """A request the fake answered (status 0: dropped without an answer)."""

    method: str
    path: str
    status: int
    token: str | None


@dataclass(frozen=True)
class RecordedPatch:
    """An accepted attributes PATCH; ``at`` is the injected clock's reading."""

    conversation_id: str
    participant_id: str
    attributes: dict[str, str]
    at: float


# ---------------------------------------------------------------------------------------------------
# Internal values and state


class _GenesysError(Exception):
    """An error answer in ErrorBody shape; raised anywhere in request handling."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        template: str | None = None,
        params: Mapping[str, str] | None = None,
        details: Sequence[Mapping[str, str]] = (),
        headers: Sequence[tuple[str, str]] = (),
        limit: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.template = template if template is not None else message
        self.params = dict(params or {})
        self.details = [dict(d) for d in details]
        self.headers = tuple(headers)
        self.limit = dict(limit) if limit is not None else None

    def answer(self) -> Reply:
        context_id = str(uuid.uuid4())
        body: dict[str, Any] = {
            "message": self.message,
            "code": self.code,
            "status": self.status,
            "messageWithParams": self.template,
            "messageParams": self.params,
            "contextId": context_id,
            "details": self.details,
            "errors": [],
        }
        if self.limit is not None:
            body["limit"] = self.limit
        headers = (("Content-Type", _JSON_CT), ("ININ-Correlation-Id", context_id), *self.headers)
        return Reply(self.status, _dump(body), headers)


def _bad_request(message: str = _MSG_BAD_REQUEST, *, field_name: str | None = None) -> _GenesysError:
    details = [{"errorCode": "bad.request", "fieldName": field_name}] if field_name else []
    return _GenesysError(400, "bad.request", message, details=details)


def _not_found() -> _GenesysError:
    return _GenesysError(404, "not.found", _MSG_NOT_FOUND)


@dataclass(frozen=True)
class _User:
    id: str
    name: str
    email: str
    state: str


@dataclass
class _Participant:
    id: str
    purpose: str
    user_id: str | None
    name: str
    start: float
    communication_id: str
    session_id: str
    end: float | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    stale_in_analytics: bool = False  # ended, but analytics still shows the participant live

    @property
    def analytics_end(self) -> float | None:
        return None if self.stale_in_analytics else self.end


@dataclass
class _Conversation:
    id: str
    media_type: str
    start: float
    sequence: int  # creation order: a stable tie-breaker when start times coincide
    participants: list[_Participant] = field(default_factory=list)
    end: float | None = None
    stale_in_analytics: bool = False  # ended, but analytics still shows it live

    @property
    def analytics_end(self) -> float | None:
        return None if self.stale_in_analytics else self.end

    def participant(self, participant_id: str) -> _Participant | None:
        return next((p for p in self.participants if p.id == participant_id), None)


@dataclass
class _Token:
    value: str
    expires_at: float
    window_start: float | None = None
    window_count: int = 0


@dataclass
class _CountedFault:
    kind: Literal["fail", "drop"]
    status: int
    remaining: int
    path_prefix: str
    retry_after: int | None


@dataclass(frozen=True)
class _WindowFault:
    status: int
    start: float
    until: float
    path_prefix: str
    retry_after: int | None


@dataclass(frozen=True)
class _RateView:
    allowed: int
    count: int
    reset_s: int

    def headers(self) -> tuple[tuple[str, str], ...]:
        return (
            ("inin-ratelimit-allowed", str(self.allowed)),
            ("inin-ratelimit-count", str(self.count)),
            ("inin-ratelimit-reset", str(self.reset_s)),
        )


_Handler = Callable[[Request, Mapping[str, str]], Reply]


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: _Handler
    permissions: tuple[str, ...] = ()
    any_of: bool = False  # True: ANY of `permissions` suffices; False: ALL are needed
    takes_json: bool = False


# ---------------------------------------------------------------------------------------------------
# Small helpers


def _dump(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode("utf-8")


def _json_answer(status: int, payload: Any) -> Reply:
    return Reply(status, _dump(payload), (("Content-Type", _JSON_CT),))


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN/Infinity; Genesys' JSON parser does not.
    raise ValueError(f"not JSON: {name}")


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _bad_request() from exc


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _page_spec(raw: Mapping[str, Any], where: str) -> tuple[int, int]:
    """Validated (pageSize, pageNumber) from an object holding those keys."""
    size = raw.get("pageSize", DEFAULT_PAGE_SIZE)
    number = raw.get("pageNumber", 1)
    if not _is_int(size) or not 1 <= size <= MAX_PAGE_SIZE:
        raise _bad_request(f"pageSize must be an integer from 1 to {MAX_PAGE_SIZE}.", field_name=f"{where}pageSize")
    if not _is_int(number) or number < 1:
        raise _bad_request("pageNumber must be an integer of at least 1.", field_name=f"{where}pageNumber")
    return size, number


def _permission_error(missing: Sequence[str], *, any_of: bool) -> _GenesysError:
    listed = "[" + ", ".join(missing) + "]"
    if any_of:
        code = "missing.any.permissions"
        prefix = (
            "Unable to perform the requested action. You must have at least one of the following permissions assigned: "
        )
    else:
        code = "missing.permissions"
        prefix = "Unable to perform the requested action. You are missing the following permission(s): "
    return _GenesysError(403, code, prefix + listed, template=prefix + "{permissions}", params={"permissions": listed})


# ---------------------------------------------------------------------------------------------------
# User search


_SEARCH_TYPES_SUPPORTED = frozenset(
    {"EXACT", "TERM", "TERMS", "STARTS_WITH", "CONTAINS", "MATCH_ALL", "REQUIRED_FIELDS"}
)
_SEARCH_TYPES_REAL = _SEARCH_TYPES_SUPPORTED | {
    "REGEX", "QUERY_STRING", "SIMPLE_QUERY_STRING", "RANGE", "DATE_RANGE", "LESS_THAN",
    "LESS_THAN_EQUAL_TO", "GREATER_THAN", "GREATER_THAN_EQUAL_TO", "NESTED",
}  # fmt: skip
_SEARCH_OPERATORS = frozenset({"AND", "OR", "NOT"})
_SEARCH_SORT_ORDERS = frozenset({"ASC", "DESC", "SCORE"})


def _user_fields(user: _User) -> dict[str, str]:
    return {"id": user.id, "name": user.name, "email": user.email, "username": user.email, "state": user.state}


def _user_json(user: _User, division_id: str) -> dict[str, Any]:
    return {
        "id": user.id,
        "name": user.name,
        "division": {"id": division_id, "name": "Home", "selfUri": f"/api/v2/authorization/divisions/{division_id}"},
        "email": user.email,
        "primaryContactInfo": [{"address": user.email, "mediaType": "EMAIL", "type": "PRIMARY"}],
        "state": user.state,
        "username": user.email,
        "version": 1,
        "acdAutoAnswer": False,
        "selfUri": f"/api/v2/users/{user.id}",
    }


@dataclass(frozen=True)
class _Criterion:
    type: str
    fields: tuple[str, ...]
    values: tuple[str, ...]
    operator: str
    group: tuple[_Criterion, ...]


def _parse_criteria(raw: Any, where: str) -> tuple[_Criterion, ...]:
    if not isinstance(raw, list) or not raw:
        raise _bad_request("query must be a non-empty list of search criteria.", field_name=where)
    return tuple(_parse_criterion(item, f"{where}[{i}]") for i, item in enumerate(raw))


def _parse_criterion(raw: Any, where: str) -> _Criterion:
    if not isinstance(raw, dict):
        raise _bad_request("A search criterion must be an object.", field_name=where)
    operator = raw.get("operator", "AND")
    if operator not in _SEARCH_OPERATORS:
        raise _bad_request(f"Unknown operator {operator!r}.", field_name=f"{where}.operator")
    if raw.get("group") is not None:
        group = _parse_criteria(raw["group"], f"{where}.group")
        return _Criterion("GROUP", (), (), operator, group)
    kind = raw.get("type")
    if kind not in _SEARCH_TYPES_REAL:
        raise _bad_request(f"Unknown search type {kind!r}.", field_name=f"{where}.type")
    if kind not in _SEARCH_TYPES_SUPPORTED:
        raise _bad_request(f"Search type {kind} is not supported by this fake.", field_name=f"{where}.type")
    fields = raw.get("fields", [])
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        raise _bad_request("fields must be a list of strings.", field_name=f"{where}.fields")
    values = _criterion_values(raw, where)
    if kind not in {"MATCH_ALL", "REQUIRED_FIELDS"} and (not fields or not values):
        raise _bad_request(f"{kind} needs fields and a value.", field_name=f"{where}.value")
    return _Criterion(kind, tuple(fields), values, operator, ())


def _criterion_values(raw: Mapping[str, Any], where: str) -> tuple[str, ...]:
    values: list[str] = []
    if "value" in raw and raw["value"] is not None:
        if not isinstance(raw["value"], str):
            raise _bad_request("value must be a string.", field_name=f"{where}.value")
        values.append(raw["value"])
    listed = raw.get("values")
    if listed is not None:
        if not isinstance(listed, list) or not all(isinstance(v, str) for v in listed):
            raise _bad_request("values must be a list of strings.", field_name=f"{where}.values")
        values.extend(listed)
    return tuple(values)


_EMAIL_FIELDS = frozenset({"email", "username"})


def _criterion_holds(criterion: _Criterion, user_fields: Mapping[str, str], exact_email: bool = False) -> bool:
    if criterion.type == "GROUP":
        return _criteria_hold(criterion.group, user_fields, exact_email)
    if criterion.type == "MATCH_ALL":
        return True
    present = [user_fields.get(f) for f in criterion.fields]
    if criterion.type == "REQUIRED_FIELDS":
        return all(bool(v) for v in present)
    wanted = [v.casefold() for v in criterion.values]
    have = [v.casefold() for v in present if v is not None]
    if criterion.type == "STARTS_WITH":
        return any(h.startswith(w) for h in have for w in wanted)
    if criterion.type == "CONTAINS":
        return any(w in h for h in have for w in wanted)
    if exact_email:  # email_match="exact": e-mail fields compare case-sensitively, other fields as before
        for name, value in zip(criterion.fields, present, strict=True):
            if value is not None and any(
                value == v if name in _EMAIL_FIELDS else value.casefold() == v.casefold() for v in criterion.values
            ):
                return True
        return False
    return any(h == w for h in have for w in wanted)  # EXACT, TERM, TERMS


def _criteria_hold(criteria: Sequence[_Criterion], user_fields: Mapping[str, str], exact_email: bool = False) -> bool:
    ands = [c for c in criteria if c.operator == "AND"]
    ors = [c for c in criteria if c.operator == "OR"]
    nots = [c for c in criteria if c.operator == "NOT"]
    return (
        all(_criterion_holds(c, user_fields, exact_email) for c in ands)
        and (not ors or any(_criterion_holds(c, user_fields, exact_email) for c in ors))
        and not any(_criterion_holds(c, user_fields, exact_email) for c in nots)
    )


def _mentions_state(criteria: Sequence[_Criterion]) -> bool:
    return any("state" in c.fields or _mentions_state(c.group) for c in criteria)


def _q64_link(request: Mapping[str, Any], page_number: int) -> str:
    page = dict(request, pageNumber=page_number)
    encoded = base64.b64encode(_dump(page)).decode("ascii")
    return f"/api/v2/users/search?q64={encoded}"


# ---------------------------------------------------------------------------------------------------
# Analytics conversation detail query

_CONVERSATION_DIMENSIONS = frozenset(
    {"conversationId", "conversationStart", "conversationEnd", "originatingDirection", "divisionId"}
)
_SEGMENT_DIMENSIONS = _CONVERSATION_DIMENSIONS | {
    "userId", "purpose", "participantId", "participantName", "mediaType", "direction", "sessionId",
    "segmentType", "segmentStart", "segmentEnd",
}  # fmt: skip
_PREDICATE_OPERATORS = frozenset({"matches", "exists", "notExists"})
_ORDERS = frozenset({"asc", "desc", "unordered"})
_ORDER_BYS = frozenset({"conversationStart", "conversationEnd", "segmentStart", "segmentEnd"})
_UNSUPPORTED_QUERY_LISTS = (
    "evaluationFilters", "surveyFilters", "resolutionFilters", "mediaEndpointStatFilters", "aggregations",
)  # fmt: skip


@dataclass(frozen=True)
class _Predicate:
    dimension: str
    operator: str
    value: str | None

    def holds(self, context: Mapping[str, str | None]) -> bool:
        actual = context.get(self.dimension)
        if self.operator == "exists":
            return actual is not None
        if self.operator == "notExists":
            return actual is None
        return actual is not None and actual == self.value


@dataclass(frozen=True)
class _Filter:
    kind: str  # "and" | "or"
    predicates: tuple[_Predicate, ...]
    clauses: tuple[_Filter, ...]

    def holds(self, context: Mapping[str, str | None]) -> bool:
        results = [p.holds(context) for p in self.predicates] + [c.holds(context) for c in self.clauses]
        return all(results) if self.kind == "and" else any(results)


def _parse_filters(raw: Any, where: str, dimensions: frozenset[str]) -> tuple[_Filter, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _bad_request(f"{where} must be a list.", field_name=where)
    return tuple(_parse_filter(item, f"{where}[{i}]", dimensions, nested=False) for i, item in enumerate(raw))


def _parse_filter(raw: Any, where: str, dimensions: frozenset[str], *, nested: bool) -> _Filter:
    if not isinstance(raw, dict):
        raise _bad_request("A filter must be an object.", field_name=where)
    kind = raw.get("type")
    if kind not in {"and", "or"}:
        raise _bad_request(f"Filter type must be 'and' or 'or', not {kind!r}.", field_name=f"{where}.type")
    predicates_raw = raw.get("predicates") or []
    clauses_raw = [] if nested else raw.get("clauses") or []
    if not isinstance(predicates_raw, list) or not isinstance(clauses_raw, list):
        raise _bad_request("predicates and clauses must be lists.", field_name=where)
    if not predicates_raw and not clauses_raw:
        raise _bad_request("A filter needs at least one predicate or clause.", field_name=where)
    predicates = tuple(
        _parse_predicate(p, f"{where}.predicates[{i}]", dimensions) for i, p in enumerate(predicates_raw)
    )
    clauses = tuple(
        _parse_filter(c, f"{where}.clauses[{i}]", dimensions, nested=True) for i, c in enumerate(clauses_raw)
    )
    return _Filter(kind, predicates, clauses)


def _parse_predicate(raw: Any, where: str, dimensions: frozenset[str]) -> _Predicate:
    if not isinstance(raw, dict):
        raise _bad_request("A predicate must be an object.", field_name=where)
    kind = raw.get("type", "dimension")
    if kind != "dimension":
        raise _bad_request(f"Predicate type {kind!r} is not supported by this fake.", field_name=f"{where}.type")
    dimension = raw.get("dimension")
    if dimension not in dimensions:
        raise _bad_request(
            f"Dimension {dimension!r} is not supported by this fake here.", field_name=f"{where}.dimension"
        )
    operator = raw.get("operator", "matches")
    if operator not in _PREDICATE_OPERATORS:
        raise _bad_request(f"Unknown operator {operator!r}.", field_name=f"{where}.operator")
    value = raw.get("value")
    if operator == "matches" and not isinstance(value, str):
        raise _bad_request("A matches predicate needs a string value.", field_name=f"{where}.value")
    return _Predicate(dimension, operator, value if operator == "matches" else None)


def _parse_instant(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _interval_days(raw: Any) -> tuple[date, date]:
    """The first and last UTC day an ISO-8601 ``start/end`` interval touches."""
    if not isinstance(raw, str) or raw.count("/") != 1:
        raise _bad_request("interval is required, as an ISO-8601 start/end string.", field_name="interval")
    start_text, end_text = raw.split("/")
    try:
        start, end = _parse_instant(start_text), _parse_instant(end_text)
    except ValueError as exc:
        raise _bad_request(f"interval {raw!r} is not a valid ISO-8601 interval.", field_name="interval") from exc
    if end < start:
        raise _bad_request("interval ends before it starts.", field_name="interval")
    last = end.date()
    # An interval ending exactly at midnight does not touch the day that begins then.
    if end > start and end.time() == datetime.min.time():
        last -= timedelta(days=1)
    return start.date(), last


# ---------------------------------------------------------------------------------------------------
# Attributes PATCH body


def _participant_attributes(body: Any) -> dict[str, str]:
    """The map from a ParticipantAttributes body, or the 400 Genesys would answer."""
    if not isinstance(body, dict):
        raise _bad_request("The body must be a ParticipantAttributes object.")
    unknown = sorted(k for k in body if k != "attributes")
    if unknown:
        raise _GenesysError(
            400,
            "bad.request",
            f'Unrecognized field "{unknown[0]}": ParticipantAttributes has only "attributes".',
            details=[{"errorCode": "unrecognized.field", "fieldName": k} for k in unknown],
        )
    attributes = body.get("attributes")
    if attributes is None:
        raise _GenesysError(
            400,
            "conversation.error.participant.attribute.null",
            "Participant attributes cannot be null.",
            details=[{"errorCode": "conversation.error.participant.attribute.null", "fieldName": "attributes"}],
        )
    if not isinstance(attributes, dict):
        raise _bad_request("attributes must be an object of string values.", field_name="attributes")
    bad = [(k, v) for k, v in attributes.items() if not isinstance(v, str)]
    if bad:
        shown = json.dumps(bad[0][1])
        template = "Value [{value}] is not valid for field type [{type}]. Allowable values are: {allowed}"
        params = {"value": shown, "type": "String", "allowed": "any JSON string"}
        raise _GenesysError(
            400,
            "invalid.value",
            template.format(**params),
            template=template,
            params=params,
            details=[{"errorCode": "invalid.value", "fieldName": f"attributes.{k}"} for k, _ in bad],
        )
    return dict(attributes)


# ---------------------------------------------------------------------------------------------------
# The HTTP layer


class _RequestHandler(RequestHandler):
    def do_HEAD(self) -> None:
        self._serve(head_only=True)

    def framing_error(self) -> Reply:
        return _bad_request().answer()

    decode_path = True  # ids in paths are matched decoded, as Genesys' router does

    def answer(self, request: Request) -> Reply | None:
        return cast(FakeGenesysCloud, self.server.owner)._answer(request)


# ---------------------------------------------------------------------------------------------------
# The fake


class FakeGenesysCloud(LocalHttpServer):
    """A local Genesys Cloud org with one OAuth client; see the module docstring for the contract."""

    def __init__(
        self,
        *,
        client_id: str = "fake-client-id",
        client_secret: str = "fake-client-secret",
        token_lifetime_s: int = 86400,
        requests_per_minute: int = 300,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        email_match: Literal["ignore_case", "exact"] = "ignore_case",
        heartbeat_interval_s: float = DEFAULT_HEARTBEAT_INTERVAL_S,
        channel_lifetime_s: float = DEFAULT_CHANNEL_LIFETIME_S,
    ) -> None:
        if email_match not in ("ignore_case", "exact"):
            raise ValueError(f"email_match must be 'ignore_case' or 'exact', not {email_match!r}")
        super().__init__(handler=_RequestHandler, thread_name="fake-genesys-cloud")
        self.email_match = email_match
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_lifetime_s = token_lifetime_s
        self.division_id = str(uuid.uuid4())
        self.patches: list[RecordedPatch] = []
        self.requests: list[RecordedRequest] = []
        # Unexpected exceptions inside the fake (its own bugs), answered as 500; tests may assert empty.
        self.server_errors: list[BaseException] = []
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.RLock()
        self._rate_limit = requests_per_minute
        self._permissions: set[str] = set(DEFAULT_PERMISSIONS)
        self._users: dict[str, _User] = {}
        self._conversations: dict[str, _Conversation] = {}
        self._tokens: dict[str, _Token] = {}
        self._counted_faults: list[_CountedFault] = []
        self._window_faults: list[_WindowFault] = []
        self._routes = self._build_routes()
        self._notifications = NotificationService(
            clock=clock,
            wall_clock=wall_clock,
            heartbeat_interval_s=heartbeat_interval_s,
            channel_lifetime_s=channel_lifetime_s,
        )

    # stopping, the with-block and base_url come from LocalHttpServer.

    def start(self) -> Self:
        self._notifications.start()  # first: channels hand out its connectUri
        return super().start()

    def stop(self) -> None:
        """Stop the HTTP server and the notifications' WebSocket listener, sockets and threads; idempotent."""
        super().stop()
        self._notifications.stop()

    def close(self) -> None:
        """The same as ``stop()``."""
        self.stop()

    # -- directory ----------------------------------------------------------------------------------

    def add_user(self, email: str, *, name: str = "", state: str = "active", user_id: str | None = None) -> str:
        if state not in {"active", "inactive", "deleted"}:
            raise ValueError(f"user state must be active, inactive or deleted, not {state!r}")
        user = _User(user_id or str(uuid.uuid4()), name or email.split("@", 1)[0], email, state)
        with self._lock:
            if user.id in self._users:
                raise ValueError(f"user {user.id} exists")
            self._users[user.id] = user
        return user.id

    # -- conversations ------------------------------------------------------------------------------

    def start_conversation(
        self,
        user_id: str,
        *,
        media_type: str = "voice",
        conversation_id: str | None = None,
        purpose: str = "agent",
    ) -> JoinedParticipant:
        if media_type not in MEDIA_KEYS:
            raise ValueError(f"media_type must be one of {sorted(MEDIA_KEYS)}, not {media_type!r}")
        with self._lock:
            cid = conversation_id or str(uuid.uuid4())
            if cid in self._conversations:
                raise ValueError(f"conversation {cid} exists")
            conversation = _Conversation(cid, media_type, self._wall_clock(), len(self._conversations))
            self._conversations[cid] = conversation
            self._join(conversation, None, "customer")
            joined = self._join(conversation, user_id, purpose)
            self._publish(conversation)
            return joined

    def add_participant(self, conversation_id: str, user_id: str | None, *,
                        purpose: str = "agent") -> JoinedParticipant:
        """Another participant connects: a user (a transfer's or consult's new leg, purpose ``agent`` or ``user``) or,
        with ``user_id`` None, someone outside the org (purpose ``external``, e.g. a consult to a phone number)."""
        if user_id is None and purpose not in ("customer", "external"):
            raise ValueError(f"a participant without a user has purpose customer or external, not {purpose!r}")
        with self._lock:
            conversation = self._conversation(conversation_id)
            if conversation.end is not None:
                raise ValueError(f"conversation {conversation_id} has ended")
            joined = self._join(conversation, user_id, purpose)
            self._publish(conversation)
            return joined

    def end_participant(self, conversation_id: str, participant_id: str, *, keep_in_analytics: bool = False) -> None:
        """End one participant; ``keep_in_analytics``: the analytics query keeps reporting it live (a lagging index)."""
        with self._lock:
            conversation = self._conversation(conversation_id)
            participant = conversation.participant(participant_id)
            if participant is None:
                raise KeyError(f"no participant {participant_id} in conversation {conversation_id}")
            if participant.end is None:
                participant.end = self._wall_clock()
                participant.stale_in_analytics = keep_in_analytics
                self._publish(conversation)

    def end_conversation(self, conversation_id: str, *, keep_in_analytics: bool = False) -> None:
        """End the conversation and its participants; ``keep_in_analytics``: analytics keeps reporting it live."""
        with self._lock:
            conversation = self._conversation(conversation_id)
            now = self._wall_clock()
            for participant in conversation.participants:
                if participant.end is None:
                    participant.end = now
                    participant.stale_in_analytics = keep_in_analytics
            if conversation.end is None:
                conversation.end = now
                conversation.stale_in_analytics = keep_in_analytics
                self._publish(conversation)

    def catch_up_analytics(self) -> None:
        """End every analytics lag: the query reports ended conversations and participants as ended again."""
        with self._lock:
            for conversation in self._conversations.values():
                conversation.stale_in_analytics = False
                for participant in conversation.participants:
                    participant.stale_in_analytics = False

    def attributes(self, conversation_id: str, participant_id: str) -> dict[str, str]:
        with self._lock:
            participant = self._conversation(conversation_id).participant(participant_id)
            if participant is None:
                raise KeyError(f"no participant {participant_id} in conversation {conversation_id}")
            return dict(participant.attributes)

    def customer_participant_id(self, conversation_id: str) -> str:
        """The id of the customer participant every conversation gets."""
        with self._lock:
            conversation = self._conversation(conversation_id)
            return next(p.id for p in conversation.participants if p.purpose == "customer")

    def request_count(self, method: str | None = None, path_prefix: str = "") -> int:
        with self._lock:
            return sum(
                1
                for r in self.requests
                if (method is None or r.method == method.upper()) and r.path.startswith(path_prefix)
            )

    def _conversation(self, conversation_id: str) -> _Conversation:
        conversation = self._conversations.get(conversation_id)
        if conversation is None:
            raise KeyError(f"no conversation {conversation_id}")
        return conversation

    def _join(self, conversation: _Conversation, user_id: str | None, purpose: str) -> JoinedParticipant:
        user = self._users.get(user_id) if user_id else None
        name = user.name if user else {"customer": "Customer", "external": "External"}.get(purpose, "")
        # Each join is stamped after the one before it (a millisecond at least, Genesys' resolution), so "the most
        # recently connected" is never a tie, however fast a test joins people.
        start = self._wall_clock()
        if conversation.participants:
            start = max(start, max(p.start for p in conversation.participants) + 0.001)
        participant = _Participant(
            id=str(uuid.uuid4()),
            purpose=purpose,
            user_id=user_id,
            name=name,
            start=start,
            communication_id=str(uuid.uuid4()),
            session_id=str(uuid.uuid4()),
        )
        conversation.participants.append(participant)
        return JoinedParticipant(conversation.id, participant.id, user_id or "", conversation.media_type)

    # -- faults and knobs ---------------------------------------------------------------------------

    def fail_next(self, status: int, count: int = 1, *, path_prefix: str = "", retry_after: int | None = None) -> None:
        with self._lock:
            self._counted_faults.append(_CountedFault("fail", status, count, path_prefix, retry_after))

    def fail_for(self, status: int, seconds: float, *, path_prefix: str = "", retry_after: int | None = None) -> None:
        with self._lock:
            now = self._clock()
            self._window_faults.append(_WindowFault(status, now, now + seconds, path_prefix, retry_after))

    def drop_next(self, count: int = 1, *, path_prefix: str = "") -> None:
        with self._lock:
            # Drops go first so a drop and a failure on the same path behave predictably.
            self._counted_faults.insert(0, _CountedFault("drop", 0, count, path_prefix, None))

    def expire_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    def revoke_permission(self, permission: str) -> None:
        with self._lock:
            self._permissions.discard(permission)

    def grant_permission(self, permission: str) -> None:
        with self._lock:
            self._permissions.add(permission)

    def set_rate_limit(self, requests_per_minute: int) -> None:
        with self._lock:
            self._rate_limit = requests_per_minute

    # -- notifications (localdev/genesys_notifications.py) ------------------------------------------

    def drop_sockets(self) -> None:
        """Cut every notification WebSocket's TCP connection: no close frame (the client sees 1006)."""
        self._notifications.drop_sockets()

    def announce_socket_closing(self, grace_s: float = 1.0) -> None:
        """Send ``v2.system.socket_closing`` on every WebSocket; close each (frame 1001) ``grace_s`` later."""
        self._notifications.announce_socket_closing(grace_s)

    def expire_channels(self) -> None:
        """End every channel now: sockets closed (frame 1001); REST calls and handshakes on them 404."""
        self._notifications.expire_channels()

    def pause_heartbeats(self) -> None:
        """Stop sending ``channel.metadata`` heartbeats (a stalled service: the socket stays open but silent)."""
        self._notifications.pause_heartbeats()

    def resume_heartbeats(self) -> None:
        """Send heartbeats again, the next one a full interval from now."""
        self._notifications.resume_heartbeats()

    def notification_channels(self) -> list[ChannelInfo]:
        """The live channels, oldest first: id, topics, whether a socket is connected, ``expires``."""
        return self._notifications.channel_infos()

    def subscribed_topics(self) -> frozenset[str]:
        """Every topic some live channel has ``Permitted`` (rejected topics are not subscribed)."""
        return self._notifications.permitted_topics()

    def socket_connections(self) -> int:
        """Open notification WebSockets."""
        return self._notifications.socket_count()

    def published_events(self) -> int:
        """Conversation event messages queued to sockets so far (one per socket and topic; heartbeats not counted)."""
        return self._notifications.published_count()

    def _publish(self, conversation: _Conversation) -> None:
        """Queue the conversation's new state to the channels of every user in it (also those who left); the
        caller holds ``_lock``, so events go out in the order of the changes. Never waits for a socket."""
        topics = [f"v2.users.{p.user_id}.conversations" for p in conversation.participants if p.user_id]
        if not topics:
            return
        body: dict[str, Any] = {
            "id": conversation.id,
            "participants": [self._conversation_participant(conversation, p) for p in conversation.participants],
            "recordingState": "none",
        }
        self._notifications.publish(topics, body)

    # -- request handling ---------------------------------------------------------------------------

    def _answer(self, request: Request) -> Reply | None:
        """The answer to one request (None: drop the connection), recorded in ``requests``."""
        token = self._presented_token(request) if request.path.startswith("/api/") else None
        try:
            answer = self._answer_unrecorded(request)
        except Exception as exc:  # noqa: BLE001 (a bug in the fake must not kill the connection silently)
            self.server_errors.append(exc)
            code, message = _FAULT_ERRORS[500]
            answer = _GenesysError(500, code, f"{message} ({type(exc).__name__}: {exc})").answer()
        with self._lock:
            self.requests.append(
                RecordedRequest(request.method, request.path, 0 if answer is None else answer.status, token)
            )
        return answer

    def _answer_unrecorded(self, request: Request) -> Reply | None:
        fault = self._take_fault(request.path)
        self._delay()
        if self._stopping.is_set():
            return None  # stopped while this request waited: a stopped server answers nothing
        is_api = request.path.startswith("/api/v2/") or request.path == "/api/v2"
        if fault is not None:
            kind, status, retry_after = fault
            if kind == "drop":
                return None
            answer = self._fault_error(status, retry_after).answer()
            return answer.with_headers(self._peek_rate(request).headers()) if is_api else answer
        if request.path == "/oauth/token":
            return self._token_endpoint(request)
        if not is_api:
            return _not_found().answer().with_headers(self._peek_rate(request).headers())
        return self._api(request)

    def _take_fault(self, path: str) -> tuple[str, int, int | None] | None:
        with self._lock:
            for rule in self._counted_faults:
                if rule.remaining > 0 and path.startswith(rule.path_prefix):
                    rule.remaining -= 1
                    self._counted_faults = [r for r in self._counted_faults if r.remaining > 0]
                    return rule.kind, rule.status, rule.retry_after
            now = self._clock()
            self._window_faults = [w for w in self._window_faults if now < w.until]
            for window in self._window_faults:
                if window.start <= now and path.startswith(window.path_prefix):
                    return "fail", window.status, window.retry_after
        return None

    def _fault_error(self, status: int, retry_after: int | None) -> _GenesysError:
        default = ("internal.server.error", "Injected failure.") if status >= 500 else ("bad.request", _MSG_BAD_REQUEST)
        code, message = _FAULT_ERRORS.get(status, default)
        headers = [("Retry-After", str(retry_after))] if retry_after is not None else []
        if status == 429:
            message = message % (self._rate_limit, RATE_WINDOW_S)
        return _GenesysError(status, code, message, headers=headers)

    # -- login host ---------------------------------------------------------------------------------

    def _token_endpoint(self, request: Request) -> Reply:
        if request.method != "POST":
            return _not_found().answer()
        if not self._client_authenticated(request.headers.get("authorization", "")):
            return self._oauth_error(401, "invalid_client", "authentication failed")
        if media_type(request.headers.get("content-type")) != _FORM_CT:
            return self._oauth_error(400, "invalid_request", f"Content-Type must be {_FORM_CT}")
        try:
            form = form_fields(request.body.decode("utf-8"))
        except UnicodeDecodeError:
            return self._oauth_error(400, "invalid_request", "the form body is not UTF-8")
        grant = form.get("grant_type", "")
        if not grant:
            return self._oauth_error(400, "invalid_request", "grant_type is required")
        if grant != "client_credentials":
            return self._oauth_error(400, "unsupported_grant_type", f"unsupported grant type: {grant}")
        value = f"fake-{uuid.uuid4().hex}{uuid.uuid4().hex}"
        with self._lock:
            self._tokens[value] = _Token(value, self._clock() + self.token_lifetime_s)
        payload = {"access_token": value, "token_type": "bearer", "expires_in": self.token_lifetime_s}
        answer = _json_answer(200, payload)
        return answer.with_headers((("Cache-Control", "no-store"),))

    def _client_authenticated(self, authorization: str) -> bool:
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        client_id, sep, secret = decoded.partition(":")
        return bool(sep) and client_id == self.client_id and secret == self.client_secret

    @staticmethod
    def _oauth_error(status: int, error: str, description: str) -> Reply:
        return _json_answer(status, {"error": error, "description": description, "error_description": description})

    # -- API host -----------------------------------------------------------------------------------

    def _api(self, request: Request) -> Reply:
        try:
            token = self._authenticated_token(request)
        except _GenesysError as error:
            return error.answer().with_headers(self._peek_rate(request).headers())
        try:
            rate = self._consume_rate(token)
        except _GenesysError as error:
            return error.answer()
        try:
            answer = self._dispatch(request)
        except _GenesysError as error:
            answer = error.answer()
        if not any(name == "ININ-Correlation-Id" for name, _ in answer.headers):
            answer = answer.with_headers((("ININ-Correlation-Id", str(uuid.uuid4())),))
        return answer.with_headers(rate.headers())

    @staticmethod
    def _presented_token(request: Request) -> str | None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        return value.strip() or None

    def _authenticated_token(self, request: Request) -> _Token:
        value = self._presented_token(request)
        if value is None:
            raise _GenesysError(
                401, "authentication.required", "No authentication bearer token specified in authorization header."
            )
        with self._lock:
            token = self._tokens.get(value)
            if token is not None and self._clock() >= token.expires_at:
                del self._tokens[value]
                token = None
        if token is None:
            raise _GenesysError(401, "bad.credentials", "Invalid login credentials.")
        return token

    def _consume_rate(self, token: _Token) -> _RateView:
        with self._lock:
            now = self._clock()
            if token.window_start is None or now - token.window_start >= RATE_WINDOW_S:
                token.window_start, token.window_count = now, 0
            reset = max(1, math.ceil(token.window_start + RATE_WINDOW_S - now))
            if token.window_count >= self._rate_limit:
                view = _RateView(self._rate_limit, token.window_count, reset)
                template = "Rate limit exceeded the maximum [{limit}] requests within [{duration}] seconds"
                params = {"limit": str(self._rate_limit), "duration": str(RATE_WINDOW_S)}
                raise _GenesysError(
                    429,
                    "too.many.requests",
                    template.format(**params),
                    template=template,
                    params=params,
                    headers=[("Retry-After", str(reset)), *view.headers()],
                    limit={
                        "key": "client.credentials.token.rate.per.minute",
                        "namespace": "platform.api",
                        "value": self._rate_limit,
                    },
                )
            token.window_count += 1
            return _RateView(self._rate_limit, token.window_count, reset)

    def _peek_rate(self, request: Request) -> _RateView:
        """The presented token's window without counting this request (none or invalid: an empty window)."""
        value = self._presented_token(request)
        with self._lock:
            now = self._clock()
            token = self._tokens.get(value) if value else None
            if token is None or token.window_start is None or now - token.window_start >= RATE_WINDOW_S:
                return _RateView(self._rate_limit, 0, RATE_WINDOW_S)
            reset = max(1, math.ceil(token.window_start + RATE_WINDOW_S - now))
            return _RateView(self._rate_limit, token.window_count, reset)

    def _dispatch(self, request: Request) -> Reply:
        route, params = self._resolve(request)
        if len(request.body) > MAX_BODY_BYTES:
            raise _GenesysError(
                413,
                "request.entity.too.large",
                f"The request is over the maximum allowed size of {MAX_BODY_BYTES} bytes.",
                limit={"key": "request.bytes.max", "namespace": "platform.api", "value": MAX_BODY_BYTES},
            )
        if route.takes_json and media_type(request.headers.get("content-type")) != _JSON_CT:
            code, message = _FAULT_ERRORS[415]
            raise _GenesysError(415, code, message)
        self._check_permissions(route)
        return route.handler(request, params)

    def _resolve(self, request: Request) -> tuple[_Route, dict[str, str]]:
        method = "GET" if request.method == "HEAD" else request.method
        for route in self._routes:
            match = route.pattern.fullmatch(request.path)
            if match and route.method == method:
                return route, match.groupdict()
        raise _not_found()

    def _check_permissions(self, route: _Route) -> None:
        with self._lock:
            held = set(self._permissions)
        if not route.permissions:
            return
        if route.any_of:
            if not held.intersection(route.permissions):
                raise _permission_error(route.permissions, any_of=True)
            return
        missing = [p for p in route.permissions if p not in held]
        if missing:
            raise _permission_error(missing, any_of=False)

    def _build_routes(self) -> tuple[_Route, ...]:
        seg = r"(?P<{}>[^/]+)"
        conversation = "/api/v2/conversations/" + seg.format("conversation_id")
        subscriptions = "/api/v2/notifications/channels/" + seg.format("channel_id") + "/subscriptions"
        return (
            _Route(
                "POST", re.compile(r"/api/v2/users/search"), self._post_users_search, (PERM_USER_VIEW,), takes_json=True
            ),
            _Route("GET", re.compile(r"/api/v2/users/search"), self._get_users_search, (PERM_USER_VIEW,)),
            _Route("GET", re.compile("/api/v2/users/" + seg.format("user_id")), self._get_user),
            _Route(
                "POST",
                re.compile(r"/api/v2/analytics/conversations/details/query"),
                self._post_analytics_query,
                (PERM_ANALYTICS_DETAIL, PERM_ANALYTICS_AGENT_DETAIL),
                any_of=True,
                takes_json=True,
            ),
            _Route("POST", re.compile(r"/api/v2/notifications/channels"), self._post_channel),
            _Route("GET", re.compile(r"/api/v2/notifications/channels"), self._get_channels),
            _Route("GET", re.compile(subscriptions), self._get_subscriptions),
            _Route("POST", re.compile(subscriptions), self._put_or_post_subscriptions, takes_json=True),
            _Route("PUT", re.compile(subscriptions), self._put_or_post_subscriptions, takes_json=True),
            _Route("DELETE", re.compile(subscriptions), self._delete_subscriptions),
            _Route("GET", re.compile(conversation), self._get_conversation, (PERM_COMMUNICATION_VIEW,)),
            _Route(
                "PATCH",
                re.compile(conversation + "/participants/" + seg.format("participant_id") + "/attributes"),
                self._patch_attributes,
                takes_json=True,
            ),
        )

    # -- users --------------------------------------------------------------------------------------

    def _post_users_search(self, request: Request, params: Mapping[str, str]) -> Reply:
        return self._users_search(_parse_json(request.body))

    def _get_users_search(self, request: Request, params: Mapping[str, str]) -> Reply:
        q64 = request.query.get("q64", "")
        if not q64:
            raise _bad_request("q64 is required.", field_name="q64")
        try:
            decoded = base64.b64decode(q64, validate=True)
        except binascii.Error as exc:
            raise _bad_request("q64 is not base64.", field_name="q64") from exc
        return self._users_search(_parse_json(decoded))

    def _users_search(self, body: Any) -> Reply:
        if not isinstance(body, dict):
            raise _bad_request("The body must be a UserSearchRequest object.")
        criteria = _parse_criteria(body.get("query"), "query")
        page_size, page_number = _page_spec(body, "")
        sort_order = body.get("sortOrder", "ASC")
        if sort_order not in _SEARCH_SORT_ORDERS:
            raise _bad_request(f"Unknown sortOrder {sort_order!r}.", field_name="sortOrder")
        sort_by = body.get("sortBy") or "name"
        if not isinstance(sort_by, str):
            raise _bad_request("sortBy must be a string.", field_name="sortBy")
        implicit_active = not _mentions_state(criteria)
        with self._lock:
            users = list(self._users.values())
        hits = [
            u
            for u in users
            if _criteria_hold(criteria, _user_fields(u), self.email_match == "exact")
            and (not implicit_active or u.state == "active")
        ]
        hits.sort(key=lambda u: (_user_fields(u).get(sort_by, "").casefold(), u.id), reverse=sort_order == "DESC")
        total = len(hits)
        page_count = math.ceil(total / page_size)
        payload: dict[str, Any] = {
            "total": total,
            "pageCount": page_count,
            "pageSize": page_size,
            "pageNumber": page_number,
            "types": ["users"],
        }
        page = hits[(page_number - 1) * page_size : page_number * page_size]
        if page:
            payload["results"] = [_user_json(u, self.division_id) for u in page]
        if total:
            payload["currentPage"] = _q64_link(body, page_number)
            if page_number > 1:
                payload["previousPage"] = _q64_link(body, page_number - 1)
            if page_number < page_count:
                payload["nextPage"] = _q64_link(body, page_number + 1)
        return _json_answer(200, payload)

    def _get_user(self, request: Request, params: Mapping[str, str]) -> Reply:
        with self._lock:
            user = self._users.get(params["user_id"])
        if user is None:
            raise _not_found()
        return _json_answer(200, _user_json(user, self.division_id))

    # -- analytics ----------------------------------------------------------------------------------

    def _post_analytics_query(self, request: Request, params: Mapping[str, str]) -> Reply:
        body = _parse_json(request.body)
        if not isinstance(body, dict):
            raise _bad_request("The body must be a ConversationQuery object.")
        for name in _UNSUPPORTED_QUERY_LISTS:
            if body.get(name):
                raise _bad_request(f"{name} is not supported by this fake.", field_name=name)
        conversation_filters = _parse_filters(
            body.get("conversationFilters"), "conversationFilters", _CONVERSATION_DIMENSIONS
        )
        segment_filters = _parse_filters(body.get("segmentFilters"), "segmentFilters", _SEGMENT_DIMENSIONS)
        first_day, last_day = _interval_days(body.get("interval"))
        order = body.get("order", "asc")
        if order not in _ORDERS:
            raise _bad_request(f"Unknown order {order!r}.", field_name="order")
        order_by = body.get("orderBy", "conversationStart")
        if order_by not in _ORDER_BYS:
            raise _bad_request(f"Unknown orderBy {order_by!r}.", field_name="orderBy")
        paging = body.get("paging") or {}
        if not isinstance(paging, dict):
            raise _bad_request("paging must be an object.", field_name="paging")
        page_size, page_number = _page_spec(paging, "paging.")

        with self._lock:
            matched = [
                c
                for c in sorted(self._conversations.values(), key=lambda c: c.sequence)
                if first_day <= datetime.fromtimestamp(c.start, UTC).date() <= last_day
                and self._passes(c, conversation_filters, segment_filters)
            ]
            if order != "unordered":
                matched.sort(key=_sort_key(order_by), reverse=order == "desc")
            page = [
                self._analytics_conversation(c)
                for c in matched[(page_number - 1) * page_size : page_number * page_size]
            ]
        payload: dict[str, Any] = {"totalHits": len(matched)}
        if page:
            payload = {"conversations": page, "totalHits": len(matched)}
        return _json_answer(200, payload)

    def _passes(
        self, conversation: _Conversation, conversation_filters: Sequence[_Filter], segment_filters: Sequence[_Filter]
    ) -> bool:
        context = self._conversation_dimensions(conversation)
        if not all(f.holds(context) for f in conversation_filters):
            return False
        segments = list(self._segment_dimensions(conversation, context))
        return all(any(f.holds(s) for s in segments) for f in segment_filters)

    def _conversation_dimensions(self, conversation: _Conversation) -> dict[str, str | None]:
        return {
            "conversationId": conversation.id,
            "conversationStart": _iso(conversation.start),
            "conversationEnd": _iso(end) if (end := conversation.analytics_end) is not None else None,
            "originatingDirection": "inbound",
            "divisionId": self.division_id,
        }

    def _segment_dimensions(
        self, conversation: _Conversation, base: Mapping[str, str | None]
    ) -> Iterator[dict[str, str | None]]:
        for p in conversation.participants:
            yield {
                **base,
                "userId": p.user_id,
                "purpose": p.purpose,
                "participantId": p.id,
                "participantName": p.name or None,
                "mediaType": conversation.media_type,
                "direction": "inbound",
                "sessionId": p.session_id,
                "segmentType": "interact",
                "segmentStart": _iso(p.start),
                "segmentEnd": _iso(end) if (end := p.analytics_end) is not None else None,
            }

    def _analytics_conversation(self, conversation: _Conversation) -> dict[str, Any]:
        result: dict[str, Any] = {
            "conversationId": conversation.id,
            "conversationStart": _iso(conversation.start),
            "divisionIds": [self.division_id],
            "originatingDirection": "inbound",
            "participants": [self._analytics_participant(conversation, p) for p in conversation.participants],
        }
        if conversation.analytics_end is not None:
            result["conversationEnd"] = _iso(conversation.analytics_end)
        return result

    @staticmethod
    def _analytics_participant(conversation: _Conversation, p: _Participant) -> dict[str, Any]:
        segment: dict[str, Any] = {"segmentType": "interact", "segmentStart": _iso(p.start)}
        if p.analytics_end is not None:
            segment["segmentEnd"] = _iso(p.analytics_end)
            segment["disconnectType"] = "endpoint"
        participant: dict[str, Any] = {
            "participantId": p.id,
            "purpose": p.purpose,
            "sessions": [
                {
                    "sessionId": p.session_id,
                    "mediaType": conversation.media_type,
                    "direction": "inbound",
                    "segments": [segment],
                }
            ],
        }
        if p.name:
            participant["participantName"] = p.name
        if p.user_id:
            participant["userId"] = p.user_id
        return participant

    # -- conversations ------------------------------------------------------------------------------

    def _get_conversation(self, request: Request, params: Mapping[str, str]) -> Reply:
        with self._lock:
            conversation = self._conversations.get(params["conversation_id"])
            if conversation is None:
                raise _not_found()
            payload: dict[str, Any] = {
                "id": conversation.id,
                "startTime": _iso(conversation.start),
                "participants": [self._conversation_participant(conversation, p) for p in conversation.participants],
                "divisions": [
                    {
                        "division": {
                            "id": self.division_id,
                            "selfUri": f"/api/v2/authorization/divisions/{self.division_id}",
                        },
                        "entities": [],
                    }
                ],
                "recordingState": "none",
                "selfUri": f"/api/v2/conversations/{conversation.id}",
            }
            if conversation.end is not None:
                payload["endTime"] = _iso(conversation.end)
        return _json_answer(200, payload)

    @staticmethod
    def _conversation_participant(conversation: _Conversation, p: _Participant) -> dict[str, Any]:
        communication: dict[str, Any] = {
            "id": p.communication_id,
            "state": "connected" if p.end is None else "disconnected",
            "direction": "inbound",
            "connectedTime": _iso(p.start),
        }
        if conversation.media_type == "voice":
            communication.update(held=False, muted=False, confined=False, recording=False)
        if p.end is not None:
            communication["disconnectedTime"] = _iso(p.end)
            communication["disconnectType"] = "endpoint"
        participant: dict[str, Any] = {
            "id": p.id,
            "startTime": _iso(p.start),
            "connectedTime": _iso(p.start),
            "purpose": p.purpose,
            "attributes": dict(p.attributes),
            "wrapupRequired": False,
            MEDIA_KEYS[conversation.media_type]: [communication],
        }
        if p.name:
            participant["name"] = p.name
        if p.user_id:
            participant["userId"] = p.user_id
        if p.end is not None:
            participant["endTime"] = _iso(p.end)
        return participant

    def _patch_attributes(self, request: Request, params: Mapping[str, str]) -> Reply:
        attributes = _participant_attributes(_parse_json(request.body))
        cid, pid = params["conversation_id"], params["participant_id"]
        with self._lock:
            conversation = self._conversations.get(cid)
            participant = conversation.participant(pid) if conversation else None
            if conversation is None or participant is None:
                raise _not_found()
            if conversation.end is not None or participant.end is not None:
                raise _GenesysError(
                    400,
                    "conversation.error.participant.no.active.conversations",
                    "The participant has no active conversations.",
                )
            participant.attributes.update(attributes)
            self.patches.append(RecordedPatch(cid, pid, attributes, self._clock()))
            self._publish(conversation)
        return Reply(202)

    # -- notifications ------------------------------------------------------------------------------

    def _post_channel(self, request: Request, params: Mapping[str, str]) -> Reply:
        return _json_answer(200, self._notifications.create_channel(self.client_id))

    def _get_channels(self, request: Request, params: Mapping[str, str]) -> Reply:
        return _json_answer(200, {"entities": self._notifications.channels_json(self.client_id)})

    def _get_subscriptions(self, request: Request, params: Mapping[str, str]) -> Reply:
        try:
            topics = self._notifications.topics(self.client_id, params["channel_id"])
        except ChannelNotFound as exc:
            raise _not_found() from exc
        return _topics_answer(topics)

    def _put_or_post_subscriptions(self, request: Request, params: Mapping[str, str]) -> Reply:
        requested = _channel_topics(_parse_json(request.body))
        try:
            self._notifications.topics(self.client_id, params["channel_id"])  # an unknown channel is 404 first
        except ChannelNotFound as exc:
            raise _not_found() from exc
        with self._lock:
            held = set(self._permissions)
        states = [_topic_state(topic, held) for topic in requested]
        missing = sorted({p for s in states for p in s.missing_permissions})
        # Without ignoreErrors=true a failed permission check fails the call (the SDKs' "Optionally prevent
        # throwing of errors for failed permissions checks"); with it, the topic is listed Rejected.
        if missing and request.query.get("ignoreErrors", "false").lower() != "true":
            raise _permission_error(missing, any_of=False)
        try:
            topics = self._notifications.subscribe(
                self.client_id, params["channel_id"], states, replace=request.method == "PUT"
            )
        except ChannelNotFound as exc:
            raise _not_found() from exc
        except TooManyTopics as exc:
            raise _bad_request(str(exc)) from exc
        return _topics_answer(topics)

    def _delete_subscriptions(self, request: Request, params: Mapping[str, str]) -> Reply:
        try:
            self._notifications.unsubscribe_all(self.client_id, params["channel_id"])
        except ChannelNotFound as exc:
            raise _not_found() from exc
        return Reply(200)


def _channel_topics(body: Any) -> list[str]:
    """The topic names of a ``[{"id": topic}, ...]`` body (``ChannelTopic`` list), or the 400 Genesys answers."""
    if not isinstance(body, list):
        raise _bad_request("The body must be a list of ChannelTopic objects.")
    topics: list[str] = []
    for i, item in enumerate(body):
        topic = item.get("id") if isinstance(item, dict) else None
        if not isinstance(topic, str) or not topic:
            raise _bad_request("Each ChannelTopic needs an id, the topic's name.", field_name=f"[{i}].id")
        topics.append(topic)
    return topics


def _topic_state(topic: str, held: set[str]) -> TopicState:
    """Whether a topic is Permitted to this client (see the assumptions in genesys_notifications)."""
    if not _USER_CONVERSATIONS_TOPIC.fullmatch(topic):
        return TopicState(topic, "Rejected", "Topic is not supported")
    if PERM_USER_CONVERSATIONS_TOPIC not in held:
        return TopicState(topic, "Rejected", "Missing permissions", (PERM_USER_CONVERSATIONS_TOPIC,))
    return TopicState(topic, "Permitted")


def _topics_answer(topics: Sequence[TopicState]) -> Reply:
    return _json_answer(200, {"entities": [t.json() for t in topics]})


def _sort_key(order_by: str) -> Callable[[_Conversation], tuple[float, int]]:
    """Sort key for the analytics query's orderBy; creation order breaks ties so paging is stable."""
    never = math.inf  # live conversations and segments sort after every timestamp

    def key(conversation: _Conversation) -> tuple[float, int]:
        participants = conversation.participants
        if order_by == "conversationEnd":
            primary = conversation.analytics_end if conversation.analytics_end is not None else never
        elif order_by == "segmentStart":
            primary = min((p.start for p in participants), default=conversation.start)
        elif order_by == "segmentEnd":
            primary = max((p.analytics_end if p.analytics_end is not None else never for p in participants),
                          default=never)
        else:
            primary = conversation.start
        return primary, conversation.sequence

    return key
