"""NotificationPool and the channel REST calls against the fake Genesys Cloud's Notifications API (real HTTP and
real WebSockets on 127.0.0.1), with short heartbeats so every fault plays out in about a second."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Collection, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from websockets.sync.server import ServerConnection, serve

from genesys import (
    ChannelGone,
    ConversationSeen,
    GenesysClient,
    LiveParticipant,
    NotificationChannel,
    NotificationPool,
    PushSettings,
    PushState,
    RequestRejected,
    TopicSubscription,
)
from genesys.channels import conversations_topic
from localdev.genesys_cloud import PERM_USER_CONVERSATIONS_TOPIC, FakeGenesysCloud
from tests.genesys.support import CLIENT_ID, SECRET, fake_client

HEARTBEAT_S = 0.2
SETTINGS = PushSettings(topics_per_channel=3, heartbeat_interval_s=HEARTBEAT_S, reconnect_min_s=0.05,
                        reconnect_max_s=0.2, retry_rejected_s=0.5, open_timeout_s=1.0, close_timeout_s=0.5)
CHANNELS = "/api/v2/notifications/channels"


def wait_for(condition: Callable[[], object], timeout: float = 5.0, what: str = "the condition") -> None:
    """Poll `condition` until it is true; fail naming `what` after `timeout` s."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


class Recorder:
    """The engine's side of the callbacks: what arrived, thread-safe."""

    def __init__(self) -> None:
        self.seen: list[ConversationSeen] = []
        self.connects = 0
        self._lock = threading.Lock()

    def conversation(self, seen: ConversationSeen) -> None:
        with self._lock:
            self.seen.append(seen)

    def connected(self) -> None:
        with self._lock:
            self.connects += 1

    def about(self, conversation_id: str) -> list[ConversationSeen]:
        with self._lock:
            return [s for s in self.seen if s.conversation_id == conversation_id]


class CountingBudget:
    """A SharedBudget that grants everything and counts what was drawn."""

    def __init__(self) -> None:
        self.drawn = 0

    def take(self, want: int) -> tuple[int, float]:
        self.drawn += want
        return want, 60.0


@pytest.fixture
def fake() -> Iterator[FakeGenesysCloud]:
    """A fake Genesys Cloud whose notification sockets beat every HEARTBEAT_S."""
    with FakeGenesysCloud(client_id=CLIENT_ID, client_secret=SECRET, heartbeat_interval_s=HEARTBEAT_S) as server:
        yield server
    assert server.server_errors == []


@pytest.fixture
def budget() -> CountingBudget:
    return CountingBudget()


@pytest.fixture
def client(fake: FakeGenesysCloud, budget: CountingBudget) -> Iterator[GenesysClient]:
    with fake_client(fake, shared_budget=budget) as genesys:
        yield genesys


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def make_pool(client: GenesysClient, recorder: Recorder) -> Iterator[Callable[..., NotificationPool]]:
    """Builds started pools on the fake (SETTINGS unless given) and stops them after the test."""
    pools: list[NotificationPool] = []

    def make(settings: PushSettings = SETTINGS, users: Collection[str] = ()) -> NotificationPool:
        pool = NotificationPool(client, on_conversation=recorder.conversation, on_connected=recorder.connected,
                                settings=settings)
        pool.follow(users)
        pool.start()
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.stop()


def users(fake: FakeGenesysCloud, count: int) -> list[str]:
    return [fake.add_user(f"agent{i}@example.com") for i in range(count)]


def healthy(pool: NotificationPool) -> Callable[[], bool]:
    return lambda: pool.state().healthy


def channel_ids(fake: FakeGenesysCloud) -> list[str]:
    return [c.id for c in fake.notification_channels()]


# ------------------------------------------------------------------------------------------- REST calls


def test_channel_calls_create_set_and_add_topics(client: GenesysClient, fake: FakeGenesysCloud) -> None:
    """A channel comes back with its URI and expiry; PUT replaces and POST adds topics, each answered Permitted."""
    channel = client.create_notification_channel()
    assert channel.connect_uri.startswith("ws://127.0.0.1:")
    assert channel.id in channel.connect_uri
    assert channel.expires - datetime.now(UTC) > timedelta(hours=23)
    assert channel.id not in repr(channel)
    assert channel.connect_uri not in repr(channel)
    first, second = conversations_topic("u-1"), conversations_topic("u-2")
    assert client.set_channel_topics(channel.id, [first]) == (TopicSubscription(first, True),)
    assert client.add_channel_topics(channel.id, [second]) == (TopicSubscription(second, True),)
    assert fake.subscribed_topics() == {first, second}
    client.set_channel_topics(channel.id, [second])
    assert fake.subscribed_topics() == {second}


