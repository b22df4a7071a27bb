"""The running app as a real process on 127.0.0.1, with the local Slack Web API and the local Genesys Cloud."""

from __future__ import annotations

import collections
import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from localdev.app_process import (
    REPO,
    Running,
    agent_on_a_call,
    app_environment,
    free_port,
    healthy,
    launch,
    wait_for,
)
from localdev.genesys_cloud import FakeGenesysCloud
from localdev.slack_api import FakeSlack, event_envelope, slash_command_body


def test_a_profile_change_during_a_call_is_written_to_that_participant(running: Running) -> None:
    """A user_change during a live call reaches the participant's attributes."""
    user, participant = agent_on_a_call(running)
    response = running.event({"type": "user_change", "user": user}, event_id="Ev1")
    assert response.status_code == 200
    wait_for(lambda: running.genesys.attributes(participant.conversation_id,
                                                participant.participant_id).get("slack.title")
             == "Support Engineer", 10, "the title to be written")
    changed = running.slack.update_profile("U0ADA", title="Team Lead")
    running.event({"type": "user_change", "user": changed}, event_id="Ev2")
    wait_for(lambda: running.genesys.attributes(participant.conversation_id,
                                                participant.participant_id).get("slack.title")
             == "Team Lead", 10, "the new title to be written")
    assert "synced U0ADA -> conversation" in running.log()


def test_a_call_that_starts_later_gets_the_current_attributes(running: Running) -> None:
    """A call that starts after the change is written within one poll interval plus a second."""
    user = running.slack.add_user("U0BOB", name="bob", email="bob@example.com", title="Agent")
    genesys_user = running.genesys.add_user("bob@example.com")
    running.event({"type": "user_change", "user": user}, event_id="Ev3")
    wait_for(lambda: running.slack.call_count("users.profile.get") >= 1, 10, "the profile to be read")
    time.sleep(1.5)
    participant = running.genesys.start_conversation(genesys_user)
    started = time.monotonic()
    wait_for(lambda: "slack.title" in running.genesys.attributes(participant.conversation_id,
                                                                 participant.participant_id), 5,
             "the new call to get the attributes")
    assert time.monotonic() - started < 1 + 1 + 0.5  # poll interval + a second (+ slack for a loaded machine)


def test_a_status_only_change_costs_no_genesys_request(running: Running) -> None:
    """Changing only the status emoji and text writes nothing to Genesys."""
    user, _participant = agent_on_a_call(running)
    running.event({"type": "user_change", "user": user}, event_id="Ev4")
    wait_for(lambda: len(running.genesys.patches) == 1, 10, "the first write")
    changed = running.slack.update_profile("U0ADA", status_text="Lunch", status_emoji=":sandwich:")
    running.event({"type": "user_change", "user": changed}, event_id="Ev5")
    wait_for(lambda: running.slack.call_count("users.profile.get") >= 2, 10, "the profile to be read again")
    time.sleep(2.5)  # two poll intervals
    assert len(running.genesys.patches) == 1
    assert running.genesys.request_count("PATCH") == 1


def test_duplicate_deliveries_cause_one_write(running: Running) -> None:
    """The same event delivered three times (Slack's retries) is written once."""
    user, _participant = agent_on_a_call(running)
    for _ in range(3):
        assert running.event({"type": "user_change", "user": user}, event_id="EvDup").status_code == 200
    wait_for(lambda: len(running.genesys.patches) >= 1, 10, "the write")
    time.sleep(2.5)
    assert len(running.genesys.patches) == 1
    assert running.slack.call_count("users.profile.get") == 1


@pytest.mark.parametrize(
    ("headers", "timestamp"),
    [({"X-Slack-Signature": "v0=00", "X-Slack-Request-Timestamp": "0", "Content-Type": "application/json"}, None),
     (None, int(time.time()) - 600)],
    ids=["wrong signature", "stale timestamp"],  # not the time: every xdist process must collect the same names
)
def test_bad_signatures_and_stale_timestamps_get_401(running: Running, headers: dict[str, str] | None,
                                                      timestamp: int | None) -> None:
    """A wrong signature or a five-minute-old timestamp is refused with 401 and records nothing."""
    body = json.dumps(event_envelope({"type": "user_change", "user": {"id": "U0X"}})).encode()
    assert running.post(body, headers=headers, timestamp=timestamp).status_code == 401
    assert running.slack.call_count("users.profile.get") == 0


