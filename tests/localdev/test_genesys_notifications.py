"""The fake Genesys' Notifications API over real sockets: REST with httpx, the WebSocket with `websockets` and raw."""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import struct
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from localdev.genesys_cloud import PERM_USER_CONVERSATIONS_TOPIC, FakeGenesysCloud
from localdev.genesys_notifications import MAX_CHANNELS_PER_CLIENT, MAX_TOPICS_PER_CHANNEL
from tests.clocks import FakeClock

HEARTBEAT_S = 0.2
NOW = 1_800_000_000.0
LIFETIME_S = 3600.0
CHANNELS = "/api/v2/notifications/channels"
ERROR_BODY_KEYS = {"message", "code", "status", "messageWithParams", "messageParams", "contextId", "details", "errors"}
ISO_MS_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
HEARTBEAT = {"topicName": "channel.metadata", "eventBody": {"message": "WebSocket Heartbeat"}}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=NOW)


@pytest.fixture
def cloud(clock: FakeClock) -> Iterator[FakeGenesysCloud]:
    """The fake with one clock for expiry and for the timestamps in bodies, so ``expires`` is predictable."""
    with FakeGenesysCloud(
        clock=clock, wall_clock=clock, heartbeat_interval_s=HEARTBEAT_S, channel_lifetime_s=LIFETIME_S
    ) as fake:
        yield fake
        assert fake.server_errors == []


