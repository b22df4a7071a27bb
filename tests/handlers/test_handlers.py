"""Bolt listeners called directly: parsing, ignoring, answering."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pytest

from genesys import GenesysUnavailable
from handlers.commands import Request, acknowledgement, parse, run
from handlers.errors import answer_failure
from handlers.events import record_user_event
from slack_directory import SlackDirectoryError
from store import StoreError


class RecordingEngine:
    """Stands in for the sync engine: records what the listeners hand it."""

    def __init__(self, *, new: bool = True, fail: Exception | None = None) -> None:
        self.changed: list[tuple[str, str, str | None]] = []
        self.calls: list[tuple[str, str, str]] = []
        self._new, self._fail = new, fail

    def user_changed(self, team_id: str, user: Mapping[str, Any], event_id: str | None) -> bool:
        self.changed.append((team_id, user["id"], event_id))
        return self._new

    def _call(self, action: str, team_id: str, user_id: str) -> str:
        self.calls.append((action, team_id, user_id))
        if self._fail is not None:
            raise self._fail
        return f"{action} result"

    def sync_now(self, team_id: str, user_id: str) -> str:
        return self._call("sync", team_id, user_id)

    def preview(self, team_id: str, user_id: str) -> str:
        return self._call("preview", team_id, user_id)

    def status(self, team_id: str, user_id: str) -> str:
        return self._call("status", team_id, user_id)

    def resync_all(self, team_id: str, progress: Any) -> str:
        progress("halfway")
        return self._call("all", team_id, "*")


class EchoRenderer:
    def sync_report(self, report: Any, *, whose: str) -> str:
        return f"{whose}: {report}"

    def preview(self, desired: Any, *, whose: str) -> str:
        return f"{whose}: {desired}"

    def status(self, status: Any, *, whose: str, full: bool) -> str:
        return f"{whose}: {status}" + ("" if full else " (limited)")

    def resync_progress(self, progress: Any) -> str:
        return str(progress)

    def resync_summary(self, summary: Any) -> str:
        return str(summary)


@pytest.mark.parametrize(
    ("text", "request_"),
    [
        ("", Request("sync")),
        ("   ", Request("sync")),
        ("help", Request("help")),
        ("HELP", Request("help")),
        ("preview", Request("preview")),
        ("preview <@U012AB|ada>", Request("preview", "U012AB")),
        ("status <@W0AB>", Request("status", "W0AB")),
        ("<@U012AB|ada>", Request("sync", "U012AB")),
        ("<@U012AB>", Request("sync", "U012AB")),
        ("all", Request("all")),
        ("all now", Request("usage")),
        ("preview @ada", Request("usage")),
        ("sync me please", Request("usage")),
        ("<@U1> <@U2>", Request("usage")),
    ],
)
def test_parse(text: str, request_: Request) -> None:
    """Command text becomes one request; anything unrecognised becomes usage."""
    assert parse(text) == request_


def test_every_request_has_an_acknowledgement() -> None:
    """Each action has its immediate answer; help and usage carry the usage text."""
    for action in ("sync", "preview", "status", "all", "help", "usage"):
        assert acknowledgement(Request(action))
    assert "/genesys-sync preview" in acknowledgement(Request("usage"))


def command(text: str, user_id: str = "U0ME") -> dict[str, str]:
    return {"text": text, "user_id": user_id, "team_id": "T1"}


@pytest.mark.parametrize(
    ("text", "expected_call", "answer"),
    [
        ("", ("sync", "T1", "U0ME"), "your: sync result"),
        ("preview", ("preview", "T1", "U0ME"), "your: preview result"),
        ("preview <@U0OTHER>", ("preview", "T1", "U0OTHER"), "<@U0OTHER>'s: preview result"),
        ("status", ("status", "T1", "U0ME"), "your: status result"),
        ("status <@U0OTHER>", ("status", "T1", "U0OTHER"), "<@U0OTHER>'s: status result (limited)"),
    ],
)
def test_run_does_what_was_asked_and_answers_ephemerally(text: str, expected_call: tuple[str, str, str],
                                                         answer: str) -> None:
    """Each form reaches the engine once and the answer is ephemeral."""
    engine, responses = RecordingEngine(), []
    result = run(engine, EchoRenderer(), command(text), lambda **kw: responses.append(kw), is_admin=lambda _: False)
    assert engine.calls == [expected_call]
    assert result == answer
    assert responses == [{"text": answer, "response_type": "ephemeral"}]


@pytest.mark.parametrize("text", ["<@U0OTHER>", "all"])
def test_admin_forms_are_refused_for_others(text: str) -> None:
    """Syncing someone else or everyone needs an admin; nothing reaches the engine otherwise."""
    engine, responses = RecordingEngine(), []
    run(engine, EchoRenderer(), command(text), lambda **kw: responses.append(kw), is_admin=lambda _: False)
    assert engine.calls == []
    assert "Only workspace admins" in responses[0]["text"]


def test_admins_may_resync_everyone_with_progress() -> None:
    """An admin's `all` reports progress and a summary."""
    engine, responses = RecordingEngine(), []
    run(engine, EchoRenderer(), command("all"), lambda **kw: responses.append(kw), is_admin=lambda _: True)
    assert [r["text"] for r in responses] == ["halfway", "all result"]


def error_id_in(text: str) -> str:
    match = re.search(r"error id ([0-9a-f]{8})\b", text)
    assert match, f"no error id in {text!r}"
    return match.group(1)


