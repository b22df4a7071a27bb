"""Leases that hold under slow work, and writes to one participant that keep their order (issue 11 part 5).

Engines share one SQLite store (as replicas share PostgreSQL; the store's own tests cover both) and talk to the
local Slack and Genesys Cloud, slowed by their latency injection. Where the interleaving must be exact, a Genesys
port wraps the real client (the engine takes its port through a seam) and holds one write back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import pytest

from genesys import (
    ClientCredentials,
    GenesysClient,
    GenesysEndpoints,
    GenesysUser,
    LiveParticipant,
    RetryPolicy,
    VoiceSafeAttributes,
    VoiceSafeLimits,
    WriteResult,
)
from localdev.genesys_cloud import FakeGenesysCloud, JoinedParticipant
from localdev.slack_api import FakeSlack
from slack_directory import SlackDirectory
from store import Store, open_store
from sync import AttributeRules
from sync.engine import EngineSettings, SyncEngine, attributes_hash
from sync.leases import Heartbeat
from tests.clocks import FakeClock

WriteHook = Callable[[str, VoiceSafeAttributes], None]


class HookedGenesys:
    """The real Genesys client with a hook run before and after each write (to hold one back, or act between)."""

    def __init__(self, client: GenesysClient, *, before: WriteHook | None = None,
                 after: WriteHook | None = None) -> None:
        self._client, self._before, self._after = client, before, after

    def find_user_by_email(self, email: str) -> GenesysUser | None:
        return self._client.find_user_by_email(email)

    def live_participants(self, user_id: str) -> tuple[LiveParticipant, ...]:
        return self._client.live_participants(user_id)

    def org_live_participants(self) -> tuple[LiveParticipant, ...]:
        return self._client.org_live_participants()

    def participant_attributes(self, conversation_id: str, participant_id: str) -> Mapping[str, str] | None:
        return self._client.participant_attributes(conversation_id, participant_id)

    def write_attributes(self, conversation_id: str, participant_id: str,
                         attributes: VoiceSafeAttributes) -> WriteResult:
        if self._before is not None:
            self._before(participant_id, attributes)
        result = self._client.write_attributes(conversation_id, participant_id, attributes)
        if self._after is not None:
            self._after(participant_id, attributes)
        return result


@dataclass
class Replicas:
    slack: FakeSlack
    genesys: FakeGenesysCloud
    store: Store
    clients: list[GenesysClient]
    engines: list[SyncEngine]

    def client(self) -> GenesysClient:
        client = GenesysClient(ClientCredentials("fake-client-id", "fake-client-secret"),
                               GenesysEndpoints(self.genesys.base_url, self.genesys.base_url),
                               retry_policy=RetryPolicy(max_attempts=2, max_total_s=2, default_wait_s=0.1,
                                                        backoff_initial_s=0.05, backoff_max_s=0.1, jitter_s=0))
        self.clients.append(client)
        return client

    def engine(self, worker: str, *, hooks: Mapping[str, WriteHook] | None = None, rules: AttributeRules | None = None,
               clock: Callable[[], float] = time.time, **settings: float) -> SyncEngine:
        """A replica: its own engine and Genesys client on the shared store and fakes."""
        web = SlackDirectory.web_client("xoxb-fake-bot-token", self.slack.api_url)
        engine = SyncEngine(store=self.store, genesys=HookedGenesys(self.client(), **(hooks or {})),
                            slack=SlackDirectory(lambda team_id: web), rules=rules or AttributeRules(),
                            settings=EngineSettings(worker=worker, **settings), clock=clock)  # type: ignore[arg-type]
        self.engines.append(engine)
        return engine

    def on_call(self, n: int, title: str = "Agent") -> JoinedParticipant:
        self.slack.add_user(f"U0P{n:03d}", name=f"p{n}", email=f"p{n}@example.com", title=f"{title} {n}")
        return self.genesys.start_conversation(self.genesys.add_user(f"p{n}@example.com"))

    def refresh(self, engine: SyncEngine, user_id: str) -> None:
        engine.user_changed("T0FAKE", self.slack.user(user_id), None)
        while engine.work_once():
            pass


def make_replicas(tmp_path: Path, clock: Callable[[], float]) -> Iterator[Replicas]:
    with FakeSlack() as slack, FakeGenesysCloud() as genesys:
        store = open_store(f"sqlite:///{tmp_path}/sync.db", clock=clock)
        replicas = Replicas(slack, genesys, store, [], [])
        yield replicas
        for engine in replicas.engines:
            stopped = threading.Event()
            stopped.set()
            engine.run(stopped)  # stops its heartbeat and lets go of its lease
        for client in replicas.clients:
            client.close()
        store.close()


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[Replicas]:
    yield from make_replicas(tmp_path, time.time)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_700_000_000.0)


@pytest.fixture
def replicas_on_a_fake_clock(tmp_path: Path, clock: FakeClock) -> Iterator[Replicas]:
    yield from make_replicas(tmp_path, clock)


T = TypeVar("T")


def in_thread(work: Callable[[], object]) -> threading.Thread:
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def meanwhile(work: Callable[[], object], other: Callable[[], T], *,
              head_start_s: float = 0.0) -> tuple[list[T], float]:
    """Run `work` in a thread and, after `head_start_s`, `other` every 50 ms until it ends: what `other` returned
    each time, and how long `work` took."""
    started = time.monotonic()
    working = in_thread(work)
    time.sleep(head_start_s)
    seen = []
    while working.is_alive():
        seen.append(other())
        time.sleep(0.05)
    return seen, time.monotonic() - started


# --- The poll lease ------------------------------------------------------------------------------------------------


def test_a_poll_longer_than_the_lease_keeps_it_from_other_replicas(replicas: Replicas) -> None:
    """A poll three times the lease's length: renewed by its heartbeat, the second replica never gets to poll."""
    lease = {"poll_lease_s": 0.6}
    first, second = replicas.engine("first", **lease), replicas.engine("second", **lease)
    participants = [replicas.on_call(n) for n in range(5)]
    for n in range(5):
        replicas.refresh(first, f"U0P{n:03d}")
    assert first.take_poll_turn()
    replicas.genesys.set_latency(0.3)  # the query and five writes: about 2 s
    second_turns, took = meanwhile(first.poll_once, second.take_poll_turn)
    replicas.genesys.set_latency(0)
    assert took > 3 * 0.6, f"the poll took {took:.1f} s: not longer than the lease, so it proves nothing"
    assert True not in second_turns
    assert len(replicas.genesys.patches) == len(participants)
    assert first.take_poll_turn()  # still the first's tenure: the next poll goes on where it left off


