"""The engine with Genesys' notifications: what a notification makes it write, and how push paces the poll.

Push is an in-memory `PushPort` here (the real pool and the local Genesys' notifications are tested in
tests/genesys/test_notifications.py and, with the app as a whole, tests/test_push.py).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace

import pytest

from genesys import ConversationSeen, LiveParticipant, PushState
from store import Store
from sync import AttributeRules, SyncTarget
from sync.engine import EngineSettings, PushPort, PushStatus, SyncEngine
from sync.render import SlackText
from sync.timer import Timer
from tests.clocks import FakeClock, RealWaits
from tests.sync.memory import TEAM, Memory, MemoryGenesys, MemorySlack


@dataclass
class MemoryPush:
    """A `PushPort` the test drives: `healthy` decides its state; `notify`/`reconnected` call the engine back."""

    on_conversation: Callable[[ConversationSeen], None]
    on_connected: Callable[[], None]
    healthy: bool = True
    started: bool = False
    stopped: bool = False
    followed: list[frozenset[str]] = field(default_factory=list)

    def start(self) -> None:
        self.started = True

    def follow(self, user_ids: Collection[str]) -> None:
        self.followed.append(frozenset(user_ids))

    def stop(self) -> None:
        self.stopped = True

    def state(self) -> PushState:
        topics = len(self.followed[-1]) if self.followed else 0
        return PushState(connected=self.healthy, channels=1, topics=topics, rejected=0, uncovered=0, pending=0,
                         since_last_message_s=0.0, fallback_reason=None if self.healthy else "the socket is down",
                         missing_permissions=())

    def notify(self, user_id: str, conversation_id: str, *live: LiveParticipant) -> None:
        self.on_conversation(ConversationSeen(user_id, conversation_id, live))


class Pools:
    """The push factory the engine is given: it keeps every pool it built (one per tenure of the poll lease)."""

    def __init__(self) -> None:
        self.built: list[MemoryPush] = []

    def __call__(self, *, on_conversation: Callable[[ConversationSeen], None],
                 on_connected: Callable[[], None]) -> PushPort:
        self.built.append(MemoryPush(on_conversation, on_connected))
        return self.built[-1]

    @property
    def current(self) -> MemoryPush:
        return self.built[-1]


def _engine(memory: Memory, pools: Pools, timer: Timer | None = None, *, pushed_memory_s: float = 300.0
            ) -> SyncEngine:
    """An engine with push; the poll lease's heartbeat waits for real, so the fake clock moves only when told."""
    return SyncEngine(store=memory.store, genesys=memory.genesys, slack=memory.slack, rules=AttributeRules(),
                      clock=memory.clock, settings=EngineSettings(worker="push", pushed_memory_s=pushed_memory_s),
                      timer=timer or RealWaits(memory.clock), push=pools)


def _linked(memory: Memory, engine: SyncEngine, user_id: str = "U0ADA", email: str = "ada@example.com",
            title: str = "Support Engineer") -> str:
    """A Slack user read and linked (no call yet); returns their Genesys user id."""
    memory.slack.add(user_id, email, title)
    genesys_user_id = memory.genesys.on_call(email, conversation_id="setup").user_id
    memory.genesys.live.clear()
    engine.user_changed(TEAM, {"id": user_id}, None)
    while engine.work_once():
        pass
    return genesys_user_id


def _call(user_id: str, conversation_id: str = "c1") -> LiveParticipant:
    return LiveParticipant(conversation_id, f"p-{conversation_id}", user_id, "voice")


@pytest.fixture
def pools() -> Pools:
    return Pools()


def test_the_replica_that_polls_starts_push_and_follows_linked_people(memory: Memory, pools: Pools) -> None:
    """Taking the poll lease starts a pool; it is handed every linked person with a profile, nobody else."""
    engine = _engine(memory, pools)
    ada = _linked(memory, engine)
    memory.slack.add("U0BOB", "bob@example.com", "Agent")  # read, but Genesys has no such user: not followed
    engine.user_changed(TEAM, {"id": "U0BOB"}, None)
    while engine.work_once():
        pass
    assert not pools.built
    assert engine.take_poll_turn()
    assert pools.current.started
    assert engine.follow_linked() == 1
    assert pools.current.followed == [frozenset({ada})]


