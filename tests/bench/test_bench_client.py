"""bench/event_burst.py's RawClient against waitress: the figures it reports are only as good as its reading."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from waitress.server import create_server

from bench.event_burst import RawClient


def answer(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    mode = environ.get("HTTP_X_MODE", "")
    if mode == "chunked":  # no Content-Length: waitress sends the body chunked
        start_response("202 Accepted", [("Content-Type", "text/plain")])
        return [b"part one, ", b"part two, ", body]
    start_response("200 OK" if body else "400 Bad Request",
                   [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    server = create_server(answer, host="127.0.0.1", port=0, threads=2)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}/slack/events"
    finally:
        server.close()
        thread.join(timeout=5)


def test_statuses_over_one_kept_alive_connection(url: str) -> None:
    client = RawClient(url, 5.0)
    try:
        assert [client.post(body, {"Content-Type": "text/plain"}) for body in (b"x" * 3000, b"", b"y")] == [
            200, 400, 200]
        assert [client.post(b"z", {"X-Mode": "chunked"}) for _ in range(3)] == [202, 202, 202]
        assert client.post(b"z", {"Connection": "close"}) == 200  # waitress answers Connection: close, and closes
        assert client.post(b"after the server closed", {}) == 200  # on a new connection
    finally:
        client.close()


def test_no_answer_is_an_os_error() -> None:
    client = RawClient("http://127.0.0.1:9/slack/events", 2.0)  # the discard port: nothing listens
    with pytest.raises(OSError, match="no complete answer"):
        client.post(b"{}", {})
