"""SYNC_TARGET customer and both: the customer's participant of each live call carries its person's profile, through
transfers and consults, with the own-participant writes' guarantees (real SQLite store, local Slack and Genesys)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from genesys import (
    ClientCredentials,
    ConversationSeen,
    GenesysClient,
    GenesysEndpoints,
    RetryPolicy,
    VoiceSafeAttributes,
    WriteResult,
)
from localdev.genesys_cloud import FakeGenesysCloud, JoinedParticipant
from localdev.slack_api import FakeSlack
from slack_directory import SlackDirectory
from store import Store, open_store
from sync import AttributeRules, SyncTarget
from sync.engine import EngineSettings, GenesysPort, SyncEngine
from sync.render import SlackText

TEAM = "T0FAKE"


@dataclass
class World:
    slack: FakeSlack
    genesys: FakeGenesysCloud
    store: Store
    client: GenesysClient
    target: SyncTarget
    engine: SyncEngine

    def restart(self, genesys: GenesysPort | None = None, *, poll: bool = True) -> SyncEngine:
        """A new engine on the same store and fakes (a restarted process), polling at once unless `poll` is False."""
        web = SlackDirectory.web_client("xoxb-fake-bot-token", self.slack.api_url)
        self.engine = SyncEngine(store=self.store, genesys=genesys or self.client,
                                 slack=SlackDirectory(lambda team_id: web), rules=AttributeRules(),
                                 settings=EngineSettings(worker="test"), target=self.target)
        assert self.engine.take_poll_turn() is poll
        return self.engine

    def person(self, user_id: str, email: str, title: str, **profile: str) -> str:
        """A Slack member with a Genesys user of the same e-mail, profile read and stored; returns the Genesys id."""
        self.slack.add_user(user_id, name=email.split("@")[0], email=email, title=title, **profile)
        genesys_id = self.genesys.add_user(email)
        self.changed(user_id)
        return genesys_id

    def changed(self, user_id: str) -> None:
        """A user_change event, worked off."""
        self.engine.user_changed(TEAM, self.slack.user(user_id), None)
        while self.engine.work_once():
            pass

    def customer(self, call: JoinedParticipant) -> dict[str, str]:
        return self.genesys.attributes(call.conversation_id, self.genesys.customer_participant_id(call.conversation_id))

    def patches_to_customer(self, call: JoinedParticipant) -> int:
        customer = self.genesys.customer_participant_id(call.conversation_id)
        return sum(patch.participant_id == customer for patch in self.genesys.patches)


@contextmanager
def make_world(tmp_path: Path, target: SyncTarget) -> Iterator[World]:
    with FakeSlack() as slack, FakeGenesysCloud() as genesys:
        store = open_store(f"sqlite:///{tmp_path}/sync.db")
        client = GenesysClient(ClientCredentials("fake-client-id", "fake-client-secret"),
                               GenesysEndpoints(genesys.base_url, genesys.base_url),
                               retry_policy=RetryPolicy(max_attempts=2, max_total_s=2, default_wait_s=0.1,
                                                        backoff_initial_s=0.05, backoff_max_s=0.1, jitter_s=0))
        world = World(slack, genesys, store, client, target, engine=None)  # type: ignore[arg-type]
        world.restart()
        yield world
        client.close()
        store.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with make_world(tmp_path, SyncTarget("customer")) as made:
        yield made


def test_the_customer_participant_carries_the_person_under_the_prefix(world: World) -> None:
    """customer: the call's customer participant gets the person's attributes as slack.agent.*, their own
    participant nothing; audit rows name the target."""
    ada = world.person("U0ADA", "ada@example.com", "Support Engineer")
    call = world.genesys.start_conversation(ada)
    assert world.engine.poll_once() == 1
    customer = world.customer(call)
    assert customer["slack.agent.title"] == "Support Engineer"
    assert customer["slack.agent.user_id"] == "U0ADA"
    assert not any(key.startswith("slack.title") for key in customer)
    assert world.genesys.attributes(call.conversation_id, call.participant_id) == {}
    [entry] = world.store.audit(user_id="U0ADA")
    assert (entry.target, entry.result, entry.participant_id) == (
        "customer", "written", world.genesys.customer_participant_id(call.conversation_id))


def test_a_transfer_writes_the_new_person_and_clears_the_previous_ones_keys(world: World) -> None:
    """Bob connects and Ada leaves: the customer participant carries Bob, and Ada's keys Bob lacks are ""."""
    ada = world.person("U0ADA", "ada@example.com", "Support Engineer", pronouns="she/her")
    bob = world.person("U0BOB", "bob@example.com", "Billing Specialist")
    call = world.genesys.start_conversation(ada)
    world.engine.poll_once()
    assert world.customer(call)["slack.agent.pronouns"] == "she/her"
    world.genesys.add_participant(call.conversation_id, bob)
    world.genesys.end_participant(call.conversation_id, call.participant_id)
    assert world.engine.poll_once() == 1
    customer = world.customer(call)
    assert (customer["slack.agent.title"], customer["slack.agent.user_id"]) == ("Billing Specialist", "U0BOB")
    assert customer["slack.agent.pronouns"] == ""
    assert world.engine.poll_once() == 0  # settled: no write repeated
    assert world.patches_to_customer(call) == 2


