"""Whether a request body is one Bolt can read and route: screened before Bolt sees it, so that no body, however
hostile, makes Bolt (or a listener) fail with a 500 and a traceback.

Bolt parses the body (`slack_bolt.request.internals.parse_body`), then reads a fixed set of keys to build each
request's context (ids, team, user, channel) and to route it, assuming the types Slack sends: a number where an
object is expected, a list where a string is, or a nesting deep enough to exhaust the recursion limit fails inside
Bolt, before the signature is even checked. `screen` parses exactly as Bolt does and checks those keys; a body it
passes is one Bolt reads without failing.

Two kinds of problem, answered differently by web.wsgi:
- `UNREADABLE`: not UTF-8, not JSON, not a JSON object, nested too deep. Not a Slack payload at all: 400.
- `SHAPE`: a JSON object with a wrong type (or a malformed id) at a key Bolt or the listeners read, or a kind of
  request this app has no listener for. Whether that is Slack's own delivery is up to the signature (web.wsgi
  decides).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from slack_bolt.request.internals import parse_body

from handlers.commands import COMMAND
from handlers.events import SUBSCRIBED_EVENTS, is_slack_id

MAX_NESTING: Final = 64
"""Slack's deepest payloads (Block Kit in views) nest about a dozen levels; 64 is far above that and far below the
recursion limit that the JSON parser and anything walking the body recursively would hit."""

JSON_TYPES: Final = frozenset({"event_callback", "url_verification", "app_rate_limited", "block_actions"})
"""The JSON payloads this app takes (events, the two Slack sends about the subscription, and the App Home's clicks:
block_actions, a form's `payload=`); other interactivity (view_submission, shortcuts…) has no listener. Bolt answers
other kinds 404 and logs a multi-line "unhandled request" suggestion that quotes the payload's names unescaped."""

_ID_KEYS: Final = ("team_id", "enterprise_id", "api_app_id", "event_id", "user_id", "channel_id", "context_team_id",
                   "context_enterprise_id", "app_installed_team_id", "id")
"""Keys whose value, when present, is a Slack id (or null)."""
_TEXT_KEYS: Final = ("type", "subtype", "token", "challenge", "thread_ts", "function_execution_id", "execution_id",
                     "bot_access_token", "bot_id", "response_url", "command", "text", "trigger_id", "callback_id",
                     "ssl_check")
"""Keys Bolt reads or compares as strings (or null)."""
_FLAG_KEYS: Final = ("is_ext_shared_channel", "is_bot", "is_app_user")
"""Keys Bolt or the listeners compare with True (or null)."""
_ID_OR_OBJECT_KEYS: Final = ("enterprise", "team", "user", "channel")
"""An id, or an object whose own ids are checked (Bolt takes its "id")."""
_OBJECT_KEYS: Final = ("event", "message", "previous_message", "item", "assistant_thread", "view", "function_data",
                       "inputs", "tokens")
"""Objects Bolt looks into with the same rules (or null, except "event")."""
_OBJECT_LIST_KEYS: Final = ("authorizations", "response_urls")
"""Lists of objects Bolt indexes and looks into."""

Kind = Literal["unreadable", "shape"]
UNREADABLE: Final[Kind] = "unreadable"
SHAPE: Final[Kind] = "shape"


@dataclass(frozen=True, slots=True)
class Problem:
    """Why Bolt could not read or route this body."""

    kind: Kind
    reason: str


def screen(body: bytes, content_type: str) -> Problem | None:
    """The problem with `body` (sent with `content_type`), or None when Bolt can read and route it."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return Problem(UNREADABLE, "the body is not UTF-8")
    # Bolt's own parser, so the decision (JSON, a form, or a form's JSON payload) is the one Bolt makes.
    bolt_type = content_type.split(";")[0] or None  # what Bolt's extract_content_type makes of the header
    is_json = bolt_type == "application/json" or text.startswith("{")
    is_form_payload = not is_json and "payload" in text
    what = "the form's payload" if is_form_payload else "the body"
    try:
        parsed = parse_body(text, bolt_type)
    except RecursionError:  # the C JSON parser recurses once per level and raises this, not ValueError
        return Problem(UNREADABLE, f"{what} is nested deeper than {MAX_NESTING} levels")
    except ValueError:
        return Problem(UNREADABLE, f"{what} is not JSON")
    if not isinstance(parsed, dict):
        return Problem(UNREADABLE, f"{what} is not a JSON object")
    if _deeper_than(parsed, MAX_NESTING):
        return Problem(UNREADABLE, f"{what} is nested deeper than {MAX_NESTING} levels")
    where = _misshapen(parsed, "")
    if where:
        return Problem(SHAPE, f"{what} has {where}")
    unhandled = _unhandled(parsed, is_json=is_json or is_form_payload)
    return Problem(SHAPE, f"{what} is {unhandled}") if unhandled else None


def _unhandled(parsed: Mapping[str, Any], *, is_json: bool) -> str | None:
    """What kind of request this app has no listener for, described; None for one it handles (or a form Bolt
    answers 404 to in one line)."""
    if is_json:
        kind = parsed.get("type")
        if kind not in JSON_TYPES:
            return f"a payload of type {kind[:64]!r}, which this app does not take" if isinstance(kind, str) else \
                "a payload without a type"
        event = parsed.get("event")
        if kind == "event_callback" and (not isinstance(event, dict) or event.get("type") not in SUBSCRIBED_EVENTS):
            return "an event this app does not subscribe to"
        if kind == "block_actions":
            return _unusable_actions(parsed.get("actions"))
        return None
    command = parsed.get("command")
    return f"a command other than {COMMAND}" if command is not None and command != COMMAND else None


def _unusable_actions(actions: object) -> str | None:
    """Bolt routes a block_actions by its first action's action_id (and reads block_id and value as text)."""
    if not isinstance(actions, list) or not actions or not all(isinstance(action, dict) for action in actions):
        return "a block_actions without a list of actions"
    for action in actions:
        for key in ("action_id", "block_id", "value"):
            if action.get(key) is not None and not isinstance(action[key], str):
                return f"a block_actions whose action has {_wrong(key, action[key], 'a string')}"
    if not isinstance(actions[0].get("action_id"), str):
        return "a block_actions whose action names no action_id"
    return None


def _deeper_than(document: object, limit: int) -> bool:
    """Whether containers nest more than `limit` levels; iterative, so any depth costs no recursion."""
    stack: list[tuple[object, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _misshapen(value: Mapping[str, Any], path: str) -> str | None:
    """The first key of `value` (at `path`) whose value Bolt or the listeners cannot use, described; else None."""
    for key in _ID_KEYS:
        if value.get(key) is not None and not is_slack_id(value[key]):
            return _wrong(path + key, value[key], "a Slack id")
    for key in _TEXT_KEYS:
        if value.get(key) is not None and not isinstance(value[key], str):
            return _wrong(path + key, value[key], "a string")
    for key in _FLAG_KEYS:
        if value.get(key) is not None and not isinstance(value[key], bool):
            return _wrong(path + key, value[key], "true or false")
    flag = value.get("is_enterprise_install")  # Bolt also takes the string "true"
    if flag is not None and not isinstance(flag, bool | str):
        return _wrong(path + "is_enterprise_install", flag, "true or false")
    for key in _ID_OR_OBJECT_KEYS:
        item = value.get(key)
        if item is None or is_slack_id(item):
            continue
        if not isinstance(item, dict):
            return _wrong(path + key, item, "a Slack id or an object")
        if where := _misshapen(item, f"{path}{key}."):
            return where
    for key in _OBJECT_KEYS:
        item = value.get(key)
        if item is None and not (key == "event" and key in value):  # Bolt reads body.get("event", {}).get(…)
            continue
        if not isinstance(item, dict):
            return _wrong(path + key, item, "an object")
        if where := _misshapen(item, f"{path}{key}."):
            return where
    for key in _OBJECT_LIST_KEYS:
        items = value.get(key)
        if items is None:
            continue
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            return _wrong(path + key, items, "a list of objects")
        for index, item in enumerate(items):
            if where := _misshapen(item, f"{path}{key}[{index}]."):
                return where
    return None


def _wrong(path: str, value: object, expected: str) -> str:
    found = "a string that is not an id" if isinstance(value, str) else _JSON_TYPES.get(type(value), "a value")
    return f"{found} at {path}, not {expected}"


_JSON_TYPES: Final[dict[type, str]] = {dict: "an object", list: "a list", str: "a string", bool: "true or false",
                                       int: "a number", float: "a number"}
