"""Which user participants are live: analytics query bodies and the parsing of their answers.

Client credentials have no "my conversations", so live conversations come from the analytics conversation detail
query (reference §6.2: conversationEnd notExists, an interact segment of the user with no segmentEnd, all media).
For one user each hit is confirmed with `GET /api/v2/conversations/{id}` (§6.3: no participant `endTime` and a
communication in a live state); for the whole org the analytics answer alone is used, one paged query per poll.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

LIVE_STATES = frozenset({"alerting", "dialing", "contacting", "offering", "connected"})
"""Communication states of a participant who is on the conversation (or being connected to it)."""

COMMUNICATION_MEDIA = {
    "calls": "voice",
    "callbacks": "callback",
    "chats": "chat",
    "cobrowsesessions": "cobrowse",
    "emails": "email",
    "messages": "message",
    "screenshares": "screenshare",
    "socialExpressions": "socialExpression",
    "videos": "video",
}
"""Per-media communication lists on a conversation participant, and the analytics mediaType each means."""

LOOKBACK = timedelta(days=30)
LOOKAHEAD = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class LiveParticipant:
    """One live participant of a Genesys user: where to PATCH the attributes."""

    conversation_id: str
    participant_id: str
    user_id: str
    media_type: str
    # Not part of equality: a participant is where to PATCH; these describe the moment it was seen.
    connected_at: float = field(default=0.0, compare=False)
    """When this participant connected (seconds since 1970; 0: not known, or still ringing): of the people on one
    conversation, the most recently connected one is the one the customer's participant describes."""
    customers: tuple[str, ...] = field(default=(), compare=False)
    """The ids of the conversation's live external participants (purpose `customer` or `external`), as seen in the
    same answer: where flows and scripts read participant data."""


CUSTOMER_PURPOSES = frozenset({"customer", "external"})
"""Participant purposes of the people outside the org: the customer's participant of a conversation."""


def analytics_interval(start: datetime, end: datetime) -> str:
    """An ISO-8601 interval in UTC with milliseconds, e.g. `2025-01-01T00:00:00.000Z/2025-01-31T01:00:00.000Z`."""
    return f"{_iso(start)}/{_iso(end)}"


def live_conversations_query(now: datetime, *, user_id: str | None, page_size: int, page_number: int
                             ) -> dict[str, Any]:
    """The detail query for conversations with a live interact segment of `user_id` (or of any user)."""
    user_predicate: dict[str, Any] = (
        {"type": "dimension", "dimension": "userId", "operator": "matches", "value": user_id}
        if user_id is not None
        else {"type": "dimension", "dimension": "userId", "operator": "exists"}
    )
    return {
        "conversationFilters": [{"type": "and", "predicates": [
            {"type": "dimension", "dimension": "conversationEnd", "operator": "notExists"},
        ]}],
        "segmentFilters": [{"type": "and", "clauses": [{"type": "and", "predicates": [
            user_predicate,
            {"type": "dimension", "dimension": "segmentEnd", "operator": "notExists"},
            {"type": "dimension", "dimension": "segmentType", "operator": "matches", "value": "interact"},
        ]}]}],
        "order": "desc",
        "orderBy": "conversationStart",
        # Exactly 30 days long, as in Genesys' own example (reference §6.2).
        "interval": analytics_interval(now - LOOKBACK + LOOKAHEAD, now + LOOKAHEAD),
        "paging": {"pageSize": page_size, "pageNumber": page_number},
    }


def probe_query(now: datetime) -> dict[str, Any]:
    """A cheap detail query (last hour, one result) that only proves the permission."""
    return {
        "interval": analytics_interval(now - timedelta(hours=1), now),
        "order": "desc",
        "orderBy": "conversationStart",
        "paging": {"pageSize": 1, "pageNumber": 1},
    }


