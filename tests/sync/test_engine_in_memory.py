"""The engine's core promises on in-memory Slack and Genesys ports: no HTTP, no sockets, no real waiting.

The store is a real SQLite file (what the engine must not forget is the store's job, tested with it); Slack and
Genesys are the two ports the engine names (`SlackPort`, `GenesysPort`), and time is a fake clock and timer.
The HTTP-level tests (test_engine.py) cover the same paths through the real clients and the local fakes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from genesys import GenesysClient, GenesysUnavailable, GenesysUser, LiveParticipant, VoiceSafeAttributes, WriteResult
from profiles import FieldLabels
from slack_directory import SlackDirectory, SlackDirectoryError, SlackUserRecord
from store import Store, open_store
from sync import AttributeRules
from sync.engine import EngineSettings, GenesysPort, ResyncProgress, SlackPort, SyncEngine
from sync.render import SlackText
from tests.clocks import FakeClock

TEAM = "T0MEM"


class MemorySlack:
    """A `SlackPort` over a dict of user objects; `failures` are raised by the next profile reads, in turn."""

    def __init__(self) -> None:
        self.users: dict[str, dict[str, Any]] = {}
        self.failures: list[Exception] = []
        self.reads = 0

    def add(self, user_id: str, email: str, title: str, *, updated: int = 1) -> None:
        self.users[user_id] = {"id": user_id, "name": user_id.lower(), "updated": updated,
                               "profile": {"email": email, "title": title}}

    def edit(self, user_id: str, **profile: str) -> None:
        user = self.users[user_id]
        user["profile"] = {**user["profile"], **profile}
        user["updated"] += 1

    def user(self, team_id: str, user_id: str) -> SlackUserRecord:
        self.reads += 1
        if self.failures:
            raise self.failures.pop(0)
        if user_id not in self.users:
            raise SlackDirectoryError("users.info", "user_not_found")
        return SlackUserRecord.of(team_id, user_id, self.users[user_id])

    def labels(self, team_id: str) -> FieldLabels:
        return FieldLabels.empty()

    def user_ids(self, team_id: str) -> Iterator[str]:
        return iter(list(self.users))

    def forget(self, team_id: str) -> None:
        pass


@dataclass
class MemoryGenesys:
    """A `GenesysPort` over dicts: users by e-mail, live participants, and every write in `writes`."""

    users: dict[str, GenesysUser] = field(default_factory=dict)
    live: list[LiveParticipant] = field(default_factory=list)
    attributes: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    writes: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    down: bool = False

    def on_call(self, email: str, conversation_id: str = "c1") -> LiveParticipant:
        user = self.users.setdefault(email, GenesysUser(f"g-{email}", email, email, "active"))
        participant = LiveParticipant(conversation_id, f"p-{conversation_id}", user.id, "voice")
        self.live.append(participant)
        return participant

    def find_user_by_email(self, email: str) -> GenesysUser | None:
        return self.users.get(email)

    def live_participants(self, user_id: str) -> tuple[LiveParticipant, ...]:
        return tuple(p for p in self.live if p.user_id == user_id)

    def org_live_participants(self) -> tuple[LiveParticipant, ...]:
        if self.down:
            raise GenesysUnavailable("polling live conversations", "Genesys Cloud answered 503", status=503)
        return tuple(self.live)

    def write_attributes(self, conversation_id: str, participant_id: str,
                         attributes: VoiceSafeAttributes) -> WriteResult:
        sent = dict(attributes.attributes)
        self.writes.append((conversation_id, participant_id, sent))
        self.attributes.setdefault((conversation_id, participant_id), {}).update(sent)
        return WriteResult(conversation_id, participant_id, 202, f"ctx-{len(self.writes)}")

    def participant_attributes(self, conversation_id: str, participant_id: str) -> Mapping[str, str] | None:
        return self.attributes.get((conversation_id, participant_id))


class DrainingTimer(FakeClock):
    """A fake timer whose sleeps let the engine work: what the background loop would do meanwhile, on this thread."""

    def __init__(self, engine: list[SyncEngine]) -> None:
        super().__init__(0.0)
        self._engine = engine

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        while self._engine[0].work_once():
            pass

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """The item leases' heartbeat waits here, on its own thread: until `work_once` stops it, never spinning."""
        return event.wait(timeout)


@dataclass
class Memory:
    slack: MemorySlack
    genesys: MemoryGenesys
    store: Store
    clock: FakeClock
    engine: SyncEngine

    def changed(self, user_id: str) -> None:
        self.engine.user_changed(TEAM, {"id": user_id}, None)
        while self.engine.work_once():
            pass


@pytest.fixture
def memory(tmp_path: Path) -> Iterator[Memory]:
    clock = FakeClock(1_700_000_000.0)
    store = open_store(f"sqlite:///{tmp_path}/sync.db", clock=clock)
    slack, genesys = MemorySlack(), MemoryGenesys()
    engine_box: list[SyncEngine] = []
    engine = SyncEngine(store=store, genesys=genesys, slack=slack, rules=AttributeRules(), clock=clock,
                        settings=EngineSettings(worker="memory", max_attempts=3), timer=DrainingTimer(engine_box))
    engine_box.append(engine)
    yield Memory(slack, genesys, store, clock, engine)
    store.close()


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
