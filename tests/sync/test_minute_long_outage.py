"""A minute-long Genesys outage on a fake clock: the engine's own loop, the real Genesys client with its production
retry policy, a SQLite store, the local Slack and the local Genesys Cloud, all on one clock that the loop's waits
move, so a minute of outage takes well under a second."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from genesys import ClientCredentials, GenesysClient, GenesysEndpoints
from localdev.genesys_cloud import FakeGenesysCloud
from localdev.slack_api import FakeSlack
from slack_directory import SlackDirectory
from store import Store, open_store
from sync import AttributeRules
from sync.engine import EngineSettings, SyncEngine
from tests.clocks import FakeClock

OUTAGE_S = 60.0
TEAM = "T0FAKE"


class LoopClock(FakeClock):
    """The engine's clock and timer, with its loop run on the test's thread: the loop's waits (and the Genesys
    client's retry sleeps, on the same thread) move the clock at once; the lease heartbeats' waits, on threads of
    their own, are real ones that the end of their work cuts short. Before each wait of the loop, `stop_when` is
    asked; once it holds, the loop is stopped."""

    def __init__(self, start: float) -> None:
        super().__init__(start)
        self.stop_when: Callable[[], bool] = lambda: True
        self.stop = threading.Event()
        self._loop_thread = threading.current_thread()

    def wait(self, event: threading.Event, timeout: float) -> bool:
        if threading.current_thread() is not self._loop_thread:
            return event.wait(timeout)
        if self.stop_when():
            self.stop.set()  # the loop sees it when this wait returns
            return True
        return super().wait(event, timeout)

    def run_until(self, engine: SyncEngine, condition: Callable[[], bool], *, at_most_s: float) -> None:
        """Run the engine's loop until `condition` holds; fail if it does not within `at_most_s` of fake time."""
        deadline = self() + at_most_s
        self.stop_when = lambda: condition() or self() >= deadline
        self.stop.clear()
        engine.run(self.stop)
        assert condition(), f"not within {at_most_s} s of fake time"


@dataclass
class World:
    slack: FakeSlack
    genesys: FakeGenesysCloud
    store: Store
    clock: LoopClock
    engine: SyncEngine


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    clock = LoopClock(1_700_000_000.0)
    with FakeSlack() as slack, FakeGenesysCloud(clock=clock) as genesys:
        store = open_store(f"sqlite:///{tmp_path}/sync.db", clock=clock)
        # The retry policy the app uses (the default); only its sleeps are the fake clock's.
        client = GenesysClient(ClientCredentials(genesys.client_id, genesys.client_secret),
                               GenesysEndpoints(genesys.base_url, genesys.base_url), clock=clock, sleep=clock.sleep)
        web = SlackDirectory.web_client("xoxb-fake-bot-token", slack.api_url)
        # Polling every second, as the process tests' app does.
        engine = SyncEngine(store=store, genesys=client, slack=SlackDirectory(lambda team_id: web),
                            rules=AttributeRules(), clock=clock, timer=clock,
                            settings=EngineSettings(worker="test", poll_interval_s=1.0))
        yield World(slack, genesys, store, clock, engine)
        client.close()
        store.close()


def test_a_minute_long_genesys_outage_delays_writes_but_loses_none(world: World,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    """Genesys answering 503 for a minute, longer than a call's retries: a change made then is written once the
    outage ends, once, after the engine put the work back in the queue and tried it again."""
    caplog.set_level(logging.DEBUG)
    world.slack.add_user("U0ADA", name="ada", real_name="Ada Lovelace", email="ada@example.com",
                         title="Support Engineer")
    leg = world.genesys.start_conversation(world.genesys.add_user("ada@example.com", name="Ada Lovelace"))
    world.genesys.fail_for(503, OUTAGE_S, path_prefix="/api/v2/")
    started = world.clock()
    changed = world.slack.update_profile("U0ADA", title="Written after the outage")
    assert world.engine.user_changed(TEAM, changed, "EvOutage")

    def written_two_polls_ago() -> bool:
        return bool(world.genesys.patches) and world.clock() >= world.genesys.patches[0].at + 2.5

    world.clock.run_until(world.engine, written_two_polls_ago, at_most_s=120)
    [patch] = world.genesys.patches  # and the two polls since wrote nothing more
    assert patch.at >= started + OUTAGE_S
    assert (patch.conversation_id, patch.participant_id) == (leg.conversation_id, leg.participant_id)
    assert patch.attributes["slack.title"] == "Written after the outage"

    # The outage outlasted the Genesys client's retries: the queue carried the change, and nothing was lost.
    assert any("failed (attempt 1), retrying in" in record.getMessage() for record in caplog.records)
    assert world.store.pending_count() == 0
    assert world.store.dead_letters() == []
    assert [record for record in caplog.records if record.exc_info] == []
