"""The HTTP surface against hostile requests, on one real app process for the module: whatever arrives (signed or
not, any JSON, any bytes, any headers, replays), never a 5xx, never a traceback or a forged line in the log, and the
app healthy afterwards. Then one regression test per limit, each failing without its fix (docs/reliability.md)."""

from __future__ import annotations

import copy
import json
import logging
import re
import resource
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from localdev.app_process import SIGNING_SECRET, Running, healthy, launch
from localdev.genesys_cloud import FakeGenesysCloud
from localdev.slack_api import FakeSlack, event_envelope, signed_headers, slash_command_body
from tests.conftest import slack_fixture
from web import server as web_server

LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: ")
"""How every line of the app's log starts (config.configure_logging); a line that does not was forged or is part
of a traceback."""
FAST = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                          HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with FakeSlack() as slack, FakeGenesysCloud() as genesys:
        running = launch(slack, genesys, tmp_path_factory.mktemp("hostile"))
        try:
            yield running
        finally:
            running.process.kill()
            running.process.wait(timeout=10)


@pytest.fixture(scope="module")
def client(app: Running) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=app.url, timeout=10) as http:
        yield http


@pytest.fixture(autouse=True)
def app_stays_sound(app: Running) -> Iterator[None]:
    """After each test: healthy, and every log line it caused a real one (no traceback, no forged line)."""
    already = len(app.log())
    yield
    assert healthy(app)
    forged = [line for line in app.log()[already:].splitlines() if not LOG_LINE.match(line)]
    assert forged == [], "\n".join(forged[:20])


def post(client: httpx.Client, body: bytes, *, signed: bool = True, content_type: str = "application/json",
         headers: dict[str, Any] | None = None, path: str = "/slack/events") -> httpx.Response:
    sent: dict[str, Any] = signed_headers(SIGNING_SECRET, body, content_type=content_type) if signed else {
        "Content-Type": content_type}
    sent.update(headers or {})
    return client.post(path, content=body, headers=sent)


def assert_answered(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:300])


# ------------------------------------------------------------------ strategies

SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
JSON = st.recursive(SCALARS, lambda children: st.lists(children, max_size=4)
                    | st.dictionaries(st.text(max_size=8), children, max_size=4), max_leaves=20)
HOSTILE_TEXT = st.sampled_from(["", "x\n2026-01-01 00:00:00,000 ERROR app: forged", "U1:T2", "\x00", "\u2028",
                                "%0a", "é", "🙂" * 10, "9" * 5000])
RAW_JSON = st.one_of(
    JSON.map(json.dumps),
    st.integers(1, 5000).map(lambda depth: "[" * depth + "]" * depth),  # deep
    st.integers(1, 3000).map(lambda depth: '{"a":' * depth + "1" + "}" * depth),
    st.integers(0, 60_000).map(lambda width: json.dumps([0] * width)),  # wide
    # huge strings, under the 1 MiB limit: over it, waitress answers 413 and closes while httpx may still be sending,
    # which httpx reports as an error of its own (the 413 is tested with raw sockets below)
    st.integers(0, 1_000_000).map(lambda size: json.dumps("x" * size)),
    HOSTILE_TEXT.map(json.dumps),
)


def user_change_event() -> dict[str, Any]:
    return slack_fixture("user_change.slack-docs-example.event.json")


def paths(value: Any, prefix: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Every key path of a JSON document, containers included."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        yield (*prefix, key)
        yield from paths(child, (*prefix, key))


def replaced(document: Any, path: tuple[str | int, ...], value: Any) -> Any:
    changed = copy.deepcopy(document)
    target = changed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return changed


ENVELOPE = event_envelope(user_change_event(), event_id="EvHOSTILE")
ENVELOPE_PATHS = sorted(paths(ENVELOPE), key=repr)


# ------------------------------------------------------------------ properties


@FAST
@given(raw=RAW_JSON, where=st.sampled_from(["body", "event", "user", "profile"]))
def test_signed_envelopes_with_any_json_are_answered(app: Running, client: httpx.Client, raw: str,
                                                      where: str) -> None:
    """Arbitrary JSON (deep, wide, huge strings) as the body, the event, the user or the profile."""
    if where == "body":
        body = raw.encode()
    else:
        place = {"event": ("event",), "user": ("event", "user"), "profile": ("event", "user", "profile")}[where]
        body = json.dumps(replaced(ENVELOPE, place, "@@HOSTILE@@")).replace('"@@HOSTILE@@"', raw).encode()
    assert_answered(post(client, body))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(ENVELOPE_PATHS), value=JSON | HOSTILE_TEXT)
def test_wrong_types_at_every_key_of_a_real_user_change(app: Running, client: httpx.Client,
                                                        path: tuple[str | int, ...], value: Any) -> None:
    """Slack's own user_change example with one key replaced by anything: 200 or a 4xx, never a 5xx."""
    body = json.dumps(replaced(ENVELOPE, path, value)).encode()
    response = post(client, body)
    assert_answered(response)
    assert response.status_code in (200, 400, 401, 404)


