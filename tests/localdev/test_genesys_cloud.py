"""The local Genesys Cloud fake, exercised over real HTTP with httpx."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from localdev.genesys_cloud import FakeGenesysCloud, JoinedParticipant, RecordedPatch
from tests.clocks import FakeClock

CLIENT_ID = "fake-client-id"
CLIENT_SECRET = "fake-client-secret"
INTERVAL = "2000-01-01T00:00:00Z/2100-01-01T00:00:00Z"
ERROR_BODY_KEYS = {"message", "code", "status", "messageWithParams", "messageParams", "contextId", "details", "errors"}
# Plain HTTP on 127.0.0.1: not loading the CA bundle saves ~50 ms per client.
NO_TLS = False
RATE_HEADERS = ("inin-ratelimit-allowed", "inin-ratelimit-count", "inin-ratelimit-reset")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cloud(clock: FakeClock) -> Iterator[FakeGenesysCloud]:
    with FakeGenesysCloud(clock=clock, token_lifetime_s=3600) as fake:
        yield fake
        assert fake.server_errors == []


@pytest.fixture
def http(cloud: FakeGenesysCloud) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=cloud.base_url, timeout=5.0, verify=NO_TLS) as client:
        yield client


def basic(client_id: str = CLIENT_ID, secret: str = CLIENT_SECRET) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def get_token(http: httpx.Client) -> str:
    response = http.post("/oauth/token", data={"grant_type": "client_credentials"}, headers={"Authorization": basic()})
    assert response.status_code == 200
    return response.json()["access_token"]


@pytest.fixture
def api(http: httpx.Client) -> httpx.Client:
    """The same client, with a bearer token on every request."""
    http.headers["Authorization"] = f"Bearer {get_token(http)}"
    return http


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body.keys() >= ERROR_BODY_KEYS
    assert (body["status"], body["code"]) == (status, code)
    assert response.headers["ININ-Correlation-Id"] == body["contextId"]
    return body


def live_calls_query(user_id: str | None = None, **extra: Any) -> dict[str, Any]:
    """The official 'a user's active conversations' query (reference §6.2); no user: org-wide."""
    who = (
        {"type": "dimension", "dimension": "userId", "operator": "matches", "value": user_id}
        if user_id
        else {"type": "dimension", "dimension": "userId", "operator": "exists"}
    )
    return {
        "conversationFilters": [
            {
                "type": "and",
                "predicates": [{"type": "dimension", "dimension": "conversationEnd", "operator": "notExists"}],
            }
        ],
        "segmentFilters": [
            {
                "type": "and",
                "clauses": [
                    {
                        "type": "and",
                        "predicates": [
                            who,
                            {"type": "dimension", "dimension": "segmentEnd", "operator": "notExists"},
                            {
                                "type": "dimension",
                                "dimension": "segmentType",
                                "operator": "matches",
                                "value": "interact",
                            },
                        ],
                    }
                ],
            }
        ],
        "order": "asc",
        "orderBy": "conversationStart",
        "interval": INTERVAL,
        "paging": {"pageSize": 25, "pageNumber": 1},
        **extra,
    }


def patch_attributes(api: httpx.Client, participant: JoinedParticipant, body: Any, **kwargs: Any) -> httpx.Response:
    path = f"/api/v2/conversations/{participant.conversation_id}/participants/{participant.participant_id}/attributes"
    if "content" in kwargs:
        return api.patch(path, **kwargs)
    return api.patch(path, json=body, **kwargs)


# --- OAuth -----------------------------------------------------------------------------------------