def test_a_replica_whose_poll_lease_was_taken_stops_before_its_next_write(
        replicas_on_a_fake_clock: Replicas, clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    """The first write lands; then the lease moves to another replica (a pause past it): no further write, one line."""
    world = replicas_on_a_fake_clock
    second = world.engine("second", clock=clock)

    def pause_past_the_lease(_participant: str, _attributes: VoiceSafeAttributes) -> None:
        if len(world.genesys.patches) == 1:
            clock.advance(20)  # the first replica paused (GC, a stalled host) for longer than its 15 s lease
            assert second.take_poll_turn()

    first = world.engine("first", clock=clock, hooks={"after": pause_past_the_lease})
    for n in range(4):
        world.on_call(n)
        world.refresh(first, f"U0P{n:03d}")
    assert first.take_poll_turn()
    caplog.set_level(logging.INFO, logger="sync.engine")
    assert first.poll_once() == 1
    assert len(world.genesys.patches) == 1
    assert first.polling is False
    lines = [m for m in caplog.messages if "lost the Genesys poll lease" in m]
    assert len(lines) == 1, lines
    assert "3 participant(s) left to the poller" in lines[0]
    assert second.poll_once() == 3  # the new poller writes the rest, each once
    assert len(world.genesys.patches) == 4


# --- Work item leases ----------------------------------------------------------------------------------------------


def test_a_slow_slack_read_keeps_its_item_and_counts_no_failed_attempt(replicas: Replicas) -> None:
    """An item whose Slack reads outlast its lease: renewed, so no other worker takes it and it is read once."""
    lease = {"lease_s": 0.5}
    first, second = replicas.engine("first", **lease), replicas.engine("second", **lease)
    replicas.slack.add_user("U0SLOW", name="slow", email="slow@example.com", title="Agent")
    first.user_changed("T0FAKE", replicas.slack.user("U0SLOW"), None)
    replicas.slack.set_latency(0.4)  # a profile read, the field labels, the user: well past 0.5 s
    ran: list[int] = []
    # After 0.2 s the first worker has claimed the item (a claim takes milliseconds) and is reading Slack.
    taken, took = meanwhile(lambda: ran.append(first.work_once()), second.work_once, head_start_s=0.2)
    replicas.slack.set_latency(0)
    assert took > 2 * 0.5, f"the item took {took:.1f} s: not longer than its lease, so it proves nothing"
    assert ran == [1]
    assert set(taken) == {0}
    assert replicas.slack.call_count("users.profile.get") == 1
    assert replicas.store.pending_count() == 0
    assert replicas.store.dead_letter_count() == 0


# --- Writes to one participant keep their order -------------------------------------------------------------------


@pytest.mark.parametrize("newer_by", ["sync_now", "poll"])
def test_an_older_profile_written_late_never_stays_after_a_newer_one(replicas: Replicas, newer_by: str) -> None:
    """/genesys-sync sends the old profile, held back while another replica writes the new one: the new one lands
    last (the old write's record is refused, and it re-decides)."""
    participant = replicas.on_call(0, title="Old")
    new_recorded = threading.Event()

    def hold_the_old_write(_participant: str, attributes: VoiceSafeAttributes) -> None:
        if attributes.attributes.get("slack.title") == "Old 0":
            assert new_recorded.wait(20)

    slow = replicas.engine("slow", hooks={"before": hold_the_old_write})
    fast = replicas.engine("fast")
    old_sync = in_thread(lambda: slow.sync_now("T0FAKE", "U0P000"))
    deadline = time.monotonic() + 10
    while replicas.store.desired("T0FAKE", "U0P000") is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)  # the old write is decided and held
    replicas.slack.update_profile("U0P000", title="New 0")
    if newer_by == "sync_now":
        fast.sync_now("T0FAKE", "U0P000")
    else:
        replicas.refresh(fast, "U0P000")
        assert fast.poll_once() == 1
    new_recorded.set()
    old_sync.join(20)
    titles = [patch.attributes["slack.title"] for patch in replicas.genesys.patches]
    assert titles[:2] == ["New 0", "Old 0"], titles  # the interleaving under test happened
    assert titles[-1] == "New 0"
    assert replicas.genesys.attributes(participant.conversation_id,
                                       participant.participant_id)["slack.title"] == "New 0"
    row = replicas.store.desired("T0FAKE", "U0P000")
    assert row is not None
    assert replicas.store.last_written(participant.conversation_id, participant.participant_id) == row.attributes_hash
    assert fast.poll_once() == 0  # and nothing is left to do