def test_a_consult_shows_the_most_recently_connected_person_then_the_one_who_stayed(world: World) -> None:
    """Conference: while both are on, the later-connected Bob stands; when he leaves, Ada's attributes return."""
    ada = world.person("U0ADA", "ada@example.com", "Support Engineer", pronouns="she/her")
    bob = world.person("U0BOB", "bob@example.com", "Billing Specialist")
    call = world.genesys.start_conversation(ada)
    world.engine.poll_once()
    consult = world.genesys.add_participant(call.conversation_id, bob)
    world.engine.poll_once()
    assert world.customer(call)["slack.agent.user_id"] == "U0BOB"
    assert world.customer(call)["slack.agent.pronouns"] == ""
    world.genesys.end_participant(call.conversation_id, consult.participant_id)
    world.engine.poll_once()
    customer = world.customer(call)
    assert (customer["slack.agent.user_id"], customer["slack.agent.pronouns"]) == ("U0ADA", "she/her")


def test_an_unsynced_person_connecting_later_leaves_the_synced_one_standing(world: World) -> None:
    """Of the people on the call, the most recently connected *synced* one stands (Eve has no Slack profile)."""
    ada = world.person("U0ADA", "ada@example.com", "Support Engineer")
    call = world.genesys.start_conversation(ada)
    world.engine.poll_once()
    world.genesys.add_participant(call.conversation_id, world.genesys.add_user("eve@example.com"))
    world.genesys.add_participant(call.conversation_id, None, purpose="external")
    assert world.engine.poll_once() == 1  # the external party is a customer participant too: it gets Ada
    assert world.patches_to_customer(call) == 1
    assert world.customer(call)["slack.agent.user_id"] == "U0ADA"


def test_when_the_last_person_leaves_the_attributes_stay(world: World) -> None:
    """Ada leaves and the customer stays on (a survey, an after-call flow): nothing is written, Ada's stay; a
    person who then answers the customer gets the participant, Ada's keys they lack cleared."""
    ada = world.person("U0ADA", "ada@example.com", "Support Engineer", pronouns="she/her")
    bob = world.person("U0BOB", "bob@example.com", "Billing Specialist")
    call = world.genesys.start_conversation(ada)
    world.engine.poll_once()
    world.genesys.end_participant(call.conversation_id, call.participant_id)
    assert world.engine.poll_once() == 0
    world.slack.update_profile("U0ADA", title="Team Lead")  # no longer on this call: not written there
    world.changed("U0ADA")
    assert world.customer(call)["slack.agent.title"] == "Support Engineer"
    assert world.patches_to_customer(call) == 1
    world.genesys.add_participant(call.conversation_id, bob)  # back from the queue, to Bob
    assert world.engine.poll_once() == 1
    assert (world.customer(call)["slack.agent.user_id"], world.customer(call)["slack.agent.pronouns"]) == (
        "U0BOB", "")


def test_a_change_mid_call_is_written_once_and_an_irrelevant_one_not_at_all(world: World) -> None:
    """A new title mid-call reaches the customer participant with one PATCH; a status emoji costs none."""
    ada = world.person("U0ADA", "ada@example.com", "Support Engineer")
    call = world.genesys.start_conversation(ada)
    world.engine.poll_once()
    world.slack.update_profile("U0ADA", title="Team Lead")
    world.changed("U0ADA")
    assert world.customer(call)["slack.agent.title"] == "Team Lead"
    assert world.patches_to_customer(call) == 2
    world.slack.update_profile("U0ADA", status_text="Lunch", status_emoji=":sandwich:")
    world.changed("U0ADA")
    world.engine.poll_once()
    assert world.patches_to_customer(call) == 2


def test_notifications_of_a_transfer_write_the_new_person_before_the_next_poll(world: World) -> None:
    """Push: the notified conversation (Bob on, Ada gone) overrules the last poll's view of it at once."""
    ada = world.person("U0ADA", "ada@example.com", "Support Engineer")
    bob = world.person("U0BOB", "bob@example.com", "Billing Specialist")
    call = world.genesys.start_conversation(ada)
    world.engine.poll_once()
    world.genesys.add_participant(call.conversation_id, bob)
    world.genesys.end_participant(call.conversation_id, call.participant_id)
    for user in (ada, bob):  # what push hands the engine: each followed user's live participants, from the body
        world.engine.conversation_seen(ConversationSeen(user, call.conversation_id,
                                                        world.client.live_participants(user)))
    assert world.engine.write_notified() == 1
    assert world.customer(call)["slack.agent.user_id"] == "U0BOB"