def test_token_success_and_use(http: httpx.Client) -> None:
    """A client-credentials token is issued with bearer type and lifetime, and opens the API."""
    response = http.post("/oauth/token", data={"grant_type": "client_credentials"}, headers={"Authorization": basic()})
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    user = http.get("/api/v2/users/nobody", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert_error(user, 404, "not.found")


@pytest.mark.parametrize(
    ("authorization", "form", "status", "error"),
    [
        (basic(secret="wrong"), {"grant_type": "client_credentials"}, 401, "invalid_client"),
        (basic(client_id="other"), {"grant_type": "client_credentials"}, 401, "invalid_client"),
        (None, {"grant_type": "client_credentials"}, 401, "invalid_client"),
        ("Basic not-base64!", {"grant_type": "client_credentials"}, 401, "invalid_client"),
        (basic(), {"grant_type": "password"}, 400, "unsupported_grant_type"),
        (basic(), {}, 400, "invalid_request"),
    ],
)
def test_token_refusals(
    http: httpx.Client, authorization: str | None, form: dict[str, str], status: int, error: str
) -> None:
    """Bad client authentication is 401 invalid_client; a bad grant is 400, OAuth2 style."""
    headers = {"Authorization": authorization} if authorization else {}
    response = http.post("/oauth/token", data=form, headers=headers)
    assert response.status_code == status
    body = response.json()
    assert body["error"] == error
    assert body["description"] == body["error_description"]


def test_token_expires_by_injected_clock(http: httpx.Client, clock: FakeClock) -> None:
    """A token works until its lifetime passes on the injected clock, then it is bad.credentials."""
    headers = {"Authorization": f"Bearer {get_token(http)}"}
    clock.advance(3599)
    assert http.get("/api/v2/users/x", headers=headers).status_code == 404
    clock.advance(1)
    assert_error(http.get("/api/v2/users/x", headers=headers), 401, "bad.credentials")


def test_expire_tokens_invalidates_every_token(cloud: FakeGenesysCloud, api: httpx.Client) -> None:
    """expire_tokens() turns every issued token into a 401 bad.credentials."""
    cloud.expire_tokens()
    assert_error(api.get("/api/v2/users/x"), 401, "bad.credentials")


@pytest.mark.parametrize("authorization", [None, "Basic abc", "Bearer"])
def test_missing_bearer_is_authentication_required(http: httpx.Client, authorization: str | None) -> None:
    """No bearer token: 401 authentication.required, ErrorBody shape, rate-limit headers."""
    headers = {"Authorization": authorization} if authorization else {}
    response = http.get("/api/v2/conversations/abc", headers=headers)
    body = assert_error(response, 401, "authentication.required")
    assert body["message"] == "No authentication bearer token specified in authorization header."
    assert all(h in response.headers for h in RATE_HEADERS)


def test_unknown_token_is_bad_credentials(http: httpx.Client) -> None:
    """A token the fake never issued is 401 bad.credentials."""
    assert_error(http.get("/api/v2/users/x", headers={"Authorization": "Bearer nope"}), 401, "bad.credentials")


# --- rate limit ------------------------------------------------------------------------------------


def test_rate_limit_429_with_retry_after_and_headers(
    cloud: FakeGenesysCloud, api: httpx.Client, clock: FakeClock
) -> None:
    """Over the per-token limit: 429 too.many.requests with Retry-After; headers count the window."""
    cloud.set_rate_limit(3)
    for expected_count in (1, 2, 3):
        response = api.get("/api/v2/users/x")
        assert response.headers["inin-ratelimit-count"] == str(expected_count)
        assert response.headers["inin-ratelimit-allowed"] == "3"
        clock.advance(10)
    limited = api.get("/api/v2/users/x")
    body = assert_error(limited, 429, "too.many.requests")
    assert limited.headers["Retry-After"] == "30"
    assert limited.headers["inin-ratelimit-reset"] == "30"
    assert body["message"] == "Rate limit exceeded the maximum [3] requests within [60] seconds"
    assert body["limit"]["value"] == 3
    clock.advance(30)
    assert api.get("/api/v2/users/x").headers["inin-ratelimit-count"] == "1"


def test_rate_limit_is_per_token(cloud: FakeGenesysCloud, api: httpx.Client, http: httpx.Client) -> None:
    """A second token has its own window."""
    cloud.set_rate_limit(1)
    api.get("/api/v2/users/x")
    assert api.get("/api/v2/users/x").status_code == 429
    other = {"Authorization": f"Bearer {get_token(http)}"}
    assert http.get("/api/v2/users/x", headers=other).status_code == 404


# --- users search ----------------------------------------------------------------------------------


def email_query(email: str, **extra: Any) -> dict[str, Any]:
    return {"query": [{"fields": ["email"], "value": email, "type": "EXACT"}], "pageSize": 25, "pageNumber": 1, **extra}


@pytest.mark.parametrize("email", ["ada@example.com", "ADA@Example.COM", "Ada@example.com"])
def test_users_search_exact_email_is_case_insensitive(cloud: FakeGenesysCloud, api: httpx.Client, email: str) -> None:
    """EXACT e-mail search finds the user whatever the case (the fake's documented choice)."""
    user_id = cloud.add_user("Ada@example.com", name="Ada Lovelace")
    cloud.add_user("ada.other@example.com")
    response = api.post("/api/v2/users/search", json=email_query(email))
    assert response.status_code == 200
    body = response.json()
    assert (body["total"], body["pageCount"]) == (1, 1)
    [user] = body["results"]
    assert (user["id"], user["name"], user["email"], user["state"]) == (
        user_id,
        "Ada Lovelace",
        "Ada@example.com",
        "active",
    )


def test_users_search_exact_email_mode_is_case_sensitive(clock: FakeClock) -> None:
    """email_match="exact": EXACT on email (and username) compares case-sensitively; other fields still ignore case."""
    with FakeGenesysCloud(clock=clock, email_match="exact") as fake, \
            httpx.Client(base_url=fake.base_url, timeout=5.0, verify=NO_TLS) as http:
        http.headers["Authorization"] = f"Bearer {get_token(http)}"
        user_id = fake.add_user("ada@example.com", name="Ada Lovelace")

        def found(query: dict[str, Any]) -> list[str]:
            return [u["id"] for u in http.post("/api/v2/users/search", json=query).json().get("results", [])]

        assert found(email_query("ada@example.com")) == [user_id]
        assert found(email_query("Ada@Example.com")) == []
        assert found({"query": [{"type": "EXACT", "fields": ["username"], "value": "ADA@example.com"}]}) == []
        assert found({"query": [{"type": "EXACT", "fields": ["email"], "values": ["Ada@Example.com",
                                                                                   "ada@example.com"]}]}) == [user_id]
        assert found({"query": [{"type": "EXACT", "fields": ["name"], "value": "ada lovelace"}]}) == [user_id]
        assert fake.server_errors == []


def test_email_match_refuses_unknown_modes() -> None:
    """Only "ignore_case" and "exact" are e-mail match modes."""
    with pytest.raises(ValueError, match="email_match"):
        FakeGenesysCloud(email_match="fuzzy")  # type: ignore[arg-type]


def test_users_search_no_match_has_no_results(cloud: FakeGenesysCloud, api: httpx.Client) -> None:
    """No match: 200, total 0 and no results key."""
    cloud.add_user("ada@example.com")
    body = api.post("/api/v2/users/search", json=email_query("nobody@example.com")).json()
    assert body["total"] == 0
    assert "results" not in body


def test_users_search_state_criterion(cloud: FakeGenesysCloud, api: httpx.Client) -> None:
    """Only active users by default; a state EXACT values criterion widens the search."""
    cloud.add_user("gone@example.com", state="deleted")
    active = cloud.add_user("gone@example.com")
    default = api.post("/api/v2/users/search", json=email_query("gone@example.com")).json()
    assert [u["id"] for u in default["results"]] == [active]
    widened = email_query("gone@example.com")
    widened["query"].append({"fields": ["state"], "type": "EXACT", "values": ["inactive", "active", "deleted"]})
    body = api.post("/api/v2/users/search", json=widened).json()
    assert sorted(u["state"] for u in body["results"]) == ["active", "deleted"]


def test_users_search_paging_and_next_page(cloud: FakeGenesysCloud, api: httpx.Client) -> None:
    """pageSize/pageNumber page the results; nextPage is a q64 link GET serves."""
    for i in range(5):
        cloud.add_user(f"u{i}@corp.example", name=f"User {i}")
    query = {"query": [{"fields": ["email"], "value": "corp.example", "type": "CONTAINS"}], "pageSize": 2}
    first = api.post("/api/v2/users/search", json=query).json()
    assert (first["total"], first["pageCount"], len(first["results"])) == (5, 3, 2)
    second = api.get(first["nextPage"]).json()
    assert second["pageNumber"] == 2
    assert [u["name"] for u in second["results"]] == ["User 2", "User 3"]
    last = api.post("/api/v2/users/search", json={**query, "pageNumber": 3}).json()
    assert [u["name"] for u in last["results"]] == ["User 4"]
    assert "nextPage" not in last


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        json.dumps({"query": [{"fields": ["email"], "value": "a@b.c", "type": "EXACTLY"}]}).encode(),
        json.dumps({"query": "a@b.c"}).encode(),
        json.dumps({"query": [{"fields": ["email"], "value": "a@b.c", "type": "EXACT"}], "pageSize": 101}).encode(),
    ],
)
def test_users_search_malformed_is_bad_request(api: httpx.Client, content: bytes) -> None:
    """Non-JSON, an unknown criterion type, a non-list query or pageSize over 100 are 400 bad.request."""
    response = api.post("/api/v2/users/search", content=content, headers={"Content-Type": "application/json"})
    assert_error(response, 400, "bad.request")


