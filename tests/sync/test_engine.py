"""The sync engine with a real SQLite store, the local Slack Web API and the local Genesys Cloud (no Bolt)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from genesys import ClientCredentials, GenesysClient, GenesysEndpoints, RetryPolicy
from handlers.app import SlackAuthorization
from localdev.genesys_cloud import FakeGenesysCloud
from localdev.slack_api import FakeSlack
from slack_directory import SlackDirectory
from store import Store, open_store
from sync import AttributeRules
from sync.engine import EngineSettings, GenesysStatus, SyncEngine
from sync.render import SlackText
from web.health import health_report


@dataclass
class World:
    slack: FakeSlack
    genesys: FakeGenesysCloud
    store: Store
    engine: SyncEngine

    def drain(self) -> None:
        """Run every due work item."""
        while self.engine.work_once():
            pass


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with FakeSlack() as slack, FakeGenesysCloud() as genesys:
        store = open_store(f"sqlite:///{tmp_path}/sync.db")
        client = GenesysClient(ClientCredentials("fake-client-id", "fake-client-secret"),
                               GenesysEndpoints(genesys.base_url, genesys.base_url),
                               retry_policy=RetryPolicy(max_attempts=2, max_total_s=2, default_wait_s=0.1,
                                                        backoff_initial_s=0.05, backoff_max_s=0.1, jitter_s=0))
        web = SlackDirectory.web_client("xoxb-fake-bot-token", slack.api_url)
        engine = SyncEngine(store=store, genesys=client, slack=SlackDirectory(lambda team_id: web),
                            rules=AttributeRules(), settings=EngineSettings(worker="test"))
        yield World(slack, genesys, store, engine)
        client.close()
        store.close()


def ada_on_a_call(world: World) -> tuple[str, str]:
    world.slack.add_user("U0ADA", name="ada", email="ada@example.com", title="Support Engineer")
    participant = world.genesys.start_conversation(world.genesys.add_user("ada@example.com"))
    return participant.conversation_id, participant.participant_id


def changed(world: World, user_id: str = "U0ADA", event_id: str | None = None) -> bool:
    return world.engine.user_changed("T0FAKE", world.slack.user(user_id), event_id)


def test_a_change_is_written_to_the_live_participant(world: World) -> None:
    """Event → work → profile read → written to the participant the poll found, with an audit row."""
    conversation, participant = ada_on_a_call(world)
    world.engine.poll_once()
    assert changed(world, event_id="Ev1")
    world.drain()
    assert world.genesys.attributes(conversation, participant)["slack.title"] == "Support Engineer"
    [entry] = world.store.audit(user_id="U0ADA")
    assert (entry.result, entry.conversation_id) == ("written", conversation)
    assert world.store.pending_count() == 0


def test_the_poll_writes_new_calls_and_only_once(world: World) -> None:
    """A call found by the poll gets the attributes once; further polls write nothing."""
    ada_on_a_call(world)
    changed(world)
    world.drain()
    assert world.engine.poll_once() == 1
    assert world.engine.poll_once() == 0
    assert len(world.genesys.patches) == 1


def test_duplicate_events_are_dropped(world: World) -> None:
    """The same event id twice records work once."""
    ada_on_a_call(world)
    assert changed(world, event_id="EvSame")
    assert not changed(world, event_id="EvSame")
    world.drain()
    assert world.slack.call_count("users.profile.get") == 1


def test_an_irrelevant_change_costs_no_genesys_request(world: World) -> None:
    """A status-only change leaves the hash alone, so nothing is written."""
    ada_on_a_call(world)
    world.engine.poll_once()
    changed(world)
    world.drain()
    before = world.genesys.request_count("PATCH")
    world.slack.update_profile("U0ADA", status_text="Lunch", status_emoji=":sandwich:")
    changed(world)
    world.drain()
    world.engine.poll_once()
    assert world.genesys.request_count("PATCH") == before


def test_a_genesys_outage_delays_writes_but_loses_none(world: World) -> None:
    """While Genesys answers 503 nothing is written; the first poll after it recovers writes."""
    conversation, participant = ada_on_a_call(world)
    changed(world)
    world.drain()
    world.genesys.fail_for(503, 0.5, path_prefix="/api/v2/analytics")
    assert world.engine.poll_once() == 0
    assert world.engine.genesys_status().ok is False
    assert "slack.title" not in world.genesys.attributes(conversation, participant)
    time.sleep(0.6)
    assert world.engine.poll_once() == 1
    assert world.engine.genesys_status() == GenesysStatus(True, "")
    assert world.genesys.attributes(conversation, participant)["slack.title"] == "Support Engineer"


def test_deactivated_users_are_not_synced(world: World) -> None:
    """A deactivated Slack user's profile is kept but never written."""
    world.slack.add_user("U0OLD", name="old", email="old@example.com", title="Gone", deleted=True)
    world.genesys.start_conversation(world.genesys.add_user("old@example.com"))
    changed(world, "U0OLD")
    world.drain()
    world.engine.poll_once()
    assert world.genesys.patches == []
    row = world.store.desired("T0FAKE", "U0OLD")
    assert row is not None
    assert row.deleted


