"""`NotificationPool`: Genesys Cloud pushes conversation changes of the linked users (reference §6.4, limits §5).

Every followed Genesys user gets one topic, `v2.users.{userId}.conversations`, whose events carry the whole
conversation; `participants.live_in_conversation` turns one into that user's live participants (`ConversationSeen`).

How many agents one OAuth client covers: Genesys allows 1,000 topics per channel and 20 channels per OAuth client
(the 21st evicts one of the others), one WebSocket per channel, so one pool covers 20 × 1,000 = 20,000 users. Topics
fill the oldest channel first, so 2,500 users need 3 channels; users beyond the limit are reported (`uncovered`)
and stay on polling, since a 21st channel would evict one of ours. The limit is per OAuth client, not per process:
two processes running pools with the same client share the 20 channels.

Threads: one manager makes every REST call (creating channels, setting topics, renewing, replacing) in the order
it decides, drawing on the Genesys client's shared request budget; one reader per channel owns its socket
(connect, receive, watch heartbeats, reconnect with back-off and jitter). The callbacks run on reader threads, one
per channel, so they must be thread-safe and quick.

- A socket is dead when nothing (not even a `channel.metadata` heartbeat) arrived for 2 heartbeat intervals, or when
  it closed; `state()` turns unhealthy at once and the reader reconnects. A 404 at the upgrade or on a subscription
  call means the channel expired or was evicted: a new channel is created and the topics subscribed there.
- `v2.system.socket_closing`: a new channel with the same topics is created and connected first, then the old one
  is let go, so no event falls between them. At the channel limit there is no room for that: the old socket
  reconnects to the same channel once Genesys closes it (the catch-up after `on_connected` covers the gap).
- Channels live 24 h after their last subscription call: topics are set again (`renew_before_s` ahead) to extend.
- Rejected topics (a missing permission) keep their channel; `state()` names the permissions, and the subscription
  is tried again every `retry_rejected_s`, so granting the permission heals it without a restart.
- `on_connected` runs after each (re)connect, each replacement and each subscription of new users on an open
  socket: events before that may have been missed, so the engine runs one catch-up poll.

Channel ids are capabilities (the connect URI needs no token): logs show their first characters only.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from genesys.channels import (
    CHANNEL_LIFETIME,
    HEARTBEAT_TOPIC,
    SOCKET_CLOSING_TOPIC,
    NotificationChannel,
    TopicSubscription,
    conversations_topic,
    short_id,
    user_of_topic,
)
from genesys.errors import ChannelGone, GenesysError, GenesysTransientError, PermissionMissing, needs
from genesys.participants import LiveParticipant, live_in_conversation

log = logging.getLogger(__name__)

MAX_TOPICS_PER_CHANNEL = 1000
MAX_CHANNELS = 20
_POLL_S = 0.25
"""Longest a reader blocks in one receive, and the manager between two looks: how soon both notice `stop()`."""
_HANDOVER_S = 60.0
"""Longest an old channel is kept after `socket_closing` while its replacement does not connect."""


@dataclass(frozen=True, slots=True)
class PushSettings:
    """How the pool spreads topics and watches its sockets; the defaults are Genesys' limits and a safe pace."""

    topics_per_channel: int = MAX_TOPICS_PER_CHANNEL
    max_channels: int = MAX_CHANNELS
    heartbeat_interval_s: float = 30.0
    """Genesys' heartbeat period; a socket silent for 2 of them is dead."""
    renew_before_s: float = 12 * 3600.0
    """Set a channel's topics again (extending its 24 h) when less than this is left."""
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 60.0
    """Back-off between attempts doubles from min to max; each wait is drawn between half and all of it."""
    retry_rejected_s: float = 300.0
    """How often rejected topics are subscribed again, so a granted permission heals them."""
    open_timeout_s: float = 10.0
    close_timeout_s: float = 1.0
    max_message_bytes: int = 8 * 1024 * 1024
    """A conversation event carries every participant; 1 MiB (the library's default) is too tight for big ones."""

    def __post_init__(self) -> None:
        if not 1 <= self.topics_per_channel <= MAX_TOPICS_PER_CHANNEL:
            raise ValueError(f"topics_per_channel must be 1..{MAX_TOPICS_PER_CHANNEL}, not {self.topics_per_channel}")
        if not 1 <= self.max_channels <= MAX_CHANNELS:
            raise ValueError(f"max_channels must be 1..{MAX_CHANNELS}, not {self.max_channels}")
        for name in ("heartbeat_interval_s", "reconnect_min_s", "retry_rejected_s", "open_timeout_s",
                     "close_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, not {getattr(self, name)}")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be at least reconnect_min_s")
        if not 0 < self.renew_before_s < CHANNEL_LIFETIME.total_seconds():
            raise ValueError(f"renew_before_s must be between 0 and {CHANNEL_LIFETIME.total_seconds():g}")


