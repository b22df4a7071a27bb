"""E-mail → Genesys user links shared through the store (issue 13): replicas search Genesys for a person once.

Two engines on one database (SQLite file, and PostgreSQL as replicas run), each with its own Genesys client,
against the local Slack and Genesys Cloud; the fake counts the user searches. Time is the engines' and stores'
clock seam, moved by the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from genesys import ClientCredentials, GenesysClient, GenesysEndpoints, RetryPolicy
from localdev.genesys_cloud import FakeGenesysCloud
from localdev.slack_api import FakeSlack
from slack_directory import SlackDirectory
from store import Store, open_store
from sync import AttributeRules
from sync.engine import EngineSettings, SyncEngine
from tests.clocks import FakeClock

TEAM = "T0FAKE"
SEARCH = "/api/v2/users/search"
SETTINGS = EngineSettings()


@dataclass
class Replicas:
    slack: FakeSlack
    genesys: FakeGenesysCloud
    clock: FakeClock
    stores: list[Store]
    engines: list[SyncEngine]

    def refresh(self, replica: int, user_id: str = "U0ADA") -> None:
        """A profile change of `user_id` handled by one replica (the queue is shared: that replica runs it)."""
        engine = self.engines[replica]
        assert engine.user_changed(TEAM, self.slack.user(user_id), None)
        while engine.work_once():
            pass

    def searches(self) -> int:
        return self.genesys.request_count("POST", SEARCH)

    def linked(self, user_id: str = "U0ADA") -> str | None:
        link = self.stores[0].genesys_user_for(TEAM, user_id)
        assert link is not None
        return link.genesys_user_id


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/sync.db"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def replicas(database_url: str) -> Iterator[Replicas]:
    clock = FakeClock(1_700_000_000.0)
    with FakeSlack() as slack, FakeGenesysCloud() as genesys:
        web = SlackDirectory.web_client("xoxb-fake-bot-token", slack.api_url)
        stores, clients, engines = [], [], []
        for n in (1, 2):
            stores.append(open_store(database_url, clock=clock))
            clients.append(GenesysClient(ClientCredentials("fake-client-id", "fake-client-secret"),
                                         GenesysEndpoints(genesys.base_url, genesys.base_url),
                                         retry_policy=RetryPolicy(max_attempts=2, max_total_s=2)))
            engines.append(SyncEngine(store=stores[-1], genesys=clients[-1],
                                      slack=SlackDirectory(lambda team_id: web), rules=AttributeRules(),
                                      settings=EngineSettings(worker=f"replica-{n}"), clock=clock))
        try:
            yield Replicas(slack, genesys, clock, stores, engines)
        finally:
            for client in clients:
                client.close()
            for store in stores:
                store.close()


def test_another_replica_uses_the_link_without_searching(replicas: Replicas) -> None:
    """A person linked by one replica is not searched for by the other, which writes to their call all the same."""
    replicas.slack.add_user("U0ADA", name="ada", email="ada@example.com", title="Support Engineer")
    genesys_user = replicas.genesys.add_user("ada@example.com")
    replicas.refresh(0)
    assert (replicas.searches(), replicas.linked()) == (1, genesys_user)
    participant = replicas.genesys.start_conversation(genesys_user)
    replicas.slack.update_profile("U0ADA", title="Team Lead")
    replicas.refresh(1)
    assert replicas.searches() == 1
    assert replicas.engines[1].poll_once() == 1
    written = replicas.genesys.attributes(participant.conversation_id, participant.participant_id)
    assert written["slack.title"] == "Team Lead"


@pytest.mark.parametrize(("email", "searched"), [
    ("ada.lovelace@example.com", True),
    (" ADA@Example.com", False),  # the same address as Genesys compares them: trimmed, ignoring case
])
def test_a_changed_email_searches_again(replicas: Replicas, email: str, searched: bool) -> None:
    """A new e-mail in Slack is searched for by the next replica to read the profile; a new spelling is not."""
    replicas.slack.add_user("U0ADA", name="ada", email="ada@example.com", title="Support Engineer")
    first = replicas.genesys.add_user("ada@example.com")
    replicas.refresh(0)
    second = replicas.genesys.add_user("ada.lovelace@example.com")
    replicas.slack.update_profile("U0ADA", email=email)
    replicas.refresh(1)
    assert (replicas.searches(), replicas.linked()) == ((2, second) if searched else (1, first))


def test_an_old_link_is_resolved_again_after_the_trust_period(replicas: Replicas) -> None:
    """A link older than link_trust_s is searched again, so a replaced Genesys account is linked instead."""
    replicas.slack.add_user("U0ADA", name="ada", email="ada@example.com", title="Support Engineer")
    old = replicas.genesys.add_user("ada@example.com", state="inactive")
    replicas.refresh(0)
    new = replicas.genesys.add_user("ada@example.com")  # her new account; the old one stays, inactive
    replicas.clock.advance(SETTINGS.link_trust_s - 1)
    replicas.refresh(1)
    assert (replicas.searches(), replicas.linked()) == (1, old)
    replicas.clock.advance(2)
    replicas.refresh(1)
    assert (replicas.searches(), replicas.linked()) == (2, new)
    replicas.refresh(0)
    assert replicas.searches() == 2  # resolved again: trusted for another period, by both


def test_a_miss_is_shared_for_a_while_then_searched_again(replicas: Replicas) -> None:
    """"No Genesys user" spares the other replica a search for missing_link_trust_s; the person added to Genesys
    meanwhile is found by the first profile read after it."""
    replicas.slack.add_user("U0ADA", name="ada", email="ada@example.com", title="Support Engineer")
    replicas.refresh(0)
    assert (replicas.searches(), replicas.linked()) == (1, None)
    genesys_user = replicas.genesys.add_user("ada@example.com")
    replicas.clock.advance(SETTINGS.missing_link_trust_s - 1)
    replicas.refresh(1)
    assert (replicas.searches(), replicas.linked()) == (1, None)
    replicas.clock.advance(2)
    replicas.refresh(1)
    assert (replicas.searches(), replicas.linked()) == (2, genesys_user)


def test_sync_now_trusts_a_link_but_not_a_miss(replicas: Replicas) -> None:
    """/genesys-sync searches again when the stored answer is "none" (the person asking may just have been added
    to Genesys), and uses a stored link like the worker does."""
    replicas.slack.add_user("U0ADA", name="ada", email="ada@example.com", title="Support Engineer")
    replicas.refresh(0)
    genesys_user = replicas.genesys.add_user("ada@example.com")
    participant = replicas.genesys.start_conversation(genesys_user)
    report = replicas.engines[1].sync_now(TEAM, "U0ADA")
    assert (replicas.searches(), report.genesys_user_id) == (2, genesys_user)
    report = replicas.engines[0].sync_now(TEAM, "U0ADA")
    assert (replicas.searches(), report.genesys_user_id) == (2, genesys_user)
    assert [result.result for result in report.participants] == ["unchanged"]
    written = replicas.genesys.attributes(participant.conversation_id, participant.participant_id)
    assert written["slack.title"] == "Support Engineer"


def test_a_conflict_is_shared_like_a_miss(replicas: Replicas) -> None:
    """The second Slack user with one Genesys user's e-mail stays unlinked (the first link stays); the other
    replica does not search for them again within missing_link_trust_s."""
    replicas.slack.add_user("U0ADA", name="ada", email="ada@example.com", title="Support Engineer")
    replicas.slack.add_user("U0TWO", name="two", email="ada@example.com", title="Impostor")
    genesys_user = replicas.genesys.add_user("ada@example.com")
    replicas.refresh(0)
    replicas.refresh(0, "U0TWO")
    conflict = replicas.stores[1].link_conflict(TEAM, "U0TWO")
    assert conflict is not None
    assert (conflict.holder_user_id, replicas.linked(), replicas.linked("U0TWO")) == ("U0ADA", genesys_user, None)
    replicas.refresh(1, "U0TWO")
    assert replicas.searches() == 2
    assert replicas.stores[1].link_conflict(TEAM, "U0TWO") == conflict