# --- analytics -------------------------------------------------------------------------------------


def test_analytics_finds_a_users_live_call(cloud: FakeGenesysCloud, api: httpx.Client) -> None:
    """The official query returns the user's live call in the analytics shape."""
    user_id = cloud.add_user("ada@example.com", name="Ada")
    other = cloud.add_user("bob@example.com")
    participant = cloud.start_conversation(user_id)
    cloud.start_conversation(other)
    response = api.post("/api/v2/analytics/conversations/details/query", json=live_calls_query(user_id))
    assert response.status_code == 200
    body = response.json()
    assert body["totalHits"] == 1
    [conversation] = body["conversations"]
    assert conversation["conversationId"] == participant.conversation_id
    assert "conversationEnd" not in conversation
    agent = next(p for p in conversation["participants"] if p.get("userId") == user_id)
    assert (agent["participantId"], agent["participantName"],
            agent["purpose"]) == (participant.participant_id, "Ada", "agent")
    [session] = agent["sessions"]
    assert session["mediaType"] == "voice"
    [segment] = session["segments"]
    assert segment["segmentType"] == "interact"
    assert "segmentEnd" not in segment
    customer = next(p for p in conversation["participants"] if p["purpose"] == "customer")
    assert "userId" not in customer


def test_analytics_org_wide_excludes_ended(cloud: FakeGenesysCloud, api: httpx.Client) -> None:
    """Without a user, every live conversation with a live user segment; ended ones and ended participants drop out."""
    a, b, c = (cloud.add_user(f"{n}@example.com") for n in "abc")
    live_a = cloud.start_conversation(a)
    live_b = cloud.start_conversation(b, media_type="message")
    ended = cloud.start_conversation(c)
    cloud.end_conversation(ended.conversation_id)
    left = cloud.start_conversation(c)
    cloud.end_participant(left.conversation_id, left.participant_id)
    body = api.post("/api/v2/analytics/conversations/details/query", json=live_calls_query()).json()
    assert [x["conversationId"] for x in body["conversations"]] == [live_a.conversation_id, live_b.conversation_id]
    assert body["totalHits"] == 2


def test_analytics_can_lag_behind_an_ended_conversation(cloud: FakeGenesysCloud, api: httpx.Client) -> None:
    """keep_in_analytics=True: GET and PATCH see the end, the analytics query still reports the conversation or
    participant live, until catch_up_analytics()."""
    user_id = cloud.add_user("ada@example.com")
    ended = cloud.start_conversation(user_id)
    left = cloud.start_conversation(user_id)
    cloud.end_conversation(ended.conversation_id, keep_in_analytics=True)
    cloud.end_participant(left.conversation_id, left.participant_id, keep_in_analytics=True)
    url = "/api/v2/analytics/conversations/details/query"
    body = api.post(url, json=live_calls_query(user_id)).json()
    assert [c["conversationId"] for c in body["conversations"]] == [ended.conversation_id, left.conversation_id]
    for conversation in body["conversations"]:
        assert "conversationEnd" not in conversation
        agent = next(p for p in conversation["participants"] if p.get("userId") == user_id)
        assert "segmentEnd" not in agent["sessions"][0]["segments"][0]
    assert "endTime" in api.get(f"/api/v2/conversations/{ended.conversation_id}").json()
    for participant in (ended, left):
        assert_error(patch_attributes(api, participant, {"attributes": {"a": "b"}}), 400,
                     "conversation.error.participant.no.active.conversations")
    cloud.catch_up_analytics()
    assert api.post(url, json=live_calls_query(user_id)).json() == {"totalHits": 0}


