"""GenesysClient over real HTTP against the fake Genesys Cloud: happy paths, every error, faults, secrecy."""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections.abc import Callable, Iterator

import httpx
import pytest

from genesys import (
    AttributesRejected,
    AuthenticationFailed,
    ConversationGone,
    GenesysClient,
    GenesysError,
    GenesysUnavailable,
    LiveParticipant,
    Outcome,
    PermissionMissing,
    RateLimited,
    RequestRejected,
    RetryPolicy,
    VoiceSafeAttributes,
    VoiceSafeLimits,
    WriteResult,
    check_attributes,
)
from genesys.voice_safe import unchecked_attributes_for_tests
from localdev.genesys_cloud import FakeGenesysCloud
from tests.genesys.support import CLIENT_ID, SECRET, FakeClock, fake_client, mock_client, token_response

PATCH_PATH = "/api/v2/conversations/"
QUERY_PATH = "/api/v2/analytics/conversations/details/query"
SEARCH_PATH = "/api/v2/users/search"


def attrs(**values: str) -> VoiceSafeAttributes:
    """A checked attribute map."""
    return check_attributes({f"slack.{k}": v for k, v in values.items()}, VoiceSafeLimits()).sendable()


@pytest.fixture
def clock() -> FakeClock:
    """One fake clock shared by the fake server (token lifetimes, rate windows) and the client."""
    return FakeClock()


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeGenesysCloud]:
    """A running fake Genesys Cloud org whose OAuth client is CLIENT_ID / SECRET."""
    with FakeGenesysCloud(client_id=CLIENT_ID, client_secret=SECRET, clock=clock) as server:
        yield server
    assert server.server_errors == []


@pytest.fixture
def client(fake: FakeGenesysCloud, clock: FakeClock) -> Iterator[GenesysClient]:
    """A client of the fake on the shared fake clock."""
    with fake_client(fake, clock) as genesys:
        yield genesys


def patches(fake: FakeGenesysCloud) -> int:
    return fake.request_count("PATCH", PATCH_PATH)


# ------------------------------------------------------------------------------------------ happy paths


def test_find_user_by_email_ignores_case_and_searches_each_time(fake: FakeGenesysCloud, client: GenesysClient) -> None:
    """The user is found whatever the case; every lookup is a search (the engine's store keeps the answers)."""
    uid = fake.add_user("Agent.Smith@Example.com", name="Agent Smith")
    user = client.find_user_by_email("agent.smith@EXAMPLE.com ")
    assert user is not None
    assert (user.id, user.name, user.state) == (uid, "Agent Smith", "active")
    assert client.find_user_by_email("AGENT.SMITH@example.com") == user
    assert fake.request_count("POST", SEARCH_PATH) == 2


def test_unknown_address_is_none_until_the_user_is_added(fake: FakeGenesysCloud, client: GenesysClient) -> None:
    """"No such user" is None, and nothing remembers it: the user added afterwards is found by the next lookup."""
    assert client.find_user_by_email("late@example.com") is None
    uid = fake.add_user("late@example.com")
    user = client.find_user_by_email("late@example.com")
    assert user is not None
    assert user.id == uid


def test_recreated_user_wins_over_deleted_one(fake: FakeGenesysCloud, client: GenesysClient) -> None:
    """A deleted and a new user sharing an address: the active one is returned."""
    fake.add_user("dup@example.com", state="deleted")
    new = fake.add_user("dup@example.com")
    user = client.find_user_by_email("dup@example.com")
    assert user is not None
    assert user.id == new


def test_inactive_user_is_found_with_its_state(fake: FakeGenesysCloud, client: GenesysClient) -> None:
    """Inactive users are found too (the state criterion), reported as inactive."""
    fake.add_user("off@example.com", state="inactive")
    user = client.find_user_by_email("off@example.com")
    assert user is not None
    assert user.state == "inactive"


def test_live_participants_of_one_user(fake: FakeGenesysCloud, client: GenesysClient) -> None:
    """Every live participant of the user in every media is found and confirmed; ended and others' are not."""
    uid = fake.add_user("agent@example.com")
    other = fake.add_user("other@example.com")
    voice = fake.start_conversation(uid, media_type="voice")
    message = fake.start_conversation(uid, media_type="message")
    email = fake.start_conversation(uid, media_type="email")
    ended_participant = fake.start_conversation(uid)
    fake.end_participant(ended_participant.conversation_id, ended_participant.participant_id)
    ended_conversation = fake.start_conversation(uid)
    fake.end_conversation(ended_conversation.conversation_id)
    fake.start_conversation(other)
    transfer = fake.start_conversation(other)
    back = fake.add_participant(transfer.conversation_id, uid)

    live = client.live_participants(uid)
    expected = {voice, message, email, back}
    assert {LiveParticipant(participant.conversation_id, participant.participant_id, participant.user_id,
                            participant.media_type)
            for participant in expected} == set(live)
    assert len(live) == 4
    assert fake.request_count("POST", QUERY_PATH) == 1


