"""The server side of RFC 6455 that the local WebSocket fakes share (Slack's Socket Mode, Genesys' notifications).

Standard library only, so the fakes check the app's WebSocket libraries against an independent implementation:
``read_handshake`` reads the upgrade request, ``switching_protocols`` answers it with the
``Sec-WebSocket-Accept`` value (base64 of SHA-1 of the key and the RFC's GUID, §1.3), ``server_frame`` builds an
unmasked, unfragmented frame, and ``read_client_frame`` reads a masked client frame and unmasks it, raising
``ProtocolError`` (close code 1002) for an unmasked one (§5.1: a server MUST close the connection then).
"""

from __future__ import annotations

import base64
import hashlib
import socket
import struct
from collections.abc import Mapping
from dataclasses import dataclass

from localdev.http_server import split_target

WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OPCODE_CONTINUATION, OPCODE_TEXT, OPCODE_BINARY = 0x0, 0x1, 0x2
OPCODE_CLOSE, OPCODE_PING, OPCODE_PONG = 0x8, 0x9, 0xA
CLOSE_NORMAL, CLOSE_GOING_AWAY, CLOSE_PROTOCOL_ERROR, CLOSE_TOO_BIG = 1000, 1001, 1002, 1009


class FrameReader:
    """Buffered reads from a blocking socket; ConnectionError at the end of the stream."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = bytearray()

    def _fill(self) -> None:
        chunk = self._sock.recv(65536)
        if not chunk:
            raise ConnectionError("the client closed the connection")
        self._buffer += chunk

    def exactly(self, n: int) -> bytes:
        while len(self._buffer) < n:
            self._fill()
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    def until(self, marker: bytes, *, limit: int) -> bytes:
        while (end := self._buffer.find(marker)) < 0:
            if len(self._buffer) > limit:
                raise ValueError("handshake too long")
            self._fill()
        data = bytes(self._buffer[:end])
        del self._buffer[: end + len(marker)]
        return data


@dataclass(frozen=True)
class Handshake:
    """An HTTP request that should be a WebSocket upgrade."""

    request_line: str
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    """Lower-cased names."""

    @property
    def key(self) -> str:
        return self.headers.get("sec-websocket-key", "")

    @property
    def is_upgrade(self) -> bool:
        """A well-formed version 13 upgrade: Upgrade, Connection, Sec-WebSocket-Version and -Key all right."""
        return (
            self.headers.get("upgrade", "").lower() == "websocket"
            and "upgrade" in self.headers.get("connection", "").lower()
            and self.headers.get("sec-websocket-version") == "13"
            and bool(self.key)
        )


def read_handshake(reader: FrameReader) -> Handshake:
    head = reader.until(b"\r\n\r\n", limit=16384).decode("latin-1")
    request_line, *header_lines = head.split("\r\n")
    headers: dict[str, str] = {}
    for line in header_lines:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    method, target, *_ = [*request_line.split(" "), "", ""]
    path, query = split_target(target)
    return Handshake(request_line, method, path, query, headers)


def accept_value(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` value for a ``Sec-WebSocket-Key``."""
    return base64.b64encode(hashlib.sha1((key + WEBSOCKET_GUID).encode("ascii")).digest()).decode("ascii")


def switching_protocols(key: str) -> bytes:
    """The 101 answer that completes the handshake."""
    return (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept_value(key)}\r\n\r\n"
    ).encode("ascii")


def refusal(status: str, body: bytes = b"", content_type: str = "application/json") -> bytes:
    """An HTTP answer other than 101 (``status`` like ``"404 Not Found"``); the connection closes after it."""
    typed = f"Content-Type: {content_type}\r\n" if body else ""
    head = f"HTTP/1.1 {status}\r\n{typed}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    return head.encode("ascii") + body


def server_frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked, unfragmented frame (server to client)."""
    length = len(payload)
    if length <= 125:
        header = struct.pack("!BB", 0x80 | opcode, length)
    elif length <= 0xFFFF:
        header = struct.pack("!BBH", 0x80 | opcode, 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, length)
    return header + payload


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode("utf-8")[:120]


class ProtocolError(Exception):
    """The client broke RFC 6455; the server answers with a close frame of ``code`` and closes."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class ClientFrame:
    fin: bool
    opcode: int
    payload: bytes
    """Unmasked."""


def read_client_frame(reader: FrameReader, *, max_bytes: int = 1 << 20) -> ClientFrame:
    """The next client frame, unmasked; ProtocolError for an unmasked frame (1002) or one over ``max_bytes`` (1009)."""
    first, second = reader.exactly(2)
    length = second & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", reader.exactly(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", reader.exactly(8))
    if not second & 0x80:
        raise ProtocolError(CLOSE_PROTOCOL_ERROR, "unmasked frame")
    if length > max_bytes:
        raise ProtocolError(CLOSE_TOO_BIG, "frame too big")
    mask = reader.exactly(4)
    data = bytes(b ^ mask[i % 4] for i, b in enumerate(reader.exactly(length)))
    return ClientFrame(bool(first & 0x80), first & 0x0F, data)