@dataclass(frozen=True, slots=True)
class ConversationSeen:
    """Genesys pushed a conversation of a followed user: that user's live participants in it, now."""

    user_id: str
    conversation_id: str
    live: tuple[LiveParticipant, ...]
    """Empty when the user left the conversation or it ended."""


@dataclass(frozen=True, slots=True)
class PushState:
    """What the pool covers now; the engine polls fast whatever it does not."""

    connected: bool
    """Started, and every channel's socket open with a heartbeat (or any message) within 2 intervals."""
    channels: int
    topics: int
    rejected: int
    """Topics Genesys refused (see `missing_permissions`)."""
    uncovered: int
    """Followed users beyond max_channels × topics_per_channel."""
    pending: int
    """Followed users not subscribed yet (just followed, or the subscription call is being retried)."""
    since_last_message_s: float | None
    """Seconds since any socket last received anything; None before the first message."""
    fallback_reason: str | None
    """Why the engine should poll fast, for its log and status; None when healthy."""
    missing_permissions: tuple[str, ...]

    @property
    def healthy(self) -> bool:
        """Every followed user's events arrive: connected and nothing rejected, uncovered or pending."""
        return self.fallback_reason is None


class NotificationApi(Protocol):
    """The REST calls the pool makes (`GenesysClient` has them, through its budget and retries)."""

    def create_notification_channel(self) -> NotificationChannel: ...

    def set_channel_topics(self, channel_id: str, topics: Collection[str]) -> tuple[TopicSubscription, ...]: ...

    def add_channel_topics(self, channel_id: str, topics: Collection[str]) -> tuple[TopicSubscription, ...]: ...


class Socket(Protocol):
    """An open WebSocket, as `websockets.sync.client.ClientConnection` is one."""

    def recv(self, timeout: float | None = None) -> str | bytes:
        """The next message; `TimeoutError` after `timeout` s, another exception when the socket closed."""
        ...

    def close(self) -> None: ...


OpenSocket = Callable[[str], Socket]
"""Connects to a channel's URI; raises `ChannelGone` when the upgrade answers 404."""


def websocket_opener(settings: PushSettings) -> OpenSocket:
    """The default `OpenSocket`: the `websockets` sync client with the settings' timeouts and message size."""

    def open_socket(uri: str) -> Socket:
        try:
            # No library pings: Genesys' heartbeats are the liveness signal the pool watches.
            return connect(uri, open_timeout=settings.open_timeout_s, close_timeout=settings.close_timeout_s,
                           max_size=settings.max_message_bytes, ping_interval=None)
        except InvalidStatus as exc:
            if exc.response.status_code == 404:
                raise ChannelGone(short_id(urlsplit(uri).path.rsplit("/", 1)[-1]), "WebSocket connection") from None
            raise

    return open_socket


class _Channel:
    """One channel and its socket; fields marked (lock) are read or written under the pool's lock."""

    def __init__(self, info: NotificationChannel) -> None:
        self.info = info
        self.name = short_id(info.id)
        self.topics: dict[str, str] = {}  # topic → user id, as Genesys last confirmed (manager only)
        self.rejected: dict[str, TopicSubscription] = {}  # (lock)
        self.rejected_at = 0.0  # when the rejected topics were last tried (manager only)
        self.open = False  # (lock)
        self.last_seen: float | None = None  # (lock)
        self.gone = False  # (lock) a 404: the manager replaces it
        self.closing_at: float | None = None  # (lock) Genesys announced socket_closing
        self.replacement: _Channel | None = None  # (manager) the channel taking over from this closing one
        self.predecessor: _Channel | None = None  # (lock) the closing channel this one takes over from
        self.retired = threading.Event()  # let go (or the pool stops): the reader closes its socket and ends
        self.thread: threading.Thread | None = None