def test_user_without_conversations_has_no_live_participants(fake: FakeGenesysCloud, client: GenesysClient) -> None:
    """No live conversation: one analytics query, no conversation GETs, an empty tuple."""
    uid = fake.add_user("idle@example.com")
    assert client.live_participants(uid) == ()
    assert fake.request_count("GET", "/api/v2/conversations/") == 0


def test_org_live_participants_is_one_paged_query(fake: FakeGenesysCloud, client: GenesysClient) -> None:
    """250 live conversations come from 3 analytics pages of 100 and no per-conversation GETs."""
    users = [fake.add_user(f"agent{i}@example.com") for i in range(10)]
    participants = {fake.start_conversation(users[i % 10], media_type=("voice", "message")[i % 2]) for i in range(250)}
    ended = fake.start_conversation(users[0])
    fake.end_participant(ended.conversation_id, ended.participant_id)
    live = client.org_live_participants()
    assert set(live) == {LiveParticipant(participant.conversation_id, participant.participant_id,
                                         participant.user_id, participant.media_type)
                         for participant in participants}
    assert len(live) == 250
    assert fake.request_count("POST", QUERY_PATH) == 3
    assert fake.request_count("GET") == 0


def test_write_attributes_lands_and_reports_context(fake: FakeGenesysCloud, client: GenesysClient) -> None:
    """A PATCH writes the map (202) and the result carries Genesys' correlation id."""
    uid = fake.add_user("agent@example.com")
    participant = fake.start_conversation(uid)
    result = client.write_attributes(participant.conversation_id, participant.participant_id,
                                     attrs(title="Engineer", tz="UTC"))
    assert result.status == 202
    assert result.context_id
    assert (result.conversation_id, result.participant_id) == (participant.conversation_id, participant.participant_id)
    assert fake.attributes(participant.conversation_id, participant.participant_id) == {"slack.title": "Engineer",
                                                                        "slack.tz": "UTC"}


def test_steady_state_write_costs_one_request(fake: FakeGenesysCloud, client: GenesysClient) -> None:
    """After the first token, each write is exactly one HTTP request (no token, no lookups)."""
    uid = fake.add_user("agent@example.com")
    participant = fake.start_conversation(uid)
    client.write_attributes(participant.conversation_id, participant.participant_id, attrs(title="A"))
    before = len(fake.requests)
    for i in range(20):
        client.write_attributes(participant.conversation_id, participant.participant_id, attrs(title=f"T{i}"))
    assert len(fake.requests) - before == 20
    assert fake.request_count("POST", "/oauth/token") == 1


def test_write_accepts_only_voice_safe_attributes(client: GenesysClient, fake: FakeGenesysCloud) -> None:
    """A plain dict is a TypeError before any request."""
    with pytest.raises(TypeError, match="VoiceSafeAttributes"):
        client.write_attributes("c", "p", {"slack.title": "x"})  # type: ignore[arg-type]
    assert fake.requests == []


@pytest.mark.parametrize(("conversation_id", "participant_id"), [("", "p"), ("c", ""), ("c", None)])
def test_write_refuses_empty_ids(client: GenesysClient, conversation_id: str, participant_id: str) -> None:
    """Empty ids are a ValueError, not a request to a wrong path."""
    with pytest.raises(ValueError, match="must be a non-empty string"):
        client.write_attributes(conversation_id, participant_id, attrs(title="x"))


def test_many_threads_share_one_token(fake: FakeGenesysCloud, clock: FakeClock) -> None:
    """Sixteen threads writing at once on a fresh client cause one token request and all writes land."""
    uid = fake.add_user("agent@example.com")
    participants = [fake.start_conversation(uid) for _ in range(16)]
    errors: list[Exception] = []
    barrier = threading.Barrier(16)
    with fake_client(fake, clock) as client:
        def write(participant) -> None:
            barrier.wait()
            try:
                client.write_attributes(participant.conversation_id, participant.participant_id, attrs(title="x"))
            except Exception as exc:  # noqa: BLE001 (collected and asserted below)
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(participant,)) for participant in participants]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    assert fake.request_count("POST", "/oauth/token") == 1
    assert len(fake.patches) == 16


# --------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("how", ["end_conversation", "end_participant", "unknown_conversation",
                                 "unknown_participant"])