def test_an_unknown_slack_user_becomes_a_dead_letter(world: World) -> None:
    """Work for a user Slack does not know ends as a dead letter with the reason."""
    world.engine.user_changed("T0FAKE", {"id": "U0GHOST"}, "EvGhost")
    world.drain()
    [letter] = world.store.dead_letters()
    assert "user_not_found" in letter.reason


def test_sync_now_reports_each_participant(world: World) -> None:
    """sync_now writes at once to each live participant and says so."""
    conversation, _ = ada_on_a_call(world)
    report = world.engine.sync_now("T0FAKE", "U0ADA")
    assert [(participant.conversation_id,
             participant.result) for participant in report.participants] == [(conversation, "written")]
    again = world.engine.sync_now("T0FAKE", "U0ADA")
    assert [participant.result for participant in again.participants] == ["unchanged"]


def test_sync_now_without_a_genesys_user_says_so(world: World) -> None:
    """A Slack user whose e-mail Genesys does not know gets a clear problem."""
    world.slack.add_user("U0NEW", name="new", email="new@example.com")
    report = world.engine.sync_now("T0FAKE", "U0NEW")
    assert (report.not_synced, report.email) == ("no_genesys_user", "new@example.com")
    assert SlackText().sync_report(report, whose="your") == ("Nothing written for your profile: Genesys Cloud has no "
                                                             "user with the e-mail new@example.com.")


def test_run_stops_promptly(world: World) -> None:
    """The background loop ends within a second of the stop signal."""
    stop = threading.Event()
    worker = threading.Thread(target=world.engine.run, args=(stop,))
    worker.start()
    stop.set()
    worker.join(timeout=2)
    assert not worker.is_alive()


def test_a_first_start_queues_the_whole_workspace_once(world: World) -> None:
    """With nothing stored, bootstrap queues every syncable member; later starts queue nothing."""
    world.slack.add_user("U0ADA", name="ada", email="ada@example.com")
    world.slack.add_user("U0BOB", name="bob", email="bob@example.com")
    world.slack.add_user("B0BOT", name="bot", is_bot=True)
    assert world.engine.bootstrap("T0FAKE") == 2
    world.drain()
    assert world.engine.bootstrap("T0FAKE") == 0
    assert world.store.desired("T0FAKE", "U0BOB") is not None


def test_resync_all_reports_progress_and_a_summary(world: World) -> None:
    """`all` queues everyone, reports progress as the queue drains and ends with a summary."""
    ada_on_a_call(world)
    for n in range(9):
        world.slack.add_user(f"U0P{n}", name=f"p{n}", email=f"p{n}@example.com")
    stop = threading.Event()
    worker = threading.Thread(target=world.engine.run, args=(stop,))
    worker.start()
    messages: list[str] = []
    try:
        summary = SlackText().resync_summary(world.engine.resync_all(
            "T0FAKE", lambda progress: messages.append(SlackText().resync_progress(progress)), wait_s=20,
            check_every_s=0.05))
    finally:
        stop.set()
        worker.join(timeout=5)
    assert messages[0] == "Queued 10 people for a resync; reading their profiles now…"
    assert len(messages) <= 3
    assert summary.startswith("Resync finished: 10 people queued, 1 participant write(s) made")


