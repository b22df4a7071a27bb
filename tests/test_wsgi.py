"""web.wsgi in front of a real Bolt app, called in-process: what reaches Bolt, what is refused, and why."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import pytest
from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient

from localdev.slack_api import FakeSlack, event_envelope, signed_headers
from web import HealthReport, wsgi_application

SECRET = "wsgi-test-signing-secret"
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:  # Bolt asks auth.test once, when the App is built
        yield fake


@pytest.fixture
def received() -> list[Mapping[str, Any]]:
    return []


@pytest.fixture
def web(slack: FakeSlack, received: list[Mapping[str, Any]]) -> WsgiApp:
    bolt = App(client=WebClient(token=slack.bot_token, base_url=slack.api_url), signing_secret=SECRET,
               process_before_response=True)

    @bolt.event("user_change")
    def on_user_change(body: Mapping[str, Any]) -> None:
        received.append(body)

    return wsgi_application(SlackRequestHandler(bolt), lambda: HealthReport({}))


def call(web: WsgiApp, body: bytes, *, content_type: str = "application/json", signed: bool = True,
         headers: Mapping[str, str] | None = None) -> tuple[str, dict[str, Any] | bytes]:
    """POST /slack/events in-process; (status line, JSON answer or raw bytes)."""
    sent = dict(headers) if headers is not None else (signed_headers(SECRET, body, content_type=content_type)
                                                      if signed else {"Content-Type": content_type})
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST", "PATH_INFO": "/slack/events", "QUERY_STRING": "", "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": sent.pop("Content-Type", content_type),
        "wsgi.input": io.BytesIO(body),
    }
    environ.update({"HTTP_" + name.upper().replace("-", "_"): value for name, value in sent.items()})
    statuses: list[str] = []
    answer = b"".join(web(environ, lambda status, _headers, _exc_info=None: statuses.append(status)))
    try:
        return statuses[0], json.loads(answer)
    except ValueError:
        return statuses[0], answer


def user_change_body() -> bytes:
    return json.dumps(event_envelope({"type": "user_change", "user": {"id": "U0WSGI", "team_id": "T0FAKE"}})).encode()


def test_a_signed_event_reaches_its_listener(web: WsgiApp, received: list[Mapping[str, Any]]) -> None:
    status, _ = call(web, user_change_body())
    assert status.startswith("200")
    assert [body["event"]["user"]["id"] for body in received] == ["U0WSGI"]


def test_a_good_body_is_parsed_once(web: WsgiApp, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bolt parses the body; the pre-check in front of it does not parse it again."""
    parses: list[int] = []
    real_loads = json.loads

    def counting_loads(document: Any, *args: Any, **kwargs: Any) -> Any:
        parses.append(len(document))
        return real_loads(document, *args, **kwargs)

    body = user_change_body()
    monkeypatch.setattr(json, "loads", counting_loads)
    status, _ = call(web, body)
    monkeypatch.undo()
    assert status.startswith("200")
    assert parses.count(len(body)) == 1


def test_a_wrong_signature_is_still_refused(web: WsgiApp, received: list[Mapping[str, Any]]) -> None:
    body = user_change_body()
    forged = signed_headers("not-the-secret", body)
    assert call(web, body, headers=forged)[0].startswith("401")
    assert received == []


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b"{not json", "application/json", "the body is not JSON"),
        (b"[1, 2]", "application/json", "the body is not a JSON object"),
        (b"null", "application/json", "the body is not a JSON object"),
        (b"\xff\xfe{}", "application/json", "the body is not UTF-8"),
        (b"{not json", "application/x-www-form-urlencoded", "the body is not JSON"),
        (b"payload=%7Bnot+json", "application/x-www-form-urlencoded", "the form's payload is not JSON"),
        (b"payload=%5B1%5D", "application/x-www-form-urlencoded", "the form's payload is not a JSON object"),
        (b"command=%2Fgenesys-sync&text=\xff", "application/x-www-form-urlencoded", "the body is not UTF-8"),
    ],
)
@pytest.mark.parametrize("signed", [True, False])
def test_an_unreadable_body_gets_400_with_its_reason(web: WsgiApp, received: list[Mapping[str, Any]],
                                                     caplog: pytest.LogCaptureFixture, body: bytes,
                                                     content_type: str, reason: str, signed: bool) -> None:
    """Whatever Bolt cannot read into a request is answered 400 naming why, with one log line, before the signature
    is looked at (as before: a 500 and a traceback for most of these)."""
    with caplog.at_level(logging.WARNING, logger="web.wsgi"):
        status, answer = call(web, body, content_type=content_type, signed=signed)
    assert (status, answer) == ("400 Bad Request", {"error": reason})
    assert [record.getMessage() for record in caplog.records if record.name == "web.wsgi"] == [
        f"refused a request to /slack/events: {reason}"]
    assert received == []


@pytest.mark.parametrize(
    ("length", "status", "reason"),
    [("12x", "400 Bad Request", "Content-Length is not a number"),
     (str(2 * 1024 * 1024), "413 Content Too Large", "body of 2,097,152 bytes is over 1,048,576")],
)
def test_a_bad_or_huge_content_length_is_refused_unread(length: str, status: str, reason: str) -> None:
    def bolt(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        raise AssertionError("must not be reached")

    web = wsgi_application(bolt, lambda: HealthReport({}))
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/slack/events", "CONTENT_LENGTH": length,
               "wsgi.input": io.BytesIO(b"")}
    statuses: list[str] = []
    answer = b"".join(web(environ, lambda s, _h, _e=None: statuses.append(s)))
    assert (statuses, json.loads(answer)) == ([status], {"error": reason})


def test_a_failure_that_is_not_the_body_s_fault_is_not_disguised() -> None:
    """An error escaping Bolt for a well-formed body is not turned into a 400: the server answers 500 and logs it."""
    def bolt(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        environ["wsgi.input"].read()
        raise ValueError("a bug, not the body")

    web = wsgi_application(bolt, lambda: HealthReport({}))
    with pytest.raises(ValueError, match="a bug"):
        call(web, user_change_body())