def test_analytics_media_type_and_purpose_predicates(cloud: FakeGenesysCloud, api: httpx.Client) -> None:
    """mediaType and purpose predicates narrow the segments that may match."""
    user_id = cloud.add_user("ada@example.com")
    cloud.start_conversation(user_id)
    message = cloud.start_conversation(user_id, media_type="message", purpose="user")
    query = live_calls_query(user_id)
    predicates = query["segmentFilters"][0]["clauses"][0]["predicates"]
    predicates.append({"type": "dimension", "dimension": "mediaType", "operator": "matches", "value": "message"})
    predicates.append({"type": "dimension", "dimension": "purpose", "operator": "matches", "value": "user"})
    body = api.post("/api/v2/analytics/conversations/details/query", json=query).json()
    assert [x["conversationId"] for x in body["conversations"]] == [message.conversation_id]


def test_analytics_transfer_shows_both_participants(cloud: FakeGenesysCloud, api: httpx.Client) -> None:
    """The same user can be several participants; each participant is its own analytics participant."""
    user_id = cloud.add_user("ada@example.com")
    first = cloud.start_conversation(user_id)
    second = cloud.add_participant(first.conversation_id, user_id)
    body = api.post("/api/v2/analytics/conversations/details/query", json=live_calls_query(user_id)).json()
    ids = [p["participantId"] for p in body["conversations"][0]["participants"] if p.get("userId") == user_id]
    assert ids == [first.participant_id, second.participant_id]


def test_analytics_paging_and_order(cloud: FakeGenesysCloud, api: httpx.Client) -> None:
    """paging splits the hits; desc order reverses; totalHits counts them all."""
    user_id = cloud.add_user("ada@example.com")
    participants = [cloud.start_conversation(user_id) for _ in range(5)]
    ids = [participant.conversation_id for participant in participants]
    url = "/api/v2/analytics/conversations/details/query"
    page2 = api.post(url, json=live_calls_query(user_id, paging={"pageSize": 2, "pageNumber": 2})).json()
    assert [c["conversationId"] for c in page2["conversations"]] == ids[2:4]
    assert page2["totalHits"] == 5
    desc = api.post(url, json=live_calls_query(user_id, order="desc")).json()
    assert [c["conversationId"] for c in desc["conversations"]] == ids[::-1]
    beyond = api.post(url, json=live_calls_query(user_id, paging={"pageSize": 2, "pageNumber": 4})).json()
    assert beyond == {"totalHits": 5}


def test_analytics_nothing_matching_omits_conversations(api: httpx.Client) -> None:
    """No hits: exactly {"totalHits": 0}, as real Genesys answers."""
    response = api.post("/api/v2/analytics/conversations/details/query", json=live_calls_query("nobody"))
    assert response.json() == {"totalHits": 0}


def test_analytics_interval_limits_days(cloud: FakeGenesysCloud, api: httpx.Client) -> None:
    """Conversations that started on a day the interval does not touch are left out."""
    user_id = cloud.add_user("ada@example.com")
    cloud.start_conversation(user_id)
    query = live_calls_query(user_id, interval="2001-01-01T00:00:00Z/2001-01-02T00:00:00Z")
    assert api.post("/api/v2/analytics/conversations/details/query", json=query).json() == {"totalHits": 0}


@pytest.mark.parametrize(
    "change",
    [
        {"interval": None},
        {"interval": "yesterday/today"},
        {"interval": "2024-02-01T00:00:00Z/2024-01-01T00:00:00Z"},
        {"paging": {"pageSize": 101, "pageNumber": 1}},
        {"paging": {"pageSize": 25, "pageNumber": 0}},
        {"order": "sideways"},
        {"segmentFilters": [{"type": "and", "predicates": [{"dimension": "colour", "value": "red"}]}]},
        {"segmentFilters": [{"type": "xor", "predicates": [{"dimension": "userId", "value": "u"}]}]},
    ],
)
def test_analytics_malformed_is_bad_request(api: httpx.Client, change: dict[str, Any]) -> None:
    """A missing or malformed interval, pageSize over 100, bad order or unknown filter parts are 400."""
    query = {k: v for k, v in {**live_calls_query("u"), **change}.items() if v is not None}
    assert_error(api.post("/api/v2/analytics/conversations/details/query", json=query), 400, "bad.request")


# --- GET conversation ------------------------------------------------------------------------------


def test_get_conversation_live_and_ended(cloud: FakeGenesysCloud, api: httpx.Client) -> None:
    """GET shows participants with ids, purposes, users and call state; ending sets endTime and disconnected."""
    user_id = cloud.add_user("ada@example.com")
    participant = cloud.start_conversation(user_id)
    live = api.get(f"/api/v2/conversations/{participant.conversation_id}").json()
    assert live["id"] == participant.conversation_id
    assert "endTime" not in live
    agent = next(p for p in live["participants"] if p["id"] == participant.participant_id)
    assert (agent["purpose"], agent["userId"], agent["attributes"]) == ("agent", user_id, {})
    assert agent["calls"][0]["state"] == "connected"
    assert [p["purpose"] for p in live["participants"]] == ["customer", "agent"]

    cloud.end_conversation(participant.conversation_id)
    ended = api.get(f"/api/v2/conversations/{participant.conversation_id}").json()
    assert "endTime" in ended
    assert all("endTime" in p and p["calls"][0]["state"] == "disconnected" for p in ended["participants"])


