"""The local Slack Web API fake, exercised over real HTTP with the real slack_sdk clients (and httpx)."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.client import IncompleteRead
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

from localdev.slack_api import (
    DEFAULT_SCOPES,
    RESPONSE_URL_LIFETIME_S,
    RESPONSE_URL_MAX_POSTS,
    FakeSlack,
    RecordedCall,
    event_envelope,
    signed_headers,
    slash_command_body,
)
from tests.clocks import FakeClock
from tests.conftest import slack_fixture

TOKEN = "xoxb-fake-bot-token"
SECRET = "fake-signing-secret"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def slack(clock: FakeClock) -> Iterator[FakeSlack]:
    with FakeSlack(clock=clock) as fake:
        yield fake
        assert fake.server_errors == []


@pytest.fixture
def client(slack: FakeSlack) -> WebClient:
    return WebClient(token=TOKEN, base_url=slack.api_url, timeout=5)


@pytest.fixture
def http(slack: FakeSlack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=slack.api_url, timeout=5.0) as raw:
        yield raw


def add_people(slack: FakeSlack, count: int) -> list[str]:
    ids = [f"U{n:03d}" for n in range(1, count + 1)]
    for user_id in ids:
        slack.add_user(user_id, name=user_id.lower(), real_name=f"Person {user_id}", email=f"{user_id.lower()}@ex.com")
    return ids


def api_error(excinfo: pytest.ExceptionInfo[SlackApiError]) -> dict[str, Any]:
    return excinfo.value.response.data  # type: ignore[return-value]


# -- identity and auth -------------------------------------------------------------------------------


def test_auth_test_names_the_bot_and_team(slack: FakeSlack, client: WebClient) -> None:
    """auth.test answers the bot's identity with a bot token, as in Slack's success_with_bot_token example."""
    response = client.auth_test()
    assert response.status_code == 200
    assert response.data == {
        "ok": True,
        "url": "https://fake-workspace.slack.com/",
        "team": "Fake Workspace",
        "user": "genesys-sync",
        "team_id": "T0FAKE",
        "user_id": "UBOT",
        "bot_id": "BFAKE",
        "is_enterprise_install": False,
    }
    assert slack.requests == [RecordedCall("auth.test", {}, TOKEN, 200)]
    assert set(response.headers["X-OAuth-Scopes"].split(",")) == DEFAULT_SCOPES


@pytest.mark.parametrize(
    ("token", "error"),
    [(None, "not_authed"), ("xoxb-someone-else", "invalid_auth")],
)
def test_a_missing_or_wrong_token_is_refused(slack: FakeSlack, token: str | None, error: str) -> None:
    """No token is not_authed and an unknown one invalid_auth, both as HTTP 200 with ok false."""
    with pytest.raises(SlackApiError) as excinfo:
        WebClient(token=token, base_url=slack.api_url).auth_test()
    assert excinfo.value.response.status_code == 200
    assert api_error(excinfo) == {"ok": False, "error": error}


def test_revoke_token_turns_every_call_into_invalid_auth(slack: FakeSlack, client: WebClient) -> None:
    """After revoke_token the same bot token is invalid_auth."""
    client.auth_test()
    slack.revoke_token()
    with pytest.raises(SlackApiError) as excinfo:
        client.auth_test()
    assert api_error(excinfo)["error"] == "invalid_auth"
    assert [c.status for c in slack.calls("auth.test")] == [200, 200]


def test_token_as_form_parameter_authenticates_but_not_in_the_query_string(
    slack: FakeSlack, http: httpx.Client
) -> None:
    """A form-body token works (documented alternative); a query-string token does not."""
    assert http.post("auth.test", data={"token": TOKEN}).json()["ok"] is True
    assert http.get("auth.test", params={"token": TOKEN}).json() == {"ok": False, "error": "not_authed"}
    assert [c.token for c in slack.requests] == [TOKEN, None]
    assert all("token" not in c.params for c in slack.requests)


def test_unknown_method_is_refused_by_name_before_auth(http: httpx.Client) -> None:
    """A method Slack has no name for is HTTP 200 unknown_method with req_method, even without a token."""
    response = http.post("foo.bar")
    assert response.status_code == 200
    assert response.json() == {"ok": False, "error": "unknown_method", "req_method": "foo.bar"}


@pytest.mark.parametrize(
    ("body", "content_type", "error"),
    [
        (b"{not json", "application/json", "invalid_json"),
        (b"[1, 2]", "application/json", "json_not_object"),
        (b"user=U001", "text/csv", "invalid_post_type"),
    ],
)
def test_malformed_bodies_get_slack_error_codes(http: httpx.Client, body: bytes, content_type: str, error: str) -> None:
    """Broken or unsupported bodies are refused with Slack's body error codes."""
    response = http.post(
        "users.info", content=body, headers={"Content-Type": content_type, "Authorization": f"Bearer {TOKEN}"}
    )
    assert response.json() == {"ok": False, "error": error}