@pytest.fixture
def api(cloud: FakeGenesysCloud) -> Iterator[httpx.Client]:
    """An httpx client with a bearer token on every request."""
    with httpx.Client(base_url=cloud.base_url, timeout=5.0) as client:
        credentials = base64.b64encode(f"{cloud.client_id}:{cloud.client_secret}".encode()).decode()
        token = client.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {credentials}"}
        ).json()["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


def new_channel(api: httpx.Client) -> dict[str, Any]:
    response = api.post(CHANNELS)
    assert response.status_code == 200, response.text
    return response.json()


def subscriptions(channel: dict[str, Any] | str) -> str:
    channel_id = channel if isinstance(channel, str) else channel["id"]
    return f"{CHANNELS}/{channel_id}/subscriptions"


def user_topic(user_id: str) -> str:
    return f"v2.users.{user_id}.conversations"


def subscribe(api: httpx.Client, channel: dict[str, Any], *topics: str) -> list[dict[str, Any]]:
    response = api.post(subscriptions(channel), json=[{"id": t} for t in topics], params={"ignoreErrors": "true"})
    assert response.status_code == 200, response.text
    return response.json()["entities"]


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body.keys() >= ERROR_BODY_KEYS
    assert (body["status"], body["code"]) == (status, code)
    return body


def next_message(ws: ClientConnection, timeout: float = 2.0) -> dict[str, Any]:
    message = ws.recv(timeout=timeout)
    assert isinstance(message, str)
    return json.loads(message)


def next_event(ws: ClientConnection, timeout: float = 2.0) -> dict[str, Any]:
    """The next message that is not a heartbeat."""
    deadline = time.monotonic() + timeout
    while True:
        message = next_message(ws, max(0.01, deadline - time.monotonic()))
        if message != HEARTBEAT:
            return message


def assert_no_event(ws: ClientConnection, wait: float = 0.3) -> None:
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = next_message(ws, left)
        except TimeoutError:
            return
        assert message == HEARTBEAT, message


def wait_until(condition: Any, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def parse_ms(text: str) -> float:
    assert ISO_MS_Z.fullmatch(text), text
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).timestamp()


# -- channels -------------------------------------------------------------------------------------------


def test_create_and_list_channels(cloud: FakeGenesysCloud, api: httpx.Client) -> None:
    """POST answers {connectUri, id, expires} (ms, Z, a lifetime away) with the usual headers; GET lists them."""
    response = api.post(CHANNELS)
    channel = response.json()
    assert set(channel) == {"connectUri", "id", "expires"}
    assert re.fullmatch(rf"ws://127\.0\.0\.1:\d+/channels/{channel['id']}", channel["connectUri"])
    assert parse_ms(channel["expires"]) == NOW + LIFETIME_S
    assert response.headers["inin-ratelimit-count"] == "1"
    second = new_channel(api)
    listed = api.get(CHANNELS).json()
    assert listed == {"entities": [channel, second]}
    assert [c.id for c in cloud.notification_channels()] == [channel["id"], second["id"]]
    assert cloud.request_count("POST", CHANNELS) == 2


def test_channels_need_a_token(cloud: FakeGenesysCloud) -> None:
    """Without a bearer token the notifications routes answer 401 like every API route."""
    response = httpx.post(cloud.base_url + CHANNELS)
    assert_error(response, 401, "authentication.required")


def test_injected_faults_apply_to_notifications(cloud: FakeGenesysCloud, api: httpx.Client) -> None:
    """fail_next and drop_next reach the notifications routes."""
    cloud.fail_next(503, path_prefix=CHANNELS, retry_after=2)
    assert_error(api.post(CHANNELS), 503, "service.unavailable")
    cloud.drop_next(path_prefix=CHANNELS)
    with pytest.raises(httpx.TransportError):
        api.get(CHANNELS)
    assert api.get(CHANNELS).status_code == 200


def test_21st_channel_evicts_the_oldest(cloud: FakeGenesysCloud, api: httpx.Client) -> None:
    """At most 20 channels per client: the 21st evicts the oldest, whose socket closes and calls then 404."""
    channels = [new_channel(api) for _ in range(MAX_CHANNELS_PER_CLIENT)]
    with connect(channels[0]["connectUri"]) as ws:
        newest = new_channel(api)
        with pytest.raises(ConnectionClosedOK) as closed:
            next_event(ws)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1001
    listed = [c["id"] for c in api.get(CHANNELS).json()["entities"]]
    assert listed == [c["id"] for c in channels[1:]] + [newest["id"]]
    assert_error(api.get(subscriptions(channels[0])), 404, "not.found")
    with pytest.raises(InvalidStatus) as refused:
        connect(channels[0]["connectUri"])
    assert refused.value.response.status_code == 404


# -- subscriptions --------------------------------------------------------------------------------------


def test_subscribe_add_replace_list_delete(cloud: FakeGenesysCloud, api: httpx.Client) -> None:
    """POST adds, PUT replaces, GET lists, DELETE removes all; each answer lists the channel's topics."""
    a, b, c = (cloud.add_user(f"{n}@example.com") for n in "abc")
    channel = new_channel(api)
    assert subscribe(api, channel, user_topic(a), user_topic(b)) == [
        {"id": user_topic(a), "state": "Permitted"},
        {"id": user_topic(b), "state": "Permitted"},
    ]
    added = subscribe(api, channel, user_topic(c) + ".calls", user_topic(a))
    assert [t["id"] for t in added] == [user_topic(a), user_topic(b), user_topic(c) + ".calls"]
    replaced = api.put(subscriptions(channel), json=[{"id": user_topic(b)}])
    assert replaced.json() == {"entities": [{"id": user_topic(b), "state": "Permitted"}]}
    assert api.get(subscriptions(channel)).json() == replaced.json()
    assert cloud.subscribed_topics() == {user_topic(b)}
    assert api.delete(subscriptions(channel)).status_code == 200
    assert api.get(subscriptions(channel)).json() == {"entities": []}
    assert [info.topic_count for info in cloud.notification_channels()] == [0]


def test_subscribing_extends_the_channel_and_listing_does_not(
    cloud: FakeGenesysCloud, api: httpx.Client, clock: FakeClock
) -> None:
    """A subscribe call (POST or PUT) moves expiry to now + lifetime; GET leaves it."""
    channel = new_channel(api)
    clock.advance(1000)
    api.get(subscriptions(channel))
    assert parse_ms(api.get(CHANNELS).json()["entities"][0]["expires"]) == NOW + LIFETIME_S
    for method in ("POST", "PUT"):
        clock.advance(1000)
        api.request(method, subscriptions(channel), json=[])
        assert parse_ms(api.get(CHANNELS).json()["entities"][0]["expires"]) == clock.now + LIFETIME_S
    assert cloud.notification_channels()[0].expires == api.get(CHANNELS).json()["entities"][0]["expires"]


def test_more_than_1000_topics_is_400_and_changes_nothing(cloud: FakeGenesysCloud, api: httpx.Client) -> None:
    """1,000 topics fit; one more (added or in a replacement) is 400 with an error body, the channel unchanged."""
    channel = new_channel(api)
    topics = [{"id": user_topic(f"user-{i}")} for i in range(MAX_TOPICS_PER_CHANNEL)]
    assert len(api.put(subscriptions(channel), json=topics).json()["entities"]) == MAX_TOPICS_PER_CHANNEL
    body = assert_error(api.post(subscriptions(channel), json=[{"id": user_topic("one-more")}]), 400, "bad.request")
    assert "1000" in body["message"]
    assert_error(api.put(subscriptions(channel), json=[*topics, {"id": user_topic("x")}]), 400, "bad.request")
    assert len(api.get(subscriptions(channel)).json()["entities"]) == MAX_TOPICS_PER_CHANNEL


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE"])
def test_unknown_channel_is_404(api: httpx.Client, method: str) -> None:
    """Every subscriptions call on a channel that never existed is 404 not.found."""
    assert_error(api.request(method, subscriptions("no-such-channel"), json=[]), 404, "not.found")


@pytest.mark.parametrize("content", [b"{}", b"[1]", b'[{"id": 3}]', b"[{}]", b'[{"id": ""}]', b"not json"])
def test_malformed_subscriptions_body_is_400(api: httpx.Client, content: bytes) -> None:
    """A body that is not a list of {"id": topic} is 400 bad.request."""
    channel = new_channel(api)
    response = api.post(subscriptions(channel), content=content, headers={"Content-Type": "application/json"})
    assert_error(response, 400, "bad.request")


def test_revoked_permission_rejects_the_topic(cloud: FakeGenesysCloud, api: httpx.Client) -> None:
    """Without the topic's permission: ignoreErrors=true lists it Rejected naming the permission; without
    ignoreErrors the call is 403 and changes nothing; granted back, it is Permitted."""
    user = cloud.add_user("ada@example.com")
    channel = new_channel(api)
    cloud.revoke_permission(PERM_USER_CONVERSATIONS_TOPIC)
    assert subscribe(api, channel, user_topic(user)) == [
        {
            "id": user_topic(user),
            "state": "Rejected",
            "rejectionReason": "Missing permissions",
            "missingPermissions": [PERM_USER_CONVERSATIONS_TOPIC],
        }
    ]
    assert cloud.subscribed_topics() == frozenset()
    strict = api.put(subscriptions(channel), json=[{"id": user_topic(user) + ".calls"}])
    body = assert_error(strict, 403, "missing.permissions")
    assert PERM_USER_CONVERSATIONS_TOPIC in body["message"]
    assert [t["id"] for t in api.get(subscriptions(channel)).json()["entities"]] == [user_topic(user)]
    cloud.grant_permission(PERM_USER_CONVERSATIONS_TOPIC)
    assert subscribe(api, channel, user_topic(user)) == [{"id": user_topic(user), "state": "Permitted"}]


def test_unknown_topics_are_rejected_and_unknown_users_permitted(cloud: FakeGenesysCloud, api: httpx.Client) -> None:
    """A topic pattern the fake does not serve is Rejected with a reason; a user id the org lacks is Permitted."""
    channel = new_channel(api)
    entities = subscribe(api, channel, "v2.users.u1.presence", "v2.users.nobody.conversations")
    assert entities[0] == {
        "id": "v2.users.u1.presence",
        "state": "Rejected",
        "rejectionReason": "Topic is not supported",
        "missingPermissions": [],
    }
    assert entities[1] == {"id": "v2.users.nobody.conversations", "state": "Permitted"}


# -- the WebSocket --------------------------------------------------------------------------------------


def test_heartbeats_arrive_every_interval_and_pause(cloud: FakeGenesysCloud, api: httpx.Client) -> None:
    """channel.metadata heartbeats come every heartbeat_interval_s; pause_heartbeats silences them until resumed."""
    with connect(new_channel(api)["connectUri"]) as ws:
        started = time.monotonic()
        assert [next_message(ws) for _ in range(3)] == [HEARTBEAT] * 3
        # The first is due an interval after the server's side of the handshake, which precedes `started` a little.
        assert 3 * HEARTBEAT_S - 0.1 <= time.monotonic() - started < 3 * HEARTBEAT_S + 0.5
        cloud.pause_heartbeats()
        with pytest.raises(TimeoutError):
            ws.recv(timeout=3 * HEARTBEAT_S)
        cloud.resume_heartbeats()
        assert next_message(ws, timeout=2 * HEARTBEAT_S) == HEARTBEAT


def test_client_ping_message_is_answered(api: httpx.Client) -> None:
    """A {"message": "ping"} text message gets a channel.metadata pong."""
    with connect(new_channel(api)["connectUri"]) as ws:
        ws.send(json.dumps({"message": "ping"}))
        assert next_event(ws) == {"topicName": "channel.metadata", "eventBody": {"message": "pong"}}


def test_events_reach_the_channels_of_the_users_in_the_conversation(cloud: FakeGenesysCloud, api: httpx.Client) -> None:
    """Start, add (a transfer), end participant and end conversation publish the conversation to the topics of
    every user in it, also one who has left; a channel of an uninvolved user hears nothing."""
    ada, bob, eve = (cloud.add_user(f"{n}@example.com") for n in ("ada", "bob", "eve"))
    ada_channel, bob_channel, eve_channel = new_channel(api), new_channel(api), new_channel(api)
    subscribe(api, ada_channel, user_topic(ada))
    subscribe(api, bob_channel, user_topic(bob))
    subscribe(api, eve_channel, user_topic(eve))
    with (
        connect(ada_channel["connectUri"]) as ada_ws,
        connect(bob_channel["connectUri"]) as bob_ws,
        connect(eve_channel["connectUri"]) as eve_ws,
    ):
        wait_until(lambda: cloud.socket_connections() == 3)
        ada_joined = cloud.start_conversation(ada)
        started = next_event(ada_ws)
        assert started["topicName"] == user_topic(ada)
        assert started["version"] == "2"
        assert re.fullmatch(r"[0-9a-f-]{36}", started["metadata"]["CorrelationId"])
        assert started["eventBody"]["id"] == ada_joined.conversation_id
        assert [p["purpose"] for p in started["eventBody"]["participants"]] == ["customer", "agent"]

        bob_joined = cloud.add_participant(ada_joined.conversation_id, bob)  # a transfer: bob joins, then ada leaves
        for ws, topic in ((ada_ws, user_topic(ada)), (bob_ws, user_topic(bob))):
            joined = next_event(ws)
            assert joined["topicName"] == topic
            assert [p.get("userId") for p in joined["eventBody"]["participants"]] == [None, ada, bob]

        cloud.end_participant(ada_joined.conversation_id, ada_joined.participant_id)
        for ws in (ada_ws, bob_ws):
            ada_json, bob_json = next_event(ws)["eventBody"]["participants"][1:]
            assert "endTime" in ada_json
            assert ada_json["calls"][0]["state"] == "disconnected"
            assert "endTime" not in bob_json
            assert bob_json["id"] == bob_joined.participant_id

        cloud.end_conversation(ada_joined.conversation_id)
        for ws in (ada_ws, bob_ws):
            ended = next_event(ws)["eventBody"]
            assert all("endTime" in p for p in ended["participants"])
        assert_no_event(eve_ws)
        assert_no_event(ada_ws, wait=0.05)
    assert cloud.published_events() == 4 + 3  # ada: start, join, leave, end; bob: join, leave, end


def test_event_participants_have_the_get_conversation_shape(cloud: FakeGenesysCloud, api: httpx.Client) -> None:
    """An event's participants equal GET /api/v2/conversations/{id}'s, attributes included (a PATCH publishes too)."""
    ada = cloud.add_user("ada@example.com")
    channel = new_channel(api)
    subscribe(api, channel, user_topic(ada))
    with connect(channel["connectUri"]) as ws:
        wait_until(lambda: cloud.socket_connections() == 1)
        joined = cloud.start_conversation(ada, media_type="message")
        next_event(ws)
        path = f"/api/v2/conversations/{joined.conversation_id}/participants/{joined.participant_id}/attributes"
        assert api.patch(path, json={"attributes": {"title": "CTO"}}).status_code == 202
        event = next_event(ws)["eventBody"]
    conversation = api.get(f"/api/v2/conversations/{joined.conversation_id}").json()
    assert event["participants"] == conversation["participants"]
    assert event["participants"][1]["attributes"] == {"title": "CTO"}
    assert event["participants"][1]["messages"][0]["state"] == "connected"


def test_a_channel_following_two_users_gets_each_topic(cloud: FakeGenesysCloud, api: httpx.Client) -> None:
    """One change reaches a channel once per subscribed topic of the conversation, with one CorrelationId; a
    rejected topic gets nothing."""
    ada, bob, eve = (cloud.add_user(f"{n}@example.com") for n in ("ada", "bob", "eve"))
    channel = new_channel(api)
    subscribe(api, channel, user_topic(ada), user_topic(bob))
    cloud.revoke_permission(PERM_USER_CONVERSATIONS_TOPIC)
    subscribe(api, channel, user_topic(eve))  # Rejected
    with connect(channel["connectUri"]) as ws:
        wait_until(lambda: cloud.socket_connections() == 1)
        joined = cloud.start_conversation(ada)
        assert next_event(ws)["topicName"] == user_topic(ada)
        cloud.add_participant(joined.conversation_id, bob)
        cloud.add_participant(joined.conversation_id, eve)
        first, second, third, fourth = (next_event(ws) for _ in range(4))
        assert_no_event(ws)
    assert [m["topicName"] for m in (first, second, third, fourth)] == [user_topic(ada), user_topic(bob)] * 2
    assert first["metadata"] == second["metadata"] != third["metadata"] == fourth["metadata"]
    assert first["eventBody"] == second["eventBody"]
    assert cloud.published_events() == 5


def test_no_socket_no_event(cloud: FakeGenesysCloud, api: httpx.Client) -> None:
    """Events for a channel without a socket are not kept for later (nothing is queued)."""
    ada = cloud.add_user("ada@example.com")
    channel = new_channel(api)
    subscribe(api, channel, user_topic(ada))
    cloud.start_conversation(ada)
    assert cloud.published_events() == 0
    with connect(channel["connectUri"]) as ws:
        assert_no_event(ws)


def test_a_second_socket_replaces_the_first(cloud: FakeGenesysCloud, api: httpx.Client) -> None:
    """One socket per channel: a new connection closes the old one (1000) and gets the events."""
    ada = cloud.add_user("ada@example.com")
    channel = new_channel(api)
    subscribe(api, channel, user_topic(ada))
    with connect(channel["connectUri"]) as first, connect(channel["connectUri"]) as second:
        with pytest.raises(ConnectionClosedOK) as closed:
            next_event(first)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1000
        wait_until(lambda: cloud.socket_connections() == 1)
        cloud.start_conversation(ada)
        assert next_event(second)["topicName"] == user_topic(ada)
    wait_until(lambda: cloud.socket_connections() == 0)
    assert [c.connected for c in cloud.notification_channels()] == [False]


def test_drop_sockets_cuts_without_a_close_frame(cloud: FakeGenesysCloud, api: httpx.Client) -> None:
    """drop_sockets: the client sees the connection end with no close frame; the channel lives on."""
    channel = new_channel(api)
    with connect(channel["connectUri"]) as ws:
        wait_until(lambda: cloud.socket_connections() == 1)
        cloud.drop_sockets()
        with pytest.raises(ConnectionClosedError) as closed:
            next_event(ws)
        assert closed.value.rcvd is None
    assert cloud.socket_connections() == 0
    with connect(channel["connectUri"]) as ws:
        assert next_message(ws) == HEARTBEAT


def test_socket_closing_then_close_after_grace(cloud: FakeGenesysCloud, api: httpx.Client) -> None:
    """announce_socket_closing sends v2.system.socket_closing, then closes (1001) once the grace period is over."""
    with connect(new_channel(api)["connectUri"]) as ws:
        wait_until(lambda: cloud.socket_connections() == 1)
        announced = time.monotonic()
        cloud.announce_socket_closing(grace_s=0.3)
        message = next_event(ws)
        assert message["topicName"] == "v2.system.socket_closing"
        assert isinstance(message["eventBody"]["message"], str)
        with pytest.raises(ConnectionClosedOK) as closed:
            next_event(ws)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1001
        assert time.monotonic() - announced >= 0.3


def test_expire_channels_closes_sockets_and_404s(cloud: FakeGenesysCloud, api: httpx.Client) -> None:
    """expire_channels: sockets closed, REST and handshake answer 404, the list is empty."""
    channel = new_channel(api)
    with connect(channel["connectUri"]) as ws:
        wait_until(lambda: cloud.socket_connections() == 1)
        cloud.expire_channels()
        with pytest.raises(ConnectionClosed):
            next_event(ws)
    assert_error(api.get(subscriptions(channel)), 404, "not.found")
    assert api.get(CHANNELS).json() == {"entities": []}
    with pytest.raises(InvalidStatus) as refused:
        connect(channel["connectUri"])
    assert refused.value.response.status_code == 404


def test_channels_expire_after_their_lifetime(cloud: FakeGenesysCloud, api: httpx.Client, clock: FakeClock) -> None:
    """A channel not re-subscribed within channel_lifetime_s ends: its socket closes and it answers 404."""
    kept, lapsing = new_channel(api), new_channel(api)
    with connect(lapsing["connectUri"]) as ws:
        clock.advance(LIFETIME_S - 10)
        subscribe(api, kept)  # extends `kept` only
        clock.advance(11)
        with pytest.raises(ConnectionClosed):
            next_event(ws)
    assert_error(api.get(subscriptions(lapsing)), 404, "not.found")
    assert [c["id"] for c in api.get(CHANNELS).json()["entities"]] == [kept["id"]]


def test_publishing_does_not_wait_for_a_slow_socket(cloud: FakeGenesysCloud, api: httpx.Client) -> None:
    """A client that never reads does not slow the control methods: events queue behind its full socket."""
    ada = cloud.add_user("ada@example.com")
    channel = new_channel(api)
    subscribe(api, channel, user_topic(ada))
    with raw_websocket(channel["connectUri"]) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        wait_until(lambda: cloud.socket_connections() == 1)
        joined = cloud.start_conversation(ada)
        path = f"/api/v2/conversations/{joined.conversation_id}/participants/{joined.participant_id}/attributes"
        assert api.patch(path, json={"attributes": {"big": "x" * 400_000}}).status_code == 202
        started = time.monotonic()
        for _ in range(40):  # ~16 MB of events: far beyond what the socket buffers hold
            cloud.add_participant(joined.conversation_id, ada)
        assert time.monotonic() - started < 1.0
        assert cloud.published_events() == 42


def test_close_is_prompt_with_sockets_open(clock: FakeClock) -> None:
    """close() with connected sockets returns quickly, closes them, and the WebSocket port stops listening."""
    fake = FakeGenesysCloud(clock=clock, heartbeat_interval_s=HEARTBEAT_S).start()
    with httpx.Client(base_url=fake.base_url, timeout=5.0) as client:
        credentials = base64.b64encode(f"{fake.client_id}:{fake.client_secret}".encode()).decode()
        token = client.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {credentials}"}
        ).json()["access_token"]
        channel = client.post(CHANNELS, headers={"Authorization": f"Bearer {token}"}).json()
    sockets = [connect(channel["connectUri"]) for _ in range(2)]
    idle = socket.create_connection(("127.0.0.1", int(channel["connectUri"].split(":")[2].split("/")[0])))
    started = time.monotonic()
    fake.close()
    assert time.monotonic() - started < 1.0
    for ws in sockets:
        with pytest.raises(ConnectionClosed):
            next_event(ws)
    idle.close()
    with pytest.raises(ConnectionRefusedError):
        connect(channel["connectUri"], open_timeout=1)
    fake.close()  # idempotent