def test_gone_conversations_raise_conversation_gone(fake: FakeGenesysCloud, client: GenesysClient, how: str) -> None:
    """Ended or unknown conversations/participants raise ConversationGone, not retried."""
    uid = fake.add_user("agent@example.com")
    participant = fake.start_conversation(uid)
    cid, pid = participant.conversation_id, participant.participant_id
    if how == "end_conversation":
        fake.end_conversation(cid)
    elif how == "end_participant":
        fake.end_participant(cid, pid)
    elif how == "unknown_conversation":
        cid = "00000000-0000-0000-0000-000000000000"
    else:
        pid = "00000000-0000-0000-0000-000000000000"
    with pytest.raises(ConversationGone) as caught:
        client.write_attributes(cid, pid, attrs(title="x"))
    assert (caught.value.conversation_id, caught.value.participant_id) == (cid, pid)
    assert caught.value.status in (400, 404)
    assert caught.value.context_id
    assert patches(fake) == 1


def test_rejected_values_raise_attributes_rejected(fake: FakeGenesysCloud, client: GenesysClient) -> None:
    """A 400 invalid.value carries Genesys' code, message, messageParams and contextId."""
    uid = fake.add_user("agent@example.com")
    participant = fake.start_conversation(uid)
    forged = unchecked_attributes_for_tests({"slack.n": 5})
    with pytest.raises(AttributesRejected) as caught:
        client.write_attributes(participant.conversation_id, participant.participant_id, forged)
    error = caught.value
    assert (error.status, error.code) == (400, "invalid.value")
    assert "Value [5] is not valid" in error.genesys_message
    assert error.message_params["value"] == "5"
    assert error.context_id
    assert error.context_id in str(error)
    assert patches(fake) == 1


def test_oversized_body_raises_attributes_rejected(fake: FakeGenesysCloud, client: GenesysClient) -> None:
    """A 413 request.entity.too.large is AttributesRejected too."""
    uid = fake.add_user("agent@example.com")
    participant = fake.start_conversation(uid)
    forged = unchecked_attributes_for_tests({"slack.big": "x" * 600_000})
    with pytest.raises(AttributesRejected) as caught:
        client.write_attributes(participant.conversation_id, participant.participant_id, forged)
    assert (caught.value.status, caught.value.code) == (413, "request.entity.too.large")


@pytest.mark.parametrize(
    ("permission", "call", "expected"),
    [
        ("directory:user:view", "search", ("directory:user:view",)),
        ("analytics:conversationDetail:view", "org",
         ("analytics:conversationDetail:view", "analytics:agentConversationDetail:view")),
        ("conversation:communication:view", "live", ("conversation:communication:view",)),
    ],
)
def test_missing_permissions_are_named(fake: FakeGenesysCloud, client: GenesysClient, permission: str, call: str,
                                       expected: tuple[str, ...], clock: FakeClock) -> None:
    """A 403 raises PermissionMissing with the permissions Genesys named, after one request and no waits."""
    uid = fake.add_user("agent@example.com")
    fake.start_conversation(uid)
    fake.revoke_permission(permission)
    before = len(fake.requests)
    calls = {
        "search": lambda: client.find_user_by_email("agent@example.com"),
        "org": client.org_live_participants,
        "live": lambda: client.live_participants(uid),
    }
    with pytest.raises(PermissionMissing) as caught:
        calls[call]()
    assert caught.value.permissions == expected
    assert caught.value.status == 403
    assert caught.value.code in ("missing.permissions", "missing.any.permissions")
    api_requests = [r for r in fake.requests[before:] if r.path.startswith("/api/")]
    assert [r.status for r in api_requests][-1] == 403
    assert sum(1 for r in api_requests if r.status == 403) == 1
    assert clock.sleeps == []


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(400, AttributesRejected), (403, PermissionMissing), (404, ConversationGone)],
)
def test_400_403_404_are_never_retried(fake: FakeGenesysCloud, client: GenesysClient, clock: FakeClock,
                                       status: int, error_type: type[GenesysError]) -> None:
    """One request, no sleep, the matching error."""
    uid = fake.add_user("agent@example.com")
    participant = fake.start_conversation(uid)
    fake.fail_next(status, path_prefix=PATCH_PATH)
    with pytest.raises(error_type):
        client.write_attributes(participant.conversation_id, participant.participant_id, attrs(title="x"))
    assert patches(fake) == 1
    assert clock.sleeps == []


def test_bad_credentials_raise_authentication_failed(fake: FakeGenesysCloud, clock: FakeClock) -> None:
    """Wrong secret: AuthenticationFailed naming the client id, never the secret, one token request."""
    with fake_client(fake, clock, secret="wrong-secret-XYZ") as client, \
            pytest.raises(AuthenticationFailed) as caught:
        client.find_user_by_email("a@example.com")
    assert CLIENT_ID in str(caught.value)
    assert "wrong-secret-XYZ" not in str(caught.value)
    assert (caught.value.status, caught.value.code) == (401, "invalid_client")
    assert fake.request_count("POST", "/oauth/token") == 1
    assert clock.sleeps == []


# ------------------------------------------------------------------------------------- tokens and 401s