# -- users.info and scopes ---------------------------------------------------------------------------


@pytest.mark.parametrize(("has_email_scope", "email_shown"), [(True, True), (False, False)])
def test_users_info_shows_email_only_with_users_read_email(
    slack: FakeSlack, client: WebClient, has_email_scope: bool, email_shown: bool
) -> None:
    """profile.email is present in users.info only when the token has users:read.email."""
    slack.add_user("U001", name="ada", real_name="Ada Lovelace", email="ada@ex.com", title="Analyst")
    if not has_email_scope:
        slack.scopes.discard("users:read.email")
    user = client.users_info(user="U001")["user"]
    assert ("email" in user["profile"]) is email_shown
    assert user["profile"]["title"] == "Analyst"
    assert user["real_name"] == "Ada Lovelace"
    assert "fields" not in user["profile"]  # custom fields are reported absent from users.info
    assert "locale" not in user


def test_users_info_keys_match_the_user_change_fixture(slack: FakeSlack, client: WebClient) -> None:
    """The user object has the keys of Slack's user_change example (plus email), locale on request."""
    slack.add_user("U001", name="ada", email="ada@ex.com")
    expected = slack_fixture("user_change.slack-docs-example.event.json")["user"]
    user = client.users_info(user="U001", include_locale=True)["user"]
    assert set(user) == set(expected)
    assert set(user["profile"]) == (set(expected["profile"]) - {"fields"}) | {"email"}
    assert set(slack.user("U001")["profile"]) == set(expected["profile"]) | {"email"}


def test_users_info_without_users_read_is_missing_scope(slack: FakeSlack, client: WebClient) -> None:
    """missing_scope names the needed scope and the granted ones."""
    slack.scopes.discard("users:read")
    with pytest.raises(SlackApiError) as excinfo:
        client.users_info(user="U001")
    assert api_error(excinfo) == {
        "ok": False,
        "error": "missing_scope",
        "needed": "users:read",
        "provided": "commands,users.profile:read,users:read.email",
    }