def test_a_topic_without_permission_is_rejected_naming_it(client: GenesysClient, fake: FakeGenesysCloud) -> None:
    """ignoreErrors: the call succeeds and the topic is Rejected with Genesys' missing permissions."""
    fake.revoke_permission(PERM_USER_CONVERSATIONS_TOPIC)
    channel = client.create_notification_channel()
    [answer] = client.set_channel_topics(channel.id, [conversations_topic("u-1")])
    assert not answer.permitted
    assert answer.missing_permissions == (PERM_USER_CONVERSATIONS_TOPIC,)


def test_a_gone_channel_raises_channel_gone_without_its_id(client: GenesysClient, fake: FakeGenesysCloud) -> None:
    """404 on a subscription call is ChannelGone, whose message shows only the id's first characters."""
    channel = client.create_notification_channel()
    fake.expire_channels()
    with pytest.raises(ChannelGone) as raised:
        client.set_channel_topics(channel.id, [conversations_topic("u-1")])
    assert channel.id not in str(raised.value)
    assert channel.id[:8] in str(raised.value)


def test_more_than_a_thousand_topics_are_rejected(client: GenesysClient) -> None:
    """Genesys' 400 for a channel over 1,000 topics is a RequestRejected."""
    channel = client.create_notification_channel()
    with pytest.raises(RequestRejected):
        client.set_channel_topics(channel.id, [conversations_topic(f"u-{i}") for i in range(1001)])


# ------------------------------------------------------------------------------------------- the pool


def test_users_are_spread_over_as_few_channels_as_the_topic_limit_allows(
        make_pool: Callable[..., NotificationPool], fake: FakeGenesysCloud, recorder: Recorder,
        budget: CountingBudget) -> None:
    """7 users at 3 topics per channel: 3 channels (3+3+1), all connected; the REST calls drew on the budget."""
    agents = users(fake, 7)
    pool = make_pool(users=agents)
    wait_for(healthy(pool), what="a healthy pool")
    state = pool.state()
    assert (state.channels, state.topics, state.uncovered, state.pending, state.fallback_reason) == (3, 7, 0, 0, None)
    assert sorted(c.topic_count for c in fake.notification_channels()) == [1, 3, 3]
    assert fake.subscribed_topics() == {conversations_topic(u) for u in agents}
    assert fake.socket_connections() == 3
    assert recorder.connects >= 3
    assert budget.drawn >= fake.request_count(path_prefix=CHANNELS) > 0


def test_follow_adds_and_drops_users_in_the_background(make_pool: Callable[..., NotificationPool],
                                                       fake: FakeGenesysCloud) -> None:
    """A user followed later fills the existing channel's room; an unfollowed one is unsubscribed."""
    first, second, third = users(fake, 3)
    pool = make_pool(users=[first, second])
    wait_for(healthy(pool))
    pool.follow([first, third])
    wait_for(lambda: fake.subscribed_topics() == {conversations_topic(first), conversations_topic(third)},
             what="the new topic set")
    wait_for(healthy(pool))
    assert len(fake.notification_channels()) == 1
    assert pool.state().topics == 2


def test_an_event_reaches_on_conversation_with_the_users_live_participants(
        make_pool: Callable[..., NotificationPool], fake: FakeGenesysCloud, recorder: Recorder) -> None:
    """A started conversation arrives with the user's live participant; its end arrives with none."""
    [agent] = users(fake, 1)
    pool = make_pool(users=[agent])
    wait_for(healthy(pool))
    participant = fake.start_conversation(agent)
    wait_for(lambda: recorder.about(participant.conversation_id), what="the conversation event")
    assert recorder.about(participant.conversation_id)[-1] == ConversationSeen(
        agent, participant.conversation_id, (
            LiveParticipant(participant.conversation_id, participant.participant_id, agent, "voice"),))
    fake.end_conversation(participant.conversation_id)
    wait_for(lambda: recorder.about(participant.conversation_id)[-1].live == (), what="the end event")


def test_a_user_who_left_sees_no_live_participant(make_pool: Callable[..., NotificationPool],
                                                  fake: FakeGenesysCloud, recorder: Recorder) -> None:
    """When the user leaves a conversation that goes on, the event carries no live participant of theirs."""
    first, second = users(fake, 2)
    pool = make_pool(users=[first, second])
    wait_for(healthy(pool))
    participant = fake.start_conversation(first)
    fake.add_participant(participant.conversation_id, second)
    fake.end_participant(participant.conversation_id, participant.participant_id)
    wait_for(lambda: [s for s in recorder.about(participant.conversation_id) if s.user_id == first and not s.live],
             what="the leave event")
    assert [s for s in recorder.about(participant.conversation_id) if s.user_id == second][-1].live