def test_malformed_payloads_do_not_crash_the_app(running: Running) -> None:
    """Garbage, a user-less event and an unknown event type are answered without a crash."""
    assert running.post(b"{not json", content_type="application/json").status_code == 400
    assert "refused a request to '/slack/events': the body is not JSON" in running.log()
    assert running.event({"type": "user_change"}).status_code == 200
    assert running.event({"type": "user_change", "user": "U0"}).status_code == 200
    assert healthy(running)


def test_healthz_reports_each_part(running: Running) -> None:
    """/healthz answers JSON naming the database, the sync engine, Genesys and Slack."""
    body = httpx.get(f"{running.url}/healthz", timeout=5).json()
    assert "will be unused" not in running.log()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True
    assert body["slack"]["mode"] == "http"
    assert body["engine"]["ok"] is True
    assert set(body) == {"status", "database", "engine", "links", "genesys", "push", "slack"}
    assert body["links"] == {"conflicts": 0}
    assert body["push"] == {"state": "off", "detail": "GENESYS_PUSH is off: new calls are found by the poll"}


def test_slash_command_syncs_the_caller_and_answers_ephemerally(running: Running) -> None:
    """/genesys-sync is acknowledged at once, then answers where it wrote."""
    _user, participant = agent_on_a_call(running)
    url = running.slack.response_url("sync")
    body = slash_command_body("", user_id="U0ADA", response_url=url)
    started = time.monotonic()
    response = running.post(body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert time.monotonic() - started < 3
    assert response.json()["response_type"] == "ephemeral"
    wait_for(lambda: bool(running.slack.responses_to(url)), 10, "the answer")
    answer = running.slack.responses_to(url)[-1]
    assert answer["response_type"] == "ephemeral"
    assert participant.conversation_id in answer["text"]
    assert running.genesys.attributes(participant.conversation_id,
                                      participant.participant_id)["slack.title"] == "Support Engineer"


def test_syncing_someone_else_is_refused_for_non_admins(running: Running) -> None:
    """/genesys-sync @user from a non-admin is refused."""
    running.slack.add_user("U0EVE", name="eve", email="eve@example.com")
    url = running.slack.response_url("refused")
    body = slash_command_body("<@U0ADA|ada>", user_id="U0EVE", response_url=url)
    assert running.post(body, content_type="application/x-www-form-urlencoded").status_code == 200
    wait_for(lambda: bool(running.slack.responses_to(url)), 10, "the answer")
    assert "Only workspace admins" in running.slack.responses_to(url)[-1]["text"]


def test_sigterm_stops_the_app_quickly(running: Running) -> None:
    """SIGTERM (docker stop) ends the process cleanly within a few seconds."""
    started = time.monotonic()
    running.process.send_signal(signal.SIGTERM)
    assert running.process.wait(timeout=10) == 0
    assert time.monotonic() - started < 5
    assert "stopped" in running.log()


def test_sigterm_stops_the_app_quickly_with_idle_connections_open(running: Running) -> None:
    """Idle keep-alive connections (a proxy's pool, a client that sends nothing) do not hold SIGTERM off."""
    port = int(running.url.rsplit(":", 1)[1])
    idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(20)]
    try:
        time.sleep(0.3)  # accepted
        started = time.monotonic()
        running.process.send_signal(signal.SIGTERM)
        assert running.process.wait(timeout=10) == 0
        assert time.monotonic() - started < 5
    finally:
        for connection in idle:
            connection.close()


@pytest.mark.parametrize("retry_after", [10, 30])  # each plus the 15 s read timeout fits the 60 s budget: it waits
def test_sigterm_during_a_genesys_back_off_stops_the_app_within_a_second(running: Running, retry_after: int) -> None:
    """Genesys answering 503 with a long Retry-After: SIGTERM mid-back-off ends the process within a second (1.5 s
    allowed for the process's own teardown), not after the back-off."""
    agent_on_a_call(running)
    running.genesys.fail_for(503, 120, path_prefix="/api/v2/", retry_after=retry_after)
    wait_for(lambda: "Genesys unreachable: 503" in running.log(), 10, f"a 503 and its back-off; log:\n{running.log()}")
    time.sleep(1)  # well inside the back-off
    started = time.monotonic()
    running.process.send_signal(signal.SIGTERM)
    assert running.process.wait(timeout=10) == 0
    elapsed = time.monotonic() - started
    print(f"SIGTERM mid-back-off (Retry-After {retry_after} s): exited after {elapsed:.3f} s")
    assert elapsed < 1.5, running.log()
    assert "sync engine stopped" in running.log()
    assert "Traceback" not in running.log()