class CrashAfterSending:
    """The Genesys client, but the process dies right after a PATCH is sent: Genesys has it, the store does not."""

    def __init__(self, client: GenesysClient) -> None:
        self._client = client

    def __getattr__(self, name: str) -> object:
        return getattr(self._client, name)

    def write_attributes(self, conversation_id: str, participant_id: str,
                         attributes: VoiceSafeAttributes) -> WriteResult:
        self._client.write_attributes(conversation_id, participant_id, attributes)
        raise Crash


class Crash(BaseException):
    """The process ending mid-write (nothing the engine catches)."""


def test_a_crash_mid_write_is_not_repeated_after_the_restart(world: World) -> None:
    """The transfer's write lands, the process dies before recording it: the restarted engine reads the customer
    participant (the write intent says a write may have landed) and records it instead of sending it again."""
    ada = world.person("U0ADA", "ada@example.com", "Support Engineer", pronouns="she/her")
    bob = world.person("U0BOB", "bob@example.com", "Billing Specialist")
    call = world.genesys.start_conversation(ada)
    world.engine.poll_once()
    world.genesys.add_participant(call.conversation_id, bob)
    world.genesys.end_participant(call.conversation_id, call.participant_id)
    world.restart(CrashAfterSending(world.client))  # type: ignore[arg-type]
    with pytest.raises(Crash):
        world.engine.poll_once()
    assert len(world.store.write_intents()) == 1
    world.restart()
    assert world.engine.poll_once() == 1  # recorded as written, confirmed by reading
    assert world.patches_to_customer(call) == 2  # Ada's, then Bob's once
    assert world.store.write_intents() == []
    assert "confirmed after a restart" in world.store.audit(user_id="U0BOB")[0].detail
    assert world.engine.poll_once() == 0


def test_sync_now_writes_the_customer_participant_and_says_so(world: World) -> None:
    """/genesys-sync on the polling replica reports the customer participant's write with its target."""
    ada = world.person("U0ADA", "ada@example.com", "Support Engineer")
    call = world.genesys.start_conversation(ada)
    world.slack.update_profile("U0ADA", title="Team Lead")
    report = world.engine.sync_now(TEAM, "U0ADA")
    [result] = report.participants
    assert (result.target, result.result, result.participant_id) == (
        "customer", "written", world.genesys.customer_participant_id(call.conversation_id))
    render = SlackText(world.target, "slack.")
    assert f"`{call.conversation_id}` (the customer's participant): written" in render.sync_report(report,
                                                                                                     whose="your")
    status = render.status(world.engine.status(TEAM, "U0ADA"), whose="your", full=True)
    assert f"written on the customer's participant of conversation `{call.conversation_id}`" in status
    assert "Attributes go to the customer's participant of their calls (keys slack.agent.…)." in status
    preview = render.preview(world.engine.preview(TEAM, "U0ADA"), whose="your")
    assert "Written to the customer's participant of their calls" in preview
    assert "`slack.deleted` → `slack.agent.deleted`" in preview


@pytest.mark.parametrize("prefix", ["slack.agent.", "agent_"])
def test_both_writes_the_own_participant_and_the_customers(tmp_path: Path, prefix: str) -> None:
    """both: each person's own participant as today (slack.*) and the customer's under CUSTOMER_KEY_PREFIX; one
    audit row each, naming its target; a second poll writes nothing."""
    with make_world(tmp_path, SyncTarget("both", prefix)) as w:
        ada = w.person("U0ADA", "ada@example.com", "Support Engineer")
        call = w.genesys.start_conversation(ada)
        assert w.engine.poll_once() == 2
        assert w.genesys.attributes(call.conversation_id, call.participant_id)["slack.title"] == "Support Engineer"
        assert w.customer(call)[f"{prefix}title"] == "Support Engineer"
        assert sorted(entry.target for entry in w.store.audit(user_id="U0ADA")) == ["agent", "customer"]
        assert w.engine.poll_once() == 0


def test_agent_default_never_touches_the_customer(tmp_path: Path) -> None:
    """The default target is today's behaviour: the customer participant is never written."""
    with make_world(tmp_path, SyncTarget()) as w:
        call = w.genesys.start_conversation(w.person("U0ADA", "ada@example.com", "Support Engineer"))
        assert w.engine.poll_once() == 1
        assert w.customer(call) == {}
        assert [entry.target for entry in w.store.audit(user_id="U0ADA")] == ["agent"]


def test_on_a_replica_that_does_not_poll_sync_now_leaves_the_customer_to_the_poller(world: World) -> None:
    """/genesys-sync on a replica that does not poll writes no customer participant (it does not see everyone on the
    call) and says the polling replica will."""
    ada = world.person("U0ADA", "ada@example.com", "Support Engineer")
    call = world.genesys.start_conversation(ada)
    world.store.release_lease("genesys-poll", "test")
    assert world.store.take_lease("genesys-poll", "other-replica", ttl_s=60) is not None
    world.restart(poll=False)
    report = world.engine.sync_now(TEAM, "U0ADA")
    assert (report.participants, report.customers_left_to_poller) == ((), 1)
    assert world.customer(call) == {}
    assert "written by the replica of the app that polls Genesys" in SlackText(world.target).sync_report(
        report, whose="your")