def test_users_beyond_the_channel_limit_are_uncovered_and_no_channel_is_evicted(
        make_pool: Callable[..., NotificationPool], fake: FakeGenesysCloud) -> None:
    """2 channels × 2 topics for 5 users: the fifth is reported uncovered; no third channel evicts one of ours."""
    agents = users(fake, 5)
    pool = make_pool(PushSettings(topics_per_channel=2, max_channels=2, heartbeat_interval_s=HEARTBEAT_S),
                     users=agents)
    wait_for(lambda: pool.state().connected and pool.state().topics == 4, what="two full channels")
    state = pool.state()
    assert (state.channels, state.uncovered, state.healthy) == (2, 1, False)
    assert state.fallback_reason is not None
    assert "beyond 2 channels × 2 topics" in state.fallback_reason
    assert len(fake.notification_channels()) == 2


def test_a_silent_socket_turns_unhealthy_and_reconnects(make_pool: Callable[..., NotificationPool],
                                                        fake: FakeGenesysCloud, recorder: Recorder) -> None:
    """No heartbeat for 2 intervals: not connected at once; heartbeats back, reconnected and on_connected again."""
    pool = make_pool(users=users(fake, 2))
    wait_for(healthy(pool))
    connects = recorder.connects
    fake.pause_heartbeats()
    wait_for(lambda: not pool.state().connected, timeout=3 * HEARTBEAT_S + 1, what="the silence noticed")
    assert pool.state().fallback_reason == "1 of 1 notification sockets not connected"
    fake.resume_heartbeats()
    wait_for(healthy(pool), what="the socket back")
    assert recorder.connects > connects


def test_a_dropped_socket_reconnects_to_the_same_channel(make_pool: Callable[..., NotificationPool],
                                                         fake: FakeGenesysCloud, recorder: Recorder) -> None:
    """A cut TCP connection is reconnected (same channel, no new one), on_connected runs, and events flow again."""
    [agent] = users(fake, 1)
    pool = make_pool(users=[agent])
    wait_for(healthy(pool))
    before, connects = channel_ids(fake), recorder.connects
    fake.drop_sockets()
    wait_for(lambda: recorder.connects > connects, what="the reconnection")
    wait_for(healthy(pool))
    assert channel_ids(fake) == before
    participant = fake.start_conversation(agent)
    wait_for(lambda: recorder.about(participant.conversation_id), what="an event after the reconnection")


def test_socket_closing_hands_over_to_a_new_channel_without_a_gap(
        make_pool: Callable[..., NotificationPool], fake: FakeGenesysCloud, recorder: Recorder) -> None:
    """On socket_closing a new channel with the same topics connects before the old socket closes: the pool stays
    connected throughout, and events sent before, during and after the hand-over all arrive."""
    [agent] = users(fake, 1)
    pool = make_pool(users=[agent])
    wait_for(healthy(pool))
    [old] = channel_ids(fake)
    fake.announce_socket_closing(grace_s=1.0)
    during = fake.start_conversation(agent)
    states: list[PushState] = []
    end = time.monotonic() + 1.5
    while time.monotonic() < end:
        states.append(pool.state())
        time.sleep(0.02)
    assert all(s.connected for s in states)
    new = [c for c in fake.notification_channels() if c.id != old and c.connected]
    assert new
    assert new[0].topics[0].id == conversations_topic(agent)
    after = fake.start_conversation(agent)
    wait_for(lambda: recorder.about(during.conversation_id) and recorder.about(after.conversation_id),
             what="both events")
    assert pool.state().healthy
    assert fake.socket_connections() == 1


def test_socket_closing_at_the_channel_limit_reconnects_to_the_same_channel(
        make_pool: Callable[..., NotificationPool], fake: FakeGenesysCloud, recorder: Recorder,
        caplog: pytest.LogCaptureFixture) -> None:
    """With no room for a second channel, the pool creates none (it would evict its own) and reconnects."""
    pool = make_pool(PushSettings(max_channels=1, heartbeat_interval_s=HEARTBEAT_S, reconnect_min_s=0.05,
                                  reconnect_max_s=0.2), users=users(fake, 2))
    wait_for(healthy(pool))
    before, connects = channel_ids(fake), recorder.connects
    fake.announce_socket_closing(grace_s=0.2)
    wait_for(lambda: recorder.connects > connects, what="the reconnection")
    wait_for(healthy(pool))
    assert channel_ids(fake) == before
    assert "holds the 1-channel limit" in caplog.text


