"""Notifications API values (reference §6.4): a channel, a topic's subscription state, and their parsing.

A channel's id is a capability: its `connectUri` needs no token, so whoever knows the id can read the channel's
events. Reprs and log lines therefore show only the first characters of a channel id (`short_id`) and never the URI.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

CHANNEL_LIFETIME = timedelta(hours=24)
"""How long Genesys keeps a channel after its creation or its last subscription call (reference §5)."""

HEARTBEAT_TOPIC = "channel.metadata"
SOCKET_CLOSING_TOPIC = "v2.system.socket_closing"
_TOPIC_PREFIX = "v2.users."
_TOPIC_SUFFIX = ".conversations"


@dataclass(frozen=True, slots=True, repr=False)
class NotificationChannel:
    """A notification channel Genesys created: where its WebSocket connects and when it expires."""

    id: str
    connect_uri: str
    expires: datetime
    """Timezone-aware; subscribing again (a topics PUT) extends it by `CHANNEL_LIFETIME`."""

    def __repr__(self) -> str:
        return f"NotificationChannel(id={short_id(self.id)!r}, expires={self.expires.isoformat()!r})"


@dataclass(frozen=True, slots=True)
class TopicSubscription:
    """Genesys' answer for one topic of a subscription call."""

    topic: str
    permitted: bool
    reason: str | None = None
    """Genesys' `rejectionReason` for a rejected topic."""
    missing_permissions: tuple[str, ...] = ()
    """The permissions the OAuth client lacks for a rejected topic, as Genesys named them."""


def short_id(channel_id: str) -> str:
    """The first 8 characters of a channel id, enough to tell channels apart in logs, too few to connect."""
    return channel_id[:8] + "…" if len(channel_id) > 8 else channel_id


def conversations_topic(user_id: str) -> str:
    """The topic of a user's conversations, `v2.users.{userId}.conversations`."""
    return f"{_TOPIC_PREFIX}{user_id}{_TOPIC_SUFFIX}"


def user_of_topic(topic: object) -> str | None:
    """The user id of a `v2.users.{userId}.conversations` topic; None for any other topic."""
    if not isinstance(topic, str) or not topic.startswith(_TOPIC_PREFIX) or not topic.endswith(_TOPIC_SUFFIX):
        return None
    user_id = topic[len(_TOPIC_PREFIX):-len(_TOPIC_SUFFIX)]
    return user_id if user_id and "." not in user_id else None


def parse_channel(payload: Mapping[str, Any], now: datetime) -> NotificationChannel | None:
    """The channel in a `POST /api/v2/notifications/channels` answer; None when `id` or `connectUri` is missing.

    An unreadable or absent `expires` counts as `CHANNEL_LIFETIME` from `now`: renewal only needs it roughly.
    """
    channel_id, uri = payload.get("id"), payload.get("connectUri")
    if not isinstance(channel_id, str) or not channel_id or not isinstance(uri, str) or not uri:
        return None
    return NotificationChannel(channel_id, uri, parse_expiry(payload.get("expires"), now))


def parse_expiry(value: object, now: datetime) -> datetime:
    """An ISO-8601 `expires` as an aware datetime (UTC if it names no zone), else `now + CHANNEL_LIFETIME`."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            moment = None
        if moment is not None:
            return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return now + CHANNEL_LIFETIME


def parse_subscriptions(payload: Mapping[str, Any], sent: tuple[str, ...]) -> tuple[TopicSubscription, ...]:
    """One `TopicSubscription` per topic sent, from a subscriptions answer (`entities`, or a bare list).

    A topic the answer does not mention counts as permitted: Genesys answered 200 to the call that sent it. An entry
    whose state is neither Permitted nor Rejected counts as permitted too; only a rejection is acted on.
    """
    entities = payload.get("entities")
    answered: dict[str, TopicSubscription] = {}
    for entry in entities if isinstance(entities, list) else []:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("id"), str):
            continue
        state = str(entry.get("state") or "").lower()
        reason = entry.get("rejectionReason")
        missing = entry.get("missingPermissions")
        answered[entry["id"]] = TopicSubscription(
            topic=entry["id"],
            permitted=state != "rejected",
            reason=str(reason) if reason else None,
            missing_permissions=tuple(str(p) for p in missing if isinstance(p, str)) if isinstance(missing, list)
            else (),
        )
    return tuple(answered.get(topic, TopicSubscription(topic, True)) for topic in sent)