def test_every_key_of_a_real_user_change_with_each_wrong_type(app: Running, client: httpx.Client) -> None:
    """Each key of Slack's example, in turn, as null, a number, a list, an object and a line-forging string."""
    for path in ENVELOPE_PATHS:
        for value in (None, 7, [1, {"id": 2}], {"id": {"x": 1}}, "x\n2026-01-01 00:00:00,000 ERROR app: forged"):
            response = post(client, json.dumps(replaced(ENVELOPE, path, value)).encode())
            assert response.status_code in (200, 400, 401, 404), (path, value, response.text[:200])


@FAST
@given(body=st.binary(max_size=2000) | st.text(max_size=500).map(lambda text: text.encode("utf-8", "surrogatepass")),
       content_type=st.sampled_from(["application/json", "application/x-www-form-urlencoded", "text/plain", "",
                                     "application/json; charset=latin-1"]),
       signed=st.booleans())
def test_any_bytes_are_answered(app: Running, client: httpx.Client, body: bytes, content_type: str,
                                signed: bool) -> None:
    """Invalid UTF-8, lone surrogates, anything, as JSON or as a form, signed or not."""
    assert_answered(post(client, body, signed=signed, content_type=content_type))


FORM_TEXT = st.text(max_size=60) | HOSTILE_TEXT


@FAST
@given(fields=st.dictionaries(st.sampled_from(["text", "user_id", "team_id", "command", "channel_id", "payload",
                                               "ssl_check", "response_url", "trigger_id", "enterprise_id"]),
                              FORM_TEXT, max_size=4),
       junk=st.binary(max_size=40))
def test_slash_command_forms_with_garbage_are_answered(app: Running, client: httpx.Client,
                                                       fields: dict[str, str], junk: bytes) -> None:
    """The slash command's real form with fields replaced by garbage, and raw junk appended, signed."""
    body = slash_command_body("help", user_id="U0FORM", response_url=app.slack.response_url("form"))
    form = dict(pair.split("=", 1) for pair in body.decode().split("&"))
    form.update({name: quote(value, safe="") for name, value in fields.items()})
    garbled = "&".join(f"{name}={value}" for name, value in form.items()).encode() + junk
    assert_answered(post(client, garbled, content_type="application/x-www-form-urlencoded"))


FRAMING = frozenset({"content-length", "transfer-encoding", "host", "connection", "expect", "upgrade"})
"""Headers httpx frames the request with and refuses to send conflicting; framing is tested with raw sockets."""
HEADER_NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-ABCXYZ0123456789", min_size=1, max_size=20).filter(
    lambda name: name.lower() not in FRAMING)
HEADER_VALUE = st.binary(max_size=80).map(  # what HTTP lets a header value hold: no controls, no outer spaces
    lambda raw: bytes(b for b in raw if 0x20 <= b != 0x7F).strip())


@FAST
@given(extra=st.dictionaries(HEADER_NAME | st.sampled_from(["X-Slack-Signature", "X-Slack-Request-Timestamp",
                                                            "Content-Type", "X-Slack-Retry-Num"]),
                             HEADER_VALUE, max_size=4))
def test_arbitrary_headers_are_answered(app: Running, client: httpx.Client, extra: dict[str, bytes]) -> None:
    """A real signed event with any headers added or replaced (signature, timestamp, type, anything)."""
    body = json.dumps(event_envelope(user_change_event())).encode()
    assert_answered(post(client, body, headers=extra))


@FAST
@given(raw=RAW_JSON | st.just(json.dumps(ENVELOPE)), times=st.integers(2, 4))
def test_replays_are_answered(app: Running, client: httpx.Client, raw: str, times: int) -> None:
    """The same signed request again and again (Slack's retries, or a replay within the five minutes)."""
    body = raw.encode()
    headers = signed_headers(SIGNING_SECRET, body, content_type="application/json")
    for _ in range(times):
        assert_answered(client.post("/slack/events", content=body, headers=headers))


# ------------------------------------------------------------------ regressions, one per fix


def test_a_body_nested_5000_deep_gets_400(app: Running, client: httpx.Client) -> None:
    """Was a 500 with a RecursionError traceback: the JSON parser raises it, not ValueError."""
    response = post(client, b'{"event":' * 5000 + b"{}" + b"}" * 5000)
    assert response.status_code == 400
    assert response.json() == {"error": "the body is nested deeper than 64 levels"}


def raw_request(app: Running, head: bytes, *, timeout: float = 5) -> tuple[bytes, float]:
    """Send `head` (request line and headers, and any body) on a new connection; (the answer, seconds taken)."""
    port = int(app.url.rsplit(":", 1)[1])
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        connection.sendall(head)
        answer = connection.recv(65536)
    return answer, time.monotonic() - started