def test_failed_subscription_calls_are_retried_in_the_background(
        make_pool: Callable[..., NotificationPool], fake: FakeGenesysCloud, caplog: pytest.LogCaptureFixture) -> None:
    """Genesys failing the channel calls (500, not retried by the client) delays push but does not stop it."""
    fake.fail_next(500, count=3, path_prefix=CHANNELS)
    agents = users(fake, 2)
    pool = make_pool(users=agents)
    wait_for(healthy(pool), what="the pool after the failures")
    assert fake.subscribed_topics() == {conversations_topic(u) for u in agents}
    assert caplog.text.count("trying again in") == 3


def test_a_channel_whose_subscription_failed_is_used_not_left_behind(
        make_pool: Callable[..., NotificationPool], fake: FakeGenesysCloud) -> None:
    """Genesys has no call to delete a channel: when setting a new channel's topics fails, the retry subscribes that
    same channel instead of creating another, so failures cannot pile up channels towards the 20 a client has."""
    agents = users(fake, 2)
    pool = make_pool(users=[])
    wait_for(healthy(pool))
    fake.fail_next(500, count=3, path_prefix=f"{CHANNELS}/")  # the subscription calls, not the channel's creation
    pool.follow(agents)
    wait_for(healthy(pool), what="the pool after the failed subscriptions")
    assert len(fake.notification_channels()) == 1
    assert fake.subscribed_topics() == {conversations_topic(u) for u in agents}


def test_an_expired_channel_is_recreated_and_resubscribed(make_pool: Callable[..., NotificationPool],
                                                          fake: FakeGenesysCloud, recorder: Recorder) -> None:
    """The socket's reconnect answers 404: a new channel gets the topics, connects, and on_connected runs."""
    agents = users(fake, 2)
    pool = make_pool(users=agents)
    wait_for(healthy(pool))
    before, connects = channel_ids(fake), recorder.connects
    fake.expire_channels()
    wait_for(lambda: channel_ids(fake) and channel_ids(fake) != before and pool.state().healthy,
             what="a new channel")
    assert fake.subscribed_topics() == {conversations_topic(u) for u in agents}
    assert recorder.connects > connects


def test_a_channel_gone_at_subscription_is_recreated(make_pool: Callable[..., NotificationPool],
                                                     fake: FakeGenesysCloud) -> None:
    """A subscription call that meets an expired channel (404) recreates it with every topic."""
    first, second = users(fake, 2)
    pool = make_pool(PushSettings(topics_per_channel=3, heartbeat_interval_s=30.0), users=[first])
    wait_for(healthy(pool))
    before = channel_ids(fake)
    fake.expire_channels()  # its socket closes too; either path must end in one new channel with both topics
    pool.follow([first, second])
    wait_for(lambda: fake.subscribed_topics() == {conversations_topic(first), conversations_topic(second)}
             and pool.state().healthy, what="both topics on a new channel")
    assert len(channel_ids(fake)) == 1
    assert channel_ids(fake) != before


def test_channels_are_renewed_before_they_expire(make_pool: Callable[..., NotificationPool]) -> None:
    """With 1.5 s channels and renewal 1.2 s ahead, the same channel outlives its first expiry."""
    with FakeGenesysCloud(client_id=CLIENT_ID, client_secret=SECRET, heartbeat_interval_s=HEARTBEAT_S,
                          channel_lifetime_s=1.5) as short_lived, fake_client(short_lived) as client:
        recorder = Recorder()
        pool = NotificationPool(client, on_conversation=recorder.conversation, on_connected=recorder.connected,
                                settings=PushSettings(heartbeat_interval_s=HEARTBEAT_S, renew_before_s=1.2))
        pool.follow([short_lived.add_user("a@example.com")])
        pool.start()
        try:
            wait_for(healthy(pool))
            first = channel_ids(short_lived)
            time.sleep(2.5)
            assert channel_ids(short_lived) == first
            assert pool.state().healthy
            assert short_lived.request_count("PUT", CHANNELS) >= 3
        finally:
            pool.stop()


def test_rejected_topics_name_the_permission_and_heal_once_granted(
        make_pool: Callable[..., NotificationPool], fake: FakeGenesysCloud) -> None:
    """Without the topic's permission the state names it and the users are not covered; granting it heals the pool
    without a restart."""
    fake.revoke_permission(PERM_USER_CONVERSATIONS_TOPIC)
    agents = users(fake, 2)
    pool = make_pool(users=agents)
    wait_for(lambda: pool.state().rejected == 2, what="the rejection")
    state = pool.state()
    assert state.missing_permissions == (PERM_USER_CONVERSATIONS_TOPIC,)
    assert not state.healthy
    assert state.fallback_reason is not None
    assert PERM_USER_CONVERSATIONS_TOPIC in state.fallback_reason
    fake.grant_permission(PERM_USER_CONVERSATIONS_TOPIC)
    wait_for(healthy(pool), what="the pool healed")
    assert fake.subscribed_topics() == {conversations_topic(u) for u in agents}


