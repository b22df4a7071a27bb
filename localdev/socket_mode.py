"""A local Slack Socket Mode endpoint: a stdlib WebSocket server on 127.0.0.1, and a FakeSlack that opens it.

For end-to-end tests of ``python app.py serve`` with ``SLACK_APP_TOKEN`` set. Two parts:

* ``FakeSocketMode``: an RFC 6455 server (``socket`` + ``threading``, framing from ``localdev/websocket.py``) at
  ``ws://127.0.0.1:PORT/link/``.
  On an accepted connection it sends Slack's ``hello``; a test pushes envelopes (``push_event``,
  ``push_slash_command``, ``push``) and reads the acknowledgements the client sends back (``acks``,
  ``wait_for_ack``), each with its envelope id and how long after the push it arrived.
* ``SocketModeSlack``: ``FakeSlack`` plus ``apps.connections.open``, which answers the app-level token
  (``xapp-...``) with a one-time ``ws://`` URL on the ``FakeSocketMode`` it owns. Start/stop the pair
  together (``with SocketModeSlack() as slack: slack.socket_mode ...``).

Facts (reference /work/shared/reference/slack-platform.md §8.2 and slack_sdk 3.48's built-in client):

* The client calls ``apps.connections.open`` through the Bolt app's ``WebClient`` (so ``SLACK_API_URL``
  applies) with ``Authorization: Bearer <app token>``; a bot token there is ``not_allowed_token_type``
  (the method's documented error). Real Slack answers ``wss://wss-primary.slack.com/link/?ticket=...&app_id=...``.
* slack_sdk's built-in client does not look at the scheme: any port other than 443 is a plain TCP socket
  ("only for library testing"), so ``ws://127.0.0.1:PORT`` works unchanged.
* Handshake: ``GET /link/?ticket=... HTTP/1.1`` with ``Sec-WebSocket-Key``/``Version: 13``; the answer is
  ``101`` with ``Sec-WebSocket-Accept`` = base64(SHA-1(key + RFC 6455 GUID)), checked by the client.
* Client frames are masked (RFC 6455 §5.3), server frames are not. The client pings right after the
  handshake and every ``ping_interval`` (10 s under Bolt) and counts the connection stale after four
  intervals without a pong; this server pongs each ping with the same payload. Its ``close()`` drops the
  socket without a close frame (so ``client_close_codes`` stays empty for it); a close frame from this
  server (``close_connections``) makes it reconnect through ``apps.connections.open``, but only on its
  next monitor tick (every ``ping_interval``: 10 s under Bolt), not at once.
* After ``{"type": "disconnect"}`` the client opens the new connection first and drops the old one only
  when its reader lets go (up to its 3 s receive timeout), so both count in ``connection_count`` briefly.
* Messages: ``hello`` first; envelopes ``{"envelope_id", "type": "events_api"|"slash_commands"|...,
  "accepts_response_payload", "payload", ...}`` (``retry_attempt``/``retry_reason`` on events_api);
  acknowledgement ``{"envelope_id": ...}`` plus ``"payload"`` when the app answers with a body;
  ``{"type": "disconnect", "reason": ...}`` asks the client to reconnect (``disconnect()`` here).

Choices where Slack's behaviour is undocumented [U]: a ticket is good for one connection; an unknown or
used ticket gets ``HTTP 401`` instead of ``101``; ``debug_info`` carries made-up host/build values.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from localdev.http_server import Request
from localdev.slack_api import FakeSlack, _Answer, _body_args, _Call, _json_answer, _SlackError
from localdev.websocket import (
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

APP_TOKEN = "xapp-fake"
MAX_CLIENT_FRAME_BYTES = 1 << 24  # far above any acknowledgement; a client frame above it is closed with 1009


@dataclass(frozen=True)
class Ack:
    """An acknowledgement the client sent: its envelope id, optional payload, and when it arrived."""

    envelope_id: str
    payload: dict[str, Any] | None
    received_at: float  # time.monotonic()
    latency_s: float | None  # since the matching push; None for an envelope this server never pushed


@dataclass
class _Connection:
    sock: socket.socket
    ticket: str
    send_lock: threading.Lock = field(default_factory=threading.Lock)
    open: bool = True
    close_code: int | None = None


class FakeSocketMode:
    """The WebSocket side of Socket Mode; see the module docstring."""

    def __init__(self, *, app_id: str = "AFAKE", host: str = "127.0.0.1") -> None:
        self.app_id = app_id
        self._host = host
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._tickets: set[str] = set()
        self._connections: list[_Connection] = []
        self._pushed_at: dict[str, float] = {}
        self.acks: list[Ack] = []
        self.received: list[dict[str, Any] | str] = []  # every text message from the client, acks included
        self.refused_handshakes: list[str] = []  # request lines answered with something other than 101
        self.pongs: list[bytes] = []
        self.client_close_codes: list[int | None] = []

    # -- life cycle --------------------------------------------------------------------------------

    def start(self) -> Self:
        if self._listener is not None:
            raise RuntimeError("a FakeSocketMode starts once")
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self._host, 0))
        listener.listen(8)
        listener.settimeout(0.05)
        self._listener = listener
        self._spawn(self._accept_loop, f"fake-socket-mode:{self.port}")
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            self._close_socket(connection)
        if self._listener is not None:
            self._listener.close()
        for thread in self._threads:
            thread.join(timeout=1.0)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._listener is None:
            raise RuntimeError("start() the fake first")
        return int(self._listener.getsockname()[1])

    def issue_url(self) -> str:
        """A one-time URL as ``apps.connections.open`` hands out (``ws://`` here, ``wss://`` at Slack)."""
        ticket = str(uuid.uuid4())
        with self._lock:
            self._tickets.add(ticket)
        return f"ws://127.0.0.1:{self.port}/link/?ticket={ticket}&app_id={self.app_id}"

    # -- what a test does --------------------------------------------------------------------------

    @property
    def connection_count(self) -> int:
        """Open connections (a client that has not yet reconnected after ``disconnect()`` counts 0)."""
        with self._lock:
            return sum(1 for c in self._connections if c.open)

    def wait_for_connection(self, timeout: float = 10.0, count: int = 1) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: self.connection_count >= count, timeout):
                raise AssertionError(f"no Socket Mode connection within {timeout} s")

    def push(self, envelope: Mapping[str, Any]) -> str:
        """Send an envelope (it must carry ``envelope_id``) on the newest open connection; its id."""
        envelope_id = str(envelope["envelope_id"])
        connection = self._current()
        with self._lock:
            self._pushed_at[envelope_id] = time.monotonic()
        self._send(connection, OPCODE_TEXT, json.dumps(envelope).encode("utf-8"))
        return envelope_id

    def push_event(self, event_callback: Mapping[str, Any], *, retry_attempt: int = 0, retry_reason: str = "",
                   envelope_id: str | None = None) -> str:
        """An Events API envelope around an ``event_callback`` body (``slack_api.event_envelope``)."""
        return self.push({
            "envelope_id": envelope_id or str(uuid.uuid4()),
            "payload": dict(event_callback),
            "type": "events_api",
            "accepts_response_payload": False,
            "retry_attempt": retry_attempt,
            "retry_reason": retry_reason,
        })

    def push_slash_command(self, fields: Mapping[str, str], *, envelope_id: str | None = None) -> str:
        """A slash command envelope; ``fields`` are the form fields HTTP mode would POST (as a JSON object)."""
        return self.push({
            "envelope_id": envelope_id or str(uuid.uuid4()),
            "payload": dict(fields),
            "type": "slash_commands",
            "accepts_response_payload": True,
        })

    def push_interactive(self, payload: Mapping[str, Any], *, envelope_id: str | None = None) -> str:
        """An interactivity envelope (a Home tab click: ``block_actions``); ``payload`` is what HTTP mode would
        POST as the form's ``payload`` JSON."""
        return self.push({
            "envelope_id": envelope_id or str(uuid.uuid4()),
            "payload": dict(payload),
            "type": "interactive",
            "accepts_response_payload": False,
        })

    def ack_for(self, envelope_id: str) -> Ack | None:
        with self._lock:
            return next((a for a in self.acks if a.envelope_id == envelope_id), None)

    def wait_for_ack(self, envelope_id: str, timeout: float = 3.0) -> Ack:
        with self._changed:
            if not self._changed.wait_for(lambda: self.ack_for(envelope_id) is not None, timeout):
                raise AssertionError(f"envelope {envelope_id} was not acknowledged within {timeout} s")
        ack = self.ack_for(envelope_id)
        assert ack is not None
        return ack

    def disconnect(self, reason: str = "refresh_requested") -> None:
        """Slack's ``{"type": "disconnect"}``: the client should open a new connection."""
        self._send(self._current(), OPCODE_TEXT, json.dumps({
            "type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake"}}).encode("utf-8"))

    def ping(self, payload: bytes = b"fake") -> None:
        """A server ping; the pong lands in ``pongs``."""
        self._send(self._current(), OPCODE_PING, payload)

    def close_connections(self, code: int = 1001) -> None:
        """Close every connection with a close frame (1001: going away)."""
        with self._lock:
            connections = [c for c in self._connections if c.open]
        for connection in connections:
            self._send(connection, OPCODE_CLOSE, struct.pack("!H", code))
            self._close_socket(connection)

    # -- the server --------------------------------------------------------------------------------

    def _spawn(self, target: Any, name: str, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
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
            sock.settimeout(None)
            self._spawn(self._serve, f"fake-socket-mode-conn:{sock.getpeername()[1]}", sock)

    def _serve(self, sock: socket.socket) -> None:
        reader = FrameReader(sock)
        try:
            connection = self._handshake(sock, reader)
            if connection is None:
                sock.close()
                return
            try:
                self._send(connection, OPCODE_TEXT, json.dumps(self._hello()).encode("utf-8"))
                self._read_frames(connection, reader)
            finally:
                self._close_socket(connection)  # also when the client just drops the socket (its close())
        except (OSError, ConnectionError, ValueError):
            pass
        finally:
            sock.close()

    def _hello(self) -> dict[str, Any]:
        return {
            "type": "hello",
            "num_connections": self.connection_count,
            "debug_info": {"host": "applink-fake-1", "build_number": 1, "approximate_connection_time": 18060},
            "connection_info": {"app_id": self.app_id},
        }

    def _handshake(self, sock: socket.socket, reader: FrameReader) -> _Connection | None:
        request = read_handshake(reader)
        ticket = request.query.get("ticket", "")
        with self._lock:
            known = ticket in self._tickets
            self._tickets.discard(ticket)
        problem = None
        if request.method != "GET" or not request.path.startswith("/link"):
            problem = "404 Not Found"
        elif not request.is_upgrade:
            problem = "400 Bad Request"
        elif not known:
            problem = "401 Unauthorized"
        if problem is not None:
            with self._lock:
                self.refused_handshakes.append(request.request_line)
            sock.sendall(refusal(problem))
            return None
        sock.sendall(switching_protocols(request.key))
        connection = _Connection(sock, ticket)
        with self._changed:
            self._connections.append(connection)
            self._changed.notify_all()
        return connection

    def _read_frames(self, connection: _Connection, reader: FrameReader) -> None:
        message = bytearray()
        message_opcode: int | None = None
        while connection.open and not self._stopping.is_set():
            try:
                frame = read_client_frame(reader, max_bytes=MAX_CLIENT_FRAME_BYTES)
            except ProtocolError as error:  # RFC 6455 §5.1: the server MUST close on an unmasked client frame
                self._send(connection, OPCODE_CLOSE, close_payload(error.code, error.reason))
                break
            opcode, data = frame.opcode, frame.payload
            if opcode == OPCODE_PING:
                self._send(connection, OPCODE_PONG, data)
            elif opcode == OPCODE_PONG:
                with self._lock:
                    self.pongs.append(data)
            elif opcode == OPCODE_CLOSE:
                code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else None
                with self._lock:
                    self.client_close_codes.append(code)
                self._send(connection, OPCODE_CLOSE, data[:2])
                break
            elif opcode in (OPCODE_TEXT, OPCODE_BINARY, OPCODE_CONTINUATION):
                if opcode != OPCODE_CONTINUATION:
                    message_opcode, message = opcode, bytearray()
                message += data
                if frame.fin and message_opcode == OPCODE_TEXT:
                    self._received_text(message.decode("utf-8"))
        self._close_socket(connection)

    def _received_text(self, text: str) -> None:
        now = time.monotonic()
        try:
            message: dict[str, Any] | str = json.loads(text)
        except ValueError:
            message = text
        with self._changed:
            self.received.append(message)
            if isinstance(message, dict) and isinstance(message.get("envelope_id"), str):
                envelope_id = message["envelope_id"]
                pushed = self._pushed_at.get(envelope_id)
                payload = message.get("payload")
                self.acks.append(Ack(envelope_id, payload if isinstance(payload, dict) else None, now,
                                     None if pushed is None else now - pushed))
            self._changed.notify_all()

    def _current(self) -> _Connection:
        with self._lock:
            for connection in reversed(self._connections):
                if connection.open:
                    return connection
        raise AssertionError("no open Socket Mode connection")

    @staticmethod
    def _send(connection: _Connection, opcode: int, payload: bytes) -> None:
        with connection.send_lock:
            if connection.open:
                connection.sock.sendall(server_frame(opcode, payload))

    def _close_socket(self, connection: _Connection) -> None:
        with self._changed:
            if not connection.open:
                return
            connection.open = False
            self._changed.notify_all()
        with contextlib.suppress(OSError):
            connection.sock.shutdown(socket.SHUT_RDWR)
        connection.sock.close()


class SocketModeSlack(FakeSlack):
    """``FakeSlack`` that also answers ``apps.connections.open`` for ``app_token`` with a ``FakeSocketMode`` URL."""

    def __init__(self, *, app_token: str = APP_TOKEN, app_id: str = "AFAKE", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app_token = app_token
        self.socket_mode = FakeSocketMode(app_id=app_id)

    def start(self) -> Self:
        self.socket_mode.start()
        return super().start()

    def stop(self) -> None:
        super().stop()
        self.socket_mode.stop()

    def _api_checked(self, request: Request, method_name: str, call: _Call) -> _Answer:
        if method_name != "apps.connections.open":
            return super()._api_checked(request, method_name, call)
        fault = self._take_fault(method_name)
        if fault is not None:
            raise fault
        body, body_token = _body_args(request)
        call.params.update(body)
        call.token = call.token or body_token
        if call.token is None:
            raise _SlackError("not_authed")
        if call.token != self.app_token:
            raise _SlackError("not_allowed_token_type" if call.token.startswith("xox") else "invalid_auth")
        self._consume_rate(method_name)
        return _json_answer({"ok": True, "url": self.socket_mode.issue_url()})