@pytest.mark.parametrize(
    ("text", "is_admin"),
    [
        ("", lambda _: False),
        ("status <@U0OTHER>", lambda _: False),
        ("<@U0OTHER>", lambda _: 1 / 0),  # the admin check itself fails (e.g. a malformed users.info answer)
    ],
)
def test_a_failure_answers_with_an_error_id_and_no_exception_text(text: str, is_admin: Any,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    """An unexpected failure: the person gets a short answer with an error id; its one log line has the same id and
    the cause, with the traceback."""
    engine, responses = RecordingEngine(fail=RuntimeError("Genesys at https://api.internal:8443 is down")), []
    run(engine, EchoRenderer(), command(text), lambda **kw: responses.append(kw), is_admin=is_admin)
    [response] = responses
    assert "Sorry, that failed" in response["text"]
    assert "api.internal" not in response["text"]
    assert "division by zero" not in response["text"]
    error_id = error_id_in(response["text"])
    [record] = [r for r in caplog.records if error_id in r.getMessage()]
    assert record.exc_info is not None
    assert ("Genesys at https://api.internal:8443 is down" in record.getMessage()
            or "division by zero" in record.getMessage())


def test_help_needs_no_engine() -> None:
    """help and usage are answered by the acknowledgement alone."""
    engine, responses = RecordingEngine(), []
    assert run(engine, EchoRenderer(), command("help"), lambda **kw: responses.append(kw), is_admin=bool) == ""
    assert engine.calls == responses == []


@pytest.mark.parametrize(
    ("event", "body", "outcome"),
    [
        ({"type": "user_change", "user": {"id": "U1", "team_id": "T1"}}, {"event_id": "Ev1"}, "recorded"),
        ({"type": "team_join", "user": {"id": "U1"}}, {"event_id": "Ev1", "team_id": "T9"}, "recorded"),
        ({"type": "user_change", "user": {"id": "B1", "is_bot": True}}, {}, "ignored: bot or app user"),
        ({"type": "user_change", "user": {"id": "A1", "is_app_user": True}}, {}, "ignored: bot or app user"),
        ({"type": "user_change", "user": {"id": "USLACKBOT", "team_id": "T1"}}, {}, "ignored: bot or app user"),
        ({"type": "user_change"}, {"event_id": "Ev1"}, "ignored: no user"),
        ({"type": "user_change", "user": "U1"}, {}, "ignored: no user"),
        ({"type": "user_change", "user": {"id": "U1"}}, {}, "ignored: no team"),
    ],
)
def test_user_events(event: dict[str, Any], body: dict[str, Any], outcome: str) -> None:
    """People are recorded with their team and event id; bots, app users and malformed events are not."""
    engine = RecordingEngine()
    assert record_user_event(engine, body, event) == outcome
    assert len(engine.changed) == (1 if outcome == "recorded" else 0)


def test_duplicate_events_are_reported_as_such() -> None:
    """An event the engine has seen already is a duplicate."""
    engine = RecordingEngine(new=False)
    event = {"type": "user_change", "user": {"id": "U1", "team_id": "T1"}}
    assert record_user_event(engine, {"event_id": "Ev1"}, event) == "duplicate"
    assert engine.changed == [("T1", "U1", "Ev1")]


def test_an_unreachable_database_gets_a_plain_answer_and_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    """The command says the database is unreachable and to retry, with an error id; the log has one line with the
    same id, no traceback."""
    engine, responses = RecordingEngine(fail=StoreError("PostgreSQL at db:5432 is unreachable")), []
    run(engine, EchoRenderer(), command("status"), lambda **kw: responses.append(kw), is_admin=bool)
    assert responses[0]["text"].startswith("The app cannot reach its database right now, so nothing was done; try "
                                           "again in a minute (error id ")
    assert "db:5432" not in responses[0]["text"]
    [line] = caplog.messages
    assert f"[error id {error_id_in(responses[0]['text'])}]" in line
    assert "PostgreSQL at db:5432 is unreachable" in line
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize(
    ("error", "status", "traceback"),
    [
        (StoreError("database unreachable"), 503, False),
        (RuntimeError("a bug"), 500, True),
    ],
)
def test_failed_listeners_answer_slack(error: Exception, status: int, traceback: bool,
                                       caplog: pytest.LogCaptureFixture) -> None:
    """An unreachable database is a 503 for Slack to redeliver, logged in one line; anything else a logged 500."""
    body = {"type": "event_callback", "event_id": "Ev1", "event": {"type": "user_change"}}
    try:
        raise error
    except Exception as raised:  # noqa: BLE001 (as Bolt hands it over: raised in a listener, with its traceback)
        response = answer_failure(raised, body)
    assert response.status == status
    assert ("Traceback" in caplog.text) is traceback
    assert "user_change Ev1" in caplog.text
    assert re.search(r"\[error id [0-9a-f]{8}\]", caplog.text)


@pytest.mark.parametrize("error", [SlackDirectoryError("users.info", "user_not_found", "the user no longer exists"),
                                   GenesysUnavailable("live participants", "503 from Genesys")])
def test_slack_or_genesys_saying_no_answers_the_person_in_one_line(caplog: pytest.LogCaptureFixture,
                                                                   error: Exception) -> None:
    """A refusal from Slack or Genesys is not a bug: one warning line naming it, no traceback (a hostile form could
    fill the log with them, e.g. a user id Slack does not know)."""
    engine, responses = RecordingEngine(fail=error), []
    run(engine, EchoRenderer(), command(""), lambda **kw: responses.append(kw), is_admin=lambda _: False)
    assert re.fullmatch(r"Sorry, that failed \(error id [0-9a-f]{8}\)\. .*", responses[0]["text"])
    assert str(error) not in responses[0]["text"]
    assert "Traceback" not in caplog.text
    assert [record.levelname for record in caplog.records] == ["WARNING"]