def test_sigkill_mid_work_then_restart_loses_nothing_and_repeats_nothing(tmp_path: Path) -> None:
    """Killed with SIGKILL while working through a burst, the restarted app writes every participant once."""
    with FakeSlack() as slack, FakeGenesysCloud() as genesys:
        participants = []
        for n in range(30):
            user = slack.add_user(f"U0P{n:03d}", name=f"p{n}", email=f"p{n}@example.com", title=f"Title {n}")
            participants.append((user, genesys.start_conversation(genesys.add_user(f"p{n}@example.com"))))
        genesys.set_latency(0.05)  # slow enough that the kill lands mid-burst
        first = launch(slack, genesys, tmp_path, name="first")
        try:
            for n, (user, _participant) in enumerate(participants):
                assert first.event({"type": "user_change", "user": user}, event_id=f"EvK{n}").status_code == 200
            wait_for(lambda: len(genesys.patches) >= 3, 20, "some writes before the kill")
        finally:
            first.process.kill()
            first.process.wait(timeout=10)
        written_before = len(genesys.patches)
        assert written_before < len(participants), "the kill came too late to prove anything"
        genesys.set_latency(0)
        second = launch(slack, genesys, tmp_path, name="second")
        try:
            wait_for(lambda: len({(p.conversation_id, p.participant_id) for p in genesys.patches}) == len(participants),
                     30, f"every participant to be written; second log:\n{second.log()[-3000:]}")
            time.sleep(2.5)  # two more polls: nothing is written again
            per_participant = collections.Counter((p.conversation_id, p.participant_id) for p in genesys.patches)
            assert set(per_participant.values()) == {1}, per_participant
            for user, participant in participants:
                assert genesys.attributes(participant.conversation_id, participant.participant_id)["slack.title"] == \
                    user["profile"]["title"]
        finally:
            second.process.send_signal(signal.SIGTERM)
            second.process.wait(timeout=10)