def test_sync_now_writes_the_profile_the_store_kept(replicas: Replicas) -> None:
    """A Slack answer older than the stored profile is refused by the store, and /genesys-sync writes the stored one."""
    engine = replicas.engine("only")
    participant = replicas.on_call(0, title="Read")
    replicas.refresh(engine, "U0P000")
    stored = replicas.store.desired("T0FAKE", "U0P000")
    assert stored is not None
    assert stored.profile_updated is not None
    newer = {**stored.attributes, "slack.title": "Newer"}
    replicas.store.save_desired(replace(stored, attributes=newer, attributes_hash=attributes_hash(newer),
                                        profile_updated=stored.profile_updated + 3600))
    report = engine.sync_now("T0FAKE", "U0P000")  # Slack still answers the older profile
    assert [result.result for result in report.participants] == ["written"]
    assert replicas.genesys.attributes(participant.conversation_id,
                                       participant.participant_id)["slack.title"] == "Newer"


# --- The read-back after a restart ---------------------------------------------------------------------------------


@pytest.mark.parametrize("saved_under_chars", [40, 256])
def test_a_truncated_write_confirmed_after_a_restart_is_not_sent_again(replicas: Replicas,
                                                                       saved_under_chars: int) -> None:
    """A value cut to the voice-safe limit, sent just before a crash: after the restart the read-back compares
    the map that was sent, so it confirms instead of sending again (also for a profile saved under other limits)."""
    def rules(chars: int) -> AttributeRules:
        return AttributeRules(voice_safe=VoiceSafeLimits(max_value_chars=chars))

    replicas.slack.add_user("U0LONG", name="long", email="long@example.com", title="T" * 100)
    participant = replicas.genesys.start_conversation(replicas.genesys.add_user("long@example.com"))
    replicas.refresh(replicas.engine("reader", rules=rules(saved_under_chars)), "U0LONG")
    before_crash = replicas.engine("before-crash", rules=rules(40))
    assert before_crash.poll_once() == 1
    assert len(replicas.genesys.attributes(participant.conversation_id,
                                           participant.participant_id)["slack.title"]) == 40
    row = replicas.store.desired("T0FAKE", "U0LONG")
    assert row is not None
    # The crash: the PATCH landed, its outcome was never recorded (the intent is what a crash leaves behind).
    replicas.store.intend_write(participant.conversation_id, participant.participant_id, row.attributes_hash)
    replicas.store.forget_written(participant.conversation_id, participant.participant_id)
    after_restart = replicas.engine("after-restart", rules=rules(40))
    after_restart.poll_once()
    assert len(replicas.genesys.patches) == 1
    assert replicas.store.last_written(participant.conversation_id, participant.participant_id) == row.attributes_hash
    assert replicas.store.write_intents() == []