def live_in_analytics(conversations: Iterable[Any], user_id: str | None = None) -> list[LiveParticipant]:
    """Participants with a userId (equal to `user_id` if given) and an interact segment that has not ended."""
    found: dict[tuple[str, str], LiveParticipant] = {}
    for conversation in conversations:
        if not isinstance(conversation, Mapping) or conversation.get("conversationEnd"):
            continue
        conversation_id = conversation.get("conversationId")
        if not isinstance(conversation_id, str):
            continue
        customers = tuple(
            participant["participantId"] for participant in _dicts(conversation.get("participants"))
            if participant.get("purpose") in CUSTOMER_PURPOSES and isinstance(participant.get("participantId"), str)
            and _session_live(participant))
        for participant in _dicts(conversation.get("participants")):
            participant_id, participant_user = participant.get("participantId"), participant.get("userId")
            if not isinstance(participant_id, str) or not isinstance(participant_user, str) or not participant_user:
                continue
            if user_id is not None and participant_user != user_id:
                continue
            media = _live_session_media(participant)
            if media is not None and (conversation_id, participant_id) not in found:
                found[(conversation_id, participant_id)] = LiveParticipant(
                    conversation_id, participant_id, participant_user, media, _interact_start(participant), customers
                )
    return list(found.values())


def live_in_conversation(conversation: Any, user_id: str) -> list[LiveParticipant]:
    """From a `GET /api/v2/conversations/{id}` answer: `user_id`'s participants still on the conversation."""
    if not isinstance(conversation, Mapping) or conversation.get("endTime"):
        return []
    conversation_id = conversation.get("id")
    if not isinstance(conversation_id, str):
        return []
    live: list[LiveParticipant] = []
    customers = tuple(
        participant["id"] for participant in _dicts(conversation.get("participants"))
        if participant.get("purpose") in CUSTOMER_PURPOSES and isinstance(participant.get("id"), str)
        and not participant.get("endTime") and _live_communication_media(participant) is not None)
    for participant in _dicts(conversation.get("participants")):
        participant_id = participant.get("id")
        if participant.get("userId") != user_id or participant.get("endTime") or not isinstance(participant_id, str):
            continue
        media = _live_communication_media(participant)
        if media is not None:
            # Only a participant that answered counts as connected: one still ringing (alerting, offering, a consult
            # not yet taken) must not become the person the customer's participant describes.
            connected = (_seconds(participant.get("connectedTime")) or _seconds(participant.get("startTime"))
                         if _answered(participant) else 0.0)
            live.append(LiveParticipant(conversation_id, participant_id, user_id, media, connected, customers))
    return live


def participant_attributes_in(conversation: Any, participant_id: str) -> dict[str, str] | None:
    """From a `GET /api/v2/conversations/{id}` answer: that participant's attributes (None if absent)."""
    for participant in _dicts(conversation.get("participants") if isinstance(conversation, Mapping) else None):
        if participant.get("id") == participant_id:
            attributes = participant.get("attributes")
            if not isinstance(attributes, Mapping):
                return {}
            return {str(k): v for k, v in attributes.items() if isinstance(v, str)}
    return None


def _live_session_media(participant: Mapping[str, Any]) -> str | None:
    for session in _dicts(participant.get("sessions")):
        for segment in _dicts(session.get("segments")):
            if segment.get("segmentType") == "interact" and not segment.get("segmentEnd"):
                return str(session.get("mediaType") or "unknown")
    return None


def _session_live(participant: Mapping[str, Any]) -> bool:
    """Whether a participant of an analytics answer is still on the conversation: a segment has not ended."""
    return any(not segment.get("segmentEnd") for session in _dicts(participant.get("sessions"))
               for segment in _dicts(session.get("segments")))


def _interact_start(participant: Mapping[str, Any]) -> float:
    """When an analytics participant connected: the start of its first interact segment (0: not known)."""
    starts = [_seconds(segment.get("segmentStart")) for session in _dicts(participant.get("sessions"))
              for segment in _dicts(session.get("segments")) if segment.get("segmentType") == "interact"]
    return min((start for start in starts if start), default=0.0)


def _seconds(value: Any) -> float:
    """An ISO-8601 instant of a Genesys answer as seconds since 1970 (0 for none or one that does not parse)."""
    if not isinstance(value, str) or not value:
        return 0.0
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _answered(participant: Mapping[str, Any]) -> bool:
    """Whether one of the participant's communications is connected (not only ringing or being dialled)."""
    return any(str(communication.get("state", "")).lower() == "connected"
               for key in COMMUNICATION_MEDIA for communication in _dicts(participant.get(key)))


def _live_communication_media(participant: Mapping[str, Any]) -> str | None:
    for key, media in COMMUNICATION_MEDIA.items():
        for communication in _dicts(participant.get(key)):
            if str(communication.get("state", "")).lower() in LIVE_STATES:
                return media
    return None


def _dicts(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("analytics intervals need timezone-aware datetimes")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