def test_a_burst_of_notifications_for_one_call_costs_one_write(memory: Memory, pools: Pools) -> None:
    """Five notifications of one conversation → one PATCH; the same again → none (same decision as the poll's)."""
    engine = _engine(memory, pools)
    ada = _linked(memory, engine)
    engine.take_poll_turn()
    for _ in range(5):
        pools.current.notify(ada, "c1", _call(ada))
    assert engine.write_notified() == 1
    [(conversation, participant, sent)] = memory.genesys.writes
    assert (conversation, participant, sent["slack.title"]) == ("c1", "p-c1", "Support Engineer")
    pools.current.notify(ada, "c1", _call(ada))
    assert engine.write_notified() == 0
    [entry] = memory.store.audit(user_id="U0ADA")
    assert entry.result == "written"


def test_a_notification_of_someone_not_linked_writes_nothing(memory: Memory, pools: Pools) -> None:
    """A conversation of a Genesys user with no Slack profile stored: nothing to write, nothing sent."""
    engine = _engine(memory, pools)
    engine.take_poll_turn()
    pools.current.notify("g-stranger", "c1", _call("g-stranger"))
    assert engine.write_notified() == 0
    assert memory.genesys.writes == []


def test_notifications_wait_for_the_poll_lease(memory: Memory, pools: Pools) -> None:
    """Only the replica that holds the poll lease acts on notifications (one that let go drops what is left)."""
    engine = _engine(memory, pools)
    ada = _linked(memory, engine)
    engine.conversation_seen(ConversationSeen(ada, "c1", (_call(ada),)))
    assert engine.write_notified() == 0
    assert memory.genesys.writes == []


@pytest.mark.parametrize(("polled", "pushed", "written"), [
    ((), (_call("g-ada@example.com", "c1"),), ["c1"]),
    ((_call("g-ada@example.com", "c1"),), (), []),
])
def test_what_push_saw_outranks_a_lagging_poll(memory: Memory, pools: Pools, polled: tuple[LiveParticipant, ...],
                                               pushed: tuple[LiveParticipant, ...], written: list[str]) -> None:
    """The analytics index lags: a call push saw start is written on a later profile change although the poll
    does not show it yet, and one push saw end is not written although the poll still shows it."""
    engine = _engine(memory, pools)
    ada = _linked(memory, engine)
    engine.take_poll_turn()
    memory.genesys.live[:] = polled
    engine.poll_once()
    memory.genesys.writes.clear()
    pools.current.notify(ada, "c1", *pushed)
    engine.write_notified()
    memory.genesys.writes.clear()
    memory.slack.edit("U0ADA", title="Team Lead")
    engine.user_changed(TEAM, {"id": "U0ADA"}, None)
    while engine.work_once():
        pass
    assert [conversation for conversation, _, _ in memory.genesys.writes] == written


def test_a_run_that_ends_stops_push_and_forgets_it(memory: Memory, pools: Pools) -> None:
    """SIGTERM ends the loop: the pool is stopped (its sockets closed) and the lease handed over."""
    stop = threading.Event()

    class StopAtOnce(FakeClock):
        def wait(self, event: threading.Event, timeout: float) -> bool:
            stop.set()
            return True

    engine = _engine(memory, pools, timer=StopAtOnce(0.0))
    engine.run(stop)
    assert pools.current.started
    assert pools.current.stopped
    assert engine.push_state() is None
    assert memory.store.take_lease("genesys-poll", "another", ttl_s=15.0) is not None


class Script(FakeClock):
    """The loop's timer: each wait moves the clock by its timeout and runs the actions now due; the poll lease's
    heartbeat (on its own thread) waits for real, so only the loop moves time."""

    def __init__(self, stop: threading.Event, until: float) -> None:
        super().__init__(0.0)
        self.stop, self.until = stop, until
        self.actions: list[tuple[float, Callable[[], None]]] = []
        self.loop: threading.Thread | None = None

    def wait(self, event: threading.Event, timeout: float) -> bool:
        if threading.current_thread() is not self.loop:
            return event.wait(min(timeout, 0.05))
        self.advance(max(timeout, 0.01))
        for due in [action for action in self.actions if action[0] <= self()]:
            self.actions.remove(due)
            due[1]()
        if self() >= self.until:
            self.stop.set()
        return event.is_set()