def test_revoked_token_mid_run_refreshes_once_and_retries_once(fake: FakeGenesysCloud,
                                                               client: GenesysClient) -> None:
    """expire_tokens → the next write gets 401, fetches one new token, repeats once and succeeds."""
    uid = fake.add_user("agent@example.com")
    participant = fake.start_conversation(uid)
    client.write_attributes(participant.conversation_id, participant.participant_id, attrs(title="before"))
    fake.expire_tokens()
    client.write_attributes(participant.conversation_id, participant.participant_id, attrs(title="after"))
    assert fake.request_count("POST", "/oauth/token") == 2
    assert [r.status for r in fake.requests if r.method == "PATCH"] == [202, 401, 202]
    assert fake.attributes(participant.conversation_id, participant.participant_id) == {"slack.title": "after"}


def test_token_is_renewed_before_it_expires(clock: FakeClock) -> None:
    """With 5-minute tokens the client renews after 270 s, before Genesys would answer 401."""
    with FakeGenesysCloud(client_id=CLIENT_ID, client_secret=SECRET, clock=clock, token_lifetime_s=300) as fake, \
            fake_client(fake, clock) as client:
        uid = fake.add_user("agent@example.com")
        participant = fake.start_conversation(uid)
        for _ in range(4):
            client.write_attributes(participant.conversation_id, participant.participant_id, attrs(title="x"))
            clock.advance(100)
        assert fake.request_count("POST", "/oauth/token") == 2
        assert all(r.status != 401 for r in fake.requests)