def test_a_cleared_custom_field_is_cleared_on_the_participant(world: World) -> None:
    """A custom field removed from the profile is written as "" so its old value does not linger."""
    world.slack.define_field("Xf01", "Team")
    world.slack.add_user("U0ADA", name="ada", email="ada@example.com", title="Agent")
    world.slack.set_custom_field("U0ADA", "Xf01", "Billing")
    participant = world.genesys.start_conversation(world.genesys.add_user("ada@example.com"))
    world.engine.poll_once()
    changed(world)
    world.drain()
    assert world.genesys.attributes(participant.conversation_id,
                                    participant.participant_id)["slack.custom.Team"] == "Billing"
    world.slack.set_custom_field("U0ADA", "Xf01", "")
    changed(world)
    world.drain()
    assert world.genesys.attributes(participant.conversation_id, participant.participant_id)["slack.custom.Team"] == ""


def second_engine(world: World, worker: str) -> SyncEngine:
    """Another replica on the same store and fakes."""
    client = GenesysClient(ClientCredentials("fake-client-id", "fake-client-secret"),
                           GenesysEndpoints(world.genesys.base_url, world.genesys.base_url))
    web = SlackDirectory.web_client("xoxb-fake-bot-token", world.slack.api_url)
    return SyncEngine(store=world.store, genesys=client, slack=SlackDirectory(lambda team_id: web),
                      rules=AttributeRules(), settings=EngineSettings(worker=worker))


def test_one_replica_polls_at_a_time_and_hands_over_when_it_stops(world: World) -> None:
    """The poll lease goes to one engine; the other takes it once the first releases it (clean stop)."""
    other = second_engine(world, "other")
    assert world.engine.take_poll_turn() is True
    assert other.take_poll_turn() is False
    assert world.engine.take_poll_turn() is True  # renewing
    stop = threading.Event()
    stop.set()
    world.engine.run(stop)  # returns at once, releasing the lease
    assert other.take_poll_turn() is True
    assert other.polling


def test_a_replica_taking_over_checks_writes_its_predecessor_left_unconfirmed(world: World) -> None:
    """A write intent left by a replica that died is read by the next poller, which confirms instead of resending."""
    conversation, participant = ada_on_a_call(world)
    changed(world)
    world.drain()
    assert world.engine.take_poll_turn() is True
    assert world.engine.poll_once() == 1
    row = world.store.desired("T0FAKE", "U0ADA")
    assert row is not None
    # The dead replica's trace: the write landed in Genesys, its outcome was never recorded.
    world.store.intend_write(conversation, participant, row.attributes_hash)
    world.store.forget_participants(set())  # drops the last-written record, as a crash before it would
    other = second_engine(world, "other")
    assert other.take_poll_turn() is False  # the first engine still holds the lease
    world.store.release_lease("genesys-poll", "test")
    assert other.take_poll_turn() is True
    other.poll_once()
    assert len(world.genesys.patches) == 1  # confirmed by reading the participant, not sent again
    assert world.store.last_written(conversation, participant) == row.attributes_hash


