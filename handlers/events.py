"""`user_change` and `team_join`: record durable work and return at once. `app_uninstalled` and a revoked
bot token (`tokens_revoked`): the app is gone from that workspace, so its installation and profiles go too.

Every subscribed event has a listener, here or (`app_home_opened`) in handlers.home, because Bolt answers 404 to
an event without one and Slack counts that as a failed delivery. The app runs with
`process_before_response=True`, so Slack's 200 goes out only after the work is recorded: a crash right after the
answer loses nothing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from slack_bolt import App

from slack_directory import is_bot_or_app

log = logging.getLogger(__name__)

USER_EVENTS = ("user_change", "team_join")
LIFECYCLE_EVENTS = ("app_uninstalled", "tokens_revoked")
HOME_EVENTS = ("app_home_opened",)
"""Listened to in handlers.home."""
SUBSCRIBED_EVENTS = USER_EVENTS + LIFECYCLE_EVENTS + HOME_EVENTS

SLACK_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
"""Slack's ids (T…, E…, U…, W…, C…, A…, Ev…) are letters and digits (".", "_" and "-" are let through as harmless);
an id is written to logs and used in work keys ("T…:U…"), where a newline or a colon would forge a line or a key."""

Uninstalled = Callable[[str | None, str], None]
"""Called with (enterprise_id, team_id) when the app lost its bot token in a workspace."""


class UserChangeSink(Protocol):
    """Where a changed user goes (the sync engine)."""

    def user_changed(self, team_id: str, user: Mapping[str, Any], event_id: str | None) -> bool: ...


class EventObserver(Protocol):
    """Told of each user event's outcome, for metrics."""

    def slack_event(self, event_type: str, outcome: str) -> None:
        """A `user_change` or `team_join` was recorded, a duplicate delivery, or ignored."""


class _NoObserver:
    def slack_event(self, event_type: str, outcome: str) -> None:
        return None


def is_slack_id(value: object) -> bool:
    return isinstance(value, str) and SLACK_ID.fullmatch(value) is not None


def register(app: App, engine: UserChangeSink, *, uninstalled: Uninstalled,
             observer: EventObserver | None = None) -> None:
    """Listen to every event the manifest subscribes to; `observer` is told each user event's outcome."""
    told = observer or _NoObserver()

    def on_user_event(body: Mapping[str, Any], event: Mapping[str, Any]) -> None:
        outcome = record_user_event(engine, body, event)
        told.slack_event(event["type"] if event.get("type") in USER_EVENTS else "event", outcome.split(":")[0])

    def on_lifecycle_event(body: Mapping[str, Any], event: Mapping[str, Any]) -> None:
        record_lifecycle_event(uninstalled, body, event)

    for name in USER_EVENTS:
        app.event(name)(on_user_event)
    for name in LIFECYCLE_EVENTS:
        app.event(name)(on_lifecycle_event)


def record_lifecycle_event(uninstalled: Uninstalled, body: Mapping[str, Any], event: Mapping[str, Any]) -> str:
    """Act on app_uninstalled, or tokens_revoked naming a bot token; returns what was done."""
    team_id = body.get("team_id")
    enterprise_id = body.get("enterprise_id")
    if not is_slack_id(team_id):
        log.warning("Slack %r names no workspace; ignored", event.get("type"))
        return "ignored: no team"
    tokens = event.get("tokens")
    if event.get("type") == "tokens_revoked" and not (isinstance(tokens, Mapping) and tokens.get("bot")):
        return "ignored: only user tokens revoked"  # the app keeps no user tokens
    uninstalled(enterprise_id if is_slack_id(enterprise_id) else None, team_id)
    log.warning("Slack %r: the app lost its access to workspace %s; its profiles are no longer synced",
                event.get("type"), team_id)
    return "uninstalled"


def record_user_event(engine: UserChangeSink, body: Mapping[str, Any], event: Mapping[str, Any]) -> str:
    """Record one user event; returns what was done (recorded, duplicate, ignored: …) for logs and tests.

    Ids that are not Slack ids (a wrong type, or text with a newline or a colon) are unusable input: they are
    ignored with one line, quoted, as they would otherwise forge log lines and work keys (Socket Mode's events
    reach here without web.slack_request's screening)."""
    user = event.get("user")
    kind = event.get("type") if event.get("type") in USER_EVENTS else "event"
    event_id = body.get("event_id") if is_slack_id(body.get("event_id")) else None
    if not isinstance(user, Mapping) or not is_slack_id(user.get("id")):
        log.warning("Slack %s %r has no user object with a Slack id; ignored", kind, event_id)
        return "ignored: no user"
    if is_bot_or_app(user, user["id"]):
        return "ignored: bot or app user"
    team_id = user.get("team_id") or body.get("team_id")
    if not is_slack_id(team_id):
        log.warning("Slack %s %r for %s names no team; ignored", kind, event_id, user["id"])
        return "ignored: no team"
    if not engine.user_changed(team_id, user, event_id):
        log.debug("Slack %s %s for %s was a duplicate delivery", kind, event_id, user["id"])
        return "duplicate"
    log.info("Slack %s for %s recorded (event %s)", kind, user["id"], event_id)
    return "recorded"