@pytest.mark.parametrize(
    ("text", "user_id", "expected"),
    [
        ("preview", "U0ADA", "`slack.title` = Support Engineer"),
        ("preview <@U0ADA|ada>", "U0EVE", "<@U0ADA>'s profile would write"),
        ("status", "U0ADA", "Pending work:"),
        ("<@U0ADA|ada>", "UADMIN", "Synced <@U0ADA>'s profile"),
        ("all", "UADMIN", "Queued"),
    ],
)
def test_other_command_forms(running: Running, text: str, user_id: str, expected: str) -> None:
    """preview, status, admin sync of someone else and `all` answer with what they did."""
    agent_on_a_call(running)
    running.slack.add_user("U0EVE", name="eve", email="eve@example.com")
    running.slack.add_user("UADMIN", name="boss", email="boss@example.com")
    url = running.slack.response_url()
    response = running.post(slash_command_body(text, user_id=user_id, response_url=url),
                            content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    wait_for(lambda: any(expected in r.get("text", "") for r in running.slack.responses_to(url)), 10,
             f"an answer containing {expected!r}; got {running.slack.responses_to(url)}")


def test_help_is_answered_in_the_acknowledgement(running: Running) -> None:
    """help and unknown text get the usage in the immediate answer."""
    for text in ("help", "frobnicate"):
        body = slash_command_body(text, user_id="U0ADA", response_url=running.slack.response_url())
        response = running.post(body, content_type="application/x-www-form-urlencoded")
        assert "/genesys-sync preview" in response.json()["text"]


@pytest.mark.parametrize(("broken", "line"), [
    ("slack unreachable", "SLACK_API_URL: cannot reach Slack at"),
    ("port in use", "PORT: cannot listen on port"),
])
def test_a_setting_that_cannot_work_stops_the_app_with_one_line(tmp_path: Path, broken: str, line: str) -> None:
    """Slack unreachable at start, or PORT taken: serve exits 2 with one line naming the setting, no traceback."""
    with FakeSlack() as slack, FakeGenesysCloud() as genesys, socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        env = app_environment(slack, genesys, tmp_path, taken.getsockname()[1] if broken == "port in use"
                              else free_port())
        if broken == "slack unreachable":
            env["SLACK_API_URL"] = f"http://127.0.0.1:{free_port()}/api/"  # nothing listens there
        completed = subprocess.run([sys.executable, str(REPO / "app.py"), "serve"], cwd=tmp_path, env=env,
                                   capture_output=True, text=True, timeout=60, check=False)
    assert completed.returncode == 2
    assert line in completed.stderr
    assert "Traceback" not in completed.stderr


def slash(running: Running, text: str, user_id: str, timeout: float = 10) -> str:
    """A signed /genesys-sync from `user_id`; returns the answer posted to its response_url."""
    url = running.slack.response_url()
    response = running.post(slash_command_body(text, user_id=user_id, response_url=url),
                            content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    wait_for(lambda: bool(running.slack.responses_to(url)), timeout, f"the answer to {text!r} from {user_id}")
    return str(running.slack.responses_to(url)[-1]["text"])


def until_answer_has(running: Running, text: str, user_id: str, wanted: str) -> None:
    deadline = time.monotonic() + 15
    while wanted not in (answer := slash(running, text, user_id)):
        assert time.monotonic() < deadline, f"{wanted!r} never appeared; last answer: {answer}"
        time.sleep(0.3)


@pytest.mark.parametrize(("requester", "sees"), [("U0EVE", False), ("U0BOSS", True), ("UADMIN", True)],
                         ids=["member", "workspace admin", "SYNC_ADMINS member"])
def test_a_colleagues_status_shows_calls_and_e_mail_only_to_admins(running: Running, requester: str,
                                                                   sees: bool) -> None:
    """`status @colleague` while they are on a live call: a member's answer has no conversation id or e-mail."""
    user, participant = agent_on_a_call(running)
    bob = running.slack.add_user("U0BOB", name="bob", email="bob@example.com", title="Agent")  # no Genesys user
    running.slack.add_user("U0EVE", name="eve", email="eve@example.com")
    running.slack.add_user("U0BOSS", name="boss", email="boss@example.com", is_admin=True)
    running.slack.add_user("UADMIN", name="listed", email="listed@example.com")
    running.event({"type": "user_change", "user": user}, event_id="EvAda")
    running.event({"type": "user_change", "user": bob}, event_id="EvBob")
    # Each of them sees their own: the write to the live call, the e-mail no Genesys user has.
    until_answer_has(running, "status", "U0ADA", participant.conversation_id)
    until_answer_has(running, "status", "U0BOB", "bob@example.com")
    about_ada = slash(running, "status <@U0ADA|ada>", requester)
    about_bob = slash(running, "status <@U0BOB|bob>", requester)
    assert (participant.conversation_id in about_ada) is sees, about_ada
    assert ("<!date^" in about_ada) is sees, about_ada
    assert ("bob@example.com" in about_bob) is sees, about_bob
    assert "ada@example.com" not in about_ada
    if not sees:
        assert "<@U0ADA>'s profile is synced" in about_ada
        assert "<@U0BOB>'s profile is not synced" in about_bob


def test_an_unexpected_failure_answers_with_an_error_id_and_logs_it(running: Running) -> None:
    """Genesys dropping every connection during `/genesys-sync`: the person gets an error id and no exception text;
    the log line with that id has the cause."""
    running.slack.add_user("U0ADA", name="ada", email="ada@example.com", title="Agent")
    running.genesys.add_user("ada@example.com")
    running.genesys.drop_next(50, path_prefix="/api/v2/users/search")
    answer = slash(running, "", "U0ADA", timeout=60)
    match = re.fullmatch(r"Sorry, that failed \(error id ([0-9a-f]{8})\)\. .*", answer)
    assert match, answer
    for leaked in ("127.0.0.1", "RemoteProtocolError", "GenesysUnavailable", "connection"):
        assert leaked not in answer
    [line] = [line for line in running.log().splitlines() if f"[error id {match.group(1)}]" in line]
    assert "/genesys-sync sync for 'U0ADA' failed" in line
    assert "RemoteProtocolError" in line