def test_status_names_a_refused_poll_by_the_error_id_of_its_log_line(world: World,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    """While Genesys refuses the poll, status says unreachable with the error id of its one log line, not its text."""
    world.genesys.revoke_permission("analytics:conversationDetail:view")
    world.engine.poll_once()
    world.engine.poll_once()
    status = world.engine.status("T0FAKE", "U0ADA")
    [line] = [m for m in caplog.messages if "Genesys poll failed" in m]
    assert f"[error id {status.genesys_error_id}]" in line
    text = SlackText().status(status, whose="your", full=True)
    assert text.splitlines()[-2].endswith(f"Genesys: unreachable (error id {status.genesys_error_id}).")
    assert "403" not in text
    assert "analytics:conversationDetail:view" not in text


def test_status_during_an_outage_says_unreachable_without_the_error_text(world: World,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    """A 503 outage: status says unreachable, no error text; the one log line is the client's, not one per poll."""
    world.genesys.fail_for(503, 30, path_prefix="/api/v2/analytics")
    world.engine.poll_once()
    world.engine.poll_once()
    status = world.engine.status("T0FAKE", "U0ADA")
    text = SlackText().status(status, whose="your", full=True)
    assert text.splitlines()[-2].endswith("Genesys: unreachable.")
    assert "503" not in text
    assert [m for m in caplog.messages if m.startswith("Genesys unreachable")] != []
    assert [m for m in caplog.messages if "Genesys poll failed" in m and "error id" in m] == []


@dataclass
class TwoWorkspaces:
    contact: FakeSlack
    other: FakeSlack
    genesys: FakeGenesysCloud
    store: Store
    engine: SyncEngine

    def refresh(self, slack: FakeSlack, user_id: str) -> None:
        """A user_change from `slack`'s workspace, worked off."""
        self.engine.user_changed(slack.team_id, slack.user(user_id), None)
        while self.engine.work_once():
            pass


@pytest.fixture
def two_workspaces(tmp_path: Path) -> Iterator[TwoWorkspaces]:
    # The contact center's workspace, and another one whose id sorts first (so a link by id order would pick it).
    with (FakeSlack(team_id="TCONTACT", bot_token="xoxb-contact") as contact,
          FakeSlack(team_id="TABC", bot_token="xoxb-abc") as other, FakeGenesysCloud() as genesys):
        store = open_store(f"sqlite:///{tmp_path}/sync.db")
        client = GenesysClient(ClientCredentials("fake-client-id", "fake-client-secret"),
                               GenesysEndpoints(genesys.base_url, genesys.base_url))
        clients = {slack.team_id: SlackDirectory.web_client(slack.bot_token, slack.api_url)
                   for slack in (contact, other)}
        engine = SyncEngine(store=store, genesys=client, slack=SlackDirectory(clients.__getitem__),
                            rules=AttributeRules(), settings=EngineSettings(worker="test"))
        yield TwoWorkspaces(contact, other, genesys, store, engine)
        client.close()
        store.close()


def test_two_workspaces_users_with_one_email_do_not_overwrite_each_other(
        two_workspaces: TwoWorkspaces, caplog: pytest.LogCaptureFixture) -> None:
    """The first Slack user linked keeps the Genesys user; the other one's profile never reaches the call, even
    through /genesys-sync; the conflict is logged once, shown in status and counted in /healthz."""
    world = two_workspaces
    world.contact.add_user("U0ADA", name="ada", email="ada@example.com", title="Support Engineer")
    world.other.add_user("U0EVE", name="eve", email="ada@example.com", title="Not Ada")
    participant = world.genesys.start_conversation(world.genesys.add_user("ada@example.com"))
    world.engine.poll_once()
    world.refresh(world.contact, "U0ADA")
    caplog.set_level(logging.WARNING, logger="sync.engine")
    world.refresh(world.other, "U0EVE")
    world.refresh(world.other, "U0EVE")  # the paced refresh reads it again: still one line
    report = world.engine.sync_now("TABC", "U0EVE")
    world.engine.poll_once()
    assert world.genesys.attributes(participant.conversation_id,
                                    participant.participant_id)["slack.title"] == "Support Engineer"
    assert {patch.attributes.get("slack.title") for patch in world.genesys.patches} == {"Support Engineer"}
    assert report.participants == ()
    assert report.conflict is not None
    assert "linked to Slack user `U0ADA` of workspace `TCONTACT` already" in SlackText().sync_report(report,
                                                                                                 whose="your")
    conflicts = [record.getMessage() for record in caplog.records if "already" in record.getMessage()]
    assert len(conflicts) == 1, conflicts
    assert "Slack user U0EVE (workspace TABC)" in conflicts[0]
    assert "ada@example.com" not in conflicts[0]
    status = world.engine.status("TABC", "U0EVE")
    assert "linked to Slack user `U0ADA`" in SlackText().status(status, whose="your", full=True)
    hidden = SlackText().status(status, whose="<@U0EVE>'s", full=False)
    assert "U0ADA" not in hidden
    assert "another Slack user is linked to the same Genesys user" in hidden
    holder = SlackText().status(world.engine.status("TCONTACT", "U0ADA"), whose="your", full=True)
    assert holder.count("Genesys user: ") == 1
    health = health_report(world.store, world.engine, None, SlackAuthorization(None))
    assert health.parts["links"] == {"conflicts": 1}  # counted, never an "ok": false: the others still sync
