"""A faithful local Slack Web API and ``response_url`` receiver: a real HTTP server on 127.0.0.1.

For end-to-end tests (the app runs as a real process with ``SLACK_API_URL=<fake.api_url>``) and
benchmarks. One ``ThreadingHTTPServer`` on a daemon thread serves:

* ``/api/<method>``: the Web API, GET or POST, the way ``slack_sdk.WebClient(base_url=fake.api_url)``
  calls it (it POSTs every method, form-encoded, even the ones declared GET; reference §5.1).
* ``/commands/<team>/<n>/<secret>``: the URLs ``response_url()`` hands out, recording what is POSTed.

Facts come from ``/work/shared/reference/slack-platform.md`` (§ numbers below) and the method pages
mirrored in slack-ruby/slack-api-ref ``docs.slack.dev/methods/*.json``. Marks as in the reference:
[V] Slack's own docs or library source, [S] secondary (third-party observation), [U] undocumented.

Served methods (scope needed; documented tier)
----------------------------------------------
``auth.test`` (none; the docs mirror says "t5", not limited by ``apply_documented_tiers``),
``users.info`` (``users:read``; 4), ``users.profile.get`` (``users.profile:read``; 4),
``team.profile.get`` (``users.profile:read``; 3), ``users.list`` (``users:read``; 2),
``users.lookupByEmail`` (``users:read.email``; 3), ``auth.revoke`` (none; the token stops working unless
``test`` is true, as ``revoke_token()``), ``views.publish`` (none; 4). ``block_actions_body`` builds the
form-encoded interaction Slack POSTs when a person clicks in a published view. Every answer is HTTP 200
``{"ok": true, ...}`` or ``{"ok": false, "error": ...}`` except 429 (rate limit) and injected faults.

Order of checks for ``/api/<method>``
-------------------------------------
latency → injected fault (``fail_next``) → unknown method → body syntax → token (``not_authed``,
then ``invalid_auth``) → rate limit (429) → scope (``missing_scope``) → arguments → the method.

Documented behaviour the fake follows
-------------------------------------
* Token: ``Authorization: Bearer`` header, or a ``token`` POST (form) parameter ("Tokens should be
  passed as an HTTP Authorization header or alternatively, as a POST parameter", every method page) [V].
  None → ``not_authed``; any other token → ``invalid_auth`` (auth.test examples) [V].
* ``missing_scope`` carries ``needed`` (the method's scope) and ``provided`` (the granted scopes,
  comma-separated; here sorted because ``scopes`` is a set) [S: real bodies quoted in many clients].
* ``users:read.email`` gates ``profile.email`` in ``users.info``/``users.list``/``users.lookupByEmail``
  user objects; ``users.profile.get`` returns ``email`` with ``users.profile:read`` alone (§2) [V].
* ``users.list``: ``cursor``/``limit``; no ``limit`` (or 0) → the whole set in one page (docs: "Slack
  attempting to deliver you the entire result set") [V]; ``response_metadata.next_cursor`` is ``""`` on
  the last page; deactivated users and bots are included (§5) [V]; ``cache_ts`` present [V].
* ``users.lookupByEmail``: a deactivated user → ``users_not_found`` (api.slack.com page, quoted in
  pablovarela/terraform-provider-slack#251) [S]; unknown address → ``users_not_found`` [V].
* ``include_locale`` adds ``locale``; ``users.profile.get`` ``include_labels`` adds ``label`` to each
  custom field [V]. ``team.profile.get`` ``visibility`` = ``all``/``visible``/``hidden`` [V].
* 429: ``Retry-After`` (seconds) and ``{"ok": false, "error": "ratelimited"}`` (§5) [V].

Undocumented behaviour and the choice this fake makes
-----------------------------------------------------
* **Unknown method**: HTTP **200** ``{"ok": false, "error": "unknown_method", "req_method": name}``,
  checked before the token (third parties observed exactly this from slack.com without a token) [S].
  Real Slack methods this fake does not model answer the same way.
* **Missing required argument** (``user`` for users.info, ``email`` for users.lookupByEmail): 200
  ``invalid_arguments`` with ``response_metadata.messages: ["[ERROR] missing required field: user"]``
  (the shape seen from other methods) [S]. A non-integer or negative ``limit`` and an unknown
  ``visibility`` are ``invalid_arguments`` too ("[ERROR] invalid value for field: ...") [U]. A bad
  cursor is the documented ``invalid_cursor``. ``limit`` above 1000 is served as 1000 (the pagination
  guide's maximum) [U]; ``limit_required`` is never answered.
* **Bodies**: form (``application/x-www-form-urlencoded``) and JSON are accepted for every method, merged
  over the query string (body wins). Real Slack documents JSON input only for some methods
  (``json_input_supported``; auth.test yes, the users.* readers no): the fake is lenient here, so an app
  that sends JSON to users.info passes against the fake but may not against Slack. Broken JSON →
  ``invalid_json``; JSON that is not an object → ``json_not_object``; another Content-Type with a body →
  ``invalid_post_type`` (multipart and text/plain are real but not modelled). A ``token`` inside JSON or
  the query string is ignored (JSON needs the header; query-string tokens are refused for apps created
  since Feb 2021); the call is then ``not_authed`` [U for the exact error].
* **Revoked token**: ``invalid_auth`` by default (``revoke_token(error="token_revoked")`` for the other
  answer real Slack may give) [U].
* **Rate limit**: off unless ``rate_limit()``/``apply_documented_tiers()`` is called. One fixed 60-second
  window per method (the fake has one token, so "per method per workspace per app" is per method),
  opened by the first counted call and measured with the injected ``clock``. Calls refused before the
  rate check (unknown method, bad body, bad token) and 429s do not count; ``Retry-After`` is the whole
  seconds left in the window, at least 1. No burst allowance.
* **Injected faults** (``fail_next``): answered before anything else (even an unknown method's check).
  The body is ``{"ok": false, "error": e}`` with ``e`` = ``error`` if given, else 429 ``ratelimited``,
  503 ``service_unavailable``, 504 ``request_timeout``, other 5xx and 200 ``internal_error``, anything
  else ``fatal_error`` (all real Slack error codes; which status Slack pairs them with is [U]).
  ``Retry-After`` is sent with 429 and 503 only. ``method_name="*"`` matches every method. Faulted calls
  do not count toward the rate limit.
* **Answers cut off mid-body** (``cut_next``): the method runs and its real answer is sent with a
  ``Content-Length`` for the whole body, but only half the body follows before the connection closes, as
  when a proxy or the network fails mid-answer; ``http.client`` (under ``slack_sdk``) then raises
  ``IncompleteRead``. Checked after ``fail_next``; the call is recorded (status 200) and counts as made.
* **Custom fields in user objects**: reported absent from ``users.info``/``users.list`` (§5, [S]), so
  those answers (and ``users.lookupByEmail``) carry no ``profile.fields``; set
  ``fields_in_user_objects = True`` to include them. ``users.profile.get`` always has ``fields``; with no
  values it is ``empty_fields`` (default ``{}``; Slack payloads also show ``[]`` and ``null``, §2).
  ``user()`` returns the full stored object (the shape of the user_change fixture, with ``fields``,
  ``email`` and ``locale``), suitable for building events.
* ``set_custom_field`` changes no ``updated`` (custom-field edits fire no event, §0; whether they move
  ``updated`` is [U]); an empty value removes the field from ``fields`` [U]. ``update_profile`` bumps
  ``updated`` to ``max(previous + 1, now)`` so successive states always order, even within a second.
* ``users.list`` orders members by id; cursors are base64 of ``user:<next id>`` (the docs' example cursor
  decodes to that form), so users added mid-sweep after the cursor are still listed.
* ``users.profile.get`` without ``user`` returns the token owner's (``bot_user_id``) profile, which
  exists only if a test added that user; deleted users' profiles are still served [U].
  The bot user is not added to the directory automatically.
* E-mail lookup is case-insensitive [U]. ``tz_offset`` is computed with zoneinfo at the wall-clock time
  of ``add_user``/``update_profile(tz=...)``; ``tz_label`` is a long name for common abbreviations
  (``Greenwich Mean Time``) else the abbreviation [U: Slack's own labels].
* Answers carry ``X-OAuth-Scopes`` (the granted scopes) on authenticated calls, as Slack does (not
  re-verified here).
* ``views.publish`` (reference §9a; docs.slack.dev/reference/methods/views.publish) [V]: ``user_id`` and
  ``view`` required (``invalid_arguments``, as above); ``view`` is a JSON object (a form field holds its JSON
  text) of ``type`` ``home`` with a ``blocks`` list of at most 100 objects, each with a string ``type``
  (``invalid_arguments`` with the JSON pointer in ``response_metadata.messages``); an unknown user →
  ``user_not_found``; a ``hash`` that is not the current view's → ``hash_conflict``. Bounds checked because a
  real Slack refuses them [V: Block Kit reference]: a section's ``text`` at most 3,000 characters and at most 10
  ``fields`` of 2,000; a header's text 150; a checkboxes element 10 options; a button's ``value`` 2,000; an
  option's text 75 and ``value`` 150; ``block_id`` unique within the view. [U]: Slack may check more (every
  element's shape); the fake does not. The answer's ``view`` has an ``id`` (one per person, kept across
  publishes), ``team_id``, ``app_id`` and a new ``hash``. ``published_views``/``home_view()`` keep what was
  published, per person, in order.
* ``response_url`` [S: §6 — "valid 30 minutes, at most 5 calls" comes from secondary sources only]:
  accepts POSTed JSON (or a form ``payload=<json>``), answers 200 ``ok`` (text), records
  ``RecordedResponse``. The 6th POST to one URL → 404 ``used_url``; after 30 minutes of the injected
  clock → 404 ``expired_url``; a URL never issued → 404 ``no_service``; a body that is not a JSON object
  → 400 ``invalid_payload``; non-POST → 405. Only accepted POSTs count toward the 5 and land in
  ``responses``; refused ones land in ``rejected_responses``. Message content is not validated.
* Paths outside ``/api/`` and ``/commands/`` → 404 ``not_found`` (text).
* ``requests`` is in order of answering (concurrent calls may interleave); ``params`` never holds the
  token. ``server_errors`` collects exceptions raised inside the fake (answered 500); tests may assert it
  is empty.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
import json
import math
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from localdev.http_server import Answer, LocalHttpServer, Reply, Request, RequestHandler, form_fields, media_type

SCOPE_COMMANDS = "commands"
SCOPE_USERS_READ = "users:read"
SCOPE_USERS_READ_EMAIL = "users:read.email"
SCOPE_PROFILE_READ = "users.profile:read"
DEFAULT_SCOPES = frozenset({SCOPE_COMMANDS, SCOPE_USERS_READ, SCOPE_USERS_READ_EMAIL, SCOPE_PROFILE_READ})

RATE_WINDOW_S = 60
MAX_LIST_LIMIT = 1000
RESPONSE_URL_MAX_POSTS = 5  # secondary-sourced (reference §6, §11.5)
RESPONSE_URL_LIFETIME_S = 30 * 60  # secondary-sourced (reference §6)
VERIFICATION_TOKEN = "fake-verification-token"  # the legacy `token` in event and command payloads

# Minimum calls per minute of each documented tier (reference §5: "Tier 2 = 20+/min", ...).
TIER_PER_MINUTE: Mapping[int, int] = {1: 1, 2: 20, 3: 50, 4: 100}
METHOD_TIERS: Mapping[str, int] = {
    "users.info": 4,
    "users.profile.get": 4,
    "team.profile.get": 3,
    "users.list": 2,
    "users.lookupByEmail": 3,
}

_API_PREFIX = "/api/"
_RESPONSE_PREFIX = "/commands/"
_JSON_CT = "application/json; charset=utf-8"
_TEXT_CT = "text/plain; charset=utf-8"
_FORM = "application/x-www-form-urlencoded"
_JSON = "application/json"

_FAULT_ERRORS: Mapping[int, str] = {
    200: "internal_error",
    429: "ratelimited",
    500: "internal_error",
    502: "internal_error",
    503: "service_unavailable",
    504: "request_timeout",
}

# zoneinfo knows abbreviations only; Slack shows long names. Unknown ones fall back to the abbreviation.
_TZ_LABELS: Mapping[str, str] = {
    "GMT": "Greenwich Mean Time",
    "IST": "Irish Standard Time",
    "BST": "British Summer Time",
    "WET": "Western European Time",
    "WEST": "Western European Summer Time",
    "CET": "Central European Time",
    "CEST": "Central European Summer Time",
    "EET": "Eastern European Time",
    "EEST": "Eastern European Summer Time",
    "UTC": "Coordinated Universal Time",
    "EST": "Eastern Standard Time",
    "EDT": "Eastern Daylight Time",
    "CST": "Central Standard Time",
    "CDT": "Central Daylight Time",
    "MST": "Mountain Standard Time",
    "MDT": "Mountain Daylight Time",
    "PST": "Pacific Standard Time",
    "PDT": "Pacific Daylight Time",
}

# Keys of the user object (not its profile) that update_profile may change.
_TOP_LEVEL_KEYS = frozenset(
    {
        "name", "deleted", "color", "tz", "is_admin", "is_owner", "is_primary_owner", "is_restricted",
        "is_ultra_restricted", "is_bot", "is_app_user", "is_email_confirmed", "who_can_share_contact_card",
        "locale",
    }
)  # fmt: skip
_FIXED_KEYS = frozenset({"id", "team_id", "profile", "updated", "fields", "tz_label", "tz_offset"})


# ---------------------------------------------------------------------------------------------------
# Public values


@dataclass(frozen=True)
class RecordedCall:
    """One Web API call the fake answered; ``params`` merges query and body, without the token."""

    method_name: str
    params: dict[str, Any]
    token: str | None
    status: int


@dataclass(frozen=True)
class RecordedResponse:
    """A body POSTed to a ``response_url``; ``label`` is the one given to ``response_url()``."""

    path: str
    body: dict[str, Any]
    label: str = ""


# ---------------------------------------------------------------------------------------------------
# Module helpers for tests that POST to the app as Slack would


def signed_headers(
    signing_secret: str, body: bytes, *, timestamp: int | None = None, content_type: str | None = None
) -> dict[str, str]:
    """Headers Slack sends with a signed request: ``v0=`` hex HMAC-SHA256 of ``v0:{ts}:{body}`` (§9).

    Content-Type defaults to JSON for a body that starts with ``{`` (events) and to form encoding
    otherwise (slash commands, interactivity).
    """
    ts = int(time.time()) if timestamp is None else timestamp
    base = b"v0:" + str(ts).encode("ascii") + b":" + body
    digest = hmac.new(signing_secret.encode("utf-8"), base, hashlib.sha256).hexdigest()
    if content_type is None:
        content_type = _JSON if body.lstrip().startswith(b"{") else _FORM
    return {
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": content_type,
    }


def event_envelope(
    event: dict[str, Any],
    *,
    team_id: str = "T0FAKE",
    api_app_id: str = "AFAKE",
    event_id: str | None = None,
    event_time: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """An ``event_callback`` envelope around ``event`` (key order as in Slack's docs example, §2).

    ``extra`` adds the optional envelope keys (``authorizations``, ``event_context``, ...).
    """
    envelope: dict[str, Any] = {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or "Ev" + uuid.uuid4().hex[:10].upper(),
        "event_time": int(time.time()) if event_time is None else event_time,
    }
    envelope.update(extra)
    return envelope


def block_actions_body(
    view: Mapping[str, Any],
    action: Mapping[str, Any],
    *,
    user_id: str,
    team_id: str = "T0FAKE",
    api_app_id: str = "AFAKE",
    trigger_id: str = "1.2.3",
) -> bytes:
    """The form-encoded ``payload=`` Slack POSTs when a person acts in a published Home view (§9a): ``action``
    is the element's part (``action_id``, ``block_id``, ``type`` and ``value`` or ``selected_options``)."""
    payload = {
        "type": "block_actions",
        "user": {"id": user_id, "username": "fake-user", "name": "fake-user", "team_id": team_id},
        "api_app_id": api_app_id,
        "token": VERIFICATION_TOKEN,
        "container": {"type": "view", "view_id": view.get("id", "")},
        "trigger_id": trigger_id,
        "team": {"id": team_id, "domain": "fake-workspace"},
        "enterprise": None,
        "is_enterprise_install": False,
        "view": dict(view),
        "actions": [{**action, "action_ts": f"{time.time():.6f}"}],
    }
    return urlencode({"payload": json.dumps(payload)}).encode("ascii")


def slash_command_body(
    text: str,
    *,
    user_id: str,
    command: str = "/genesys-sync",
    team_id: str = "T0FAKE",
    response_url: str,
    channel_id: str = "C0FAKE",
    trigger_id: str = "1.2.3",
    user_name: str = "fake-user",
    team_domain: str = "fake-workspace",
    channel_name: str = "general",
    api_app_id: str = "AFAKE",
) -> bytes:
    """A slash command's form-encoded body with the fields Slack sends (§6; no enterprise fields)."""
    fields = {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "team_domain": team_domain,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name,
        "command": command,
        "text": text,
        "api_app_id": api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }
    return urlencode(fields).encode("ascii")


# ---------------------------------------------------------------------------------------------------
# Internal values


@dataclass(frozen=True, slots=True)
class _Answer(Reply):
    cut_off: bool = False
    """Send the headers for the whole body, then half of it, then close (``cut_next``)."""


class _SlackError(Exception):
    """An ``{"ok": false, "error": ...}`` answer; raised anywhere in request handling."""

    def __init__(
        self,
        error: str,
        *,
        status: int = 200,
        extra: Mapping[str, Any] | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.extra = dict(extra or {})
        self.headers = headers

    def answer(self) -> _Answer:
        return _json_answer({"ok": False, "error": self.error, **self.extra}, self.status).with_headers(self.headers)


@dataclass
class _Call:
    params: dict[str, Any]  # query string merged with the body (body wins)
    token: str | None


@dataclass
class _Fault:
    method_name: str
    status: int
    remaining: int
    retry_after: int
    error: str | None


@dataclass
class _Window:
    start: float
    count: int = 0


@dataclass
class _ResponseUrl:
    label: str
    issued_at: float
    posts: int = 0


@dataclass(frozen=True)
class _Method:
    handler: Callable[[dict[str, Any]], dict[str, Any]]
    scope: str | None


@dataclass
class _FieldDefinition:
    id: str
    label: str
    ordering: int
    type: str
    hint: str = ""
    is_hidden: bool = False
    possible_values: list[str] | None = None
    section_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ordering": self.ordering,
            "label": self.label,
            "hint": self.hint,
            "type": self.type,
            "possible_values": list(self.possible_values) if self.possible_values is not None else None,
            "options": {"is_scim": False, "is_protected": False},
            "is_hidden": self.is_hidden,
            "section_id": self.section_id,
            **self.extra,
        }


# ---------------------------------------------------------------------------------------------------
# Small helpers


def _dump(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode("utf-8")


def _json_answer(payload: Mapping[str, Any], status: int = 200) -> _Answer:
    return _Answer(status, _dump(payload), (("Content-Type", _JSON_CT),))


def _text_answer(status: int, text: str) -> _Answer:
    return _Answer(status, text.encode("utf-8"), (("Content-Type", _TEXT_CT),))


def _truthy(value: Any) -> bool:
    # slack_sdk sends booleans as "1"/"0"; hand-written calls use "true"/"false"; JSON sends real booleans.
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true"}


def _normalized(text: str) -> str:
    """Slack's ``*_normalized`` profile values: the text with accents folded to ASCII."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _tz_info(tz: str, now: float) -> tuple[int, str]:
    """(tz_offset seconds, tz_label) of an IANA zone at ``now``; unknown zones count as UTC."""
    try:
        local = datetime.fromtimestamp(now, ZoneInfo(tz))
    except (ZoneInfoNotFoundError, ValueError):
        return 0, _TZ_LABELS["UTC"]
    offset = local.utcoffset()
    abbreviation = local.tzname() or "UTC"
    return int(offset.total_seconds()) if offset else 0, _TZ_LABELS.get(abbreviation, abbreviation)


def _invalid_arguments(message: str) -> _SlackError:
    return _SlackError("invalid_arguments", extra={"response_metadata": {"messages": [f"[ERROR] {message}"]}})


def _encode_cursor(user_id: str) -> str:
    return base64.b64encode(f"user:{user_id}".encode()).decode("ascii")


def _decode_cursor(cursor: str) -> str:
    try:
        decoded = base64.b64decode(cursor.encode("ascii"), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeError) as exc:
        raise _SlackError("invalid_cursor") from exc
    prefix, sep, user_id = decoded.partition(":")
    if prefix != "user" or not sep or not user_id:
        raise _SlackError("invalid_cursor")
    return user_id


def _parse_form(body: bytes) -> dict[str, str]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _SlackError("invalid_form_data") from exc
    return form_fields(text)


def _parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _SlackError("invalid_json") from exc
    if not isinstance(parsed, dict):
        raise _SlackError("json_not_object")
    return parsed


def _body_args(request: Request) -> tuple[dict[str, Any], str | None]:
    """Arguments from the body and the token a form body carries (JSON bodies cannot carry one)."""
    if not request.body:
        return {}, None
    media = media_type(request.headers.get("content-type"))
    if media == _FORM:
        form = _parse_form(request.body)
        return form, form.get("token") or None
    if media == _JSON:
        return _parse_json_object(request.body), None
    raise _SlackError("invalid_post_type")


def _bearer(headers: Mapping[str, str]) -> str | None:
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


# ---------------------------------------------------------------------------------------------------
# The HTTP layer


class _RequestHandler(RequestHandler):
    def framing_error(self) -> _Answer:
        return _text_answer(400, "bad_request")

    def answer(self, request: Request) -> _Answer | None:
        return cast(FakeSlack, self.server.owner)._answer(request)

    def _write(self, answer: Answer, *, head_only: bool) -> None:
        if not (isinstance(answer, _Answer) and answer.cut_off):
            super()._write(answer, head_only=head_only)
            return
        # What a proxy or network fault mid-answer looks like: the length promises more than arrives.
        self.close_connection = True
        self.send_response(answer.status)
        for name, value in answer.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(answer.body[: len(answer.body) // 2])
        self.wfile.flush()


# ---------------------------------------------------------------------------------------------------
# The fake


class FakeSlack(LocalHttpServer):
    """A local Slack workspace with one installed bot; see the module docstring for the contract."""

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-fake-bot-token",
        team_id: str = "T0FAKE",
        bot_user_id: str = "UBOT",
        clock: Callable[[], float] = time.monotonic,
        bot_id: str = "BFAKE",
        bot_name: str = "genesys-sync",
        team_name: str = "Fake Workspace",
        team_domain: str = "fake-workspace",
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(handler=_RequestHandler, thread_name="fake-slack")
        self.bot_token = bot_token
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.bot_name = bot_name
        self.team_name = team_name
        self.team_domain = team_domain
        # Granted scopes; tests may add or discard (missing_scope follows at once).
        self.scopes: set[str] = set(DEFAULT_SCOPES)
        # Knobs for the [U]/[S] shapes (module docstring): custom fields in users.info/list, empty `fields`.
        self.fields_in_user_objects = False
        self.empty_fields: dict[str, Any] | list[Any] | None = {}
        self.requests: list[RecordedCall] = []
        self.responses: list[RecordedResponse] = []
        self.rejected_responses: list[RecordedResponse] = []
        # Unexpected exceptions inside the fake (its own bugs), answered as 500; tests may assert empty.
        self.server_errors: list[BaseException] = []
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.RLock()
        self._users: dict[str, dict[str, Any]] = {}
        self._field_definitions: dict[str, _FieldDefinition] = {}
        self._faults: list[_Fault] = []
        self._cuts: list[_Fault] = []
        self._limits: dict[str, int] = {}
        self._windows: dict[str, _Window] = {}
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._revoked_error: str | None = None
        self._methods: dict[str, _Method] = {
            "auth.test": _Method(self._auth_test, None),
            "auth.revoke": _Method(self._auth_revoke, None),
            "users.info": _Method(self._users_info, SCOPE_USERS_READ),
            "users.profile.get": _Method(self._users_profile_get, SCOPE_PROFILE_READ),
            "team.profile.get": _Method(self._team_profile_get, SCOPE_PROFILE_READ),
            "users.list": _Method(self._users_list, SCOPE_USERS_READ),
            "users.lookupByEmail": _Method(self._users_lookup_by_email, SCOPE_USERS_READ_EMAIL),
            "views.publish": _Method(self._views_publish, None),
        }
        # Home tab views published, per person, in order; the view id each person's Home keeps.
        self.published_views: dict[str, list[dict[str, Any]]] = {}
        self._view_ids: dict[str, str] = {}

    # start(), stop(), stopping, the with-block and base_url come from LocalHttpServer.

    @property
    def api_url(self) -> str:
        """What ``SLACK_API_URL`` / ``WebClient(base_url=...)`` gets; the trailing slash matters to urljoin."""
        return self.base_url + _API_PREFIX

    # -- directory ----------------------------------------------------------------------------------

    def add_user(
        self,
        user_id: str,
        *,
        name: str,
        real_name: str = "",
        email: str | None = None,
        title: str = "",
        is_admin: bool = False,
        is_owner: bool = False,
        is_bot: bool = False,
        deleted: bool = False,
        tz: str = "Europe/Dublin",
        fields: dict[str, dict[str, str]] | None = None,
        **profile: str,
    ) -> dict[str, Any]:
        """Add a member; ``profile`` sets further profile keys (display_name=, phone=, pronouns=, ...)."""
        full_name = real_name or name
        first, _, last = full_name.partition(" ")
        offset, label = _tz_info(tz, self._wall_clock())
        digest = hashlib.sha256(user_id.encode("utf-8")).hexdigest()
        images = {
            f"image_{s}": f"https://avatars.example.invalid/{digest[:16]}-{s}.png" for s in (24, 32, 48, 72, 192, 512)
        }
        user_profile: dict[str, Any] = {
            "title": title,
            "phone": "",
            "skype": "",
            "real_name": full_name,
            "real_name_normalized": _normalized(full_name),
            "display_name": "",
            "display_name_normalized": "",
            "fields": _copy_fields(fields or {}),
            "status_text": "",
            "status_emoji": "",
            "status_emoji_display_info": [],
            "status_expiration": 0,
            "avatar_hash": "g" + digest[:11],
            "first_name": first,
            "last_name": last,
            **images,
            "status_text_canonical": "",
            "team": self.team_id,
        }
        if email is not None:
            user_profile["email"] = email
        if is_bot:
            user_profile.update(bot_id="B" + digest[:10].upper(), api_app_id="A" + digest[10:20].upper())
            user_profile["always_active"] = False
        user: dict[str, Any] = {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "deleted": deleted,
            "color": digest[-6:],
            "real_name": full_name,
            "tz": tz,
            "tz_label": label,
            "tz_offset": offset,
            "profile": user_profile,
            "is_admin": is_admin,
            "is_owner": is_owner,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": is_bot,
            "is_app_user": False,
            "updated": int(self._wall_clock()),
            "is_email_confirmed": email is not None,
            "who_can_share_contact_card": "EVERYONE",
            "locale": "en-US",
        }
        _apply_profile_changes(user, profile)
        with self._lock:
            if user_id in self._users:
                raise ValueError(f"user {user_id} exists")
            self._users[user_id] = user
            return copy.deepcopy(user)

    def update_profile(self, user_id: str, **changes: Any) -> dict[str, Any]:
        """Change profile keys (or top-level ones like ``deleted``/``tz``) and bump ``updated``."""
        bad = sorted(k for k in changes if k in _FIXED_KEYS)
        if bad:
            raise ValueError(f"update_profile cannot change {bad} (custom fields: set_custom_field)")
        with self._lock:
            user = self._user(user_id)
            top = {k: v for k, v in changes.items() if k in _TOP_LEVEL_KEYS}
            user.update(top)
            if "tz" in top:
                user["tz_offset"], user["tz_label"] = _tz_info(top["tz"], self._wall_clock())
            _apply_profile_changes(user, {k: v for k, v in changes.items() if k not in _TOP_LEVEL_KEYS})
            user["updated"] = max(user["updated"] + 1, int(self._wall_clock()))
            return copy.deepcopy(user)

    def set_custom_field(self, user_id: str, field_id: str, value: str, alt: str = "") -> None:
        """Like editing a custom field in Slack: no event, ``updated`` unchanged; ``""`` clears it."""
        with self._lock:
            fields = self._user(user_id)["profile"]["fields"]
            if value:
                fields[field_id] = {"value": value, "alt": alt}
            else:
                fields.pop(field_id, None)

    def define_field(
        self,
        field_id: str,
        label: str,
        *,
        ordering: int | None = None,
        type: str = "text",
        hint: str = "",
        is_hidden: bool = False,
        possible_values: list[str] | None = None,
    ) -> None:
        """Define (or redefine) a custom profile field as ``team.profile.get`` lists it."""
        with self._lock:
            existing = self._field_definitions.get(field_id)
            if ordering is None:
                ordering = existing.ordering if existing else len(self._field_definitions)
            self._field_definitions[field_id] = _FieldDefinition(
                field_id, label, ordering, type, hint, is_hidden, possible_values
            )

    def user(self, user_id: str) -> dict[str, Any]:
        """The full stored user object (with ``fields``, ``email``, ``locale``): an event's ``user``."""
        with self._lock:
            return copy.deepcopy(self._user(user_id))

    def _user(self, user_id: str) -> dict[str, Any]:
        user = self._users.get(user_id)
        if user is None:
            raise KeyError(f"no user {user_id}")
        return user

    def home_view(self, user_id: str) -> dict[str, Any] | None:
        """The Home tab view last published for a person (as answered, with ``id`` and ``hash``), or None."""
        with self._lock:
            views = self.published_views.get(user_id)
            return copy.deepcopy(views[-1]) if views else None

    # -- recorded traffic ---------------------------------------------------------------------------

    def call_count(self, method_name: str) -> int:
        with self._lock:
            return sum(1 for call in self.requests if call.method_name == method_name)

    def calls(self, method_name: str) -> list[RecordedCall]:
        with self._lock:
            return [call for call in self.requests if call.method_name == method_name]

    def response_url(self, label: str = "") -> str:
        """A fresh URL on this server that records JSON POSTed to it, like a slash command's response_url."""
        secret = uuid.uuid4().hex
        with self._lock:
            number = len(self._response_urls) + 1
            path = f"{_RESPONSE_PREFIX}{self.team_id}/{number}/{secret}"
            self._response_urls[path] = _ResponseUrl(label, self._clock())
        return self.base_url + path

    def responses_to(self, url_or_label: str) -> list[dict[str, Any]]:
        """Bodies accepted at one response_url (given as the URL or its label), in order."""
        path = urlsplit(url_or_label).path if "://" in url_or_label else None
        with self._lock:
            return [r.body for r in self.responses if (r.path == path if path is not None else r.label == url_or_label)]

    # -- faults and knobs ---------------------------------------------------------------------------

    def rate_limit(self, method_name: str, *, per_minute: int) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        with self._lock:
            self._limits[method_name] = per_minute

    def apply_documented_tiers(self) -> None:
        """Rate-limit every served method at its documented tier's minimum (reference §5)."""
        for method_name, tier in METHOD_TIERS.items():
            self.rate_limit(method_name, per_minute=TIER_PER_MINUTE[tier])

    def fail_next(
        self, method_name: str, status: int = 429, count: int = 1, *, retry_after: int = 1, error: str | None = None
    ) -> None:
        """Answer the next ``count`` calls of ``method_name`` (``"*"``: any) with ``status``."""
        with self._lock:
            self._faults.append(_Fault(method_name, status, count, retry_after, error))

    def cut_next(self, method_name: str, count: int = 1) -> None:
        """Cut off the next ``count`` answers of ``method_name`` (``"*"``: any) mid-body; see the docstring."""
        with self._lock:
            self._cuts.append(_Fault(method_name, 200, count, 0, None))

    def revoke_token(self, *, error: str = "invalid_auth") -> None:
        with self._lock:
            self._revoked_error = error

    # -- request handling ---------------------------------------------------------------------------

    def _answer(self, request: Request) -> _Answer | None:
        try:
            self._delay()
            if self._stopping.is_set():
                return None
            if request.path.startswith(_API_PREFIX):
                return self._api(request)
            if request.path.startswith(_RESPONSE_PREFIX):
                return self._response_url_post(request)
            return _text_answer(404, "not_found")
        except Exception as exc:  # noqa: BLE001 (a bug in the fake must not kill the connection silently)
            self.server_errors.append(exc)
            return _json_answer({"ok": False, "error": "fatal_error", "detail": f"{type(exc).__name__}: {exc}"}, 500)

    def _api(self, request: Request) -> _Answer:
        call = _Call(dict(request.query), _bearer(request.headers))
        method_name = request.path[len(_API_PREFIX) :]
        try:
            answer = self._api_checked(request, method_name, call)
        except _SlackError as error:
            answer = error.answer()
        params = {k: v for k, v in call.params.items() if k != "token"}
        with self._lock:
            self.requests.append(RecordedCall(method_name, params, call.token, answer.status))
            if self._take(self._cuts, method_name) is not None:
                answer = _Answer(answer.status, answer.body, answer.headers, cut_off=True)
        return answer

    def _api_checked(self, request: Request, method_name: str, call: _Call) -> _Answer:
        """The checks in the documented order; ``call`` collects arguments and token for the record."""
        fault = self._take_fault(method_name)
        if fault is not None:
            raise fault
        method = self._methods.get(method_name)
        if method is None:
            raise _SlackError("unknown_method", extra={"req_method": method_name})
        body, body_token = _body_args(request)
        call.params.update(body)
        # A query-string or JSON `token` never authenticates (module docstring); only header or form body.
        call.token = call.token or body_token
        scopes = self._authenticate(call.token)
        self._consume_rate(method_name)
        if method.scope is not None and method.scope not in scopes:
            raise _SlackError("missing_scope", extra={"needed": method.scope, "provided": ",".join(sorted(scopes))})
        payload = method.handler({k: v for k, v in call.params.items() if k != "token"})
        return _json_answer({"ok": True, **payload}).with_headers((("X-OAuth-Scopes", ",".join(sorted(scopes))),))

    def _take_fault(self, method_name: str) -> _SlackError | None:
        with self._lock:
            rule = self._take(self._faults, method_name)
            if rule is None:
                return None
            error = rule.error or _FAULT_ERRORS.get(rule.status, "fatal_error")
            headers = (("Retry-After", str(rule.retry_after)),) if rule.status in (429, 503) else ()
            return _SlackError(error, status=rule.status, headers=headers)

    @staticmethod
    def _take(rules: list[_Fault], method_name: str) -> _Fault | None:
        """Use up one call of the first rule matching the method (the caller holds the lock)."""
        for rule in rules:
            if rule.remaining > 0 and rule.method_name in (method_name, "*"):
                rule.remaining -= 1
                rules[:] = [r for r in rules if r.remaining > 0]
                return rule
        return None

    def _authenticate(self, token: str | None) -> frozenset[str]:
        if token is None:
            raise _SlackError("not_authed")
        with self._lock:
            if token != self.bot_token:
                raise _SlackError("invalid_auth")
            if self._revoked_error is not None:
                raise _SlackError(self._revoked_error)
            return frozenset(self.scopes)

    def _consume_rate(self, method_name: str) -> None:
        with self._lock:
            limit = self._limits.get(method_name)
            if limit is None:
                return
            now = self._clock()
            window = self._windows.get(method_name)
            if window is None or now - window.start >= RATE_WINDOW_S:
                window = self._windows[method_name] = _Window(now)
            if window.count >= limit:
                retry_after = max(1, math.ceil(window.start + RATE_WINDOW_S - now))
                raise _SlackError("ratelimited", status=429, headers=(("Retry-After", str(retry_after)),))
            window.count += 1

    # -- methods ------------------------------------------------------------------------------------

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_name,
            "user": self.bot_name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _auth_revoke(self, args: dict[str, Any]) -> dict[str, Any]:
        if _truthy(args.get("test")):
            return {"revoked": False}
        self.revoke_token()
        return {"revoked": True}

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user_id = args.get("user")
        if not user_id:
            raise _invalid_arguments("missing required field: user")
        with self._lock:
            user = self._users.get(str(user_id))
            if user is None:
                raise _SlackError("user_not_found")
            return {"user": self._public_user(user, include_locale=_truthy(args.get("include_locale", False)))}

    def _users_profile_get(self, args: dict[str, Any]) -> dict[str, Any]:
        user_id = str(args.get("user") or self.bot_user_id)
        with self._lock:
            user = self._users.get(user_id)
            if user is None:
                raise _SlackError("user_not_found")
            profile = copy.deepcopy(user["profile"])
            if not profile["fields"]:
                profile["fields"] = copy.deepcopy(self.empty_fields)
            elif _truthy(args.get("include_labels", False)):
                for field_id, value in profile["fields"].items():
                    definition = self._field_definitions.get(field_id)
                    value["label"] = definition.label if definition else ""
        return {"profile": profile}

    def _team_profile_get(self, args: dict[str, Any]) -> dict[str, Any]:
        visibility = str(args.get("visibility") or "all")
        if visibility not in {"all", "visible", "hidden"}:
            raise _invalid_arguments(f"invalid value for field: visibility ({visibility})")
        with self._lock:
            definitions = sorted(self._field_definitions.values(), key=lambda d: (d.ordering, d.id))
        shown = [d.as_json() for d in definitions if visibility == "all" or d.is_hidden == (visibility == "hidden")]
        return {"profile": {"fields": shown, "sections": []}}

    def _users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        limit = self._list_limit(args.get("limit"))
        cursor = str(args.get("cursor") or "")
        start_id = _decode_cursor(cursor) if cursor else ""
        include_locale = _truthy(args.get("include_locale", False))
        with self._lock:
            ordered = [self._users[k] for k in sorted(self._users) if k >= start_id]
            page = ordered[:limit] if limit else ordered
            rest = ordered[len(page) :]
            members = [self._public_user(u, include_locale=include_locale) for u in page]
        next_cursor = _encode_cursor(rest[0]["id"]) if rest else ""
        return {
            "members": members,
            "cache_ts": int(self._wall_clock()),
            "response_metadata": {"next_cursor": next_cursor},
        }

    @staticmethod
    def _list_limit(raw: Any) -> int:
        """0 means "everything"; above the maximum is served as the maximum."""
        if raw is None or raw == "":
            return 0
        try:
            limit = int(raw)
        except (TypeError, ValueError) as exc:
            raise _invalid_arguments(f"invalid value for field: limit ({raw})") from exc
        if limit < 0:
            raise _invalid_arguments(f"invalid value for field: limit ({raw})")
        return min(limit, MAX_LIST_LIMIT)

    def _users_lookup_by_email(self, args: dict[str, Any]) -> dict[str, Any]:
        email = str(args.get("email") or "")
        if not email:
            raise _invalid_arguments("missing required field: email")
        wanted = email.casefold()
        with self._lock:
            for user_id in sorted(self._users):
                user = self._users[user_id]
                if not user["deleted"] and str(user["profile"].get("email", "")).casefold() == wanted:
                    return {"user": self._public_user(user, include_locale=False)}
        raise _SlackError("users_not_found")

    def _public_user(self, user: dict[str, Any], *, include_locale: bool) -> dict[str, Any]:
        """A user object as users.info/users.list answer it under the current scopes and knobs."""
        shown = copy.deepcopy(user)
        if not include_locale:
            shown.pop("locale", None)
        if SCOPE_USERS_READ_EMAIL not in self.scopes:
            shown["profile"].pop("email", None)
        if not self.fields_in_user_objects:
            shown["profile"].pop("fields", None)
        return shown

    def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        user_id = args.get("user_id")
        if not user_id:
            raise _invalid_arguments("missing required field: user_id")
        raw = args.get("view")
        if raw is None or raw == "":
            raise _invalid_arguments("missing required field: view")
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError as exc:
                raise _invalid_arguments("invalid value for field: view (not JSON)") from exc
        if not isinstance(raw, dict):
            raise _invalid_arguments("invalid value for field: view (not an object)")
        problem = _view_problem(raw)
        if problem is not None:
            raise _invalid_arguments(problem)
        with self._lock:
            if str(user_id) not in self._users:
                raise _SlackError("user_not_found")
            published = self.published_views.setdefault(str(user_id), [])
            expected = args.get("hash")
            if expected and (not published or published[-1]["hash"] != expected):
                raise _SlackError("hash_conflict")
            view_id = self._view_ids.setdefault(str(user_id), "V" + uuid.uuid4().hex[:10].upper())
            answered = {**copy.deepcopy(raw), "id": view_id, "team_id": self.team_id, "app_id": "AFAKE",
                        "bot_id": self.bot_id, "hash": f"{int(self._wall_clock())}.{uuid.uuid4().hex[:8]}",
                        "state": {"values": {}}, "private_metadata": raw.get("private_metadata", "")}
            published.append(answered)
            return {"view": copy.deepcopy(answered)}

    # -- response_url -------------------------------------------------------------------------------

    def _response_url_post(self, request: Request) -> _Answer:
        if request.method != "POST":
            return _text_answer(405, "method_not_allowed")
        body = _response_body(request)
        with self._lock:
            entry = self._response_urls.get(request.path)
            label = entry.label if entry else ""
            refusal = self._response_url_refusal(entry)
            if entry is None or refusal is not None or body is None:
                status, text = refusal or (400, "invalid_payload")
                self.rejected_responses.append(RecordedResponse(request.path, _loose_body(request), label))
                return _text_answer(status, text)
            entry.posts += 1
            self.responses.append(RecordedResponse(request.path, body, label))
        return _Answer(200, b"ok", (("Content-Type", "text/html"),))

    def _response_url_refusal(self, entry: _ResponseUrl | None) -> tuple[int, str] | None:
        if entry is None:
            return 404, "no_service"
        if self._clock() - entry.issued_at >= RESPONSE_URL_LIFETIME_S:
            return 404, "expired_url"
        if entry.posts >= RESPONSE_URL_MAX_POSTS:
            return 404, "used_url"
        return None


_VIEW_MAX_BLOCKS = 100


def _view_problem(view: Mapping[str, Any]) -> str | None:
    """Why Slack would refuse this Home view (``[ERROR] …`` with a JSON pointer), or None; see the docstring."""
    if view.get("type") != "home":
        return "must be home [json-pointer:/view/type]"
    blocks = view.get("blocks")
    if not isinstance(blocks, list):
        return "missing required field: blocks [json-pointer:/view/blocks]"
    if len(blocks) > _VIEW_MAX_BLOCKS:
        return f"no more than {_VIEW_MAX_BLOCKS} items allowed [json-pointer:/view/blocks]"
    if len(str(view.get("private_metadata", ""))) > 3000:
        return "must be less than 3001 characters [json-pointer:/view/private_metadata]"
    block_ids: set[str] = set()
    for index, block in enumerate(blocks):
        where = f"/view/blocks/{index}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            return f"missing required field: type [json-pointer:{where}]"
        block_id = block.get("block_id")
        if block_id is not None:
            if block_id in block_ids:
                return f"duplicate block_id {block_id} [json-pointer:{where}/block_id]"
            block_ids.add(block_id)
        problem = _block_problem(block, where)
        if problem is not None:
            return problem
    return None


def _text_of(item: Any) -> str:
    return str(item.get("text", "")) if isinstance(item, dict) else ""


def _block_problem(block: Mapping[str, Any], where: str) -> str | None:
    kind = block["type"]
    if kind == "header" and not 0 < len(_text_of(block.get("text"))) <= 150:
        return f"must be 1 to 150 characters [json-pointer:{where}/text]"
    if kind == "section":
        if "text" not in block and "fields" not in block:
            return f"must provide either text or fields [json-pointer:{where}]"
        if len(_text_of(block.get("text"))) > 3000:
            return f"must be less than 3001 characters [json-pointer:{where}/text]"
        fields = block.get("fields") or []
        if len(fields) > 10:
            return f"no more than 10 items allowed [json-pointer:{where}/fields]"
        for number, item in enumerate(fields):
            if not 0 < len(_text_of(item)) <= 2000:
                return f"must be 1 to 2000 characters [json-pointer:{where}/fields/{number}/text]"
    elements = list(block.get("elements") or []) if kind == "actions" else []
    if isinstance(block.get("accessory"), dict):
        elements.append(block["accessory"])
    for element in elements:
        if not isinstance(element, dict):
            return f"must be an object [json-pointer:{where}/elements]"
        if len(str(element.get("value", ""))) > 2000:
            return f"must be less than 2001 characters [json-pointer:{where}/elements/value]"
        options = element.get("options") or []
        if element.get("type") == "checkboxes" and not 0 < len(options) <= 10:
            return f"must have 1 to 10 options [json-pointer:{where}/elements/options]"
        for option in options:
            if not 0 < len(_text_of(option.get("text"))) <= 75 or len(str(option.get("value", ""))) > 150:
                return f"option text at most 75 and value at most 150 characters [json-pointer:{where}/options]"
    return None


def _copy_fields(fields: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, str]]:
    return {k: {"value": str(v.get("value", "")), "alt": str(v.get("alt", ""))} for k, v in fields.items()}


def _apply_profile_changes(user: dict[str, Any], changes: Mapping[str, Any]) -> None:
    """Set profile keys, keeping the derived ones (``*_normalized``, top-level ``real_name``) in step."""
    profile = user["profile"]
    for key, value in changes.items():
        if key == "email":
            if value is None:
                profile.pop("email", None)
            else:
                profile["email"] = value
            user["is_email_confirmed"] = value is not None
            continue
        profile[key] = value
        if key in {"real_name", "display_name"}:
            profile[f"{key}_normalized"] = _normalized(str(value))
        if key == "real_name":
            user["real_name"] = value


def _response_body(request: Request) -> dict[str, Any] | None:
    """The JSON object POSTed to a response_url (JSON, or a form ``payload=``), else None."""
    raw = request.body
    if media_type(request.headers.get("content-type")) == _FORM:
        try:
            raw = _parse_form(request.body).get("payload", "").encode("utf-8")
        except _SlackError:
            return None
    try:
        parsed = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return parsed if isinstance(parsed, dict) else None


def _loose_body(request: Request) -> dict[str, Any]:
    """A refused body for the record: the JSON object if it is one, else the raw text."""
    parsed = _response_body(request)
    return parsed if parsed is not None else {"raw": request.body.decode("utf-8", "replace")}