# -- the RFC 6455 rules, on a raw socket ----------------------------------------------------------------


class raw_websocket:
    """A hand-made client: the handshake with the RFC's sample key, then frames as bytes."""

    KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 §1.3; its accept value is below
    ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

    def __init__(self, uri: str) -> None:
        host_port, _, path = uri.removeprefix("ws://").partition("/")
        host, port = host_port.split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=3)
        self.path = "/" + path
        self.buffer = b""

    def __enter__(self) -> socket.socket:
        self.sock.sendall(
            (
                f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {self.KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        status, *lines = head.decode("latin-1").split("\r\n")
        assert status == "HTTP/1.1 101 Switching Protocols", status
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)}
        assert headers["sec-websocket-accept"] == self.ACCEPT
        assert headers["upgrade"].lower() == "websocket"
        return self.sock

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


def read_frame(sock: socket.socket) -> tuple[bool, bool, int, bytes]:
    """(fin, masked, opcode, payload) of the next frame."""

    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    first, second = exactly(2)
    length = second & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", exactly(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", exactly(8))
    masked = bool(second & 0x80)
    if masked:
        exactly(4)  # the mask: a server frame must not have one, which the tests check through `masked`
    payload = exactly(length)
    return bool(first & 0x80), masked, first & 0x0F, payload