def _poll_times(store: Store, memory: Memory, pools: Pools,
                script: Callable[[Script, Pools], None], until: float) -> list[float]:
    """Run the loop on a scripted timer until `until` (seconds); the times at which it polled, rounded."""
    stop = threading.Event()
    timer = Script(stop, until)
    genesys = MemoryGenesys(clock=timer)
    engine = SyncEngine(store=store, genesys=genesys, slack=MemorySlack(), rules=AttributeRules(), clock=memory.clock,
                        settings=EngineSettings(worker="pace"), timer=timer, push=pools)
    script(timer, pools)
    timer.loop = threading.current_thread()
    engine.run(stop)
    return [round(at) for at in genesys.polls]


def test_healthy_push_slows_the_poll_to_a_safety_net(memory: Memory, pools: Pools) -> None:
    """With push healthy the org is polled every 60 s (one analytics query an idle minute), not every 5 s."""
    polls = _poll_times(memory.store, memory, pools, lambda timer, pools: None, until=200)
    assert polls[:2] == [0, 5]  # before push is up, at the fast pace
    assert [later - earlier for earlier, later in itertools.pairwise(polls[1:])] == [60, 60, 60]


def test_push_down_polls_fast_at_once_and_a_reconnect_catches_up(memory: Memory, pools: Pools) -> None:
    """Push failing → a poll at once, then every 5 s; push back → one catch-up poll (no sooner than 5 s after the
    last poll), then every 60 s."""

    def script(timer: Script, pools: Pools) -> None:
        def down() -> None:
            pools.current.healthy = False

        def back() -> None:
            pools.current.healthy = True
            pools.current.on_connected()

        timer.actions += [(100.0, down), (122.0, back)]

    polls = _poll_times(memory.store, memory, pools, script, until=200)
    assert polls == [0, 5, 65, 100, 105, 110, 115, 120, 125, 185]  # the catch-up: 5 s after the last poll


def _state(fallback: str | None) -> PushState:
    return PushState(connected=fallback is None, channels=1, topics=3, rejected=0, uncovered=0, pending=0,
                     since_last_message_s=1.0, fallback_reason=fallback, missing_permissions=())


@pytest.mark.parametrize(("push", "said"), [
    (None, "Push: off (GENESYS_PUSH); new calls are found by the poll."),
    (PushStatus(None, 5.0), "Push: on; another replica of the app receives Genesys' notifications."),
    (PushStatus(_state(None), 5.0), "Push: on; new calls are written as Genesys notifies them."),
    (PushStatus(_state("1 of 1 notification sockets not connected"), 5.0),
     "Push: on, but not covering everyone now (1 of 1 notification sockets not connected); new calls are found by "
     "the poll every 5 s meanwhile."),
])
def test_status_says_whether_push_is_on(memory: Memory, push: PushStatus | None, said: str) -> None:
    """`/genesys-sync status` ends with one line on push: off, another replica's, working, or why it falls back."""
    status = replace(memory.engine.status(TEAM, "U0ADA"), push=push)
    assert SlackText().status(status, whose="your", full=True).splitlines()[-1] == said


def test_the_engine_reports_its_push_in_status(memory: Memory, pools: Pools) -> None:
    """With push on, the status carries this replica's push state (None before it holds the poll lease)."""
    engine = _engine(memory, pools)
    assert engine.status(TEAM, "U0ADA").push == PushStatus(None, 5.0)
    engine.take_poll_turn()
    assert engine.status(TEAM, "U0ADA").push == PushStatus(pools.current.state(), 5.0)
    assert memory.engine.status(TEAM, "U0ADA").push is None  # the fixture's engine has push off