@pytest.mark.parametrize(
    ("args", "error"),
    [({"user": "UNOBODY"}, "user_not_found"), ({}, "invalid_arguments")],
)
def test_users_info_errors(slack: FakeSlack, http: httpx.Client, args: dict[str, str], error: str) -> None:
    """An unknown user is user_not_found; no user at all is invalid_arguments."""
    body = http.post("users.info", data=args, headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert body["ok"] is False
    assert body["error"] == error


@pytest.mark.parametrize("how", ["form", "json", "query"])
def test_arguments_arrive_as_form_json_or_query(slack: FakeSlack, http: httpx.Client, how: str) -> None:
    """users.info reads `user` from a form body, a JSON body or the query string alike."""
    slack.add_user("U001", name="ada")
    headers = {"Authorization": f"Bearer {TOKEN}"}
    if how == "form":
        response = http.post("users.info", data={"user": "U001"}, headers=headers)
    elif how == "json":
        response = http.post("users.info", json={"user": "U001"}, headers=headers)
    else:
        response = http.get("users.info", params={"user": "U001"}, headers=headers)
    assert response.json()["user"]["id"] == "U001"
    assert slack.requests[-1].params == {"user": "U001"}


# -- profiles ----------------------------------------------------------------------------------------


def test_users_profile_get_returns_custom_fields_keyed_by_id(slack: FakeSlack, client: WebClient) -> None:
    """users.profile.get carries fields {id: {value, alt}} and email, like Slack's example."""
    slack.add_user("U001", name="ada", email="ada@ex.com", fields={"Xf01": {"value": "Dublin", "alt": ""}})
    slack.set_custom_field("U001", "Xf02", "https://ex.com", alt="Home page")
    profile = client.users_profile_get(user="U001")["profile"]
    assert profile["fields"] == {
        "Xf01": {"value": "Dublin", "alt": ""},
        "Xf02": {"value": "https://ex.com", "alt": "Home page"},
    }
    assert profile["email"] == "ada@ex.com"
    example = slack_fixture("users.profile.get.slack-docs-example.response.json")["profile"]
    assert {"title", "real_name", "display_name", "fields", "status_text", "email"} <= set(profile) & set(example)


def test_users_profile_get_labels_and_empty_fields(slack: FakeSlack, client: WebClient) -> None:
    """include_labels adds each field's label; a user without values gets the empty_fields shape."""
    slack.define_field("Xf01", "Office")
    slack.add_user("U001", name="ada", fields={"Xf01": {"value": "Dublin", "alt": ""}})
    slack.add_user("U002", name="bob")
    labelled = client.users_profile_get(user="U001", include_labels=True)["profile"]["fields"]
    assert labelled == {"Xf01": {"value": "Dublin", "alt": "", "label": "Office"}}
    assert client.users_profile_get(user="U002")["profile"]["fields"] == {}
    slack.empty_fields = None
    assert client.users_profile_get(user="U002")["profile"]["fields"] is None


def test_custom_field_edits_leave_updated_alone_but_profile_updates_bump_it(slack: FakeSlack) -> None:
    """set_custom_field is silent (no `updated` change); update_profile always moves `updated` forward."""
    before = slack.add_user("U001", name="ada")["updated"]
    slack.set_custom_field("U001", "Xf01", "Dublin")
    assert slack.user("U001")["updated"] == before
    first = slack.update_profile("U001", title="Lead", real_name="Ada King")
    second = slack.update_profile("U001", status_text="On a call", deleted=True)
    assert before < first["updated"] < second["updated"]
    assert second["profile"]["title"] == "Lead"
    assert second["real_name"] == second["profile"]["real_name"] == "Ada King"
    assert second["deleted"] is True
    assert second["profile"]["fields"] == {"Xf01": {"value": "Dublin", "alt": ""}}
    slack.set_custom_field("U001", "Xf01", "")
    assert slack.user("U001")["profile"]["fields"] == {}


@pytest.mark.parametrize(
    ("visibility", "expected_ids"),
    [(None, ["Xf01", "Xf02", "Xf03"]), ("visible", ["Xf01", "Xf03"]), ("hidden", ["Xf02"])],
)
def test_team_profile_get_lists_definitions_by_visibility(
    slack: FakeSlack, client: WebClient, visibility: str | None, expected_ids: list[str]
) -> None:
    """team.profile.get lists field definitions in `ordering` order, filtered by visibility."""
    slack.define_field("Xf03", "Start date", ordering=2, type="date")
    slack.define_field("Xf01", "Office", ordering=0)
    slack.define_field("Xf02", "Cost centre", ordering=1, is_hidden=True)
    profile = client.team_profile_get(visibility=visibility)["profile"]
    assert [f["id"] for f in profile["fields"]] == expected_ids
    assert profile["sections"] == []
    example = slack_fixture("team.profile.get.slack-docs-example.response.json")["profile"]["fields"][0]
    assert set(profile["fields"][0]) == set(example)


# -- users.list and lookupByEmail --------------------------------------------------------------------


def test_users_list_paginates_with_next_cursor(slack: FakeSlack, client: WebClient) -> None:
    """The SDK's `for page in users_list(limit=2)` walks every member via response_metadata.next_cursor."""
    ids = add_people(slack, 5)
    pages = [[m["id"] for m in page["members"]] for page in client.users_list(limit=2)]
    assert pages == [ids[0:2], ids[2:4], ids[4:5]]
    cursors = [c.params.get("cursor") for c in slack.calls("users.list")]
    assert cursors[0] is None
    assert base64.b64decode(cursors[1]).decode() == "user:U003"
    assert slack.calls("users.list")[-1].params["limit"] == "2"


def test_users_list_without_limit_returns_everyone_including_bots_and_deactivated(
    slack: FakeSlack, client: WebClient
) -> None:
    """No limit means the whole set in one page, bots and deactivated members included."""
    add_people(slack, 3)
    slack.add_user("UBOT", name="genesys-sync", is_bot=True)
    slack.add_user("U999", name="gone", deleted=True)
    response = client.users_list()
    assert len(response["members"]) == 5
    assert response["response_metadata"] == {"next_cursor": ""}
    assert isinstance(response["cache_ts"], int)


def test_users_list_refuses_a_cursor_it_did_not_issue(slack: FakeSlack, client: WebClient) -> None:
    """A garbage cursor is invalid_cursor."""
    with pytest.raises(SlackApiError) as excinfo:
        client.users_list(limit=2, cursor="not-a-cursor")
    assert api_error(excinfo)["error"] == "invalid_cursor"


def test_lookup_by_email_finds_active_members_case_insensitively(slack: FakeSlack, client: WebClient) -> None:
    """users.lookupByEmail matches the address case-insensitively."""
    slack.add_user("U001", name="ada", email="Ada@Ex.com")
    assert client.users_lookupByEmail(email="ada@ex.com")["user"]["id"] == "U001"


@pytest.mark.parametrize("deleted", [False, True])
def test_lookup_by_email_misses_are_users_not_found(slack: FakeSlack, client: WebClient, deleted: bool) -> None:
    """An unknown address, or a deactivated member's, raises SlackApiError users_not_found."""
    if deleted:
        slack.add_user("U001", name="ada", email="ada@ex.com", deleted=True)
    with pytest.raises(SlackApiError) as excinfo:
        client.users_lookupByEmail(email="ada@ex.com")
    assert api_error(excinfo) == {"ok": False, "error": "users_not_found"}


# -- rate limits and faults --------------------------------------------------------------------------


def test_rate_limit_answers_429_with_retry_after_until_the_window_resets(
    slack: FakeSlack, client: WebClient, clock: FakeClock
) -> None:
    """Over per_minute: 429 ratelimited with Retry-After = seconds left; without a handler SlackApiError."""
    slack.add_user("U001", name="ada")
    slack.rate_limit("users.info", per_minute=2)
    client.users_info(user="U001")
    clock.advance(15.2)
    client.users_info(user="U001")
    with pytest.raises(SlackApiError) as excinfo:
        client.users_info(user="U001")
    assert excinfo.value.response.status_code == 429
    assert excinfo.value.response.headers["Retry-After"] == "45"
    assert api_error(excinfo) == {"ok": False, "error": "ratelimited"}
    assert client.auth_test()["ok"] is True  # limits are per method
    clock.advance(45)
    assert client.users_info(user="U001")["ok"] is True
    assert [c.status for c in slack.calls("users.info")] == [200, 200, 429, 200]


def test_rate_limit_handler_retries_after_retry_after(slack: FakeSlack, client: WebClient) -> None:
    """With RateLimitErrorRetryHandler(max_retry_count=1) a 429 with Retry-After: 1 is retried and succeeds."""
    slack.add_user("U001", name="ada")
    slack.fail_next("users.info", 429, retry_after=1)
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=1))
    started = time.monotonic()
    assert client.users_info(user="U001")["user"]["id"] == "U001"
    assert time.monotonic() - started >= 1.0
    assert [c.status for c in slack.calls("users.info")] == [429, 200]