def test_get_conversation_message_media(cloud: FakeGenesysCloud, api: httpx.Client) -> None:
    """A messaging conversation lists its communications under messages."""
    participant = cloud.start_conversation(cloud.add_user("ada@example.com"), media_type="message")
    body = api.get(f"/api/v2/conversations/{participant.conversation_id}").json()
    assert all("messages" in p and "calls" not in p for p in body["participants"])


def test_get_unknown_conversation_is_404(api: httpx.Client) -> None:
    """An unknown conversation id is 404 not.found."""
    assert_error(api.get("/api/v2/conversations/unknown"), 404, "not.found")


# --- attributes PATCH ------------------------------------------------------------------------------


def test_patch_merges_and_answers_202_empty(cloud: FakeGenesysCloud, api: httpx.Client, clock: FakeClock) -> None:
    """PATCH answers 202 with an empty body, merges into the stored map and is recorded."""
    participant = cloud.start_conversation(cloud.add_user("ada@example.com"))
    first = patch_attributes(api, participant, {"attributes": {"slack.title": "Engineer", "slack.tz": "Europe/Dublin"}})
    assert (first.status_code, first.content) == (202, b"")
    clock.advance(5)
    patch_attributes(api, participant, {"attributes": {"slack.title": "Lead"}})
    assert cloud.attributes(participant.conversation_id, participant.participant_id) == {
        "slack.title": "Lead",
        "slack.tz": "Europe/Dublin",
    }
    assert cloud.patches == [
        RecordedPatch(
            participant.conversation_id, participant.participant_id,
            {"slack.title": "Engineer", "slack.tz": "Europe/Dublin"}, 1000.0,
        ),
        RecordedPatch(participant.conversation_id, participant.participant_id, {"slack.title": "Lead"}, 1005.0),
    ]
    shown = api.get(f"/api/v2/conversations/{participant.conversation_id}").json()
    agent = next(p for p in shown["participants"] if p["id"] == participant.participant_id)
    assert agent["attributes"]["slack.title"] == "Lead"


@pytest.mark.parametrize(
    ("body", "code", "field_name"),
    [
        ({"attributes": {"slack.title": 5}}, "invalid.value", "attributes.slack.title"),
        ({"attributes": {"slack.vip": True}}, "invalid.value", "attributes.slack.vip"),
        ({"attributes": {"slack.gone": None}}, "invalid.value", "attributes.slack.gone"),
        ({"attributes": {"slack": {"title": "x"}}}, "invalid.value", "attributes.slack"),
        ({"attributes": None}, "conversation.error.participant.attribute.null", "attributes"),
        ({}, "conversation.error.participant.attribute.null", "attributes"),
        ({"attributes": {}, "attribs": {}}, "bad.request", "attribs"),
        ({"attributes": ["a"]}, "bad.request", "attributes"),
    ],
)
def test_patch_rejections(cloud: FakeGenesysCloud, api: httpx.Client, body: Any, code: str, field_name: str) -> None:
    """Bodies that are not exactly {"attributes": {str: str}} are 400 with details naming the field."""
    participant = cloud.start_conversation(cloud.add_user("ada@example.com"))
    error = assert_error(patch_attributes(api, participant, body), 400, code)
    assert field_name in [d["fieldName"] for d in error["details"]]
    assert cloud.patches == []


@pytest.mark.parametrize("content", [b"{not json", b'{"attributes": {"a": NaN}}', b"\xff\xfe", b'"attributes"'])
def test_patch_non_json_is_bad_request(cloud: FakeGenesysCloud, api: httpx.Client, content: bytes) -> None:
    """Non-JSON, NaN, non-UTF-8 or a non-object body is 400 bad.request."""
    participant = cloud.start_conversation(cloud.add_user("ada@example.com"))
    response = patch_attributes(api, participant, None, content=content, headers={"Content-Type": "application/json"})
    assert_error(response, 400, "bad.request")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_patch_wrong_content_type_is_415(cloud: FakeGenesysCloud, api: httpx.Client, content_type: str | None) -> None:
    """A Content-Type other than application/json is 415 unsupported.media.type."""
    participant = cloud.start_conversation(cloud.add_user("ada@example.com"))
    headers = {"Content-Type": content_type} if content_type else {}
    response = patch_attributes(api, participant, None, content=b'{"attributes": {}}', headers=headers)
    assert_error(response, 415, "unsupported.media.type")


def test_patch_over_512000_bytes_is_413(cloud: FakeGenesysCloud, api: httpx.Client) -> None:
    """A body over 512,000 bytes is 413 request.entity.too.large; at the limit it is accepted."""
    participant = cloud.start_conversation(cloud.add_user("ada@example.com"))
    frame = len(json.dumps({"attributes": {"k": ""}}).encode())
    at_limit = {"attributes": {"k": "x" * (512_000 - frame)}}
    body = json.dumps(at_limit).encode()
    assert len(body) == 512_000
    ok = patch_attributes(api, participant, None, content=body, headers={"Content-Type": "application/json"})
    assert ok.status_code == 202
    over = patch_attributes(api, participant, None, content=body[:-2] + b'x"}}',
                            headers={"Content-Type": "application/json"})
    assert_error(over, 413, "request.entity.too.large")