def client_frame(opcode: int, payload: bytes, *, masked: bool = True) -> bytes:
    assert len(payload) <= 125
    if not masked:
        return bytes([0x80 | opcode, len(payload)]) + payload
    mask = os.urandom(4)
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def frame_skipping_heartbeats(sock: socket.socket) -> tuple[bool, bool, int, bytes]:
    while True:
        frame = read_frame(sock)
        if frame[2] != 0x1 or json.loads(frame[3]) != HEARTBEAT:
            return frame


def test_raw_handshake_and_unmasked_server_text_frames(api: httpx.Client) -> None:
    """Sec-WebSocket-Accept follows RFC 6455 §1.3; server frames are final, unmasked text frames of JSON."""
    with raw_websocket(new_channel(api)["connectUri"]) as sock:
        fin, masked, opcode, payload = read_frame(sock)
    assert (fin, masked, opcode) == (True, False, 0x1)
    assert json.loads(payload) == HEARTBEAT


def test_raw_ping_is_ponged_and_close_is_answered(api: httpx.Client) -> None:
    """A masked ping gets a pong with its payload; a masked close gets a close with its code, then EOF."""
    with raw_websocket(new_channel(api)["connectUri"]) as sock:
        sock.sendall(client_frame(0x9, b"are you there"))
        assert frame_skipping_heartbeats(sock) == (True, False, 0xA, b"are you there")
        sock.sendall(client_frame(0x8, struct.pack("!H", 1000) + b"bye"))
        _fin, _masked, opcode, payload = frame_skipping_heartbeats(sock)
        assert (opcode, struct.unpack("!H", payload[:2])[0]) == (0x8, 1000)
        assert sock.recv(1) == b""