def test_what_push_saw_is_forgotten_once_the_poll_knows(memory: Memory, pools: Pools) -> None:
    """A notification outranks the poll for `pushed_memory_s`, then the poll's view is the truth again: a call whose
    end notification was lost is not written forever."""
    engine = _engine(memory, pools, pushed_memory_s=5.0)  # shorter than the poll lease, which must hold meanwhile
    ada = _linked(memory, engine)
    engine.take_poll_turn()
    pools.current.notify(ada, "c1", _call(ada))
    engine.write_notified()
    memory.clock.advance(6)
    engine.poll_once()  # the poll shows no call: c1 ended while the socket was down
    memory.genesys.writes.clear()
    memory.slack.edit("U0ADA", title="Team Lead")
    engine.user_changed(TEAM, {"id": "U0ADA"}, None)
    while engine.work_once():
        pass
    assert memory.genesys.writes == []


def test_a_profile_another_replica_read_reaches_the_call_without_a_poll(memory: Memory, pools: Pools) -> None:
    """With push healthy (the poll slowed to 60 s), a profile another replica read (it sees no participants, so it
    cannot write) reaches the live call within the fast poll's interval, and no analytics query is made for it."""
    stop = threading.Event()
    timer = Script(stop, until=30)
    memory.genesys.clock = timer
    memory.slack.add("U0ADA", "ada@example.com", "Support Engineer")
    memory.genesys.on_call("ada@example.com")
    other = memory.engine  # the fixture's engine: another replica on the same store, which never polls
    other.user_changed(TEAM, {"id": "U0ADA"}, None)
    while other.work_once():
        pass

    def edited_elsewhere() -> None:
        memory.slack.edit("U0ADA", title="Team Lead")
        other.user_changed(TEAM, {"id": "U0ADA"}, None)
        while other.work_once():
            pass

    timer.actions.append((12.0, edited_elsewhere))
    poller = SyncEngine(store=memory.store, genesys=memory.genesys, slack=memory.slack, rules=AttributeRules(),
                        clock=memory.clock, settings=EngineSettings(worker="poller"), timer=timer, push=pools)
    timer.loop = threading.current_thread()
    poller.run(stop)
    assert [sent["slack.title"] for _c, _p, sent in memory.genesys.writes] == ["Support Engineer", "Team Lead"]
    assert [round(at) for at in memory.genesys.polls] == [0, 5]  # the poll's own turns only


def test_catch_up_polls_come_no_faster_than_the_fast_poll(memory: Memory, pools: Pools) -> None:
    """A first start subscribes people every couple of seconds, each time asking for a catch-up poll: those polls
    come at most every POLL_INTERVAL_SECONDS (5 s), not at each subscription."""

    def script(timer: Script, pools: Pools) -> None:
        timer.actions += [(70.0 + 0.5 * n, lambda: pools.current.on_connected()) for n in range(20)]

    polls = _poll_times(memory.store, memory, pools, script, until=100)
    assert polls == [0, 5, 65, 70, 75, 80]  # 20 asks over 10 s: three polls


def test_a_person_still_ringing_does_not_take_the_customers_participant(memory: Memory, pools: Pools) -> None:
    """customer target: Bob offered the call (ringing, no connection time) leaves Ada on the customer's
    participant; once Bob answers, the customer's participant describes him."""
    engine = SyncEngine(store=memory.store, genesys=memory.genesys, slack=memory.slack, rules=AttributeRules(),
                        clock=memory.clock, settings=EngineSettings(worker="push"), timer=RealWaits(memory.clock),
                        push=pools, target=SyncTarget("customer"))
    ada = _linked(memory, engine)
    bob = _linked(memory, engine, "U0BOB", "bob@example.com", "Billing Specialist")
    engine.take_poll_turn()

    def on_call(user_id: str, connected_at: float) -> LiveParticipant:
        return LiveParticipant("c1", f"p-{user_id}", user_id, "voice", connected_at, ("p-customer",))

    pools.current.notify(ada, "c1", on_call(ada, 100.0))
    pools.current.notify(bob, "c1", on_call(bob, 0.0))  # ringing
    engine.write_notified()
    assert memory.genesys.attributes[("c1", "p-customer")]["slack.agent.title"] == "Support Engineer"
    pools.current.notify(bob, "c1", on_call(bob, 200.0))  # answered
    engine.write_notified()
    assert memory.genesys.attributes[("c1", "p-customer")]["slack.agent.title"] == "Billing Specialist"