def test_patch_chunked_body_is_accepted(cloud: FakeGenesysCloud, api: httpx.Client) -> None:
    """A body sent with Transfer-Encoding: chunked is read like any other."""
    participant = cloud.start_conversation(cloud.add_user("ada@example.com"))
    parts = iter([b'{"attributes": ', b'{"slack.title": ', b'"Engineer"}}'])
    response = patch_attributes(api, participant, None, content=parts, headers={"Content-Type": "application/json"})
    assert response.status_code == 202
    assert cloud.attributes(participant.conversation_id, participant.participant_id) == {"slack.title": "Engineer"}


ATTRIBUTE_MAPS = st.dictionaries(st.text(min_size=1, max_size=20), st.text(max_size=40), max_size=6)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(ATTRIBUTE_MAPS, min_size=1, max_size=4))
def test_patch_merge_property(cloud: FakeGenesysCloud, api: httpx.Client, batches: list[dict[str, str]]) -> None:
    """Any sequence of string maps (unicode, dots, spaces) is stored as their left-to-right merge."""
    participant = cloud.start_conversation(cloud.add_user("ada@example.com"))
    expected: dict[str, str] = {}
    for batch in batches:
        assert patch_attributes(api, participant, {"attributes": batch}).status_code == 202
        expected.update(batch)
    assert cloud.attributes(participant.conversation_id, participant.participant_id) == expected


def test_patch_ended_conversation_or_participant_is_400(cloud: FakeGenesysCloud, api: httpx.Client) -> None:
    """An ended participant or conversation is 400 conversation.error.participant.no.active.conversations."""
    user_id = cloud.add_user("ada@example.com")
    first = cloud.start_conversation(user_id)
    second = cloud.add_participant(first.conversation_id, user_id)
    cloud.end_participant(first.conversation_id, first.participant_id)
    code = "conversation.error.participant.no.active.conversations"
    assert_error(patch_attributes(api, first, {"attributes": {"a": "b"}}), 400, code)
    assert patch_attributes(api, second, {"attributes": {"a": "b"}}).status_code == 202
    cloud.end_conversation(first.conversation_id)
    assert_error(patch_attributes(api, second, {"attributes": {"a": "c"}}), 400, code)


@pytest.mark.parametrize("which", ["conversation", "participant"])
def test_patch_unknown_is_404(cloud: FakeGenesysCloud, api: httpx.Client, which: str) -> None:
    """An unknown conversation or participant is 404 not.found."""
    participant = cloud.start_conversation(cloud.add_user("ada@example.com"))
    ghost = JoinedParticipant(
        "nope" if which == "conversation" else participant.conversation_id,
        "nope" if which == "participant" else participant.participant_id,
        participant.user_id,
        participant.media_type,
    )
    assert_error(patch_attributes(api, ghost, {"attributes": {"a": "b"}}), 404, "not.found")


def test_patch_needs_no_permission(cloud: FakeGenesysCloud, api: httpx.Client) -> None:
    """The attributes PATCH declares no permission, so revoking all of them does not block it."""
    participant = cloud.start_conversation(cloud.add_user("ada@example.com"))
    for permission in ("directory:user:view", "analytics:conversationDetail:view", "conversation:communication:view"):
        cloud.revoke_permission(permission)
    assert patch_attributes(api, participant, {"attributes": {"a": "b"}}).status_code == 202


# --- permissions -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("permission", "method", "path", "body", "code", "listed"),
    [
        (
            "directory:user:view",
            "POST",
            "/api/v2/users/search",
            email_query("a@b.c"),
            "missing.permissions",
            "[directory:user:view]",
        ),
        (
            "analytics:conversationDetail:view",
            "POST",
            "/api/v2/analytics/conversations/details/query",
            live_calls_query("u"),
            "missing.any.permissions",
            "[analytics:conversationDetail:view, analytics:agentConversationDetail:view]",
        ),
        (
            "conversation:communication:view",
            "GET",
            "/api/v2/conversations/unknown",
            None,
            "missing.permissions",
            "[conversation:communication:view]",
        ),
    ],
)
def test_revoked_permission_is_403_then_granted_back(
    cloud: FakeGenesysCloud,
    api: httpx.Client,
    permission: str,
    method: str,
    path: str,
    body: Any,
    code: str,
    listed: str,
) -> None:
    """A revoked permission is 403 naming it in messageParams, before any 404; granting restores access."""
    cloud.revoke_permission(permission)
    error = assert_error(api.request(method, path, json=body), 403, code)
    assert error["messageParams"] == {"permissions": listed}
    assert error["message"].endswith(listed)
    assert "{permissions}" in error["messageWithParams"]
    cloud.grant_permission(permission)
    assert api.request(method, path, json=body).status_code in {200, 404}


def test_agent_detail_permission_alone_suffices_for_analytics(cloud: FakeGenesysCloud, api: httpx.Client) -> None:
    """The analytics query takes ANY of its two permissions."""
    cloud.revoke_permission("analytics:conversationDetail:view")
    cloud.grant_permission("analytics:agentConversationDetail:view")
    response = api.post("/api/v2/analytics/conversations/details/query", json=live_calls_query("u"))
    assert response.status_code == 200


