"""App processes on PostgreSQL, the local Slack Web API and the local Genesys Cloud: two replicas, and an outage.

Each replica serves HTTP; Slack's deliveries are spread over both (and some are delivered to both, as a load
balancer retrying would). The proof: every participant is written exactly once per change, one replica polls at
a time, and after the polling replica is killed with SIGKILL the other one finishes the work.
"""

from __future__ import annotations

import collections
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from localdev.app_process import SIGNING_SECRET, Running, launch, wait_for
from localdev.genesys_cloud import FakeGenesysCloud, JoinedParticipant
from localdev.postgres import PostgresServer
from localdev.slack_api import FakeSlack, event_envelope, signed_headers, slash_command_body

PEOPLE = 24


def poller(*apps: Running) -> Running | None:
    """The replica whose /healthz says it polls Genesys."""
    for app in apps:
        if app.process.poll() is None and httpx.get(f"{app.url}/healthz", timeout=5).json()["genesys"]["detail"] \
                == "polling":
            return app
    return None


def carry(genesys: FakeGenesysCloud, participants: list[tuple[str, JoinedParticipant]], title: str) -> bool:
    """Whether participant n carries the title f"{title} {n}"."""
    return all(genesys.attributes(participant.conversation_id,
                                  participant.participant_id).get("slack.title") == f"{title} {n}"
               for n, (_user, participant) in enumerate(participants))


def writes_per_participant(genesys: FakeGenesysCloud) -> collections.Counter[tuple[str, str]]:
    return collections.Counter((p.conversation_id, p.participant_id) for p in genesys.patches)


@pytest.fixture
def people() -> Iterator[tuple[FakeSlack, FakeGenesysCloud, list[tuple[str, JoinedParticipant]]]]:
    with FakeSlack() as slack, FakeGenesysCloud() as genesys:
        participants = []
        for n in range(PEOPLE):
            user_id = f"U0R{n:03d}"
            slack.add_user(user_id, name=f"r{n}", email=f"r{n}@example.com", title=f"Title {n}")
            participants.append((user_id, genesys.start_conversation(genesys.add_user(f"r{n}@example.com"))))
        yield slack, genesys, participants