def test_stop_closes_every_socket_promptly(make_pool: Callable[..., NotificationPool],
                                           fake: FakeGenesysCloud) -> None:
    """stop() returns well within its timeout and leaves no socket open."""
    pool = make_pool(users=users(fake, 7))
    wait_for(healthy(pool))
    started = time.monotonic()
    pool.stop(timeout=2.0)
    assert time.monotonic() - started < 2.0
    wait_for(lambda: fake.socket_connections() == 0, timeout=1.0, what="the sockets closed")
    assert (pool.state().fallback_reason or "").startswith("push notifications are stopped")


# ------------------------------------------------------------------------------------------- odd peers


class OneChannel:
    """A NotificationApi whose one channel's socket is at `uri` (for peers the fake cannot play)."""

    def __init__(self, uri: str) -> None:
        self.uri = uri

    def create_notification_channel(self) -> NotificationChannel:
        return NotificationChannel("channel-0123456789", self.uri, datetime.now(UTC) + timedelta(hours=24))

    def set_channel_topics(self, channel_id: str, topics: Collection[str]) -> tuple[TopicSubscription, ...]:
        return tuple(TopicSubscription(t, True) for t in topics)

    add_channel_topics = set_channel_topics


def test_stop_returns_promptly_while_a_socket_is_still_opening() -> None:
    """A peer that accepts TCP but never answers the upgrade cannot hold stop() up."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True).start()
    pool = NotificationPool(OneChannel(f"ws://127.0.0.1:{listener.getsockname()[1]}/channels/x"),
                            on_conversation=lambda seen: None, on_connected=lambda: None,
                            settings=PushSettings(open_timeout_s=1.0, heartbeat_interval_s=HEARTBEAT_S))
    pool.follow(["u-1"])
    pool.start()
    try:
        wait_for(lambda: accepted, what="the connection attempt")
        started = time.monotonic()
        pool.stop(timeout=2.0)
        assert time.monotonic() - started < 2.2
        wait_for(lambda: not [t for t in threading.enumerate() if t.name.startswith("genesys-push")],
                 timeout=2.0, what="the threads to end")
    finally:
        listener.close()
        for connection in accepted:
            connection.close()


def test_malformed_and_unknown_messages_are_ignored(caplog: pytest.LogCaptureFixture) -> None:
    """Non-JSON, non-object, unknown-topic and body-less messages are skipped with a log line naming no channel
    id; the pool stays connected and the next good event still arrives."""
    conversation = {"id": "c-1", "participants": [
        {"id": "p-1", "userId": "u-1", "purpose": "agent", "calls": [{"state": "connected"}]}]}
    messages = ["not json", "[1, 2]", json.dumps({"topicName": "v2.users.u-9.presence", "eventBody": {}}),
                json.dumps({"topicName": conversations_topic("u-1"), "eventBody": "nope"}),
                json.dumps({"topicName": conversations_topic("u-1"), "eventBody": conversation})]

    def peer(connection: ServerConnection) -> None:
        for message in messages:
            connection.send(message)
        while True:
            connection.send(json.dumps({"topicName": "channel.metadata", "eventBody": {"message": "Heartbeat"}}))
            time.sleep(HEARTBEAT_S)

    recorder = Recorder()
    caplog.set_level(logging.DEBUG, logger="genesys.notifications")
    with serve(peer, "127.0.0.1", 0) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.socket.getsockname()[1]
        pool = NotificationPool(OneChannel(f"ws://127.0.0.1:{port}/channels/channel-0123456789"),
                                on_conversation=recorder.conversation, on_connected=recorder.connected,
                                settings=SETTINGS)
        pool.follow(["u-1"])
        pool.start()
        try:
            wait_for(lambda: recorder.about("c-1"), what="the good event")
            assert recorder.about("c-1")[0].live == (LiveParticipant("c-1", "p-1", "u-1", "voice"),)
            assert pool.state().healthy
            assert recorder.connects == 1
        finally:
            pool.stop()
            server.shutdown()
    assert "not JSON" in caplog.text
    assert "no conversation id" in caplog.text
    assert "channel-0123456789" not in caplog.text