def test_raw_unmasked_client_frame_is_a_protocol_error(cloud: FakeGenesysCloud, api: httpx.Client) -> None:
    """An unmasked client frame is answered with close 1002 and the connection ends (RFC 6455 §5.1)."""
    with raw_websocket(new_channel(api)["connectUri"]) as sock:
        sock.sendall(client_frame(0x1, b'{"message": "ping"}', masked=False))
        _fin, _masked, opcode, payload = frame_skipping_heartbeats(sock)
        assert (opcode, struct.unpack("!H", payload[:2])[0]) == (0x8, 1002)
        assert sock.recv(1) == b""
    wait_until(lambda: cloud.socket_connections() == 0)


@pytest.mark.parametrize(
    ("request_head", "status"),
    [
        ("GET /channels/no-such-channel HTTP/1.1\r\n{upgrade}", "404"),
        ("GET /elsewhere HTTP/1.1\r\n{upgrade}", "404"),
        ("GET /channels/{channel} HTTP/1.1\r\nHost: x\r\n\r\n", "400"),
    ],
)
def test_raw_refused_handshakes(api: httpx.Client, request_head: str, status: str) -> None:
    """An unknown channel is 404 before any upgrade; a plain GET of a channel is 400."""
    channel = new_channel(api)
    upgrade = (
        "Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {raw_websocket.KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    port = int(channel["connectUri"].split(":")[2].split("/")[0])
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        sock.sendall(request_head.format(upgrade=upgrade, channel=channel["id"]).encode())
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(f"HTTP/1.1 {status} ".encode())
