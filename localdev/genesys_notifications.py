"""Genesys Cloud's Notifications API for ``FakeGenesysCloud``: channels, their topics, and their WebSocket.

``NotificationService`` keeps the channels and serves their WebSocket on its own listener on 127.0.0.1 (standard
library only: ``socket`` and ``threading``; the RFC 6455 framing is ``localdev/websocket.py``). ``FakeGenesysCloud``
owns one, answers the REST calls (``/api/v2/notifications/...``, through its usual token, rate limit, fault and
recording checks) by calling it, and publishes conversation events to it.

Threads: one accepts connections; one ticker sends heartbeats and closes sockets whose channel expired or whose
``socket_closing`` grace is over; each socket has a reader (client frames: ping → pong, close → close, unmasked →
close 1002) and a writer that drains the socket's queue. Publishing only queues, so a slow client delays no one
else. ``stop()`` cuts every socket, closes the listener and joins the threads.

Facts follow reference §6.4 and "Notification limits" in §5 (``/work/shared/reference/genesys-cloud-api.md``);
what the platform SDK docs show is marked [V], what the fake assumes is marked [U].

Verified [V] (platform-client-sdk docs: ``NotificationsApi.md``, ``Channel``, ``ChannelTopic``,
``ChannelTopicEntityListing``, ``ConversationEventTopicConversation``/``...Participant``; ``notificationMappings.json``)
-------------------------------------------------------------------------------------------------------------------
* ``POST /api/v2/notifications/channels`` → ``Channel`` ``{connectUri, id, expires}``; ``GET`` lists them as
  ``{"entities": [...]}``; ``GET|POST|PUT|DELETE .../channels/{id}/subscriptions`` with a body of ``ChannelTopic``
  ``[{"id": topic}]``, answered with ``ChannelTopicEntityListing`` ``{"entities": [{id, state, rejectionReason,
  missingPermissions}]}``; ``state`` is ``Permitted`` or ``Rejected``.
* ``ignoreErrors`` (query, default false): "Optionally prevent throwing of errors for failed permissions checks".
  So without ``ignoreErrors=true`` a topic the client lacks a permission for fails the call (here: 403
  ``missing.permissions``, nothing changed); with it, the topic is listed ``Rejected`` with its
  ``missingPermissions``. (The status of that failure is [U]; 403 is the fake's choice.)
* Messages are ``{"topicName", "eventBody"}``; heartbeats are ``channel.metadata`` with ``{"message": "WebSocket
  Heartbeat"}``; conversation events carry ``version`` and ``metadata.CorrelationId``.
* ``ConversationEventTopicConversation`` has ``id``, ``maxParticipants``, ``participants``, ``recordingState``,
  ``address``, ... but no ``startTime``/``endTime``; its participants have ``id``, ``connectedTime``, ``endTime``,
  ``userId``, ``name``, ``purpose``, ``wrapupRequired``, ``attributes`` and per media ``calls``/``messages``/...
  with ``id`` and ``state``. The fake sends the participant shape of ``GET /api/v2/conversations/{id}`` (a
  superset: ``startTime`` too), so one parser reads both.
* Limits (§5, [S] forum quoting the docs, the 20 also in ``NotificationsApi.md``): a channel lives 24 h unless a
  subscribe call extends it; 20 channels per user and app (the 21st evicts one); 1,000 topics per channel (more:
  400); one WebSocket per channel.

Assumed [U] (the fake's choices)
--------------------------------
* The permission ``v2.users.{id}.conversations`` (and ``.calls``) needs: ``conversation:communication:view``
  (``availabletopics`` lists it per topic; not checked against a real org).
* A topic naming a user id the org does not know is still ``Permitted``: Genesys checks permissions, not that the
  id exists, and user ids are opaque to it here. A topic of any other pattern is ``Rejected`` with
  ``rejectionReason`` "Topic is not supported" and no ``missingPermissions``, ignoreErrors or not.
* The 21st channel evicts the OLDEST channel (created first), connected or not (the forum says "oldest
  unconnected/least used"). An evicted, expired or replaced channel's socket gets a close frame (1001 going
  away; 1000 for a socket replaced by a newer one), then the TCP connection is closed once the client answers
  the close (at most 1 s later).
* The REST calls need no permission of their own (the SDK docs name none for them).
* Channels are kept per OAuth client; ``GET .../channels`` lists every channel of the client (the real default,
  ``includechannels=token``, lists the token's channels; this fake's client uses one token at a time).
* Expiry is measured with the fake's injected ``clock``; ``expires`` is ``wall_clock`` at creation (or at the
  last subscribe call) + the lifetime.
  The WebSocket of an expired channel is closed by the next tick of the service's ticker (every ≤ 50 ms).
* Events go only to connected sockets; nothing is queued for a channel without a socket (as real Genesys drops
  them). A change is one message per subscribed topic (topics are independent subscriptions), so a channel that
  follows two users of one conversation gets it twice, once per ``topicName``, with the same ``CorrelationId``.
  ``v2.users.{id}.conversations.calls`` may be subscribed but the fake publishes nothing on it.
* A client text message ``{"message": "ping"}`` is answered ``{"topicName": "channel.metadata", "eventBody":
  {"message": "pong"}}`` (a keep-alive check recalled from Genesys' notification guide, not verified here).
* The handshake for an unknown or expired channel is answered ``HTTP/1.1 404`` before the upgrade; a request that
  is not a WebSocket upgrade is ``400``. Client frames must be masked: an unmasked one is answered with close
  1002 and the connection is closed (RFC 6455 §5.1). Client pings get pongs, a client close gets a close back.
"""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self

