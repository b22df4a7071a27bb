"""The engine's core promises on in-memory Slack and Genesys ports: no HTTP, no sockets, no real waiting.

The store is a real SQLite file (what the engine must not forget is the store's job, tested with it); Slack and
Genesys are the two ports the engine names (`SlackPort`, `GenesysPort`), and time is a fake clock and timer.
The HTTP-level tests (test_engine.py) cover the same paths through the real clients and the local fakes.
"""

from __future__ import annotations

import threading

import pytest

from genesys import GenesysClient
from slack_directory import SlackDirectory, SlackDirectoryError
from sync import AttributeRules
from sync.engine import EngineSettings, GenesysPort, ResyncProgress, SlackPort, SyncEngine
from sync.render import SlackText
from tests.clocks import FakeClock
from tests.sync.memory import TEAM, Memory, MemoryGenesys, MemorySlack


@pytest.mark.parametrize(("port", "implementations"), [
    (SlackPort, (SlackDirectory, MemorySlack)), (GenesysPort, (GenesysClient, MemoryGenesys))])
def test_the_real_clients_and_these_fakes_have_every_method_the_ports_name(port: type,
                                                                        implementations: tuple[type, ...]) -> None:
    """Each port names what the engine calls; the real client and the in-memory fake both provide it."""
    named = {name for name in vars(port) if not name.startswith("_")}
    assert named
    for implementation in implementations:
        assert named <= set(dir(implementation)), implementation


def test_a_change_is_written_once(memory: Memory) -> None:
    """A profile read → one PATCH to the live participant the poll found; later polls write nothing more."""
    memory.slack.add("U0ADA", "ada@example.com", "Support Engineer")
    participant = memory.genesys.on_call("ada@example.com")
    memory.changed("U0ADA")
    assert memory.engine.poll_once() == 1
    assert memory.engine.poll_once() == 0
    [(conversation, participant_id, sent)] = memory.genesys.writes
    assert (conversation, participant_id) == (participant.conversation_id, participant.participant_id)
    assert sent["slack.title"] == "Support Engineer"
    [entry] = memory.store.audit(user_id="U0ADA")
    assert (entry.result, entry.context_id) == ("written", "ctx-1")


def test_an_unchanged_profile_writes_nothing(memory: Memory) -> None:
    """Reading the same profile again, or one whose only change is not mapped (status), sends no PATCH."""
    memory.slack.add("U0ADA", "ada@example.com", "Support Engineer")
    memory.genesys.on_call("ada@example.com")
    memory.changed("U0ADA")
    memory.engine.poll_once()
    memory.changed("U0ADA")
    memory.slack.edit("U0ADA", status_text="Lunch", status_emoji=":sandwich:")
    memory.changed("U0ADA")
    memory.engine.poll_once()
    assert len(memory.genesys.writes) == 1
    memory.slack.edit("U0ADA", title="Team Lead")
    memory.changed("U0ADA")  # a mapped change is written at once to the participant the poll found
    assert [sent["slack.title"] for _c, _p, sent in memory.genesys.writes] == ["Support Engineer", "Team Lead"]


def test_a_failing_read_becomes_a_dead_letter_after_its_attempts(memory: Memory) -> None:
    """A Slack read that keeps failing is retried with back-off, then given up on with the reason; nothing written."""
    memory.slack.add("U0ADA", "ada@example.com", "Support Engineer")
    memory.genesys.on_call("ada@example.com")
    memory.slack.failures = [SlackDirectoryError("users.info", "ratelimited")] * 3
    memory.engine.user_changed(TEAM, {"id": "U0ADA"}, None)
    for delay in (0, 2, 4):  # back-off 2 s, then 4 s (max_attempts=3)
        memory.clock.advance(delay)
        assert memory.engine.work_once() == 1
    [letter] = memory.store.dead_letters()
    assert "ratelimited" in letter.reason
    assert memory.store.pending_count() == 0
    assert memory.genesys.writes == []


def test_a_genesys_outage_is_reported_then_the_first_poll_after_it_writes(memory: Memory) -> None:
    """While the poll fails, genesys_status says so and nothing is written; the next poll that works writes."""
    memory.slack.add("U0ADA", "ada@example.com", "Support Engineer")
    memory.genesys.on_call("ada@example.com")
    memory.changed("U0ADA")
    memory.genesys.down = True
    assert memory.engine.poll_once() == 0
    assert memory.engine.genesys_status().ok is False
    memory.genesys.down = False
    assert memory.engine.poll_once() == 1
    assert memory.engine.genesys_status().ok is True


def test_resync_all_reports_progress_and_a_summary_without_waiting(memory: Memory) -> None:
    """`all` queues everyone and reports as the queue drains, on the engine's timer: no real sleep."""
    for n in range(4):
        memory.slack.add(f"U0P{n}", f"p{n}@example.com", f"Title {n}")
    memory.genesys.on_call("p0@example.com")
    memory.engine.poll_once()
    progress: list[ResyncProgress] = []
    summary = memory.engine.resync_all(TEAM, progress.append, wait_s=60, check_every_s=5)
    assert progress == [ResyncProgress(4)]  # the first check found the queue drained
    assert (summary.queued, summary.pending, summary.written) == (4, 0, 1)
    assert SlackText().resync_summary(summary) == ("Resync finished: 4 people queued, 1 participant write(s) made, "
                                                  "0 dead letter(s) in total.")


def test_the_run_loop_paces_itself_on_the_timer(memory: Memory) -> None:
    """The loop's waits (and its poll lease's heartbeat) go through the timer: with a fake one, a stop set during a
    wait ends the loop at once, and nothing sleeps."""
    stop = threading.Event()
    waits: list[float] = []

    class Stopping(FakeClock):
        def wait(self, event: threading.Event, timeout: float) -> bool:
            waits.append(timeout)
            stop.set()
            return True

    engine = SyncEngine(store=memory.store, genesys=memory.genesys, slack=memory.slack, rules=AttributeRules(),
                        clock=memory.clock, settings=EngineSettings(worker="memory"), timer=Stopping(0.0))
    engine.run(stop)
    assert 0.5 in waits  # the loop's pause between idle turns
    assert 5.0 in waits  # the poll lease's heartbeat: a third of its 15 s
    assert not engine.liveness().running


@pytest.mark.parametrize(("deleted", "in_genesys", "said"), [
    (True, True, "Nothing written for your profile: this user is deactivated, a bot or an app user: not synced."),
    (False, False, "Nothing written for your profile: Genesys Cloud has no user with the e-mail ada@example.com."),
])
def test_sync_now_says_why_nothing_was_written(memory: Memory, deleted: bool, in_genesys: bool, said: str) -> None:
    """The engine reports why as a value; the renderer words it."""
    memory.slack.add("U0ADA", "ada@example.com", "Support Engineer")
    memory.slack.users["U0ADA"]["deleted"] = deleted
    if in_genesys:
        memory.genesys.on_call("ada@example.com")
    report = memory.engine.sync_now(TEAM, "U0ADA")
    assert report.participants == ()
    assert SlackText().sync_report(report, whose="your") == said
    assert memory.genesys.writes == []