@pytest.mark.long
def test_two_replicas_write_each_change_once_and_survive_a_sigkill(
        people: tuple[FakeSlack, FakeGenesysCloud, list[tuple[str, JoinedParticipant]]], postgres_url: str,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """A burst spread over two replicas is written once per participant; killing the poller, the other finishes."""
    slack, genesys, participants = people
    first = launch(slack, genesys, tmp_path_factory.mktemp("a"), name="a", database_url=postgres_url)
    second = launch(slack, genesys, tmp_path_factory.mktemp("b"), name="b", database_url=postgres_url)
    apps = (first, second)
    try:
        wait_for(lambda: poller(*apps) is not None, 20, "one replica to take the Genesys poll")
        assert sum(poller(app) is not None for app in apps) == 1
        # Both replicas start on an empty database and queue the workspace's first sync; each person once.
        wait_for(lambda: carry(genesys, participants, "Title"), 40, "the first sync to reach every participant")
        time.sleep(2.5)
        assert set(writes_per_participant(genesys).values()) == {1}, writes_per_participant(genesys)

        # Round 1: each change to one replica, every third to both (a redelivery landing on the other one).
        for n, (user_id, _participant) in enumerate(participants):
            user = slack.update_profile(user_id, title=f"Lead {n}")
            targets = apps if n % 3 == 0 else (apps[n % 2],)
            for app in targets:
                assert app.event({"type": "user_change", "user": user}, event_id=f"EvR1-{n}").status_code == 200
        wait_for(lambda: carry(genesys, participants, "Lead"), 40,
                 f"every participant to carry round 1; logs:\n{first.log()[-2000:]}\n{second.log()[-2000:]}")
        time.sleep(2.5)  # two more polls: nothing is written again
        assert set(writes_per_participant(genesys).values()) == {2}, writes_per_participant(genesys)

        # Round 2: a new burst, and the polling replica is killed while it works through it.
        genesys.set_latency(0.05)  # slow enough that the kill lands mid-burst
        for n, (user_id, _participant) in enumerate(participants):
            user = slack.update_profile(user_id, title=f"Director {n}")
            assert apps[n % 2].event({"type": "user_change", "user": user}, event_id=f"EvR2-{n}").status_code \
                == 200
        victim = poller(*apps)
        assert victim is not None
        survivor = second if victim is first else first
        wait_for(lambda: len(genesys.patches) >= 2 * PEOPLE + 2, 20, "some round-2 writes before the kill")
        victim.process.send_signal(signal.SIGKILL)
        victim.process.wait(timeout=10)
        assert len(genesys.patches) < 3 * PEOPLE, "the kill came too late to prove anything"
        genesys.set_latency(0)
        wait_for(lambda: carry(genesys, participants, "Director"), 60,
                 f"the surviving replica to finish; its log:\n{survivor.log()[-3000:]}")
        time.sleep(2.5)
        assert set(writes_per_participant(genesys).values()) == {3}, writes_per_participant(genesys)
        assert poller(survivor) is survivor
        assert "now polls Genesys" in survivor.log()
    finally:
        for app in apps:
            if app.process.poll() is None:
                app.process.kill()
                app.process.wait(timeout=10)



def test_an_unreachable_database_is_reported_and_survived(postgres_server: PostgresServer, postgres_url: str,
                                                          tmp_path: Path) -> None:
    """With PostgreSQL down: /healthz says so (503), events get 503 for Slack to redeliver, /genesys-sync says to
    retry; once it is back, the redelivered event is written and nothing else is needed."""
    with FakeSlack() as slack, FakeGenesysCloud() as genesys:
        slack.add_user("U0ADA", name="ada", email="ada@example.com", title="Support Engineer")
        participant = genesys.start_conversation(genesys.add_user("ada@example.com"))
        app = launch(slack, genesys, tmp_path, database_url=postgres_url)
        try:
            wait_for(lambda: genesys.attributes(participant.conversation_id,
                                                participant.participant_id).get("slack.title")
                     == "Support Engineer", 20, "the first sync")
            postgres_server.stop("fast")
            try:
                wait_for(lambda: httpx.get(f"{app.url}/healthz", timeout=5).status_code == 503, 10,
                         "/healthz to report the database down")
                assert httpx.get(f"{app.url}/healthz", timeout=5).json()["database"]["ok"] is False
                user = slack.update_profile("U0ADA", title="Night Lead")
                body = json.dumps(event_envelope({"type": "user_change", "user": user}, event_id="EvDown")).encode()
                assert app.post(body).status_code == 503
                url = slack.response_url("down")
                command = slash_command_body("", user_id="U0ADA", response_url=url)
                assert app.post(command, content_type="application/x-www-form-urlencoded").status_code == 200
                wait_for(lambda: bool(slack.responses_to(url)), 10, "the command's answer")
                assert "cannot reach its database" in slack.responses_to(url)[-1]["text"]
            finally:
                postgres_server.start()
            wait_for(lambda: httpx.get(f"{app.url}/healthz", timeout=5).status_code == 200, 20,
                     "/healthz to recover")
            retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_error"}
            assert app.post(body, headers={**signed_headers(SIGNING_SECRET, body), **retry}).status_code == 200
            wait_for(lambda: genesys.attributes(participant.conversation_id,
                                                participant.participant_id).get("slack.title")
                     == "Night Lead", 20, f"the redelivered change to be written; log:\n{app.log()[-3000:]}")
            log_text = app.log()
            assert "the database is unreachable" in log_text
            assert "Traceback" not in log_text
            assert app.process.poll() is None
        finally:
            app.process.send_signal(signal.SIGTERM)
            app.process.wait(timeout=15)


@pytest.mark.long
def test_a_poll_slower_than_the_lease_stays_with_one_replica(
        postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    """With Genesys answering in 12 s, one poll (the query, then a write) outlasts the 15 s lease: the poller renews
    it meanwhile, so the idle replica never polls and the change is written once."""
    with FakeSlack() as slack, FakeGenesysCloud() as genesys:
        participants = []
        for n in range(2):  # two: whichever path writes (the poll, or the claimed item), it takes over 20 s
            slack.add_user(f"U0S{n:03d}", name=f"s{n}", email=f"s{n}@example.com", title=f"Title {n}")
            participants.append((f"U0S{n:03d}", genesys.start_conversation(genesys.add_user(f"s{n}@example.com"))))
        first = launch(slack, genesys, tmp_path_factory.mktemp("a"), name="a", database_url=postgres_url)
        second = launch(slack, genesys, tmp_path_factory.mktemp("b"), name="b", database_url=postgres_url)
        apps = (first, second)
        try:
            wait_for(lambda: poller(*apps) is not None, 20, "one replica to take the Genesys poll")
            wait_for(lambda: carry(genesys, participants, "Title"), 30, "the first sync to reach every participant")
            polling = poller(*apps)
            assert polling is not None
            other = second if polling is first else first
            # The change's refresh stores the new profile and takes the person's stored link (a user search, should
            # one be made, is refused at once: a dead letter, not a 12 s wait): so the other replica stays idle,
            # asking for the poll every second, while the poller writes the stored profile in one slow poll (24 s).
            genesys.fail_for(400, 60, path_prefix="/api/v2/users/search")
            genesys.set_latency(12.0)  # under the client's 15 s read timeout: slow, not failing
            started = time.monotonic()
            for n, (user_id, _participant) in enumerate(participants):
                user = slack.update_profile(user_id, title=f"Slow {n}")
                assert other.event({"type": "user_change", "user": user}, event_id=f"EvSlow-{n}").status_code == 200
            wait_for(lambda: carry(genesys, participants, "Slow"), 90,
                     f"the slow poll to write the change; logs:\n{first.log()[-2000:]}\n{second.log()[-2000:]}")
            took = time.monotonic() - started
            genesys.set_latency(0)
            assert took > 20, f"the changes were written within {took:.0f} s: no poll outlasted the lease"
            assert poller(*apps) is polling
            assert "now polls Genesys" not in other.log()
            assert "lost the Genesys poll lease" not in polling.log()
            assert set(writes_per_participant(genesys).values()) == {2}, writes_per_participant(genesys)
        finally:
            genesys.set_latency(0)
            for app in apps:
                if app.process.poll() is None:
                    app.process.send_signal(signal.SIGTERM)
                    app.process.wait(timeout=15)
