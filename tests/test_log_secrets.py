"""At LOG_LEVEL=DEBUG the log shows requests and timings, never a secret or a person's contact details.

The app runs as a real process in OAuth mode against the local Slack and Genesys Cloud: a workspace is installed
(oauth.v2.access answers with the bot token), its member's profile, with an e-mail address and a phone number, is
read and synced to a live call, and the member runs /genesys-sync. Then the whole log is searched.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from config import LIBRARY_LOG_FLOORS, LibraryFloors, LogRedaction, SlackRequestSummary, configure_logging
from localdev.app_process import SIGNING_SECRET as FAKES_SIGNING_SECRET
from localdev.app_process import Running, begin_install, finish_install, launch, launch_socket_mode, wait_for
from localdev.genesys_cloud import FakeGenesysCloud
from localdev.slack_api import FakeSlack, event_envelope, signed_headers, slash_command_body
from localdev.slack_workspaces import FakeSlackWorkspaces
from localdev.socket_mode import APP_TOKEN, SocketModeSlack

BOT_TOKEN = "xoxb-7313-bot-token-of-globex"
SIGNING_SECRET = "signing-secret-5e1f0c"
SLACK_CLIENT_SECRET = "slack-client-secret-9a7d"
GENESYS_CLIENT_SECRET = "genesys-client-secret-44b2"
EMAIL = "gina.private@globex.example"
PHONE = "+353 1 555 0199"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Running]:
    with (FakeSlack(team_id="TGLOBEX", bot_token=BOT_TOKEN, team_name="Globex") as globex,
          FakeSlackWorkspaces(globex, client_secret=SLACK_CLIENT_SECRET) as slack,
          FakeGenesysCloud(client_secret=GENESYS_CLIENT_SECRET) as genesys):
        running = launch(globex, genesys, tmp_path, env_changes={
            "LOG_LEVEL": "DEBUG", "SLACK_BOT_TOKEN": None, "SLACK_CLIENT_ID": slack.client_id,
            "SLACK_CLIENT_SECRET": SLACK_CLIENT_SECRET, "SLACK_API_URL": slack.api_url,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET, "GENESYS_CLIENT_SECRET": GENESYS_CLIENT_SECRET,
            "SLACK_ALLOWED_TEAMS": "TGLOBEX",
        })
        running.workspaces = slack  # type: ignore[attr-defined]
        try:
            yield running
        finally:
            running.process.terminate()
            running.process.wait(timeout=10)


def post_signed(app: Running, body: bytes, content_type: str) -> httpx.Response:
    headers = signed_headers(SIGNING_SECRET, body, content_type=content_type)
    return httpx.post(f"{app.url}/slack/events", content=body, headers=headers, timeout=10)


def test_debug_log_holds_no_secret_and_no_contact_details(app: Running) -> None:
    """After an install, a sync of a profile with e-mail and phone, an event and a slash command at DEBUG, the
    log names none of the secrets, the Genesys access token, the e-mail address or the phone number."""
    workspaces: FakeSlackWorkspaces = app.workspaces  # type: ignore[attr-defined]
    app.slack.add_user("UGINA", name="gina", real_name="Gina Globex", email=EMAIL, title="Supervisor", phone=PHONE)
    participant = app.genesys.start_conversation(app.genesys.add_user(EMAIL, name="Gina Globex"), media_type="voice")
    cookie, query = begin_install(app)
    installed = finish_install(app, workspaces.authorize(app.slack), query["state"][0], cookie)
    assert installed.status_code == 200, installed.text
    written = lambda: app.genesys.attributes(participant.conversation_id, participant.participant_id)  # noqa: E731
    wait_for(lambda: written().get("slack.title") == "Supervisor", 15, "the installed workspace's member synced")

    changed = app.slack.update_profile("UGINA", title="Director")
    event = json.dumps(event_envelope({"type": "user_change", "user": changed}, team_id="TGLOBEX")).encode()
    assert post_signed(app, event, "application/json").status_code == 200
    wait_for(lambda: written().get("slack.title") == "Director", 10, "the change synced")
    assert app.slack.call_count("users.profile.get") >= 1

    url = app.slack.response_url("sync")
    command = slash_command_body("", user_id="UGINA", team_id="TGLOBEX", response_url=url)
    assert post_signed(app, command, "application/x-www-form-urlencoded").status_code == 200
    wait_for(lambda: bool(app.slack.responses_to(url)), 10, "the slash command's answer")

    log = app.log()
    assert "DEBUG" in log  # the level took effect, so libraries had their chance to log
    genesys_tokens = {request.token for request in app.genesys.requests if request.token}
    assert genesys_tokens
    secrets = {"bot token": BOT_TOKEN, "signing secret": SIGNING_SECRET, "Slack client secret": SLACK_CLIENT_SECRET,
               "Genesys client secret": GENESYS_CLIENT_SECRET, "e-mail": EMAIL, "phone": PHONE,
               **{f"Genesys access token {n}": token for n, token in enumerate(sorted(genesys_tokens))}}
    leaked = {what: _line_with(log, value) for what, value in secrets.items() if value in log}
    assert not leaked, f"found in the DEBUG log: {json.dumps(leaked, indent=1)}"
    # What DEBUG is for is still there: each Slack request and how long it took.
    assert "Slack API request: " + workspaces.api_url + "users.profile.get" in log
    assert " ms" in _line_with(log, "Slack API answered 200 in ")


def test_socket_mode_debug_log_holds_no_token_and_no_contact_details(tmp_path: Path) -> None:
    """In Socket Mode at DEBUG, a pushed user_change (whole profile with e-mail and phone) and the sync it causes
    leave neither token, the signing secret, the e-mail nor the phone number in the log."""
    with SocketModeSlack() as slack, FakeGenesysCloud() as genesys:
        app = launch_socket_mode(slack, genesys, tmp_path, {"LOG_LEVEL": "DEBUG"})
        try:
            user = slack.add_user("UGINA", name="gina", email=EMAIL, title="Supervisor", phone=PHONE)
            participant = genesys.start_conversation(genesys.add_user(EMAIL), media_type="voice")
            slack.socket_mode.wait_for_ack(slack.socket_mode.push_event(
                event_envelope({"type": "user_change", "user": user})), timeout=3)
            wait_for(lambda: genesys.attributes(participant.conversation_id,
                                                participant.participant_id).get("slack.title")
                     == "Supervisor", 10, "the change written")
        finally:
            app.process.terminate()
            app.process.wait(timeout=10)
    log = app.log()
    assert "DEBUG" in log
    secrets = {"app token": APP_TOKEN, "bot token": "xoxb-fake-bot-token", "signing secret": FAKES_SIGNING_SECRET,
               "e-mail": EMAIL, "phone": PHONE}
    leaked = {what: _line_with(log, value) for what, value in secrets.items() if value in log}
    assert not leaked, f"found in the DEBUG log: {json.dumps(leaked, indent=1)}"


def _line_with(log: str, value: str) -> str:
    """The first log line holding `value`, cut to a readable length, for the failure message."""
    line = next(line for line in log.splitlines() if value in line)
    return line[:300]


def record(message: str, *args: object, name: str = "app", level: int = logging.INFO,
           exc_info: BaseException | None = None) -> logging.LogRecord:
    info = (type(exc_info), exc_info, exc_info.__traceback__) if exc_info is not None else None
    return logging.LogRecord(name, level, __file__, 1, message, args, info)


@pytest.mark.parametrize(("message", "args", "shown"), [
    ("bot token %s", ("xoxb-1234-5678-abcdef",), "bot token xoxb-***"),
    ("app token xapp-1-A0-42-ff", (), "app token xapp-***"),
    ("no Genesys user for %s", ("gina.private@globex.example",), "no Genesys user for ***@***"),
    ("profile {'email': 'a@b.example', 'phone': '+353 1 555 0199', 'title': 'Agent'}", (),
     "profile {'email': ***, 'phone': ***, 'title': 'Agent'}"),
    ('body: {"ok": true, "access_token": "xoxe-abc", "scope": "commands"}', (),
     'body: {"ok": true, "access_token": ***, "scope": "commands"}'),
    ("form client_secret=s3cr3t&code=1", (), "form client_secret=***&code=1"),
    ("signing secret is %s", ("known-secret-value",), "signing secret is ***"),
    ("postgresql://sync@db.internal:5432/sync is down", (), "postgresql://sync@db.internal:5432/sync is down"),
    ("took 12 ms, 3 keys", (), "took 12 ms, 3 keys"),
    ("PUT http://g.example/api/v2/notifications/channels/streaming-0-fmtdmf8cdis7jh14/subscriptions", (),
     "PUT http://g.example/api/v2/notifications/channels/streaming-0-fmtdmf8c…/subscriptions"),
    ("> GET /channels/0b0b0b0b-0000-4000-8000-000000000b0b HTTP/1.1", (), "> GET /channels/0b0b0b0b… HTTP/1.1"),
])
def test_redaction_hides_secrets_and_contact_details(message: str, args: tuple[object, ...], shown: str) -> None:
    """Tokens, known secrets, e-mail addresses and secret or personal fields become ***; the rest stays."""
    line = record(message, *args)
    assert LogRedaction(["known-secret-value", "short"]).filter(line)
    assert line.getMessage() == shown


def test_redaction_covers_tracebacks() -> None:
    """An exception's text (a Slack error quoting the response) is redacted too."""
    try:
        raise RuntimeError("The server responded with: {'ok': False, 'email': 'x@y.example'}")
    except RuntimeError as error:
        line = record("failed", exc_info=error)
    LogRedaction().filter(line)
    assert "x@y.example" not in logging.Formatter().format(line)
    assert "'email': ***" in (line.exc_text or "")