class NotificationPool:
    """Genesys notification channels for a set of users, kept subscribed, connected and renewed in the background."""

    def __init__(
        self,
        api: NotificationApi,
        *,
        on_conversation: Callable[[ConversationSeen], None],
        on_connected: Callable[[], None],
        settings: PushSettings | None = None,
        open_socket: OpenSocket | None = None,
        clock: Callable[[], float] = time.monotonic,
        utcnow: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
    ) -> None:
        self._api = api
        self._on_conversation = on_conversation
        self._on_connected = on_connected
        self._settings = settings or PushSettings()
        self._open = open_socket or websocket_opener(self._settings)
        self._clock = clock
        self._utcnow = utcnow
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._desired: frozenset[str] = frozenset()  # (lock)
        self._channels: list[_Channel] = []  # (lock) in creation order; topics fill the first ones first
        self._retiring: list[_Channel] = []  # (lock) closing channels kept until their replacement connects
        self._lifetime = CHANNEL_LIFETIME  # (manager) as the last created channel's `expires` showed it
        self._spares: list[NotificationChannel] = []  # handed-over channels: alive on Genesys, reused before creating
        self._unsubscribed: list[NotificationChannel] = []  # created, but setting their topics failed: tried again
        self._uncovered = 0  # (lock)
        self._problem: str | None = None  # (lock) the last REST failure, until a REST call succeeds
        self._rest_failures = 0
        self._rest_after = 0.0
        self._manager: threading.Thread | None = None

    # ----------------------------------------------------------------- public

    def follow(self, user_ids: Collection[str]) -> None:
        """Set the Genesys users to follow (all of them, not a change); applied in the background within seconds."""
        desired = frozenset(user_ids)
        for user_id in desired:
            if not isinstance(user_id, str) or not user_id or "." in user_id:
                raise ValueError(f"a Genesys user id is a non-empty string without dots, not {user_id!r}")
        with self._lock:
            self._desired = desired
        self._wake.set()

    def start(self) -> None:
        """Start the background threads (once)."""
        if self._manager is not None:
            raise RuntimeError("NotificationPool.start() was already called")
        self._manager = threading.Thread(target=self._manage, name="genesys-push", daemon=True)
        self._manager.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop every thread and close every socket, waiting at most `timeout` s (a socket still being opened is
        closed by its thread as soon as the library gives it up, within `open_timeout_s`)."""
        self._stopping.set()
        self._wake.set()
        end = time.monotonic() + timeout
        self._retire_all()
        if self._manager is not None and self._manager is not threading.current_thread():
            self._manager.join(max(0.0, end - time.monotonic()))
        for channel in self._retire_all():  # again: the manager may have opened one meanwhile
            if channel.thread is not None and channel.thread is not threading.current_thread():
                channel.thread.join(max(0.0, end - time.monotonic()))

    def _retire_all(self) -> list[_Channel]:
        with self._lock:
            channels = [*self._channels, *self._retiring]
        for channel in channels:
            channel.retired.set()
        return channels

    def state(self) -> PushState:
        """A snapshot of what the pool covers (the engine asks every turn of its loop)."""
        settings = self._settings
        with self._lock:
            now = self._clock()
            channels = list(self._channels)
            desired = self._desired
            live = {id(c) for c in [*channels, *self._retiring] if self._fresh(c, now)}
            down = [c for c in channels
                    if id(c) not in live and not (c.predecessor is not None and id(c.predecessor) in live)]
            rejected = {t: s for c in channels for t, s in c.rejected.items()}
            seen = [c.last_seen for c in [*channels, *self._retiring] if c.last_seen is not None]
            uncovered, problem = self._uncovered, self._problem
            topics = sum(len(c.topics) for c in channels)
            # Each followed user has one topic on one channel, so those assigned are counted, not collected.
            assigned = sum(1 for c in channels for user in c.topics.values() if user in desired)
        started = self._manager is not None and not self._stopping.is_set()
        pending = max(0, len(desired) - assigned - uncovered)
        missing = tuple(sorted({p for s in rejected.values() for p in s.missing_permissions}))
        reasons: list[str] = []
        if not started:
            reasons.append("push notifications are stopped" if self._stopping.is_set()
                           else "push notifications are not started")
        if down:
            reasons.append(f"{len(down)} of {len(channels)} notification sockets not connected")
        if rejected:
            reasons.append(f"Genesys rejected {len(rejected)} conversation topic(s): {_rejection(rejected)}")
        if uncovered:
            reasons.append(f"{uncovered} user(s) beyond {settings.max_channels} channels × "
                           f"{settings.topics_per_channel} topics")
        if pending:
            reasons.append(f"{pending} user(s) not subscribed yet")
        if problem and (pending or down):
            reasons.append(f"last error: {problem}")
        return PushState(
            connected=started and not down,
            channels=len(channels),
            topics=topics,
            rejected=len(rejected),
            uncovered=uncovered,
            pending=pending,
            since_last_message_s=now - max(seen) if seen else None,
            fallback_reason="; ".join(reasons) or None,
            missing_permissions=missing,
        )

    # ---------------------------------------------------------------- manager

    def _manage(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                self._turn()
            except Exception:  # a bug here must not end push for the process' life: log it, try again later
                log.exception("Genesys notifications: unexpected error; trying again")
                self._failed("an unexpected error (see the log)")
            self._wake.wait(_POLL_S)

    def _turn(self) -> None:
        self._hand_over()
        if self._clock() < self._rest_after:
            return
        try:
            self._replace_lost()
            self._apply()
            self._renew()
            self._retry_rejected()
        except ChannelGone as exc:
            log.info("Genesys notifications: %s", exc)
            self._wake.set()  # replaced on the next turn, at once
        except GenesysError as exc:
            if self._stopping.is_set():
                return  # a wait cut short by stop() (`Stopping`): nothing failed
            self._failed(str(exc), transient=isinstance(exc, GenesysTransientError))
        else:
            if self._rest_failures:
                log.info("Genesys notifications: subscription calls succeed again")
            self._rest_failures = 0
            with self._lock:
                self._problem = None

    def _failed(self, problem: str, *, transient: bool = True) -> None:
        self._rest_failures += 1
        delay = self._backoff(self._rest_failures) if transient else self._settings.retry_rejected_s
        self._rest_after = self._clock() + delay
        with self._lock:
            self._problem = problem
        log.warning("Genesys notifications: %s; trying again in %.1f s", problem, delay)

    def _replace_lost(self) -> None:
        """Replace channels that answered 404, and (room permitting) those Genesys announced it will close."""
        with self._lock:
            lost = [c for c in self._channels if c.gone]
            closing = [c for c in self._channels if c.closing_at is not None and c.replacement is None]
        for old in lost:
            new = self._open_channel(old.topics, reason=f"channel {old.name} is gone")
            with self._lock:
                self._channels[self._channels.index(old)] = new
            old.retired.set()
        for old in closing:
            if self._held() >= self._settings.max_channels and not self._spares:
                log.warning("Genesys notifications: Genesys will close the socket of channel %s and the pool holds"
                            " the %d-channel limit, so no replacement can be opened first; it reconnects to the same"
                            " channel once closed", old.name, self._settings.max_channels)
                with self._lock:
                    old.replacement = old
                continue
            new = self._open_channel(old.topics, reason=f"Genesys will close the socket of channel {old.name}",
                                     predecessor=old)
            old.replacement = new
            with self._lock:
                self._channels[self._channels.index(old)] = new
                self._retiring.append(old)

    def _hand_over(self) -> None:
        """Let go of closing channels once their replacement connected (or it took too long)."""
        now = self._clock()
        with self._lock:
            done = [old for old in self._retiring if old.replacement is not None and (
                old.replacement.open or not old.open or now - (old.closing_at or now) > _HANDOVER_S)]
            for old in done:
                self._retiring.remove(old)
                if old.replacement is not None:
                    old.replacement.predecessor = None
        for old in done:
            old.retired.set()
            if not old.gone:
                self._spares.append(old.info)
            log.info("Genesys notifications: channel %s handed over to channel %s", old.name,
                     old.replacement.name if old.replacement else "?")

    def _open_channel(self, topics: Mapping[str, str], *, reason: str, predecessor: _Channel | None = None
                      ) -> _Channel:
        """Create a channel (or reuse a spare), set `topics` on it, then start its reader (so it connects already
        subscribed). A spare, unlike a new channel, may have been evicted: a 404 then makes it gone, and replaced."""
        now = self._utcnow()
        self._spares = [s for s in self._spares if (s.expires - now).total_seconds() > self._settings.renew_before_s]
        if self._unsubscribed:
            # Genesys has no call to delete a channel: one whose subscription failed is used, not left to count
            # towards the 20 (each retry creating another would end in evicting a channel of ours).
            channel = _Channel(self._unsubscribed.pop(0))
        elif self._spares and self._held() >= self._settings.max_channels:
            channel = _Channel(self._spares.pop(0))
            log.info("Genesys notifications: channel %s reused (%s)", channel.name, reason)
        else:
            channel = _Channel(self._api.create_notification_channel())
            lifetime = channel.info.expires - now
            if lifetime.total_seconds() > 0:
                self._lifetime = lifetime
            log.info("Genesys notifications: channel %s created (%s; expires %s)", channel.name, reason,
                     channel.info.expires.isoformat(timespec="seconds"))
        channel.predecessor = predecessor
        try:
            self._subscribe(channel, dict(topics), replace=True)  # also empties a reused spare's old topics
        except ChannelGone:
            raise
        except GenesysError:
            self._unsubscribed.append(channel.info)
            raise
        channel.thread = threading.Thread(target=self._read, args=(channel,), name=f"genesys-push-{channel.name}",
                                          daemon=True)
        channel.thread.start()
        return channel

    def _held(self) -> int:
        """Channels of ours alive on Genesys: a new one beyond max_channels would evict one of them."""
        with self._lock:
            return len(self._channels) + len(self._retiring) + len(self._spares) + len(self._unsubscribed)

    def _apply(self) -> None:
        """Drop unfollowed users' topics, then add new users' to the channels with room, then open channels."""
        settings = self._settings
        with self._lock:
            desired = self._desired
            channels = list(self._channels)
        for channel in channels:
            keep = {t: u for t, u in channel.topics.items() if u in desired}
            if len(keep) < len(channel.topics):
                self._subscribe(channel, keep, replace=True)
        assigned = {user for c in channels for user in c.topics.values()}
        new = sorted(desired - assigned)
        for channel in channels:
            room = settings.topics_per_channel - len(channel.topics)
            if new and room > 0 and channel.closing_at is None:
                batch, new = new[:room], new[room:]
                self._subscribe(channel, {conversations_topic(u): u for u in batch}, replace=False)
                with self._lock:
                    caught_up = channel.open
                if caught_up:
                    self._connected_callback()  # those users' events before now were missed: catch up once
        # Never a channel beyond the limit: Genesys would evict one of ours (a spare is reused instead).
        while new and len(self._channels) < settings.max_channels \
                and (self._held() < settings.max_channels or self._spares):
            batch, new = new[:settings.topics_per_channel], new[settings.topics_per_channel:]
            channel = self._open_channel({conversations_topic(u): u for u in batch},
                                         reason=f"for {len(batch)} user(s)")
            with self._lock:
                self._channels.append(channel)
        with self._lock:
            before, self._uncovered = self._uncovered, len(new)
        if new and not before:
            log.warning("Genesys notifications: %d followed user(s) exceed the %d channels × %d topics one OAuth"
                        " client may hold; their conversations are polled", len(new), settings.max_channels,
                        settings.topics_per_channel)

    def _renew(self) -> None:
        """Set each channel's topics again before it expires: that extends its life."""
        now = self._utcnow()
        with self._lock:
            due = [c for c in self._channels
                   if (c.info.expires - now).total_seconds() < self._settings.renew_before_s]
        for channel in due:
            self._subscribe(channel, dict(channel.topics), replace=True)
            log.info("Genesys notifications: channel %s renewed (expires %s)", channel.name,
                     channel.info.expires.isoformat(timespec="seconds"))

    def _retry_rejected(self) -> None:
        now = self._clock()
        with self._lock:
            due = [c for c in self._channels if c.rejected and now - c.rejected_at >= self._settings.retry_rejected_s]
        for channel in due:
            self._subscribe(channel, dict(channel.topics), replace=True)
            with self._lock:
                healed = not channel.rejected
            if healed:
                log.info("Genesys notifications: the rejected topics of channel %s are permitted now", channel.name)

    def _subscribe(self, channel: _Channel, topics: dict[str, str], *, replace: bool) -> None:
        """One subscription call: `topics` are all the channel's (PUT) or the ones to add (POST)."""
        try:
            if replace:
                answers = self._api.set_channel_topics(channel.info.id, tuple(topics))
            else:
                answers = self._api.add_channel_topics(channel.info.id, tuple(topics))
        except ChannelGone:
            with self._lock:
                channel.gone = True
            raise
        except PermissionMissing as exc:  # the whole call refused: every topic sent is rejected
            answers = tuple(TopicSubscription(t, False, str(exc), exc.permissions) for t in topics)
        refused = {a.topic: a for a in answers if not a.permitted}
        now_wall = self._utcnow()
        with self._lock:
            channel.topics = topics if replace else {**channel.topics, **topics}
            before = set(channel.rejected)
            rejected = {} if replace else {t: s for t, s in channel.rejected.items() if t not in topics}
            channel.rejected = {**rejected, **refused}
            channel.rejected_at = self._clock()
            # Any subscription call extends the channel's life (reference §5) by a channel's lifetime.
            channel.info = NotificationChannel(channel.info.id, channel.info.connect_uri, now_wall + self._lifetime)
        if set(refused) - before:
            log.warning("Genesys notifications: Genesys rejected %d conversation topic(s) on channel %s: %s; those"
                        " users are polled, and the subscription is tried again every %g s", len(refused),
                        channel.name, _rejection(refused), self._settings.retry_rejected_s)

    # ---------------------------------------------------------------- readers

    def _read(self, channel: _Channel) -> None:
        """The reader of one channel: connect, receive until the socket dies, back off, reconnect."""
        attempt, connects = 0, 0
        while not channel.retired.is_set() and not self._stopping.is_set():
            try:
                socket = self._open(channel.info.connect_uri)
            except ChannelGone as exc:
                log.info("Genesys notifications: %s", exc)
                with self._lock:
                    channel.gone = True
                self._wake.set()
                return
            except Exception as exc:  # noqa: BLE001 (refused, timed out, TLS, a non-101 answer: all worth a retry)
                attempt += 1
                delay = self._backoff(attempt)
                log.warning("Genesys notifications: the socket of channel %s could not connect (%s); trying again"
                            " in %.1f s", channel.name, _describe(exc), delay)
                channel.retired.wait(delay)
                continue
            if channel.retired.is_set() or self._stopping.is_set():
                _close(socket)
                return
            connects += 1
            with self._lock:
                channel.open, channel.last_seen = True, self._clock()
                if channel.replacement is channel:  # reconnected after a socket_closing at the channel limit
                    channel.closing_at, channel.replacement = None, None
            log.info("Genesys notifications: the socket of channel %s %s", channel.name,
                     "connected" if connects == 1 else "reconnected")
            self._connected_callback()
            connected_at = self._clock()
            why = self._receive(channel, socket)
            with self._lock:
                channel.open = False
            _close(socket)
            if channel.retired.is_set() or self._stopping.is_set():
                return
            log.warning("Genesys notifications: the socket of channel %s was lost (%s); reconnecting", channel.name,
                        why)
            with self._lock:
                handed_over = channel.replacement not in (None, channel)
            if handed_over:
                self._wake.set()
                return
            # A socket that stayed up a while starts the back-off afresh; one that keeps dying backs off further.
            attempt = 1 if self._clock() - connected_at > 4 * self._settings.heartbeat_interval_s else attempt + 1
            channel.retired.wait(self._backoff(attempt))

    def _receive(self, channel: _Channel, socket: Socket) -> str:
        """Hand each message on until the socket closes or falls silent; why it ended."""
        silent_limit = 2 * self._settings.heartbeat_interval_s
        while not channel.retired.is_set() and not self._stopping.is_set():
            with self._lock:
                silent = self._clock() - (channel.last_seen or 0.0)
            if silent >= silent_limit:
                return f"no heartbeat for {silent:.1f} s"
            try:
                raw = socket.recv(timeout=min(_POLL_S, silent_limit - silent))
            except TimeoutError:
                continue
            except ConnectionClosed as exc:
                return f"closed, code {exc.rcvd.code}" if exc.rcvd is not None else "closed without a close frame"
            except Exception as exc:  # noqa: BLE001 (however the socket broke, the reader reconnects)
                return _describe(exc)
            with self._lock:
                channel.last_seen = self._clock()
            self._handle(channel, raw)
        return "let go"

    def _handle(self, channel: _Channel, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
        except (ValueError, TypeError):
            log.warning("Genesys notifications: a message on channel %s is not JSON (%d bytes); ignored",
                        channel.name, len(raw))
            return
        topic = message.get("topicName") if isinstance(message, dict) else None
        if topic == HEARTBEAT_TOPIC:
            return
        if topic == SOCKET_CLOSING_TOPIC:
            log.info("Genesys notifications: Genesys announced it will close the socket of channel %s", channel.name)
            with self._lock:
                if channel.closing_at is None:
                    channel.closing_at = self._clock()
            self._wake.set()
            return
        user_id = user_of_topic(topic)
        if user_id is None:
            log.debug("Genesys notifications: ignored a message on channel %s with topic %.80r", channel.name, topic)
            return
        with self._lock:
            desired = self._desired
        body: Any = message.get("eventBody") if isinstance(message, dict) else None
        conversation_id = body.get("id") if isinstance(body, Mapping) else None
        if not isinstance(conversation_id, str) or not conversation_id:
            log.warning("Genesys notifications: an event on %s carries no conversation id; ignored", topic)
            return
        # Only the topic's user is reported, although the body tells every participant's part: each message names
        # one topic, each followed user has their own, and one user's topic lives on one channel, so their messages
        # arrive in order. Reporting the others from it too would let an older snapshot, arriving later on another
        # channel, undo a newer one.
        if user_id not in desired:
            return
        seen = ConversationSeen(user_id, conversation_id, tuple(live_in_conversation(body, user_id)))
        try:
            self._on_conversation(seen)
        except Exception:
            log.exception("Genesys notifications: on_conversation failed for conversation %s", conversation_id)

    # ---------------------------------------------------------------- helpers

    def _connected_callback(self) -> None:
        try:
            self._on_connected()
        except Exception:
            log.exception("Genesys notifications: on_connected failed")

    def _fresh(self, channel: _Channel, now: float) -> bool:
        return channel.open and channel.last_seen is not None \
            and now - channel.last_seen < 2 * self._settings.heartbeat_interval_s

    def _backoff(self, attempt: int) -> float:
        """Exponential back-off with jitter: between half and all of min × 2^(attempt-1), capped at max."""
        settings = self._settings
        ceiling = min(settings.reconnect_max_s, settings.reconnect_min_s * 2 ** min(attempt - 1, 30))
        return ceiling * self._rng.uniform(0.5, 1.0)


def _rejection(rejected: Mapping[str, TopicSubscription]) -> str:
    permissions = tuple(dict.fromkeys(p for s in rejected.values() for p in s.missing_permissions))
    if permissions:
        return f"the OAuth client needs {needs(permissions, 'missing.permissions')}; add it to one of its roles"
    reasons = sorted({s.reason for s in rejected.values() if s.reason})
    return f"Genesys said: {'; '.join(reasons)}" if reasons else "Genesys gave no reason"


def _describe(exc: BaseException) -> str:
    """An exception's type and, for OS errors and HTTP answers, its detail; never the URI (the channel id)."""
    if isinstance(exc, InvalidStatus):
        return f"HTTP {exc.response.status_code} at the upgrade"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    return type(exc).__name__


def _close(socket: Socket) -> None:
    try:
        socket.close()
    except Exception:  # closing a broken socket may fail in many ways; it is gone either way
        log.debug("Genesys notifications: closing a socket failed", exc_info=True)