# --- routing and recording -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/api/v2/nothing/here"), ("PUT", "/api/v2/users/search"), ("GET", "/")]
)
def test_anything_else_is_404_error_body(api: httpx.Client, method: str, path: str) -> None:
    """Unknown paths and methods are 404 not.found in ErrorBody shape."""
    assert_error(api.request(method, path), 404, "not.found")


def test_requests_are_recorded(cloud: FakeGenesysCloud, api: httpx.Client) -> None:
    """Every request is recorded with its path (no query), status and presented token."""
    token = api.headers["Authorization"].removeprefix("Bearer ")
    api.get("/api/v2/conversations/x?expand=y")
    last = cloud.requests[-1]
    assert (last.method, last.path, last.status, last.token) == ("GET", "/api/v2/conversations/x", 404, token)
    assert cloud.requests[0].path == "/oauth/token"
    assert cloud.requests[0].token is None
    assert cloud.request_count("GET", "/api/v2/conversations") == 1
    assert cloud.request_count() == 2


# --- faults ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code"),
    [(503, "service.unavailable"), (502, "bad.gateway"), (504, "request.timeout"), (500, "internal.server.error")],
)
def test_fail_next_answers_error_body_then_recovers(
    cloud: FakeGenesysCloud, api: httpx.Client, status: int, code: str
) -> None:
    """fail_next(status, 2) fails the next two matching requests with an ErrorBody, then normal service resumes."""
    cloud.fail_next(status, 2, path_prefix="/api/v2/users", retry_after=7)
    assert api.get("/api/v2/conversations/x").status_code == 404  # other paths are untouched
    for _ in range(2):
        response = api.get("/api/v2/users/x")
        assert_error(response, status, code)
        assert response.headers["Retry-After"] == "7"
    assert api.get("/api/v2/users/x").status_code == 404


def test_fail_next_without_retry_after_has_no_header(cloud: FakeGenesysCloud, api: httpx.Client) -> None:
    """Retry-After is only sent when asked for."""
    cloud.fail_next(503)
    response = api.get("/api/v2/users/x")
    assert_error(response, 503, "service.unavailable")
    assert "Retry-After" not in response.headers


def test_fail_for_window_follows_injected_clock(cloud: FakeGenesysCloud, api: httpx.Client, clock: FakeClock) -> None:
    """fail_for fails every matching request until the window closes on the injected clock."""
    cloud.fail_for(503, 30, path_prefix="/api/v2/conversations")
    for _ in range(3):
        assert api.get("/api/v2/conversations/x").status_code == 503
        clock.advance(9)
    assert api.get("/api/v2/users/x").status_code == 404
    clock.advance(3)
    assert api.get("/api/v2/conversations/x").status_code == 404


def test_drop_next_closes_without_answer(cloud: FakeGenesysCloud, api: httpx.Client) -> None:
    """drop_next closes the connection with no answer; it is recorded as status 0; the next request works."""
    cloud.drop_next(path_prefix="/api/v2/users")
    with pytest.raises(httpx.RemoteProtocolError):
        api.get("/api/v2/users/x")
    assert cloud.requests[-1].status == 0
    assert api.get("/api/v2/users/x").status_code == 404


def test_latency_delays_every_answer(cloud: FakeGenesysCloud, api: httpx.Client) -> None:
    """set_latency delays each answer by at least that long."""
    cloud.set_latency(0.15)
    started = time.perf_counter()
    api.get("/api/v2/users/x")
    assert time.perf_counter() - started >= 0.15
    cloud.set_latency(0)
    started = time.perf_counter()
    api.get("/api/v2/users/x")
    assert time.perf_counter() - started < 0.15


# --- lifecycle -------------------------------------------------------------------------------------


def test_stop_is_prompt_idempotent_and_closes_connections() -> None:
    """stop() returns quickly with a pooled connection open and a slow answer in flight; the port closes."""
    fake = FakeGenesysCloud().start()
    outcome: list[BaseException | int] = []

    def slow_request() -> None:
        try:
            outcome.append(httpx.get(fake.base_url + "/api/v2/users/x", timeout=5.0, verify=NO_TLS).status_code)
        except httpx.TransportError as error:
            outcome.append(error)

    with httpx.Client(base_url=fake.base_url, timeout=2.0, verify=NO_TLS) as client:
        assert client.get("/api/v2/users/x").status_code == 401  # leaves a keep-alive connection open
        fake.set_latency(10)
        in_flight = threading.Thread(target=slow_request)
        in_flight.start()
        time.sleep(0.05)  # let the slow request reach the server
        started = time.perf_counter()
        fake.stop()
        fake.stop()
        assert time.perf_counter() - started < 0.5
        in_flight.join(timeout=2.0)
        assert len(outcome) == 1
        assert isinstance(outcome[0], httpx.TransportError)
        with pytest.raises(httpx.TransportError):
            client.get("/api/v2/users/x")
    with pytest.raises(httpx.ConnectError):
        httpx.get(fake.base_url + "/api/v2/users/x", timeout=1.0, verify=NO_TLS)
    assert fake.server_errors == []


def test_concurrent_patches_are_all_recorded(cloud: FakeGenesysCloud, api: httpx.Client) -> None:
    """Concurrent PATCHes from many connections are each stored and recorded once."""
    participant = cloud.start_conversation(cloud.add_user("ada@example.com"))

    def write(i: int) -> int:
        with httpx.Client(base_url=cloud.base_url, headers=api.headers, verify=NO_TLS) as client:
            return patch_attributes(client, participant, {"attributes": {f"k{i}": str(i)}}).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(write, range(64)))
    assert statuses == [202] * 64
    assert len(cloud.patches) == 64
    assert cloud.attributes(participant.conversation_id,
                            participant.participant_id) == {f"k{i}": str(i) for i in range(64)}


