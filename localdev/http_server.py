"""The HTTP plumbing the local fakes share (FakeGenesysCloud, FakeSlack).

``LocalHttpServer`` is the base of a fake served over real HTTP: one ``ThreadingHTTPServer`` on
``127.0.0.1`` (a free port) run by a daemon thread, with ``start()`` (once), ``stop()`` (prompt and
idempotent; stopping before starting forbids a later start), ``stopping``, use as a context manager,
``base_url``, and injected latency (``set_latency``, waited out by ``_delay``).

``RequestHandler`` is the base of its request handler: HTTP/1.1 keep-alive, Nagle off, no log lines,
bodies read by ``Content-Length`` or chunked encoding; a subclass turns the parsed ``Request`` into its fake's
answer (``answer``) and names the answer to a body it cannot frame (``framing_error``). ``Reply`` is a plain
answer; ``split_target``, ``form_fields`` and ``media_type`` read a request as every fake reads it (the WebSocket
handshakes of ``localdev/websocket.py`` included).

``stop()`` also cuts the keep-alive connections still open, so pooled clients see the stop at once, and sets
the ``_stopping`` event that ``_delay`` waits on, so no handler sleeping out a latency keeps it waiting.
"""

from __future__ import annotations

import dataclasses
import socket
import sys
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, Protocol, Self
from urllib.parse import parse_qs, unquote, urlsplit


class Answer(Protocol):
    """What a fake answers one request with."""

    @property
    def status(self) -> int: ...

    @property
    def body(self) -> bytes: ...

    @property
    def headers(self) -> Iterable[tuple[str, str]]: ...


@dataclass(frozen=True, slots=True)
class Reply:
    """A plain answer: status, body and headers (Content-Length is added when it is written)."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()

    def with_headers(self, extra: Iterable[tuple[str, str]]) -> Self:
        return dataclasses.replace(self, headers=(*self.headers, *extra))


@dataclass(frozen=True, slots=True)
class Request:
    """One request as a fake reads it."""

    method: str
    target: str
    """The request target as sent: the path and the query, percent-encoded."""
    path: str
    """The target's path: as sent, or percent-decoded where the handler's ``decode_path`` says so."""
    query: Mapping[str, str]
    headers: Mapping[str, str]
    """Lower-cased names."""
    body: bytes


def split_target(target: str) -> tuple[str, dict[str, str]]:
    """A request target's path (as sent) and its query parameters (``form_fields``)."""
    parts = urlsplit(target)
    return parts.path, form_fields(parts.query)


def form_fields(text: str) -> dict[str, str]:
    """A query string or form body's fields: the last value of each name, empty values kept, as Slack reads a
    form (a field sent empty is there, and empty)."""
    return {name: values[-1] for name, values in parse_qs(text, keep_blank_values=True).items()}


def media_type(header: str | None) -> str:
    """A Content-Type header's media type, lower-cased and without parameters; "" when there is none."""
    return (header or "").split(";", 1)[0].strip().lower()


class FramingError(Exception):
    """The request body's framing (Content-Length or chunked encoding) cannot be read."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # benchmarks open many connections at once

    def __init__(self, owner: LocalHttpServer, handler: type[RequestHandler]) -> None:
        self.owner = owner
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        # Keep-alive connections outlive serve_forever(); cut them so pooled clients see the stop.
        with self.connections_lock:
            connections = list(self.connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                continue  # already closed by its handler thread: nothing left to cut

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        # A client hanging up, or stop() cutting a connection, is not a fault of the fake: stay quiet.
        if isinstance(error, ConnectionError | TimeoutError) or self.owner.stopping:
            return
        super().handle_error(request, client_address)


class RequestHandler(BaseHTTPRequestHandler):
    """Serves GET, POST, PUT, PATCH and DELETE through ``answer``; a subclass may add ``do_HEAD``."""

    protocol_version = "HTTP/1.1"  # keep-alive, like the real services; clients pool connections
    # Headers and body go out in separate writes; with Nagle on, the client's delayed ACK adds ~40 ms each.
    disable_nagle_algorithm = True
    decode_path: ClassVar[bool] = False
    """Whether ``Request.path`` is percent-decoded (Genesys routes on decoded ids) or left as sent (Slack)."""
    server: _Server

    def answer(self, request: Request) -> Answer | None:
        """The fake's answer to this request. None drops the connection with nothing written."""
        raise NotImplementedError

    def framing_error(self) -> Answer:
        """The answer to a request whose body cannot be framed (the connection closes after it)."""
        raise NotImplementedError

    def log_message(self, format: str, *args: Any) -> None:
        return  # one stderr line per request would drown test output

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self, *, head_only: bool = False) -> None:
        try:
            body = self._read_body()
        except FramingError:
            self.close_connection = True
            self._write(self.framing_error(), head_only=head_only)
            return
        answer = self.answer(self._request(body))
        if answer is None:
            self.close_connection = True  # drop (or stopped while waiting): the socket closes with nothing written
            return
        self._write(answer, head_only=head_only)

    def _request(self, body: bytes) -> Request:
        path, query = split_target(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        return Request(self.command, self.path, unquote(path) if self.decode_path else path, query, headers, body)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        try:
            size = int(length)
        except ValueError as exc:
            raise FramingError from exc
        if size < 0:
            raise FramingError
        return self.rfile.read(size)

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            line = self.rfile.readline(65_537)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError as exc:
                raise FramingError from exc
            if size == 0:
                break
            chunks.append(self.rfile.read(size))
            self.rfile.readline(65_537)  # CRLF after the chunk
        trailer = self.rfile.readline(65_537)
        while trailer not in (b"\r\n", b"\n", b""):
            trailer = self.rfile.readline(65_537)
        return b"".join(chunks)

    def _write(self, answer: Answer, *, head_only: bool) -> None:
        self.send_response(answer.status)
        for name, value in answer.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if answer.body and not head_only:
            self.wfile.write(answer.body)


class LocalHttpServer:
    """Base of a fake served on 127.0.0.1 by ``handler`` (see the module docstring)."""

    def __init__(self, *, handler: type[RequestHandler], thread_name: str) -> None:
        self._handler = handler
        self._thread_name = thread_name
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._latency_lock = threading.Lock()
        self._latency_s = 0.0

    def start(self) -> Self:
        if self._server is not None or self._stopping.is_set():
            raise RuntimeError(f"a {type(self).__name__} starts once")
        self._server = _Server(self, self._handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},  # shutdown() waits up to one poll; tests start and stop often
            name=f"{self._thread_name}:{self._server.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server = self._server
        if server is None or self._stopping.is_set():
            self._stopping.set()
            return
        self._stopping.set()  # also wakes handlers waiting in _delay
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=1.0)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("start() the fake first")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def set_latency(self, seconds: float) -> None:
        """Make every later answer wait this long first (``_delay``); 0 or less: no wait."""
        with self._latency_lock:
            self._latency_s = max(0.0, seconds)

    def _delay(self) -> None:
        with self._latency_lock:
            latency = self._latency_s
        if latency > 0:
            self._stopping.wait(latency)  # an Event, not sleep(): stop() must not wait for it