# --- The heartbeat itself ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("progressing", "held", "renewed", "lost"), [
    (True, True, True, False),
    (True, False, True, True),
    (False, True, False, False),
])
def test_the_heartbeat_renews_only_while_the_work_progresses(progressing: bool, held: bool, renewed: bool,
                                                             lost: bool) -> None:
    """It renews while the worker turns, reports a lease found gone, and lets a stuck worker's lease run out."""
    renewals: list[float] = []
    timer = BeatsThenBlocks(5)

    def renew() -> bool:
        renewals.append(timer.monotonic())
        if not held:
            timer.settled.set()  # a lost lease ends the beat: no further wait to signal it
        return held

    with Heartbeat("a test lease", renew, 20.0, progressing=lambda: progressing, timer=timer) as heartbeat:
        assert timer.settled.wait(10)
    assert bool(renewals) is renewed
    assert heartbeat.lost is lost
    if lost:
        assert len(renewals) == 1  # a lost lease is not renewed again
    elif renewed:
        assert renewals == [20.0, 40.0, 60.0, 80.0, 100.0]  # one beat per period of the timer, none in between


class BeatsThenBlocks(FakeClock):
    """A timer whose first `beats` waits pass at once (moving the clock a period each), then wait for real: the
    heartbeat beats that often with no sleeping, and `settled` is set once it stopped beating."""

    def __init__(self, beats: int) -> None:
        super().__init__(0.0)
        self.beats = beats
        self.settled = threading.Event()

    def wait(self, event: threading.Event, timeout: float) -> bool:
        if self.beats > 0:
            self.beats -= 1
            return super().wait(event, timeout)
        self.settled.set()
        return event.wait()