def test_context_manager_and_base_url() -> None:
    """The fake binds 127.0.0.1 on a free port inside `with`, and base_url is unavailable before start."""
    fake = FakeGenesysCloud()
    with pytest.raises(RuntimeError):
        _ = fake.base_url
    with fake as started:
        assert started is fake
        assert fake.base_url.startswith("http://127.0.0.1:")
    assert fake.stopping


# --- The customer's participant, transfers and consults --------------------------------------------


def external_participant(cloud: FakeGenesysCloud, joined: JoinedParticipant, purpose: str) -> JoinedParticipant:
    """The conversation's customer participant, or an external party added to it."""
    if purpose == "customer":
        return JoinedParticipant(joined.conversation_id, cloud.customer_participant_id(joined.conversation_id), "",
                                 joined.media_type)
    return cloud.add_participant(joined.conversation_id, None, purpose="external")


def test_transfer_and_consult_show_in_get_conversation(cloud: FakeGenesysCloud, api: httpx.Client) -> None:
    """add_participant and end_participant: GET shows each leg's purpose, connectedTime (later joins later) and the
    endTime of a leg that left; an external party (no user) has purpose external."""
    ada, bob = cloud.add_user("ada@example.com"), cloud.add_user("bob@example.com")
    first = cloud.start_conversation(ada)
    consult = cloud.add_participant(first.conversation_id, None, purpose="external")
    second = cloud.add_participant(first.conversation_id, bob)
    cloud.end_participant(first.conversation_id, first.participant_id)
    body = api.get(f"/api/v2/conversations/{first.conversation_id}").json()
    by_id = {p["id"]: p for p in body["participants"]}
    customer = by_id[cloud.customer_participant_id(first.conversation_id)]
    assert [p["purpose"] for p in body["participants"]] == ["customer", "agent", "external", "agent"]
    assert ("userId" in customer, "userId" in by_id[consult.participant_id]) == (False, False)
    assert ("endTime" in by_id[first.participant_id], "endTime" in by_id[second.participant_id]) == (True, False)
    assert ("endTime" in customer, "endTime" in body) == (False, False)
    times = [p["connectedTime"] for p in body["participants"]]
    assert times == sorted(set(times))


def test_add_participant_without_a_user_needs_an_external_purpose(cloud: FakeGenesysCloud) -> None:
    """A participant with no user is someone outside the org: purpose agent is refused."""
    joined = cloud.start_conversation(cloud.add_user("ada@example.com"))
    with pytest.raises(ValueError, match="customer or external"):
        cloud.add_participant(joined.conversation_id, None)


@pytest.mark.parametrize("purpose", ["customer", "external"])
def test_patch_external_participant_merges_with_the_same_validation(cloud: FakeGenesysCloud, api: httpx.Client,
                                                                    purpose: str) -> None:
    """The customer's (or an external) participant takes an attributes PATCH like a user's: merged, "" kept, a
    non-string value 400 invalid.value, and 400 no.active.conversations once it left."""
    joined = cloud.start_conversation(cloud.add_user("ada@example.com"))
    external = external_participant(cloud, joined, purpose)
    assert patch_attributes(api, external, {"attributes": {"slack.agent.title": "Chef", "x": "1"}}).status_code == 202
    assert patch_attributes(api, external, {"attributes": {"slack.agent.title": ""}}).status_code == 202
    assert cloud.attributes(external.conversation_id, external.participant_id) == {"slack.agent.title": "", "x": "1"}
    error = assert_error(patch_attributes(api, external, {"attributes": {"slack.agent.vip": True}}), 400,
                         "invalid.value")
    assert [d["fieldName"] for d in error["details"]] == ["attributes.slack.agent.vip"]
    body = api.get(f"/api/v2/conversations/{joined.conversation_id}").json()
    shown = next(p for p in body["participants"] if p["id"] == external.participant_id)
    assert (shown["purpose"], shown["attributes"]) == (purpose, {"slack.agent.title": "", "x": "1"})
    cloud.end_participant(external.conversation_id, external.participant_id)
    assert_error(patch_attributes(api, external, {"attributes": {"a": "b"}}), 400,
                 "conversation.error.participant.no.active.conversations")


def test_analytics_shows_the_customer_and_each_leg(cloud: FakeGenesysCloud, api: httpx.Client) -> None:
    """The analytics answer carries the customer participant (purpose customer, no userId) and each user's leg
    with its interact segment; a leg that left has a segmentEnd."""
    ada, bob = cloud.add_user("ada@example.com"), cloud.add_user("bob@example.com")
    first = cloud.start_conversation(ada)
    second = cloud.add_participant(first.conversation_id, bob)
    cloud.end_participant(first.conversation_id, first.participant_id)
    [conversation] = api.post("/api/v2/analytics/conversations/details/query", json=live_calls_query()).json()[
        "conversations"]
    segments = {p["participantId"]: p["sessions"][0]["segments"][0] for p in conversation["participants"]}
    purposes = {p["participantId"]: p["purpose"] for p in conversation["participants"]}
    assert purposes[cloud.customer_participant_id(first.conversation_id)] == "customer"
    assert ("segmentEnd" in segments[first.participant_id], "segmentEnd" in segments[second.participant_id]) == (
        True, False)
    assert segments[second.participant_id]["segmentStart"] > segments[first.participant_id]["segmentStart"]