@pytest.mark.parametrize(
    ("status", "error", "retry_after"),
    [(500, "internal_error", None), (503, "service_unavailable", "7"), (200, "internal_error", None)],
)
def test_fail_next_answers_the_injected_status_once(
    slack: FakeSlack, client: WebClient, status: int, error: str, retry_after: str | None
) -> None:
    """fail_next answers its status with a Slack error code, then the method works again."""
    slack.fail_next("*", status, retry_after=7)
    with pytest.raises(SlackApiError) as excinfo:
        client.auth_test()
    assert excinfo.value.response.status_code == status
    assert api_error(excinfo) == {"ok": False, "error": error}
    assert excinfo.value.response.headers.get("Retry-After") == retry_after
    assert client.auth_test()["ok"] is True


@pytest.mark.parametrize(("cut", "method"), [("users.profile.get", "users.profile.get"), ("*", "users.info")])
def test_cut_next_cuts_the_answer_off_mid_body_once(slack: FakeSlack, client: WebClient, cut: str,
                                                    method: str) -> None:
    """cut_next sends a Content-Length for the whole answer, half the body, then closes: IncompleteRead, once."""
    slack.add_user("U001", name="ada")
    slack.cut_next(cut)
    call = getattr(client, method.replace(".", "_"))
    with pytest.raises(IncompleteRead):
        call(user="U001")
    assert call(user="U001")["ok"] is True
    assert [c.status for c in slack.calls(method)] == [200, 200]


# -- response_url ------------------------------------------------------------------------------------