from localdev.websocket import (
    CLOSE_GOING_AWAY,
    CLOSE_NORMAL,
    CLOSE_PROTOCOL_ERROR,
    OPCODE_BINARY,
    OPCODE_CLOSE,
    OPCODE_CONTINUATION,
    OPCODE_PING,
    OPCODE_PONG,
    OPCODE_TEXT,
    FrameReader,
    ProtocolError,
    close_payload,
    read_client_frame,
    read_handshake,
    refusal,
    server_frame,
    switching_protocols,
)

MAX_CHANNELS_PER_CLIENT = 20
MAX_TOPICS_PER_CHANNEL = 1000
DEFAULT_CHANNEL_LIFETIME_S = 24 * 3600.0
DEFAULT_HEARTBEAT_INTERVAL_S = 30.0
HEARTBEAT_TOPIC = "channel.metadata"
SOCKET_CLOSING_TOPIC = "v2.system.socket_closing"
MAX_CLIENT_FRAME_BYTES = 1 << 20

_HANDSHAKE_TIMEOUT_S = 5.0
_TICK_S = 0.05  # the ticker's longest sleep: how late an expiry or a socket_closing grace may be noticed


# ---------------------------------------------------------------------------------------------------
# Public values


@dataclass(frozen=True)
class TopicState:
    """One topic of a channel, as ``ChannelTopic`` lists it."""

    id: str
    state: str  # "Permitted" | "Rejected"
    rejection_reason: str = ""
    missing_permissions: tuple[str, ...] = ()

    def json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"id": self.id, "state": self.state}
        if self.state != "Permitted":
            entry["rejectionReason"] = self.rejection_reason
            entry["missingPermissions"] = list(self.missing_permissions)
        return entry


@dataclass(frozen=True)
class ChannelInfo:
    """A read-out of one channel for tests: its topics, whether a socket is connected, when it expires (ISO)."""

    id: str
    topics: tuple[TopicState, ...]
    connected: bool
    expires: str

    @property
    def topic_count(self) -> int:
        return len(self.topics)


class ChannelNotFound(LookupError):
    """The channel does not exist (never did, expired, or was evicted)."""


class TooManyTopics(ValueError):
    """The change would leave the channel with more than ``MAX_TOPICS_PER_CHANNEL`` topics."""


# ---------------------------------------------------------------------------------------------------
# Internal state


@dataclass(eq=False)
class _Socket:
    sock: socket.socket
    channel_id: str
    outbox: queue.SimpleQueue[tuple[int, bytes] | None] = field(default_factory=queue.SimpleQueue)
    open: bool = True
    closing: bool = False  # a close frame is queued or sent: nothing more goes out after it
    reader_done: threading.Event = field(default_factory=threading.Event)
    next_heartbeat: float = 0.0  # time.monotonic()
    close_at: float | None = None  # time.monotonic() after a socket_closing announcement