def test_persistent_401_raises_authentication_failed() -> None:
    """If a freshly issued token is refused too, AuthenticationFailed, after exactly one refresh."""
    calls = {"token": 0, "api": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            calls["token"] += 1
            return token_response(f"tok-{calls['token']}")
        calls["api"] += 1
        return httpx.Response(401, json={"code": "bad.credentials", "message": "Invalid login credentials."})

    with mock_client(handler) as client, pytest.raises(AuthenticationFailed) as caught:
        client.find_user_by_email("a@example.com")
    assert calls == {"token": 2, "api": 2}
    assert "refused a token obtained moments before" in str(caught.value)
    assert "tok-" not in str(caught.value)


# -------------------------------------------------------------------------------- 429s, 5xx, faults


def test_429_storm_honours_retry_after(fake: FakeGenesysCloud, client: GenesysClient, clock: FakeClock) -> None:
    """Three 429s with Retry-After 2 are waited out (2–2.5 s each) and the write lands."""
    uid = fake.add_user("agent@example.com")
    participant = fake.start_conversation(uid)
    client.write_attributes(participant.conversation_id, participant.participant_id, attrs(title="warm"))
    fake.fail_next(429, count=3, path_prefix=PATCH_PATH, retry_after=2)
    client.write_attributes(participant.conversation_id, participant.participant_id, attrs(title="x"))
    assert len(clock.sleeps) == 3
    assert all(2 <= s <= 2.5 for s in clock.sleeps)
    assert patches(fake) == 5


def test_endless_429s_raise_rate_limited(fake: FakeGenesysCloud, client: GenesysClient, clock: FakeClock) -> None:
    """429s outlasting five attempts raise RateLimited with retry_after; exactly five PATCHes were sent."""
    uid = fake.add_user("agent@example.com")
    participant = fake.start_conversation(uid)
    fake.fail_next(429, count=50, path_prefix=PATCH_PATH, retry_after=1)
    with pytest.raises(RateLimited) as caught:
        client.write_attributes(participant.conversation_id, participant.participant_id, attrs(title="x"))
    assert caught.value.attempts == 5
    assert caught.value.retry_after is not None
    assert patches(fake) == 5


def test_real_rate_limit_is_respected_without_429s(clock: FakeClock) -> None:
    """With Genesys allowing 5 requests/min, 12 writes are paced by the limiter and none is refused."""
    with FakeGenesysCloud(client_id=CLIENT_ID, client_secret=SECRET, clock=clock, requests_per_minute=5) as fake, \
            fake_client(fake, clock) as client:
        uid = fake.add_user("agent@example.com")
        participant = fake.start_conversation(uid)
        for i in range(12):
            client.write_attributes(participant.conversation_id, participant.participant_id, attrs(title=str(i)))
        assert len(fake.patches) == 12
        assert all(r.status != 429 for r in fake.requests)
        assert 120 <= sum(clock.sleeps) <= 181


def test_client_side_budget_paces_before_genesys_refuses(clock: FakeClock) -> None:
    """A configured budget of 5/min paces 6 writes into a second window even though Genesys allows 300."""
    with FakeGenesysCloud(client_id=CLIENT_ID, client_secret=SECRET, clock=clock) as fake, \
            fake_client(fake, clock, requests_per_minute=5) as client:
        uid = fake.add_user("agent@example.com")
        participant = fake.start_conversation(uid)
        for _ in range(6):
            client.write_attributes(participant.conversation_id, participant.participant_id, attrs(title="x"))
        assert sum(clock.sleeps) == pytest.approx(60)


def test_503_window_is_waited_out(fake: FakeGenesysCloud, client: GenesysClient, clock: FakeClock) -> None:
    """A 5-second 503 outage without Retry-After is waited out with 3 s waits."""
    uid = fake.add_user("agent@example.com")
    participant = fake.start_conversation(uid)
    client.write_attributes(participant.conversation_id, participant.participant_id, attrs(title="warm"))
    fake.fail_for(503, seconds=5)
    client.write_attributes(participant.conversation_id, participant.participant_id, attrs(title="x"))
    assert len(clock.sleeps) == 2
    assert all(3 <= s <= 3.5 for s in clock.sleeps)


def test_long_503_outage_raises_unavailable(fake: FakeGenesysCloud, client: GenesysClient, clock: FakeClock) -> None:
    """An outage longer than the retry budget raises GenesysUnavailable within 60 s of waiting."""
    uid = fake.add_user("agent@example.com")
    participant = fake.start_conversation(uid)
    client.write_attributes(participant.conversation_id, participant.participant_id, attrs(title="warm"))
    fake.fail_for(503, seconds=600, retry_after=20)
    with pytest.raises(GenesysUnavailable) as caught:
        client.write_attributes(participant.conversation_id, participant.participant_id, attrs(title="x"))
    assert caught.value.status == 503
    assert caught.value.retry_after is not None
    assert sum(clock.sleeps) <= 60


@pytest.mark.parametrize("status", [502, 504])
def test_gateway_errors_back_off_and_recover(fake: FakeGenesysCloud, client: GenesysClient, clock: FakeClock,
                                            status: int) -> None:
    """502/504 are retried with growing, jittered waits."""
    uid = fake.add_user("agent@example.com")
    fake.fail_next(status, count=3, path_prefix=SEARCH_PATH)
    assert client.find_user_by_email("agent@example.com").id == uid  # type: ignore[union-attr]
    assert len(clock.sleeps) == 3
    for wait, ceiling in zip(clock.sleeps, (0.5, 1.0, 2.0), strict=True):
        assert ceiling / 2 <= wait <= ceiling


def test_dropped_connections_are_retried(fake: FakeGenesysCloud, client: GenesysClient, clock: FakeClock) -> None:
    """Two connections closed without an answer, then success."""
    uid = fake.add_user("agent@example.com")
    participant = fake.start_conversation(uid)
    client.write_attributes(participant.conversation_id, participant.participant_id, attrs(title="warm"))
    fake.drop_next(2, path_prefix=PATCH_PATH)
    client.write_attributes(participant.conversation_id, participant.participant_id, attrs(title="x"))
    assert [r.status for r in fake.requests if r.method == "PATCH"] == [202, 0, 0, 202]
    assert len(clock.sleeps) == 2


def test_always_dropped_connections_raise_unavailable(fake: FakeGenesysCloud, client: GenesysClient) -> None:
    """Connections that always drop raise GenesysUnavailable saying so."""
    fake.add_user("agent@example.com")
    fake.drop_next(50, path_prefix=SEARCH_PATH)
    with pytest.raises(GenesysUnavailable, match=r"connection failed \(RemoteProtocolError\)"):
        client.find_user_by_email("agent@example.com")
    assert fake.request_count("POST", SEARCH_PATH) == 5


def test_timeouts_are_retried_then_succeed(fake: FakeGenesysCloud) -> None:
    """A read timeout (latency above the client's timeout) is retried; once Genesys is fast again it succeeds."""
    uid = fake.add_user("agent@example.com")
    participant = fake.start_conversation(uid)
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        fake.set_latency(0)

    http = httpx.Client(timeout=httpx.Timeout(0.2))
    with fake_client(fake, http=http, sleep=sleep) as client:
        client.write_attributes(participant.conversation_id, participant.participant_id, attrs(title="warm"))
        fake.set_latency(0.5)
        client.write_attributes(participant.conversation_id, participant.participant_id, attrs(title="x"))
    http.close()
    assert len(sleeps) == 1
    assert fake.attributes(participant.conversation_id, participant.participant_id) == {"slack.title": "x"}


def test_persistent_timeouts_raise_unavailable(fake: FakeGenesysCloud) -> None:
    """Read timeouts on every attempt raise GenesysUnavailable naming the timeout."""
    fake.add_user("agent@example.com")
    http = httpx.Client(timeout=httpx.Timeout(0.1))
    with fake_client(fake, http=http, sleep=lambda s: None) as client:
        client.find_user_by_email("nobody@example.com")  # token obtained while fast
        fake.set_latency(0.3)
        with pytest.raises(GenesysUnavailable, match=r"timed out \(ReadTimeout\)"):
            client.find_user_by_email("agent@example.com")
        fake.set_latency(0)
    http.close()


# -------------------------------------------------------------------------------- permissions check


def test_check_permissions_all_ok(fake: FakeGenesysCloud, client: GenesysClient) -> None:
    """A well-configured client passes every check (with a conversation for the lookup to read)."""
    fake.start_conversation(fake.add_user("agent@example.com"))
    report = client.check_permissions()
    assert report.ok
    assert report.missing == ()
    assert [c.name for c in report.checks] == ["token", "users search", "analytics conversation query",
                                               "conversation lookup", "conversation notifications"]
    assert fake.patches == []
    assert fake.subscribed_topics() == frozenset()  # the test topic was removed again


@pytest.mark.parametrize(("permission", "checks"), [
    ("directory:user:view", ["users search"]),
    ("analytics:conversationDetail:view", ["analytics conversation query"]),
    ("conversation:communication:view", ["conversation lookup", "conversation notifications"]),
])
def test_check_permissions_names_the_missing_one(fake: FakeGenesysCloud, client: GenesysClient,
                                                 permission: str, checks: list[str]) -> None:
    """Revoking one permission fails exactly the checks that need it, naming it once (with any alternative)."""
    fake.start_conversation(fake.add_user("agent@example.com"))
    fake.revoke_permission(permission)
    report = client.check_permissions()
    assert not report.ok
    (missing,) = report.missing
    assert missing.startswith(permission)
    failed = [c for c in report.checks if c.outcome is Outcome.FAILED]
    assert [c.name for c in failed] == checks
    assert all(permission in c.message for c in failed)
    assert permission in str(report)


@pytest.mark.parametrize(("live_call", "revoked", "outcome"), [
    (True, None, Outcome.PASSED),
    (True, "conversation:communication:view", Outcome.FAILED),
    (False, None, Outcome.UNVERIFIED),
])
def test_check_permissions_for_the_customer_target(fake: FakeGenesysCloud, client: GenesysClient, live_call: bool,
                                                   revoked: str | None, outcome: Outcome) -> None:
    """customer=True (SYNC_TARGET customer or both) adds the customer's participant: read with the lookup's
    permission (failed with it, naming it once), unverified without a live call; nothing is written."""
    if live_call:
        fake.start_conversation(fake.add_user("agent@example.com"))
    if revoked:
        fake.revoke_permission(revoked)
    report = client.check_permissions(customer=True)
    last = report.checks[-1]
    assert (last.name, last.permission, last.outcome) == ("the customer's participant",
                                                         "conversation:communication:view", outcome)
    assert report.missing == ((revoked,) if revoked else ())
    assert fake.patches == []


def test_check_permissions_with_bad_credentials(fake: FakeGenesysCloud, clock: FakeClock) -> None:
    """Without a token the token check fails naming the cause, and every probe is unverified, not failed."""
    with fake_client(fake, clock, secret="wrong-secret-XYZ") as client:
        report = client.check_permissions()
    assert [c.outcome for c in report.checks] == [Outcome.FAILED] + [Outcome.UNVERIFIED] * 4
    assert "GENESYS_CLIENT_SECRET" in report.checks[0].message
    assert "401 invalid_client" in report.checks[0].message
    assert all("could not be verified without a token" in c.message for c in report.checks[1:])
    assert report.missing == ()
    assert report.summary() == "0 checks passed, 1 failed, 4 could not be verified"
    assert "wrong-secret-XYZ" not in str(report)


# ------------------------------------------------------------------------------------------ secrecy


def test_no_secret_or_token_in_any_message_or_log(fake: FakeGenesysCloud, clock: FakeClock,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """Across refreshes, retries and every error, logs and exception texts never hold the secret or a token."""
    caplog.set_level(logging.DEBUG)
    uid = fake.add_user("agent@example.com")
    participant = fake.start_conversation(uid)
    texts: list[str] = []
    with fake_client(fake, clock) as client:
        texts += [repr(client)]
        client.write_attributes(participant.conversation_id, participant.participant_id, attrs(title="x"))
        fake.expire_tokens()
        fake.fail_next(503, count=2, retry_after=1)
        fake.fail_next(429, count=1, retry_after=1)
        client.live_participants(uid)
        fake.fail_next(429, count=10, retry_after=1)
        fake.revoke_permission("directory:user:view")
        for attempt in (
            lambda: client.write_attributes(participant.conversation_id, participant.participant_id, attrs(title="y")),
            lambda: client.find_user_by_email("agent@example.com"),
            lambda: client.write_attributes(participant.conversation_id, "nope", attrs(title="y")),
        ):
            with pytest.raises(GenesysError) as caught:
                attempt()
            texts += [str(caught.value), repr(caught.value)]
        texts += [str(client.check_permissions())]
    with fake_client(fake, clock, secret="wrong-secret-XYZ") as bad, pytest.raises(AuthenticationFailed) as caught:
        bad.find_user_by_email("agent@example.com")
    texts += [str(caught.value), repr(caught.value)]
    tokens = {r.token for r in fake.requests if r.token}
    assert len(tokens) >= 2
    everything = "\n".join([*texts, caplog.text, *(str(r.args) for r in caplog.records)])
    for secret in (SECRET, "wrong-secret-XYZ", *tokens):
        assert secret not in everything
    assert "retry 1 of 4" in caplog.text
    assert "Genesys token obtained" in caplog.text


@pytest.mark.parametrize("path", ["/oauth/token", "/api/v2/users/search"])
def test_a_secret_echoed_by_genesys_is_hidden(path: str) -> None:
    """Even if an error body echoed the client secret, the exception text shows <hidden> instead."""
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == path:
            echo = f"client {CLIENT_ID}:{SECRET} rejected"
            return httpx.Response(400, json={"message": echo, "error_description": echo,
                                             "messageParams": {"credentials": SECRET}})
        return token_response()

    with mock_client(handler) as client, pytest.raises(GenesysError) as caught:
        client.find_user_by_email("a@example.com")
    assert SECRET not in str(caught.value)
    assert "<hidden>" in str(caught.value)
    assert SECRET not in repr(getattr(caught.value, "message_params", {}))


# ------------------------------------------------------------------------------ review fixes


def test_write_result_carries_no_always_true_flag() -> None:
    """A refused write raises, so WriteResult has no `ok` field that could only ever be True."""
    assert [f.name for f in dataclasses.fields(WriteResult)] == ["conversation_id", "participant_id", "status",
                                                                  "context_id"]


def test_live_participants_confirms_those_analytics_still_shows(fake: FakeGenesysCloud,
                                                               client: GenesysClient) -> None:
    """A conversation that ended but still looks live in lagging analytics is read, found ended, and left out."""
    uid = fake.add_user("agent@example.com")
    stale = fake.start_conversation(uid)
    stale_participant = fake.start_conversation(uid)
    live = fake.start_conversation(uid)
    fake.end_conversation(stale.conversation_id, keep_in_analytics=True)
    fake.end_participant(stale_participant.conversation_id, stale_participant.participant_id, keep_in_analytics=True)
    assert client.live_participants(uid) == (
        LiveParticipant(live.conversation_id, live.participant_id, uid, live.media_type),
    )
    for participant in (stale, stale_participant, live):
        assert fake.request_count("GET", f"/api/v2/conversations/{participant.conversation_id}") == 1


def test_email_search_finds_the_user_when_genesys_compares_exactly(clock: FakeClock) -> None:
    """Against a case-sensitive EXACT search, a mixed-case Slack address still finds the lower-case Genesys user."""
    with FakeGenesysCloud(client_id=CLIENT_ID, client_secret=SECRET, clock=clock, email_match="exact") as fake, \
            fake_client(fake, clock) as client:
        uid = fake.add_user("ada@example.com")
        user = client.find_user_by_email("Ada@Example.com")
        assert user is not None
        assert user.id == uid
        assert fake.request_count("POST", SEARCH_PATH) == 1


def test_lookup_probe_reads_the_conversation_analytics_found() -> None:
    """The conversation-lookup check GETs the conversation the one-result analytics probe returned; its 403 fails
    the check even where Genesys would answer 404 for an unknown id."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        path = request.url.path
        if path == "/oauth/token":
            return token_response()
        if path == SEARCH_PATH:
            return httpx.Response(200, json={"total": 0, "pageCount": 0})
        if path == QUERY_PATH:
            return httpx.Response(200, json={"conversations": [{"conversationId": "c-real"}], "totalHits": 7})
        if path == "/api/v2/conversations/c-real":
            return httpx.Response(403, json={"code": "missing.permissions", "status": 403, "message": "missing the"
                                             " following permission(s): conversation:communication:view"})
        return httpx.Response(404, json={"code": "not.found", "status": 404})

    with mock_client(handler) as client:
        report = client.check_permissions()
    assert report.missing == ("conversation:communication:view",)
    (query,) = [r for r in seen if r.url.path == QUERY_PATH]
    assert json.loads(query.content)["paging"] == {"pageSize": 1, "pageNumber": 1}
    assert [r.url.path for r in seen if r.method == "GET"] == ["/api/v2/conversations/c-real"]


def test_lookup_probe_reads_a_live_conversation(fake: FakeGenesysCloud, client: GenesysClient) -> None:
    """With a conversation in the last hour, the lookup check reads it and says which one it read."""
    participant = fake.start_conversation(fake.add_user("agent@example.com"))
    report = client.check_permissions()
    assert report.ok
    lookup = next(c for c in report.checks if c.name == "conversation lookup")
    assert lookup.message == f"permitted (read conversation {participant.conversation_id})"
    assert fake.request_count("GET", f"/api/v2/conversations/{participant.conversation_id}") == 1


def test_lookup_probe_without_conversations_says_it_is_unverified(fake: FakeGenesysCloud,
                                                                 client: GenesysClient) -> None:
    """With no conversation to read, a 404 for a random id proves nothing: the check is unverified, not passed."""
    report = client.check_permissions()
    assert not report.ok
    lookup = next(c for c in report.checks if c.name == "conversation lookup")
    assert lookup.outcome is Outcome.UNVERIFIED
    assert lookup.message.startswith("could not be verified against a real conversation")
    assert report.missing == ()
    assert report.summary() == "4 checks passed, 1 could not be verified"


def test_refreshing_after_a_401_shares_the_calls_deadline() -> None:
    """Send, token fetch and repeated send after a 401 together stay within one 60 s budget."""
    clock = FakeClock()
    tokens = [token_response("tok-1"), httpx.Response(503, headers={"Retry-After": "20"}), token_response("tok-2")]
    api = [httpx.Response(503, headers={"Retry-After": "20"}), httpx.Response(401)]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return tokens.pop(0)
        return api.pop(0) if api else httpx.Response(503, headers={"Retry-After": "20"})

    with mock_client(handler, clock) as client, pytest.raises(GenesysUnavailable):
        client.find_user_by_email("a@example.com")
    assert tokens == []
    assert clock() - 1_000.0 <= 60


def analytics_pages(pages: dict[int, list[httpx.Response]]) -> Callable[[httpx.Request], httpx.Response]:
    """A mock Genesys whose analytics query answers pages[pageNumber] in turn (the last answer repeats)."""
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return token_response()
        answers = pages[json.loads(request.content)["paging"]["pageNumber"]]
        return answers.pop(0) if len(answers) > 1 else answers[0]

    return handler


def page_of(page: int, count: int, total: int) -> httpx.Response:
    """An analytics answer with `count` bare conversations and totalHits `total`."""
    return httpx.Response(200, json={"conversations": [{"conversationId": f"c-{page}-{i}"} for i in range(count)],
                                     "totalHits": total})


def test_a_paged_query_has_one_deadline_for_all_its_pages() -> None:
    """Each page retrying a 503 is fine alone, but the whole org query stops at its own deadline (here 30 s)."""
    clock = FakeClock()
    retry = httpx.Response(503, headers={"Retry-After": "6"})
    handler = analytics_pages({n: [retry, page_of(n, 100, 300)] for n in (1, 2, 3)})
    with mock_client(handler, clock, retry_policy=RetryPolicy(max_paged_query_s=30)) as client, \
            pytest.raises(GenesysUnavailable):
        client.org_live_participants()
    assert clock() - 1_000.0 <= 30


def test_total_hits_changing_between_pages_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Offset paging over a changing set: a totalHits change mid-query is a warning saying the next poll catches up."""
    caplog.set_level(logging.WARNING, logger="genesys")
    handler = analytics_pages({1: [page_of(1, 100, 150)], 2: [page_of(2, 50, 160)]})
    with mock_client(handler) as client:
        assert client.org_live_participants() == ()
    (line,) = [r.getMessage() for r in caplog.records if r.name == "genesys.client"]
    assert "totalHits changed from 150 to 160" in line
    assert "the next poll catches it" in line


@pytest.mark.parametrize("status", [400, 401, 503])
def test_a_bearer_token_echoed_by_genesys_is_hidden(status: int) -> None:
    """Even if an error answer echoed the bearer token (code, message or params), the error shows <hidden>."""
    issued: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            issued.append(f"tok-SECRET-{len(issued) + 1}")
            return token_response(issued[-1])
        echo = request.headers["authorization"]
        return httpx.Response(status, headers={"Retry-After": "0"}, json={
            "code": f"bad.{echo.partition(' ')[2]}", "message": f"refused {echo}", "messageParams": {"h": echo}})

    with mock_client(handler) as client, pytest.raises((RequestRejected, AuthenticationFailed,
                                                        GenesysUnavailable)) as caught:
        client.find_user_by_email("a@example.com")
    shown = "\n".join([str(caught.value), repr(caught.value), repr(vars(caught.value))])
    assert issued
    for token in issued:
        assert token not in shown


def test_participant_attributes_reads_what_was_written(fake: FakeGenesysCloud, clock: FakeClock) -> None:
    """participant_attributes returns the stored map, None for an unknown participant, and Gone for a 404."""
    participant = fake.start_conversation(fake.add_user("ada@example.com"))
    client = fake_client(fake, clock)
    client.write_attributes(participant.conversation_id, participant.participant_id, attrs(title="Engineer"))
    assert client.participant_attributes(participant.conversation_id,
                                         participant.participant_id) == {"slack.title": "Engineer"}
    assert client.participant_attributes(participant.conversation_id, "no-such-participant") is None
    with pytest.raises(ConversationGone):
        client.participant_attributes("00000000-0000-0000-0000-000000000000", participant.participant_id)