def test_response_url_records_posts_and_refuses_the_sixth(slack: FakeSlack) -> None:
    """A response_url takes five JSON posts (recorded in order) and answers 404 after that."""
    url = slack.response_url("preview")
    webhook = WebhookClient(url)
    for n in range(RESPONSE_URL_MAX_POSTS):
        response = webhook.send(text=f"reply {n}", response_type="ephemeral")
        assert (response.status_code, response.body) == (200, "ok")
    assert webhook.send(text="one too many").status_code == 404
    assert [b["text"] for b in slack.responses_to(url)] == [f"reply {n}" for n in range(5)]
    assert slack.responses_to("preview") == slack.responses_to(url)
    assert slack.responses[0].label == "preview"
    assert slack.responses[0].body == {"text": "reply 0", "response_type": "ephemeral"}
    assert [r.body["text"] for r in slack.rejected_responses] == ["one too many"]


@pytest.mark.parametrize(
    ("case", "status", "text"),
    [("unknown", 404, "no_service"), ("expired", 404, "expired_url"), ("not_json", 400, "invalid_payload")],
)
def test_response_url_refusals(slack: FakeSlack, clock: FakeClock, case: str, status: int, text: str) -> None:
    """Never-issued URLs, URLs older than 30 minutes and non-JSON bodies are refused."""
    url = slack.response_url()
    content = b'{"text": "hi"}'
    if case == "unknown":
        url = slack.base_url + "/commands/T0FAKE/99/nope"
    elif case == "expired":
        clock.advance(RESPONSE_URL_LIFETIME_S)
    else:
        content = b"text=hi"
    response = httpx.post(url, content=content, headers={"Content-Type": "application/json"})
    assert (response.status_code, response.text) == (status, text)
    assert slack.responses == []


# -- signing and payload helpers ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["event", "command"])
def test_signed_headers_pass_slack_sdk_signature_verifier(kind: str) -> None:
    """signed_headers produces what SignatureVerifier accepts, and a changed body fails it."""
    if kind == "event":
        body = json.dumps(event_envelope({"type": "user_change", "user": {"id": "U001"}})).encode()
    else:
        body = slash_command_body("@ada", user_id="U001", response_url="http://127.0.0.1:1/commands/x")
    headers = signed_headers(SECRET, body)
    verifier = SignatureVerifier(SECRET)
    assert verifier.is_valid_request(body, headers)
    assert not verifier.is_valid_request(body + b" ", headers)
    assert not SignatureVerifier("other-secret").is_valid_request(body, headers)
    expected_type = "application/json" if kind == "event" else "application/x-www-form-urlencoded"
    assert headers["Content-Type"] == expected_type


def test_signed_headers_keep_a_given_timestamp() -> None:
    """An explicit timestamp is signed as given, so stale-request tests can be built."""
    stale = int(time.time()) - 301
    headers = signed_headers(SECRET, b"{}", timestamp=stale)
    assert headers["X-Slack-Request-Timestamp"] == str(stale)
    assert not SignatureVerifier(SECRET).is_valid_request(b"{}", headers)


def test_event_envelope_has_the_docs_example_keys() -> None:
    """event_envelope builds the event_callback shape of Slack's user_profile_changed example."""
    example = slack_fixture("user_profile_changed.docs-slack-dev-example.envelope.json")
    envelope = event_envelope(example["event"], event_id="Ev1", event_time=1734567890)
    assert list(envelope) == list(example)
    assert envelope["type"] == "event_callback"
    assert (envelope["team_id"], envelope["api_app_id"], envelope["event_id"]) == ("T0FAKE", "AFAKE", "Ev1")
    assert event_envelope({})["event_id"] != event_envelope({})["event_id"]


def test_slash_command_body_is_form_encoded_with_slack_fields(slack: FakeSlack) -> None:
    """slash_command_body carries the documented fields, text untouched."""
    url = slack.response_url()
    body = slash_command_body("<@U001|ada> now", user_id="U002", response_url=url)
    fields = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
    assert fields["text"] == "<@U001|ada> now"
    assert fields["command"] == "/genesys-sync"
    assert fields["response_url"] == url
    assert {"token", "team_id", "team_domain", "channel_id", "channel_name", "user_id", "user_name",
            "api_app_id", "is_enterprise_install", "trigger_id"} <= set(fields)  # fmt: skip


# -- lifecycle ---------------------------------------------------------------------------------------


