"""web.wsgi in front of a real Bolt app, called in-process: what reaches Bolt, what is refused, and why."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import pytest
from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier

from localdev.slack_api import FakeSlack, event_envelope, signed_headers
from web import HealthReport, wsgi_application

SECRET = "wsgi-test-signing-secret"
VERIFIER = SignatureVerifier(SECRET)
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

    return wsgi_application(SlackRequestHandler(bolt), lambda: HealthReport({}), verifier=VERIFIER)


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
        (b'{"a":' * 5000 + b"1" + b"}" * 5000, "application/json", "the body is nested deeper than 64 levels"),
        (b"[" * 70 + b"{}" + b"]" * 70, "application/json", "the body is not a JSON object"),
        (b'{"a":' * 65 + b"1" + b"}" * 65, "application/json", "the body is nested deeper than 64 levels"),
        (b"payload=" + b"%5B" * 5000 + b"%5D" * 5000, "application/x-www-form-urlencoded",
         "the form's payload is nested deeper than 64 levels"),
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
        f"refused a request to '/slack/events': {reason}"]
    assert received == []


@pytest.mark.parametrize(
    ("length", "status", "reason"),
    [("12x", "400 Bad Request", "Content-Length is not a number"),
     ("-5", "400 Bad Request", "Content-Length is negative"),
     (str(2 * 1024 * 1024), "413 Content Too Large", "body of 2,097,152 bytes is over 1,048,576")],
)
def test_a_bad_or_huge_content_length_is_refused_unread(length: str, status: str, reason: str) -> None:
    def bolt(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        raise AssertionError("must not be reached")

    web = wsgi_application(bolt, lambda: HealthReport({}), verifier=VERIFIER)
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

    web = wsgi_application(bolt, lambda: HealthReport({}), verifier=VERIFIER)
    with pytest.raises(ValueError, match="a bug"):
        call(web, user_change_body())


@pytest.mark.parametrize(
    ("event", "envelope", "reason"),
    [({"type": "user_change", "user": 1}, {}, "a number at event.user, not a Slack id or an object"),
     ({"type": "user_change", "user": {"id": "U0\nforged"}}, {}, "a string that is not an id at event.user.id, "
      "not a Slack id"),
     ({"type": "user_change", "user": {"id": "U0WSGI"}}, {"team_id": ["T0"]}, "a list at team_id, not a Slack id"),
     ({"type": "user_change", "user": {"id": "U0WSGI"}}, {"authorizations": {"a": 1}},
      "an object at authorizations, not a list of objects"),
     ({"type": 5}, {}, "a number at event.type, not a string")],
)
def test_a_misshapen_payload_is_acknowledged_when_signed_and_refused_when_not(
        web: WsgiApp, received: list[Mapping[str, Any]], caplog: pytest.LogCaptureFixture,
        event: dict[str, Any], envelope: dict[str, Any], reason: str) -> None:
    """A wrong type at a key Bolt reads: signed, it is Slack's delivery, so 200 (no redelivery) and nothing recorded;
    unsigned, 401. One log line either way, never a 500."""
    body = json.dumps({**event_envelope(event), **envelope}).encode()
    with caplog.at_level(logging.WARNING, logger="web.wsgi"):
        signed = call(web, body)
        unsigned = call(web, body, signed=False)
    assert signed[0] == "200 OK"
    assert signed[1] == {"ignored": f"the body has {reason}; nothing recorded (answered 200 so Slack does not "
                                    "deliver it again)"}
    assert unsigned == ("401 Unauthorized", {"error": "the request is not signed with the signing secret"})
    assert len([record for record in caplog.records if record.name == "web.wsgi"]) == 2
    assert received == []


@pytest.mark.parametrize("headers", [
    {"X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": "v0=00"},
    {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=\u00e9"},
    {"X-Slack-Request-Timestamp": "9" * 5000, "X-Slack-Signature": "v0=00"},
])
def test_signature_headers_bolt_cannot_compare_get_401(web: WsgiApp, headers: dict[str, str]) -> None:
    """Bolt's verifier raises on these (int() of the timestamp, compare_digest of non-ASCII): a 500 before."""
    status, answer = call(web, user_change_body(), headers={**headers, "Content-Type": "application/json"})
    assert status == "401 Unauthorized"
    assert answer == {"error": "the signature headers are malformed"}