def test_a_content_length_of_100_mb_gets_413_at_once_unread(app: Running) -> None:
    """Was read whole (waitress's default limit is 1 GiB) before the app refused it."""
    answer, seconds = raw_request(app, b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                                       b"\r\nContent-Length: 100000000\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert seconds < 1


def test_a_chunked_body_over_the_limit_gets_413_once_it_passes_it(app: Running) -> None:
    """Chunked bodies announce no length: refused as soon as more than the limit has arrived, not at its end."""
    port = int(app.url.rsplit(":", 1)[1])
    chunk = b"x" * 65536
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           b"Transfer-Encoding: chunked\r\n\r\n")
        connection.setblocking(False)
        answer = b""
        while not answer and sent < 100 * 1024 * 1024:
            try:
                connection.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
                answer = connection.recv(65536)
            except BlockingIOError:
                time.sleep(0.01)
            except (BrokenPipeError, ConnectionResetError):
                break
        connection.setblocking(True)
        answer = answer or connection.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert sent < 2 * 1024 * 1024


def test_150_idle_connections_do_not_lock_slack_out(app: Running, client: httpx.Client) -> None:
    """Was a lock-out: waitress's 100 connections, idle ones kept 120 s, so Slack's delivery waited past its 3 s."""
    port = int(app.url.rsplit(":", 1)[1])
    idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(150)]
    try:
        time.sleep(0.5)  # let the server accept them all
        started = time.monotonic()
        with httpx.Client(base_url=app.url, timeout=10) as fresh:
            response = post(fresh, json.dumps(event_envelope(user_change_event())).encode())
        assert response.status_code == 200
        assert time.monotonic() - started < 3
    finally:
        for connection in idle:
            connection.close()


@pytest.mark.parametrize("path", ["/slack/x%0a2026-01-01%2000:00:00,000%20ERROR%20app:%20forged",
                                  "/slack/events%0d%0aforged", "/x%0aforged", "/slack/%E2%80%A8forged"])
def test_a_newline_in_the_path_cannot_forge_a_log_line(app: Running, client: httpx.Client, path: str) -> None:
    """Was a forged line: the path was logged unquoted with %s. (app_stays_sound checks every line's start.)"""
    already = len(app.log())
    response = client.post(path, content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code in (400, 404)
    lines = app.log()[already:].splitlines()
    assert [line for line in lines if line.startswith("2026-01-01 00:00:00,000") or not LOG_LINE.match(line)] == []


# ------------------------------------------------------------------ the server's settings, in-process


def test_waitress_lines_write_control_characters_escaped(caplog: pytest.LogCaptureFixture) -> None:
    """waitress logs the decoded path unquoted ("Client disconnected while serving /a\\nb"); escaped once the
    server is built by web.server."""
    server = web_server.create(lambda environ, start_response: [], port=0, threads=1, ident="test", host="127.0.0.1")
    server.close()
    with caplog.at_level(logging.INFO, logger="waitress"):
        path = "/a\n2026 ERROR app: forged"
        logging.getLogger("waitress").info("Client disconnected while serving " + path)  # as waitress does
    assert [record.getMessage() for record in caplog.records] == [
        "Client disconnected while serving /a\\n2026 ERROR app: forged"]


@pytest.mark.parametrize(
    ("soft", "hard", "raised_to", "connections"),
    [(1024, 1024, [1024], 1024 - web_server.FILE_DESCRIPTOR_RESERVE),
     (1024, 1_048_576, [web_server.CONNECTION_LIMIT + web_server.FILE_DESCRIPTOR_RESERVE], web_server.CONNECTION_LIMIT),
     (65536, 65536, [], web_server.CONNECTION_LIMIT)],
)
def test_the_connection_limit_fits_the_open_file_limit(monkeypatch: pytest.MonkeyPatch,
                                                       caplog: pytest.LogCaptureFixture, soft: int, hard: int,
                                                       raised_to: list[int], connections: int) -> None:
    """Past the open-file limit accept() would fail on every turn of the server's loop: the soft limit is raised to
    fit, or the connection limit lowered to fit, with one warning."""
    raised: list[int] = []

    def setrlimit(_which: int, limits: tuple[int, int]) -> None:
        if limits[0] > hard:
            raise ValueError("not allowed to raise the limit")
        raised.append(limits[0])

    monkeypatch.setattr(resource, "getrlimit", lambda _which: (soft, hard))
    monkeypatch.setattr(resource, "setrlimit", setrlimit)
    with caplog.at_level(logging.WARNING, logger="web.server"):
        limits = web_server.limits_for_open_files()
    assert limits.connection_limit == connections
    assert raised == raised_to
    assert len(caplog.records) == (connections < web_server.CONNECTION_LIMIT)