def test_stop_is_prompt_idempotent_and_closes_the_port() -> None:
    """stop() returns quickly, can be called twice, and nothing listens afterwards."""
    fake = FakeSlack().start()
    port = int(fake.base_url.rsplit(":", 1)[1])
    assert WebClient(token=TOKEN, base_url=fake.api_url).auth_test()["ok"] is True
    started = time.monotonic()
    fake.stop()
    fake.stop()
    assert time.monotonic() - started < 0.5
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        pass
    with pytest.raises(RuntimeError):
        fake.start()


def test_stop_does_not_wait_for_injected_latency() -> None:
    """A request sleeping in set_latency does not hold stop() up."""
    fake = FakeSlack().start()
    fake.set_latency(30)
    with httpx.Client(base_url=fake.api_url, timeout=5.0) as raw:
        started = time.monotonic()
        caller = threading.Thread(target=lambda: _swallow(raw.post, "auth.test"), daemon=True)
        caller.start()
        time.sleep(0.05)
        fake.stop()
        caller.join(timeout=2)
    assert time.monotonic() - started < 1.5
    assert not caller.is_alive()


def _swallow(call: Any, *args: Any) -> None:
    try:
        call(*args)
    except httpx.HTTPError:
        return  # the stopped server hangs up: that is the point


# -- views.publish (the App Home) --------------------------------------------------------------------


def test_views_publish_records_the_view_with_a_stable_id_and_new_hash(slack: FakeSlack, client: WebClient) -> None:
    """A published Home view is answered with an id kept per person and a hash, and kept for tests to read."""
    slack.add_user("U0ADA", name="ada")
    view = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]}
    first = client.views_publish(user_id="U0ADA", view=view)["view"]
    second = client.views_publish(user_id="U0ADA", view=view, hash=first["hash"])["view"]
    assert first["id"] == second["id"]
    assert first["hash"] != second["hash"]
    assert slack.home_view("U0ADA") == second
    assert len(slack.published_views["U0ADA"]) == 2
    assert slack.home_view("U0NOBODY") is None


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


@pytest.mark.parametrize(("arguments", "error", "message"), [
    ({"view": {"type": "home", "blocks": []}}, "invalid_arguments", "missing required field: user_id"),
    ({"user_id": "U0ADA"}, "invalid_arguments", "missing required field: view"),
    ({"user_id": "U0ADA", "view": {"type": "modal", "blocks": []}}, "invalid_arguments", "must be home"),
    ({"user_id": "U0ADA", "view": {"type": "home", "blocks": [_section("x")] * 101}}, "invalid_arguments",
     "no more than 100 items allowed"),
    ({"user_id": "U0ADA", "view": {"type": "home", "blocks": [_section("x" * 3001)]}}, "invalid_arguments",
     "must be less than 3001 characters"),
    ({"user_id": "U0ADA", "view": {"type": "home", "blocks": [{"type": "actions", "elements": [
        {"type": "checkboxes", "action_id": "a",
         "options": [{"text": {"type": "plain_text", "text": str(n)}, "value": str(n)} for n in range(11)]}]}]}},
     "invalid_arguments", "must have 1 to 10 options"),
    ({"user_id": "U0NOBODY", "view": {"type": "home", "blocks": []}}, "user_not_found", None),
    ({"user_id": "U0ADA", "view": {"type": "home", "blocks": []}, "hash": "stale"}, "hash_conflict", None),
])
def test_views_publish_refuses_what_slack_refuses(slack: FakeSlack, client: WebClient, arguments: dict[str, Any],
                                                  error: str, message: str | None) -> None:
    """Missing arguments, a view that is not a Home view or breaks Block Kit's bounds, an unknown user and a stale
    hash are refused as Slack refuses them, and nothing is recorded."""
    slack.add_user("U0ADA", name="ada")
    with pytest.raises(SlackApiError) as excinfo:
        client.api_call("views.publish", json=arguments)
    answer = api_error(excinfo)
    assert answer["error"] == error
    if message is not None:
        assert message in answer["response_metadata"]["messages"][0]
    assert slack.published_views.get("U0ADA", []) == []


def test_views_publish_needs_a_token(http: httpx.Client) -> None:
    """Without a token views.publish is not_authed, like every method."""
    answer = http.post("views.publish", data={"user_id": "U0ADA", "view": "{}"}).json()
    assert answer == {"ok": False, "error": "not_authed"}
