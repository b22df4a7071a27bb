"""Request bodies and answer parsing for user search and live participants (no HTTP)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from genesys.participants import (
    LiveParticipant,
    analytics_interval,
    live_conversations_query,
    live_in_analytics,
    live_in_conversation,
)
from genesys.users import GenesysUser, normalize_email, pick_user, user_search_body

NOW = datetime(2025, 3, 10, 12, 30, 15, 123456, tzinfo=UTC)


def test_search_body_is_exact_email_plus_state_criterion() -> None:
    """A lower-case address is one EXACT value, with the state criterion of Genesys' example."""
    assert user_search_body(" agent@example.com ") == {
        "query": [
            {"type": "EXACT", "fields": ["email"], "value": "agent@example.com"},
            {"type": "EXACT", "fields": ["state"], "values": ["active", "inactive", "deleted"]},
        ],
        "sortOrder": "ASC",
        "pageSize": 25,
        "pageNumber": 1,
    }


def test_mixed_case_address_is_searched_as_given_and_lowered() -> None:
    """EXACT's case sensitivity is undocumented, so both spellings go in one request."""
    criterion = user_search_body("Agent@Example.COM")["query"][0]
    assert criterion == {"type": "EXACT", "fields": ["email"], "values": ["Agent@Example.COM", "agent@example.com"]}


@pytest.mark.parametrize("bad", ["", "   ", "no-at-sign", None, 42])
def test_normalize_refuses_non_addresses(bad: object) -> None:
    """Only strings with an @ are e-mail addresses."""
    with pytest.raises(ValueError, match="not an e-mail address"):
        normalize_email(bad)  # type: ignore[arg-type]


def test_pick_user_compares_case_insensitively_and_prefers_active() -> None:
    """Results match ignoring case; active beats inactive beats deleted; other addresses are ignored."""
    payload = {"results": [
        {"id": "u-del", "email": "AGENT@example.com", "name": "Old", "state": "deleted"},
        {"id": "u-other", "email": "agent@example.org", "name": "Other", "state": "active"},
        {"id": "u-act", "email": "Agent@Example.com", "name": "New", "state": "active"},
        {"id": "u-ina", "email": "agent@example.com", "name": "Off", "state": "inactive"},
        "garbage", {"id": 5, "email": "agent@example.com"},
    ]}
    assert pick_user(payload, "agent@EXAMPLE.com") == GenesysUser("u-act", "Agent@Example.com", "New", "active")


@pytest.mark.parametrize("payload", [{"total": 0, "pageCount": 0}, {"results": None}, {"results": []}, []])
def test_pick_user_without_results_is_none(payload: object) -> None:
    """No results key (Genesys' answer to no match) or an empty list gives None."""
    assert pick_user(payload, "agent@example.com") is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2025, 3, 10, 12, 30, 15, 123456, tzinfo=UTC), "2025-03-10T12:30:15.123Z"),
        (datetime(2025, 3, 10, 14, 30, 15, tzinfo=timezone(timedelta(hours=2))), "2025-03-10T12:30:15.000Z"),
    ],
)
def test_interval_is_iso_utc_with_milliseconds(moment: datetime, text: str) -> None:
    """Interval ends are ISO-8601 in UTC with a Z, whatever zone they came in."""
    assert analytics_interval(moment, moment) == f"{text}/{text}"


def test_interval_refuses_naive_datetimes() -> None:
    """A naive datetime has no defined UTC instant."""
    with pytest.raises(ValueError, match="timezone-aware"):
        analytics_interval(datetime(2025, 1, 1), datetime(2025, 1, 2))


def test_user_query_matches_reference_pattern_for_all_media() -> None:
    """The detail query follows Genesys' example (§6.2) without a mediaType predicate."""
    body = live_conversations_query(NOW, user_id="u-1", page_size=25, page_number=1)
    assert body["conversationFilters"] == [{"type": "and", "predicates": [
        {"type": "dimension", "dimension": "conversationEnd", "operator": "notExists"}]}]
    predicates = body["segmentFilters"][0]["clauses"][0]["predicates"]
    assert {"type": "dimension", "dimension": "userId", "operator": "matches", "value": "u-1"} in predicates
    assert {"type": "dimension", "dimension": "segmentEnd", "operator": "notExists"} in predicates
    assert {"type": "dimension", "dimension": "segmentType", "operator": "matches", "value": "interact"} in predicates
    assert all(p["dimension"] != "mediaType" for p in predicates)
    assert (body["order"], body["orderBy"]) == ("desc", "conversationStart")
    assert body["interval"] == "2025-02-08T13:30:15.123Z/2025-03-10T13:30:15.123Z"
    assert body["paging"] == {"pageSize": 25, "pageNumber": 1}


def test_org_query_asks_for_any_user() -> None:
    """Without a user the segment predicate is userId exists."""
    body = live_conversations_query(NOW, user_id=None, page_size=100, page_number=3)
    predicates = body["segmentFilters"][0]["clauses"][0]["predicates"]
    assert predicates[0] == {"type": "dimension", "dimension": "userId", "operator": "exists"}
    assert body["paging"] == {"pageSize": 100, "pageNumber": 3}