@pytest.mark.parametrize(("name", "level", "kept"), [
    ("slack_bolt.App", logging.DEBUG, False),
    ("slack_bolt.App", logging.INFO, False),
    ("slack_bolt.App", logging.WARNING, True),
    ("slack_sdk.socket_mode.builtin.client", logging.DEBUG, False),
    ("slack_sdk.socket_mode.builtin.client", logging.INFO, True),
    ("slack_sdk.web.base_client", logging.DEBUG, True),
    ("httpcore.connection", logging.DEBUG, False),
    ("psycopg", logging.DEBUG, False),
    ("waitress.queue", logging.WARNING, False),
    ("sync.engine", logging.DEBUG, True),
    ("slack_bolt_like_app", logging.DEBUG, True),
])
def test_library_floors_drop_lines_below_them(name: str, level: int, kept: bool) -> None:
    """Each library's lines below its floor are dropped whatever its logger's own level; the app's are kept."""
    assert LibraryFloors(LIBRARY_LOG_FLOORS).filter(record("line", name=name, level=level)) is kept


def test_slack_requests_become_one_line_each_with_the_time_taken() -> None:
    """slack_sdk's request and answer lines, bodies and all, become a request line and an answer with its time."""
    summary = SlackRequestSummary()
    sent = record("Sending a request - url: https://slack.com/api/oauth.v2.access, query_params: {}, "
                  "body_params: {'code': 'c', 'client_secret': 's'}, files: {}, json_body: None, headers: {}",
                  name="slack_sdk.web.base_client", level=logging.DEBUG)
    answer = record("Received the following response - status: 200, headers: {}, body: "
                    '{"ok": true, "access_token": "xoxb-1"}', name="slack_sdk.web.base_client", level=logging.DEBUG)
    other = record("anything else", name="slack_sdk.web.base_client", level=logging.DEBUG)
    assert summary.filter(sent)
    assert summary.filter(answer)
    assert sent.getMessage() == "Slack API request: https://slack.com/api/oauth.v2.access"
    assert answer.getMessage().startswith("Slack API answered 200 in ")
    assert not summary.filter(other)


@pytest.mark.parametrize("level", ["DEBUG", "INFO", "WARNING"])
def test_library_loggers_are_clamped(level: str) -> None:
    """configure_logging sets each library's level to its floor or LOG_LEVEL, whichever is higher."""
    configure_logging(level)
    for name, floor in LIBRARY_LOG_FLOORS.items():
        assert logging.getLogger(name).level == max(floor, logging.getLevelName(level)), name