@dataclass(eq=False)
class _Channel:
    id: str
    owner: str
    expires_at: float  # injected clock: when it ends
    expires_wall: float  # wall clock: what ``expires`` says (fixed, so every answer shows the same instant)
    topics: dict[str, TopicState] = field(default_factory=dict)
    socket: _Socket | None = None


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _text(message: Any) -> tuple[int, bytes]:
    return OPCODE_TEXT, json.dumps(message, separators=(",", ":")).encode("utf-8")


# ---------------------------------------------------------------------------------------------------
# The service


class NotificationService:
    """Channels, subscriptions and the WebSocket listener; see the module docstring. Thread-safe."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        heartbeat_interval_s: float = DEFAULT_HEARTBEAT_INTERVAL_S,
        channel_lifetime_s: float = DEFAULT_CHANNEL_LIFETIME_S,
    ) -> None:
        if heartbeat_interval_s <= 0 or channel_lifetime_s <= 0:
            raise ValueError("heartbeat_interval_s and channel_lifetime_s must be positive")
        self.heartbeat_interval_s = heartbeat_interval_s
        self.channel_lifetime_s = channel_lifetime_s
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._channels: dict[str, _Channel] = {}  # in creation order: eviction takes the first of an owner
        self._sockets: set[_Socket] = set()
        self._handshaking: set[socket.socket] = set()  # accepted, not yet upgraded: stop() cuts them too
        self._heartbeats_paused = False
        self._published = 0
        self.refused_handshakes: list[str] = []  # request lines answered with something other than 101

    # -- life cycle --------------------------------------------------------------------------------

    def start(self) -> Self:
        if self._listener is not None or self._stopping.is_set():
            raise RuntimeError("a NotificationService starts once")
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        listener.settimeout(_TICK_S)  # accept() wakes up to see stop()
        self._listener = listener
        self._spawn(self._accept_loop, f"fake-genesys-notifications:{self.port}")
        self._spawn(self._tick_loop, "fake-genesys-notifications-ticker")
        return self

    def stop(self) -> None:
        """Close every socket and the listener, and wait (briefly) for the threads; idempotent."""
        self._stopping.set()
        with self._lock:
            sockets = list(self._sockets)
            handshaking = list(self._handshaking)
        for connection in sockets:
            self._drop(connection)
        for sock in handshaking:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._listener is not None:
            self._listener.close()
        for thread in list(self._threads):
            if thread is not threading.current_thread():
                thread.join(timeout=1.0)

    @property
    def port(self) -> int:
        if self._listener is None:
            raise RuntimeError("start() the fake first")
        return int(self._listener.getsockname()[1])

    def connect_uri(self, channel_id: str) -> str:
        return f"ws://127.0.0.1:{self.port}/channels/{channel_id}"

    # -- REST side (FakeGenesysCloud parses, checks permissions and answers) -----------------------

    def create_channel(self, owner: str) -> dict[str, Any]:
        """A new channel of ``owner`` as ``Channel`` JSON; the owner's 21st evicts its oldest."""
        evicted: list[_Channel] = []
        with self._lock:
            self._reap_expired()
            owned = [c for c in self._channels.values() if c.owner == owner]
            while len(owned) >= MAX_CHANNELS_PER_CLIENT:
                oldest = owned.pop(0)
                del self._channels[oldest.id]
                evicted.append(oldest)
            channel = _Channel(
                str(uuid.uuid4()),
                owner,
                self._clock() + self.channel_lifetime_s,
                self._wall_clock() + self.channel_lifetime_s,
            )
            self._channels[channel.id] = channel
            answer = self._channel_json(channel)
        for gone in evicted:
            self._close_channel_socket(gone, CLOSE_GOING_AWAY, "channel evicted")
        return answer

    def channels_json(self, owner: str) -> list[dict[str, Any]]:
        with self._lock:
            self._reap_expired()
            return [self._channel_json(c) for c in self._channels.values() if c.owner == owner]

    def topics(self, owner: str, channel_id: str) -> list[TopicState]:
        with self._lock:
            return list(self._live_channel(owner, channel_id).topics.values())

    def subscribe(
        self, owner: str, channel_id: str, states: Sequence[TopicState], *, replace: bool
    ) -> list[TopicState]:
        """Add (or with ``replace``, set) the channel's topics and extend its life; its topics after the change."""
        with self._lock:
            channel = self._live_channel(owner, channel_id)
            topics = {} if replace else dict(channel.topics)
            for state in states:
                topics[state.id] = state
            if len(topics) > MAX_TOPICS_PER_CHANNEL:
                raise TooManyTopics(
                    f"A channel may have at most {MAX_TOPICS_PER_CHANNEL} topics; this request would leave "
                    f"{len(topics)}."
                )
            channel.topics = topics
            channel.expires_at = self._clock() + self.channel_lifetime_s
            channel.expires_wall = self._wall_clock() + self.channel_lifetime_s
            return list(topics.values())

    def unsubscribe_all(self, owner: str, channel_id: str) -> None:
        with self._lock:
            self._live_channel(owner, channel_id).topics = {}

    def _live_channel(self, owner: str, channel_id: str) -> _Channel:
        self._reap_expired()
        channel = self._channels.get(channel_id)
        if channel is None or channel.owner != owner:
            raise ChannelNotFound(channel_id)
        return channel

    def _channel_json(self, channel: _Channel) -> dict[str, Any]:
        return {"connectUri": self.connect_uri(channel.id), "id": channel.id, "expires": self._expires_iso(channel)}

    @staticmethod
    def _expires_iso(channel: _Channel) -> str:
        return _iso(channel.expires_wall)

    def _reap_expired(self) -> None:
        """Forget expired channels; their sockets get a close frame queued (the writer then closes them)."""
        now = self._clock()
        for channel in [c for c in self._channels.values() if now >= c.expires_at]:
            del self._channels[channel.id]
            if channel.socket is not None:
                self._schedule_close(channel.socket, CLOSE_GOING_AWAY, "channel expired")

    # -- publishing --------------------------------------------------------------------------------

    def publish(self, topic_names: Iterable[str], event_body: dict[str, Any]) -> int:
        """Queue one message per topic to every connected socket whose channel has that topic Permitted (a channel
        following two users in the conversation gets two); never waits for a socket. How many it queued."""
        wanted = list(dict.fromkeys(topic_names))
        correlation_id = str(uuid.uuid4())  # one change, one id, on every topic it is published to
        sent = 0
        with self._lock:
            self._reap_expired()
            for channel in self._channels.values():
                connection = channel.socket
                if connection is None or not connection.open or connection.closing:
                    continue
                for topic in wanted:
                    subscribed = channel.topics.get(topic)
                    if subscribed is None or subscribed.state != "Permitted":
                        continue
                    message = {
                        "topicName": topic,
                        "version": "2",
                        "eventBody": event_body,
                        "metadata": {"CorrelationId": correlation_id},
                    }
                    connection.outbox.put(_text(message))
                    sent += 1
            self._published += sent
        return sent

    # -- faults and read-outs ----------------------------------------------------------------------

    def drop_sockets(self) -> None:
        """Cut every WebSocket's TCP connection abruptly: no close frame (the client sees 1006)."""
        with self._lock:
            sockets = list(self._sockets)
        for connection in sockets:
            self._drop(connection)

    def announce_socket_closing(self, grace_s: float = 0.5) -> None:
        """Send ``v2.system.socket_closing`` on every socket, then close each (close frame 1001) after ``grace_s``."""
        message = _text({"topicName": SOCKET_CLOSING_TOPIC, "eventBody": {"message": "WebSocket is closing"}})
        close_at = time.monotonic() + grace_s
        with self._lock:
            for connection in self._sockets:
                if connection.open and not connection.closing and connection.close_at is None:
                    connection.outbox.put(message)
                    connection.close_at = close_at

    def expire_channels(self) -> None:
        """Every channel ends now: sockets closed (close frame 1001), later calls and handshakes 404."""
        with self._lock:
            channels = list(self._channels.values())
            self._channels.clear()
        for channel in channels:
            self._close_channel_socket(channel, CLOSE_GOING_AWAY, "channel expired")

    def pause_heartbeats(self) -> None:
        with self._lock:
            self._heartbeats_paused = True

    def resume_heartbeats(self) -> None:
        """Heartbeats again, the next one a full interval from now on every socket."""
        with self._lock:
            self._heartbeats_paused = False
            due = time.monotonic() + self.heartbeat_interval_s
            for connection in self._sockets:
                connection.next_heartbeat = due

    def channel_infos(self) -> list[ChannelInfo]:
        with self._lock:
            self._reap_expired()
            return [
                ChannelInfo(
                    c.id, tuple(c.topics.values()), c.socket is not None and c.socket.open, self._expires_iso(c)
                )
                for c in self._channels.values()
            ]

    def permitted_topics(self) -> frozenset[str]:
        with self._lock:
            self._reap_expired()
            return frozenset(t.id for c in self._channels.values() for t in c.topics.values() if t.state == "Permitted")

    def socket_count(self) -> int:
        with self._lock:
            return sum(1 for s in self._sockets if s.open)

    def published_count(self) -> int:
        with self._lock:
            return self._published

    # -- threads -----------------------------------------------------------------------------------

    def _spawn(self, target: Callable[..., None], name: str, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                sock, _address = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(_HANDSHAKE_TIMEOUT_S)  # a client that never sends its request does not hold a thread
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._handshaking.add(sock)
            self._spawn(self._serve, f"fake-genesys-ws:{sock.getpeername()[1]}", sock)

    def _tick_loop(self) -> None:
        wait = min(_TICK_S, self.heartbeat_interval_s / 4)
        heartbeat = _text({"topicName": HEARTBEAT_TOPIC, "eventBody": {"message": "WebSocket Heartbeat"}})
        while not self._stopping.wait(wait):
            now = time.monotonic()
            closing: list[_Socket] = []
            with self._lock:
                self._reap_expired()
                for connection in self._sockets:
                    if not connection.open or connection.closing:
                        continue
                    if connection.close_at is not None and now >= connection.close_at:
                        closing.append(connection)
                    elif not self._heartbeats_paused and now >= connection.next_heartbeat:
                        connection.outbox.put(heartbeat)
                        connection.next_heartbeat = now + self.heartbeat_interval_s
            for connection in closing:
                self._schedule_close(connection, CLOSE_GOING_AWAY, "socket closing")

    def _serve(self, sock: socket.socket) -> None:
        """One connection: the handshake, then this thread reads client frames while a writer thread sends."""
        reader = FrameReader(sock)
        connection: _Socket | None = None
        try:
            try:
                connection = self._handshake(sock, reader)
            finally:
                with self._lock:
                    self._handshaking.discard(sock)
            if connection is not None:
                self._read_frames(connection, reader)  # returns once a close frame is queued
        except ProtocolError as error:
            if connection is not None:
                self._schedule_close(connection, error.code, error.reason)
        except (OSError, ConnectionError, ValueError):
            if connection is not None:
                self._drop(connection)  # the client vanished (or stop()/drop_sockets() cut it)
        finally:
            if connection is None:
                with contextlib.suppress(OSError):
                    sock.close()
            else:
                connection.reader_done.set()

    def _handshake(self, sock: socket.socket, reader: FrameReader) -> _Socket | None:
        request = read_handshake(reader)
        channel_id = request.path.removeprefix("/channels/") if request.path.startswith("/channels/") else ""
        problem: str | None = None
        with self._lock:
            self._reap_expired()
            channel = self._channels.get(channel_id) if channel_id else None
            if self._stopping.is_set():
                problem = "503 Service Unavailable"
            elif request.method != "GET" or channel is None:
                problem = "404 Not Found"
            elif not request.is_upgrade:
                problem = "400 Bad Request"
            if problem is not None:
                self.refused_handshakes.append(request.request_line)
        if problem is not None or channel is None:
            status, _, message = str(problem).partition(" ")
            sock.sendall(refusal(str(problem), json.dumps({"status": int(status), "message": message}).encode()))
            return None
        sock.sendall(switching_protocols(request.key))
        sock.settimeout(None)
        connection = _Socket(sock, channel.id, next_heartbeat=time.monotonic() + self.heartbeat_interval_s)
        with self._lock:
            if self._stopping.is_set():  # stop() ran during the handshake and did not see this socket
                return None
            replaced = channel.socket
            if self._channels.get(channel.id) is not channel:  # expired or evicted during the handshake
                replaced = None
                self._schedule_close(connection, CLOSE_GOING_AWAY, "channel expired")
            else:
                channel.socket = connection
            self._sockets.add(connection)
        self._spawn(self._write_loop, f"fake-genesys-ws-writer:{sock.getpeername()[1]}", connection)
        if replaced is not None:
            self._schedule_close(replaced, CLOSE_NORMAL, "replaced by a newer connection")
        return connection

    def _read_frames(self, connection: _Socket, reader: FrameReader) -> None:
        message = bytearray()
        message_opcode: int | None = None
        while connection.open and not self._stopping.is_set():
            frame = read_client_frame(reader, max_bytes=MAX_CLIENT_FRAME_BYTES)  # ProtocolError: unmasked, too big
            if frame.opcode == OPCODE_PING:
                connection.outbox.put((OPCODE_PONG, frame.payload))
            elif frame.opcode == OPCODE_PONG:
                continue
            elif frame.opcode == OPCODE_CLOSE:
                data = frame.payload
                self._schedule_close(connection, struct.unpack("!H", data[:2])[0] if len(data) >= 2 else CLOSE_NORMAL)
                return
            elif frame.opcode in (OPCODE_TEXT, OPCODE_BINARY, OPCODE_CONTINUATION):
                if frame.opcode != OPCODE_CONTINUATION:
                    message_opcode, message = frame.opcode, bytearray()
                message += frame.payload
                if frame.fin and message_opcode == OPCODE_TEXT:
                    self._client_text(connection, bytes(message))
            else:
                raise ProtocolError(CLOSE_PROTOCOL_ERROR, f"unknown opcode {frame.opcode}")

    def _client_text(self, connection: _Socket, data: bytes) -> None:
        try:
            message = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return
        if isinstance(message, dict) and message.get("message") == "ping":
            connection.outbox.put(_text({"topicName": HEARTBEAT_TOPIC, "eventBody": {"message": "pong"}}))

    def _write_loop(self, connection: _Socket) -> None:
        """Send what is queued for one socket; a close frame ends it and closes the TCP connection."""
        try:
            while True:
                item = connection.outbox.get()
                if item is None or not connection.open:
                    return
                opcode, payload = item
                connection.sock.sendall(server_frame(opcode, payload))
                if opcode == OPCODE_CLOSE:
                    # Half-close and let the reader take the client's answering close frame, so closing at once
                    # does not reset the connection under a close frame the client has not read yet.
                    with contextlib.suppress(OSError):
                        connection.sock.shutdown(socket.SHUT_WR)
                    connection.reader_done.wait(1.0)
                    return
        except OSError:
            return
        finally:
            self._drop(connection)

    def _schedule_close(self, connection: _Socket, code: int, reason: str = "") -> None:
        """Queue a close frame; the writer sends it after what is already queued, then closes the socket."""
        with self._lock:
            if connection.open and not connection.closing:
                connection.closing = True
                connection.outbox.put((OPCODE_CLOSE, close_payload(code, reason)))
                connection.close_at = None

    def _close_channel_socket(self, channel: _Channel, code: int, reason: str) -> None:
        if channel.socket is not None:
            self._schedule_close(channel.socket, code, reason)

    def _drop(self, connection: _Socket) -> None:
        """Close the TCP connection now (no close frame) and forget the socket."""
        with self._lock:
            was_open = connection.open
            connection.open = False
            self._sockets.discard(connection)
            channel = self._channels.get(connection.channel_id)
            if channel is not None and channel.socket is connection:
                channel.socket = None
        if not was_open:
            return
        connection.outbox.put(None)  # wakes the writer
        with contextlib.suppress(OSError):
            connection.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            connection.sock.close()