def _analytics_participant(pid: str, user: str | None, media: str, *, ended: bool = False,
                           segment_type: str = "interact") -> dict:
    segment = {"segmentType": segment_type, "segmentStart": "2025-03-10T12:00:00.000Z"}
    if ended:
        segment["segmentEnd"] = "2025-03-10T12:05:00.000Z"
    participant = {"participantId": pid, "purpose": "agent",
                   "sessions": [{"mediaType": media, "segments": [segment]}]}
    if user:
        participant["userId"] = user
    return participant


def test_analytics_answer_gives_live_user_participants() -> None:
    """Participants with a userId and an unended interact segment are live; customers and ended participants are not."""
    conversations = [
        {"conversationId": "c-1", "participants": [
            _analytics_participant("p-cust", None, "voice"),
            _analytics_participant("p-1", "u-1", "voice"),
            _analytics_participant("p-1b", "u-1", "voice", ended=True),
            _analytics_participant("p-2", "u-2", "voice", segment_type="hold"),
        ]},
        {"conversationId": "c-2", "participants": [_analytics_participant("p-3", "u-2", "message")]},
        {"conversationId": "c-3", "conversationEnd": "2025-03-10T12:06:00.000Z",
         "participants": [_analytics_participant("p-4", "u-1", "voice")]},
        {"conversationId": "c-1", "participants": [_analytics_participant("p-1", "u-1", "voice")]},  # page overlap
        {"participants": []}, "garbage",
    ]
    assert live_in_analytics(conversations) == [
        LiveParticipant("c-1", "p-1", "u-1", "voice"), LiveParticipant("c-2", "p-3", "u-2", "message"),
    ]
    assert live_in_analytics(conversations, "u-2") == [LiveParticipant("c-2", "p-3", "u-2", "message")]


def _participant(pid: str, user: str | None, key: str, state: str, *, ended: bool = False) -> dict:
    participant = {"id": pid, "purpose": "agent", key: [{"id": "comm", "state": state}]}
    if user:
        participant["userId"] = user
    if ended:
        participant["endTime"] = "2025-03-10T12:05:00.000Z"
    return participant


@pytest.mark.parametrize(
    ("key", "media"),
    [("calls", "voice"), ("callbacks", "callback"), ("chats", "chat"), ("cobrowsesessions", "cobrowse"),
     ("emails", "email"), ("messages", "message"), ("screenshares", "screenshare"),
     ("socialExpressions", "socialExpression"), ("videos", "video")],
)
@pytest.mark.parametrize("state", ["alerting", "dialing", "contacting", "offering", "connected", "CONNECTED"])
def test_conversation_answer_confirms_live_participants(key: str, media: str, state: str) -> None:
    """A participant of the user with no endTime and a live communication state is live, in any media."""
    conversation = {"id": "c-1", "participants": [_participant("p-1", "u-1", key, state)]}
    assert live_in_conversation(conversation, "u-1") == [LiveParticipant("c-1", "p-1", "u-1", media)]


@pytest.mark.parametrize(
    "participant",
    [
        _participant("p-1", "u-1", "calls", "disconnected"),
        _participant("p-1", "u-1", "calls", "terminated"),
        _participant("p-1", "u-1", "calls", "connected", ended=True),
        _participant("p-1", "u-2", "calls", "connected"),
        _participant("p-1", None, "calls", "connected"),
        {"id": "p-1", "userId": "u-1"},
    ],
    ids=["disconnected", "terminated", "endTime", "other user", "customer", "no communications"],
)
def test_conversation_answer_rejects_non_live_participants(participant: dict) -> None:
    """Ended, disconnected, other users' and communication-less participants are not live."""
    assert live_in_conversation({"id": "c-1", "participants": [participant]}, "u-1") == []


def test_ended_conversation_has_no_live_participants() -> None:
    """A conversation with an endTime has no live participants, whatever their states say."""
    conversation = {"id": "c-1", "endTime": "2025-03-10T12:05:00.000Z",
                    "participants": [_participant("p-1", "u-1", "calls", "connected")]}
    assert live_in_conversation(conversation, "u-1") == []


def test_user_with_two_participants_in_one_conversation() -> None:
    """A transferred-back user has an ended and a live participant; only the live one counts."""
    conversation = {"id": "c-1", "participants": [
        _participant("p-old", "u-1", "calls", "disconnected", ended=True),
        _participant("p-new", "u-1", "calls", "connected"),
    ]}
    assert live_in_conversation(conversation, "u-1") == [LiveParticipant("c-1", "p-new", "u-1", "voice")]


@pytest.mark.parametrize(("state", "connected_at"), [
    ("connected", datetime(2026, 1, 5, 9, 0, 2, tzinfo=UTC).timestamp()),
    ("alerting", 0.0),
    ("offering", 0.0),
])
def test_only_an_answered_participant_has_a_connection_time(state: str, connected_at: float) -> None:
    """A participant still ringing (a transfer or consult offered, not taken) gets no connection time, so it never
    outranks the person talking to the customer."""
    participant = {"id": "p-1", "userId": "u-1", "purpose": "agent", "startTime": "2026-01-05T09:00:01.000Z",
                   "connectedTime": "2026-01-05T09:00:02.000Z" if state == "connected" else None,
                   "calls": [{"id": "call-1", "state": state}]}
    [live] = live_in_conversation({"id": "c-1", "participants": [participant]}, "u-1")
    assert live.connected_at == connected_at
