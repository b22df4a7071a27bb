"""Benchmark: the reliability table. Each fault against a burst of Slack events over people on live calls.

    .venv/bin/python bench/reliability.py [--backend sqlite|postgres|both] [--scenarios NAME ...] [--seed N]
                                          [--people 300] [--events 1000] [--rate 20] [--quick] [--json]

For each scenario and backend: new local fakes (localdev/slack_api.py, localdev/genesys_cloud.py) with --people
people, each a Slack user with a Genesys user and a live voice call; the app as real processes in HTTP mode (one on
SQLite, or two replicas on one throwaway PostgreSQL database, localdev/postgres.py). Once the first sync of every
member has settled, --events signed `user_change` deliveries (bench/event_burst.build_deliveries: title changes,
status-only changes, about 10% Slack retries of an earlier event) go out at --rate per second, open loop, spread
over the replicas as a load balancer would, while Genesys takes 50 ms to answer. Like Slack, a delivery without
a 2xx answer within 3 s is delivered again, three times at most (Slack waits 0 s, 1 min and 5 min; this
compresses them to 1, 10 and 30 s). The fault runs during the burst. Once the fault and the burst are over, the
benchmark waits (at most --converge-timeout seconds) until every participant carries its person's final profile,
then for the redeliveries to end, the queue to empty and the writes to stop, and counts:

- acknowledged: deliveries that got a 2xx answer, at any attempt (out of --events);
- lost: profile changes (title or status, of people on calls) after the newest profile the participant ever
  carried: no write ever brought that change, nor a later profile, to the participant;
- stale: participants whose attributes at the end differ from their person's final Slack profile;
- repeated: PATCHes sending a participant exactly the attribute map its previous PATCH sent (a repeated write);
- converge: seconds from the end of the fault (or of the burst, if later) until every participant matched.

"The profile" is what can be compared without the app's own code: `slack.title` and the custom fields
(`slack.custom.<label>`). Scenarios (--scenarios, default all):

  sigkill         SIGKILL at --kills seeded instants (a random replica on PostgreSQL), each restarted at once
  genesys-503     every Genesys request answered 503 for --outage seconds
  429-storm       every Genesys API request answered 429 (Retry-After 2) for --outage seconds
  tokens-expired  Genesys drops every access token at six instants and issues 15-second tokens meanwhile
  db-restart      PostgreSQL stopped (fast shutdown) for --db-down seconds, then started (n/a on SQLite)
  lease-kill      the replica holding the Genesys poll lease SIGKILLed, restarted 5 s later (n/a on SQLite)
  slack-cut       Slack answers to users.profile.get and users.info cut off mid-body, 8 rounds

--quick: 60 people, 200 events, 4 kills, 15-second outages (all scenarios on SQLite in about 2 minutes).
The text table goes to stdout (--json: one JSON document instead); progress goes to stderr. Exit status 1 when a
scenario lost a change, left a participant stale, repeated a write or did not converge. Everything runs on
127.0.0.1; every wait is bounded, and the apps and the PostgreSQL server are stopped however the run ends.
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import psycopg

from bench.event_burst import FIELDS, REPO, Delivery, RawClient, build_deliveries, log_problems, set_up_people
from localdev.app_process import SIGNING_SECRET, app_environment, free_port, stop_process, wait_for
from localdev.genesys_cloud import FakeGenesysCloud, JoinedParticipant, RecordedPatch
from localdev.postgres import PostgresServer, PostgresUnavailable, remove_server, start_server
from localdev.slack_api import FakeSlack, signed_headers

ACK_TIMEOUT_S = 3.0
"""Slack gives up on an answer after 3 seconds and delivers the event again."""
REDELIVERY_DELAYS_S = (1.0, 10.0, 30.0)
"""Slack's three retries come at once, after 1 minute and after 5 minutes; compressed so a run stays short."""
SENDERS = 8
QUIET_S = 2.0
"""Settled: no PATCH for this long with an empty queue (two poll intervals)."""
GENESYS_RPM = 100_000
GENESYS_LATENCY_S = 0.05
"""Each Genesys answer waits this long from the burst on, as a real region's do: a PATCH is then in flight for a
while, so a process killed at a random instant is sometimes killed after sending one (the case the app reads
back for). The first sync runs without it, to start sooner."""
CONFIRMED = "already has"
"""The log line of a write found on the participant after a restart (sent before it, not sent again)."""
SQLITE_ONLY_NA = frozenset({"db-restart", "lease-kill"})


# ------------------------------------------------------------------------------------------------ counting


@dataclass(frozen=True, slots=True)
class Version:
    """A person's profile (the compared attributes) from `at` (time.monotonic) on."""

    at: float
    state: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Observation:
    """The attributes a participant carried at `at`: after a PATCH, or at the end."""

    at: float
    attributes: Mapping[str, str]


def tracked_state(user: Mapping[str, object]) -> dict[str, str]:
    """What the app must put on the participant, as far as it can be told without the app's code: the title and
    the custom fields by label (the defaults write both as `slack.` keys)."""
    profile = user["profile"]
    assert isinstance(profile, dict)
    state = {"slack.title": str(profile.get("title", ""))}
    fields = profile.get("fields") or {}
    for field_id, value in (fields.items() if isinstance(fields, dict) else ()):
        if field_id in FIELDS and value.get("value"):
            state[f"slack.custom.{FIELDS[field_id]}"] = str(value["value"])
    return state


def matches(state: Mapping[str, str], attributes: Mapping[str, str]) -> bool:
    """Whether the participant's attributes carry `state` (other keys, such as the name, are not compared)."""
    return all(attributes.get(key) == value for key, value in state.items())


def observations(patches: Sequence[RecordedPatch], end_at: float, end: Mapping[str, str]) -> list[Observation]:
    """What one participant carried after each of its PATCHes (Genesys merges them), then at the end."""
    carried: dict[str, str] = {}
    seen = []
    for patch in patches:
        carried = {**carried, **patch.attributes}
        seen.append(Observation(patch.at, carried))
    seen.append(Observation(end_at, dict(end)))
    return seen


def newest_carried(versions: Sequence[Version], seen: Sequence[Observation]) -> int:
    """The index of the newest version the participant ever carried (-1: none, not even the first).

    An observation at t counts for version k when k existed by t and the attributes carry it: the write may have
    read the profile before a later change that left the compared attributes as they were (a status change)."""
    newest = -1
    for observation in seen:
        for index in range(len(versions) - 1, newest, -1):
            if versions[index].at <= observation.at and matches(versions[index].state, observation.attributes):
                newest = index
                break
    return newest


def lost_changes(versions: Sequence[Version], seen: Sequence[Observation]) -> int:
    """Changes (versions after the first) newer than anything the participant ever carried."""
    return len(versions) - 1 - max(newest_carried(versions, seen), 0)


def repeated_writes(patches: Sequence[RecordedPatch]) -> int:
    """PATCHes that send a participant exactly the map its previous PATCH sent. A → B → A is not a repeat."""
    previous: dict[tuple[str, str], Mapping[str, str]] = {}
    repeated = 0
    for patch in patches:
        where = (patch.conversation_id, patch.participant_id)
        if previous.get(where) == patch.attributes:
            repeated += 1
        previous[where] = patch.attributes
    return repeated


@dataclass(frozen=True, slots=True)
class Counts:
    lost: int
    stale: int
    repeated: int
    patches: int
    changes: int


def count(versions: Mapping[str, Sequence[Version]], participants: Mapping[str, JoinedParticipant],
          patches: Sequence[RecordedPatch], final: Mapping[str, Mapping[str, str]], end_at: float) -> Counts:
    """The table's figures from the people's versions, every PATCH and each participant's attributes at the end."""
    by_participant: dict[tuple[str, str], list[RecordedPatch]] = {}
    for patch in patches:
        by_participant.setdefault((patch.conversation_id, patch.participant_id), []).append(patch)
    lost = stale = 0
    for user_id, participant in participants.items():
        where = (participant.conversation_id, participant.participant_id)
        seen = observations(by_participant.get(where, []), end_at, final[user_id])
        lost += lost_changes(versions[user_id], seen)
        stale += not matches(versions[user_id][-1].state, final[user_id])
    return Counts(lost, stale, repeated_writes(patches), len(patches),
                  sum(len(v) - 1 for user_id, v in versions.items() if user_id in participants))


# ------------------------------------------------------------------------------------------------ the world


@dataclass
class World:
    """The fakes, each person's call and profile versions; changes are made here so each is recorded."""

    slack: FakeSlack
    genesys: FakeGenesysCloud
    participants: dict[str, JoinedParticipant]
    versions: dict[str, list[Version]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record_initial(self) -> None:
        for user_id in self.participants:
            self.versions[user_id] = [Version(time.monotonic(), tracked_state(self.slack.user(user_id)))]

    def change(self, user_id: str, change: Mapping[str, str]) -> None:
        with self.lock:
            at = time.monotonic()  # before the change: any read of the new profile comes after it
            user = self.slack.update_profile(user_id, **change)
            if user_id in self.versions:
                self.versions[user_id].append(Version(at, tracked_state(user)))

    def stale(self) -> int:
        return sum(not matches(self.versions[u][-1].state, self.genesys.attributes(participant.conversation_id,
                                                                                   participant.participant_id))
                   for u, participant in self.participants.items())


@dataclass
class Replica:
    """One app process; restarted on the same port (the load balancer's address for it stays)."""

    name: str
    workdir: Path
    port: int
    database_url: str
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"


def start(replica: Replica, world: World, *, healthy: bool) -> None:
    """Start the app; wait until /healthz answers (200 if `healthy`: at a restart during a fault it may be 503)."""
    env = app_environment(world.slack, world.genesys, replica.workdir, replica.port,
                          database_url=replica.database_url)
    env["GENESYS_REQUESTS_PER_MINUTE"] = str(GENESYS_RPM)
    with replica.log_path.open("ab") as log_file:  # appended: every start of this replica in one log
        replica.process = subprocess.Popen([sys.executable, str(REPO / "app.py"), "serve"], cwd=replica.workdir,
                                           env=env, stdout=log_file, stderr=subprocess.STDOUT)
    replica.starts += 1
    process = replica.process

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"{replica.name} exited with {process.returncode}:\n"
                               f"{replica.log_path.read_text(errors='replace')[-3000:]}")
        try:
            status = httpx.get(f"{replica.url}/healthz", timeout=2).status_code
        except httpx.HTTPError:
            return False
        return status == 200 or not healthy

    wait_for(answers, 60, f"{replica.name}'s /healthz")


def kill(replica: Replica) -> None:
    """SIGKILL, as the kernel's OOM killer or a node failure would; reaped before return."""
    if replica.process is not None and replica.process.poll() is None:
        replica.process.send_signal(signal.SIGKILL)
        replica.process.wait(timeout=10)


def stop(replica: Replica) -> None:
    """SIGTERM, then SIGKILL after 10 s."""
    if replica.process is not None:
        stop_process(replica.process)


def polls_genesys(replica: Replica) -> bool:
    try:
        return bool(httpx.get(f"{replica.url}/healthz", timeout=3).json()["genesys"]["detail"] == "polling")
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return False


# ------------------------------------------------------------------------------------------------ the burst


class Sender:
    """Sends the deliveries open loop at `rate`, round-robin over the replicas, redelivering as Slack does."""

    def __init__(self, world: World, deliveries: Sequence[Delivery], urls: Sequence[str], rate: float,
                 deadline: float) -> None:
        self._world = world
        self._deliveries = deliveries
        self._urls = [f"{url}/slack/events" for url in urls]
        self._deadline = deadline
        self.acknowledged = [False] * len(deliveries)
        self.attempts = 0
        self._next_url = 0
        self._seq = len(deliveries)
        self._inflight = 0
        self._cond = threading.Condition()
        begun = time.monotonic()
        self._heap = [(begun + n / rate, n, n, 0) for n in range(len(deliveries))]
        heapq.heapify(self._heap)
        self.last_answer = begun

    def run(self) -> None:
        threads = [threading.Thread(target=self._work, name=f"sender-{n}", daemon=True) for n in range(SENDERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=max(1.0, self._deadline - time.monotonic() + ACK_TIMEOUT_S + 5))

    def _take(self) -> tuple[int, int, str] | None:
        with self._cond:
            while time.monotonic() < self._deadline:
                if not self._heap:
                    if self._inflight == 0:
                        return None
                    self._cond.wait(0.2)
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cond.wait(min(wait, 0.2))
                    continue
                _due, _seq, index, attempt = heapq.heappop(self._heap)
                self._inflight += 1
                url = self._urls[self._next_url % len(self._urls)]
                self._next_url += 1
                return index, attempt, url
            return None

    def _done(self, index: int, attempt: int, status: int) -> None:
        with self._cond:
            self._inflight -= 1
            self.attempts += 1
            self.last_answer = time.monotonic()
            if 200 <= status < 300:
                self.acknowledged[index] = True
            elif attempt < len(REDELIVERY_DELAYS_S):
                self._seq += 1
                heapq.heappush(self._heap, (time.monotonic() + REDELIVERY_DELAYS_S[attempt], self._seq, index,
                                            attempt + 1))
            self._cond.notify_all()

    def _work(self) -> None:
        clients: dict[str, RawClient] = {}
        try:
            while (job := self._take()) is not None:
                index, attempt, url = job
                delivery = self._deliveries[index]
                if attempt == 0 and delivery.change is not None:
                    self._world.change(delivery.user_id, delivery.change)  # the edit that caused this event
                headers = delivery.headers
                if attempt > 0:  # Slack signs each delivery anew and says which retry it is
                    headers = signed_headers(SIGNING_SECRET, delivery.body)
                    headers.update({"X-Slack-Retry-Num": str(attempt), "X-Slack-Retry-Reason": "http_error"})
                client = clients.setdefault(url, RawClient(url, ACK_TIMEOUT_S))
                try:
                    status = client.post(delivery.body, headers)
                except OSError:
                    status = -1  # refused, cut or no answer within 3 s
                self._done(index, attempt, status)
        finally:
            for client in clients.values():
                client.close()


# ------------------------------------------------------------------------------------------------ scenarios


@dataclass(frozen=True, slots=True)
class Plan:
    people: int
    events: int
    rate: float
    kills: int
    outage_s: float
    db_down_s: float
    converge_timeout_s: float
    seed: int

    @property
    def burst_s(self) -> float:
        return self.events / self.rate


@dataclass
class Run:
    """What a fault acts on; `notes` say what it did, for the report."""

    plan: Plan
    world: World
    replicas: list[Replica]
    server: PostgresServer | None
    rng: random.Random
    begun: float
    notes: list[str] = field(default_factory=list)

    def at(self, fraction: float) -> None:
        """Sleep until `fraction` of the burst's length after it began."""
        time.sleep(max(0.0, self.begun + fraction * self.plan.burst_s - time.monotonic()))

    def note(self, text: str) -> None:
        self.notes.append(f"{time.monotonic() - self.begun:5.1f} s {text}")
        print(f"    {self.notes[-1]}", file=sys.stderr, flush=True)


def sigkill(run: Run) -> None:
    instants = sorted(run.rng.uniform(0.05, 0.95) for _ in range(run.plan.kills))
    for instant in instants:
        run.at(instant)  # an instant that passed while the last restart ran comes at once after it
        replica = run.rng.choice(run.replicas)
        kill(replica)
        started = time.monotonic()
        start(replica, run.world, healthy=False)
        run.note(f"SIGKILL {replica.name}; serving again in {time.monotonic() - started:.1f} s")


def genesys_503(run: Run) -> None:
    run.at(0.2)
    run.world.genesys.fail_for(503, run.plan.outage_s)
    run.note(f"Genesys answers 503 for {run.plan.outage_s:.0f} s")
    time.sleep(run.plan.outage_s)


def storm_429(run: Run) -> None:
    run.at(0.2)
    run.world.genesys.fail_for(429, run.plan.outage_s, path_prefix="/api/v2/", retry_after=2)
    run.note(f"Genesys answers 429 (Retry-After 2) for {run.plan.outage_s:.0f} s")
    time.sleep(run.plan.outage_s)


def tokens_expired(run: Run) -> None:
    genesys = run.world.genesys
    lifetime = genesys.token_lifetime_s
    genesys.token_lifetime_s = 15  # new tokens expire while in use as well
    try:
        for instant in (0.1, 0.25, 0.4, 0.55, 0.7, 0.85):
            run.at(instant)
            genesys.expire_tokens()
            run.note("Genesys dropped every access token (tokens now last 15 s)")
    finally:
        genesys.token_lifetime_s = lifetime


def db_restart(run: Run) -> None:
    assert run.server is not None
    run.at(0.3)
    run.server.stop("fast")
    run.note(f"PostgreSQL stopped for {run.plan.db_down_s:.0f} s")
    time.sleep(run.plan.db_down_s)
    run.server.start()
    run.note("PostgreSQL started again")


def lease_kill(run: Run) -> None:
    run.at(0.4)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        holders = [replica for replica in run.replicas if polls_genesys(replica)]
        if holders:
            break
        time.sleep(0.2)
    else:
        run.note("no replica reported holding the poll lease; none killed")
        return
    kill(holders[0])
    run.note(f"SIGKILL {holders[0].name}, the poll lease holder")
    time.sleep(5)
    start(holders[0], run.world, healthy=False)
    run.note(f"{holders[0].name} restarted")


def slack_cut(run: Run) -> None:
    for round_number in range(8):
        run.at(0.1 + 0.1 * round_number)
        run.world.slack.cut_next("users.profile.get", 4)
        run.world.slack.cut_next("users.info", 2)
    run.note("8 rounds of 4 users.profile.get and 2 users.info answers cut off mid-body")


SCENARIOS: dict[str, Callable[[Run], None]] = {
    "sigkill": sigkill, "genesys-503": genesys_503, "429-storm": storm_429, "tokens-expired": tokens_expired,
    "db-restart": db_restart, "lease-kill": lease_kill, "slack-cut": slack_cut,
}


# ------------------------------------------------------------------------------------------------ one run


@dataclass(frozen=True, slots=True)
class Outcome:
    scenario: str
    backend: str
    events: int
    acknowledged: int | None
    lost: int | None
    stale: int | None
    repeated: int | None
    converge_s: float | None
    converged: bool
    patches: int = 0
    changes: int = 0
    attempts: int = 0
    dead_letters: int = 0
    confirmed: int = 0
    """Writes sent before a crash and found on the participant after it (the read-back path taken)."""
    notes: tuple[str, ...] = ()

    @property
    def applicable(self) -> bool:
        return self.acknowledged is not None

    @property
    def met(self) -> bool:
        return not self.applicable or (self.converged and self.lost == 0 and self.stale == 0 and self.repeated == 0)


class Database:
    """Reads the app's tables (the work queue, dead letters) on either backend; None while it does not answer."""

    def __init__(self, url: str) -> None:
        self._url = url

    def rows(self, table: str) -> int | None:
        try:
            if self._url.startswith("sqlite:///"):
                path = self._url.removeprefix("sqlite:///")
                with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)) as connection:
                    return int(connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
            with psycopg.connect(self._url, connect_timeout=3) as connection:
                row = connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()  # type: ignore[arg-type]
                return int(row[0]) if row else 0
        except (sqlite3.Error, psycopg.Error):
            return None


def converge(world: World, timeout_s: float) -> float | None:
    """Seconds until every participant carries its person's current profile; None if not within timeout_s."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if world.stale() == 0:
            return time.monotonic() - started
        time.sleep(0.25)
    return None


def quiet(world: World, database: Database, replicas: Sequence[Replica], timeout_s: float = 30.0) -> None:
    """Wait (bounded) for the queue to empty and the writes to stop, so late writes are counted too."""
    deadline = time.monotonic() + timeout_s
    last = (len(world.genesys.patches), time.monotonic())
    while time.monotonic() < deadline:
        for replica in replicas:
            if replica.process is not None and replica.process.poll() is not None:
                raise RuntimeError(f"{replica.name} exited with {replica.process.returncode}")
        now = time.monotonic()
        if len(world.genesys.patches) != last[0]:
            last = (len(world.genesys.patches), now)
        if database.rows("work") == 0 and now - last[1] >= QUIET_S:
            return
        time.sleep(0.2)


def one_scenario(name: str, backend: str, plan: Plan, server: PostgresServer | None, workdir: Path) -> Outcome:
    rng = random.Random(f"{plan.seed}:{name}:{backend}")
    database_name = f"reliability_{name.replace('-', '_')}"
    if server is not None:
        database_url = server.create_database(database_name)
        count_replicas = 2
    else:
        database_url = f"sqlite:///{workdir}/sync.db"
        count_replicas = 1
    database = Database(database_url)
    replicas = [Replica(f"{backend}-{name}-{n + 1}", workdir, free_port(), database_url)
                for n in range(count_replicas)]
    try:
        with FakeSlack() as slack, FakeGenesysCloud(requests_per_minute=GENESYS_RPM) as genesys:
            user_ids, participants = set_up_people(slack, genesys, rng, plan.people, plan.people)
            world = World(slack, genesys, participants)
            world.record_initial()
            try:
                for replica in replicas:
                    start(replica, world, healthy=True)
                warm = converge(world, plan.converge_timeout_s)
                quiet(world, database, replicas)
                if warm is None:
                    raise RuntimeError(f"the first sync of {plan.people} people did not settle in "
                                       f"{plan.converge_timeout_s:.0f} s")
                print(f"  {backend} {name}: first sync settled in {warm:.1f} s ({len(genesys.patches)} PATCHes)",
                      file=sys.stderr, flush=True)
                return measure(name, backend, plan, world, replicas, server, database, rng, user_ids)
            finally:
                for replica in replicas:
                    stop(replica)
    finally:
        if server is not None:
            with contextlib.suppress(psycopg.Error, RuntimeError):
                server.drop_database(database_name)


def measure(name: str, backend: str, plan: Plan, world: World, replicas: list[Replica],
            server: PostgresServer | None, database: Database, rng: random.Random, user_ids: list[str]) -> Outcome:
    deliveries = build_deliveries(world.slack, user_ids, rng, plan.events)
    hard_stop = time.monotonic() + plan.burst_s + sum(REDELIVERY_DELAYS_S) + 4 * plan.outage_s + 120
    sender = Sender(world, deliveries, [replica.url for replica in replicas], plan.rate, hard_stop)
    world.genesys.set_latency(GENESYS_LATENCY_S)
    run = Run(plan, world, replicas, server, rng, time.monotonic())
    failure: list[BaseException] = []

    def fault() -> None:
        try:
            SCENARIOS[name](run)
        except BaseException as error:  # noqa: BLE001 -- reported with the outcome, the run still counts
            failure.append(error)
            run.note(f"the fault itself failed: {type(error).__name__}: {error}")

    faulting = threading.Thread(target=fault, name="fault", daemon=True)
    sending = threading.Thread(target=sender.run, name="sender", daemon=True)
    faulting.start()
    sending.start()
    faulting.join(timeout=max(1.0, hard_stop - time.monotonic()))
    time.sleep(max(0.0, run.begun + plan.burst_s - time.monotonic()))  # every change made
    if failure:
        raise RuntimeError(f"{name} on {backend}: the fault failed") from failure[0]
    run.note("the fault and the burst are over; waiting for every participant to match")
    # Counted from here while Slack's redeliveries go on: a change whose first delivery failed reaches the app
    # only with a redelivery, and that wait is part of the time to converge.
    converge_s = converge(world, plan.converge_timeout_s)
    sending.join(timeout=max(1.0, hard_stop - time.monotonic()))
    run.note(f"redeliveries over ({sender.attempts} attempts for {len(deliveries)} deliveries)")
    quiet(world, database, replicas)
    end_at = time.monotonic()
    final = {u: world.genesys.attributes(participant.conversation_id, participant.participant_id) for u,
             participant in world.participants.items()}
    counts = count(world.versions, world.participants, list(world.genesys.patches), final, end_at)
    logs = [replica.log_path.read_text(errors="replace") for replica in replicas]
    problems = [line for text in logs for line in log_problems(text)]
    notes = tuple(run.notes) + tuple(f"log: {line[:200]}" for line in problems[:8])
    return Outcome(
        scenario=name, backend=backend, events=len(deliveries), acknowledged=sum(sender.acknowledged),
        lost=counts.lost, stale=counts.stale, repeated=counts.repeated,
        converge_s=None if converge_s is None else round(converge_s, 1), converged=converge_s is not None,
        patches=counts.patches, changes=counts.changes, attempts=sender.attempts,
        dead_letters=database.rows("dead_letters") or 0, confirmed=sum(text.count(CONFIRMED) for text in logs),
        notes=notes)


# ------------------------------------------------------------------------------------------------ report


def cell(value: int | float | None, fmt: str = "d") -> str:
    return "n/a" if value is None else format(value, fmt)


def table(outcomes: Sequence[Outcome]) -> str:
    lines = ["| scenario | backend | acknowledged | lost | stale | repeated | converged in |",
             "|---|---|---|---|---|---|---|"]
    for o in outcomes:
        if not o.applicable:
            lines.append(f"| {o.scenario} | {o.backend} | n/a | n/a | n/a | n/a | n/a |")
            continue
        converge = f"{o.converge_s:.1f} s" if o.converge_s is not None else "NOT converged"
        lines.append(f"| {o.scenario} | {o.backend} | {o.acknowledged}/{o.events} | {cell(o.lost)} | "
                     f"{cell(o.stale)} | {cell(o.repeated)} | {converge} |")
    return "\n".join(lines)


def plan_from(arguments: argparse.Namespace) -> Plan:
    quick = arguments.quick
    return Plan(
        people=arguments.people or (60 if quick else 300), events=arguments.events or (200 if quick else 1000),
        rate=arguments.rate, kills=arguments.kills or (4 if quick else 10),
        outage_s=arguments.outage or (15.0 if quick else 60.0),
        db_down_s=arguments.db_down or (5.0 if quick else 20.0),
        converge_timeout_s=arguments.converge_timeout, seed=arguments.seed)


def backends(choice: str) -> list[str]:
    return ["sqlite", "postgres"] if choice == "both" else [choice]


@contextlib.contextmanager
def postgres_if(needed: bool) -> Iterator[PostgresServer | None]:
    if not needed:
        yield None
        return
    server = start_server()
    try:
        yield server
    finally:
        remove_server(server)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", nargs="+", choices=sorted(SCENARIOS), default=list(SCENARIOS))
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--seed", type=int, default=20261204)
    parser.add_argument("--quick", action="store_true", help="60 people, 200 events, 4 kills, 15 s outages")
    parser.add_argument("--people", type=int, default=0, help="people on live calls (default 300; --quick 60)")
    parser.add_argument("--events", type=int, default=0, help="deliveries in the burst (default 1000; --quick 200)")
    parser.add_argument("--rate", type=float, default=20.0, help="deliveries per second (open loop)")
    parser.add_argument("--kills", type=int, default=0, help="SIGKILLs in the sigkill scenario (default 10; --quick 4)")
    parser.add_argument("--outage", type=float, default=0.0, help="seconds of 503 / 429 (default 60; --quick 15)")
    parser.add_argument("--db-down", type=float, default=0.0,
                        help="seconds PostgreSQL is down (default 20: longer than the 15 s poll lease, so which "
                             "replica polls afterwards is a race; --quick 5)")
    parser.add_argument("--converge-timeout", type=float, default=120.0)
    parser.add_argument("--json", action="store_true", help="print the outcomes as JSON instead of the table")
    parser.add_argument("--keep-logs", metavar="DIR", help="copy the apps' logs here")
    arguments = parser.parse_args(argv)
    plan = plan_from(arguments)
    if min(plan.people, plan.events, plan.kills) < 1 or plan.rate <= 0:
        parser.error("--people, --events and --kills must be at least 1, --rate above 0")
    outcomes: list[Outcome] = []
    started = time.monotonic()
    print(f"{os.cpu_count()} CPUs; {plan.people} people on live calls, {plan.events} deliveries at {plan.rate:g}/s "
          f"({plan.burst_s:.0f} s); seed {plan.seed}", file=sys.stderr, flush=True)
    try:
        with postgres_if("postgres" in backends(arguments.backend)) as server:
            for backend in backends(arguments.backend):
                for name in arguments.scenarios:
                    if backend == "sqlite" and name in SQLITE_ONLY_NA:
                        outcomes.append(Outcome(name, backend, plan.events, None, None, None, None, None, False,
                                                notes=("n/a: one process on one SQLite file",)))
                        continue
                    print(f"{backend} {name} ({time.monotonic() - started:.0f} s in)", file=sys.stderr, flush=True)
                    with tempfile.TemporaryDirectory(prefix=f"reliability-{name}-") as tmp:
                        outcome = one_scenario(name, backend, plan, server if backend == "postgres" else None,
                                               Path(tmp))
                        if arguments.keep_logs:
                            keep = Path(arguments.keep_logs)
                            keep.mkdir(parents=True, exist_ok=True)
                            for log in Path(tmp).glob("*.log"):
                                (keep / log.name).write_bytes(log.read_bytes())
                    outcomes.append(outcome)
                    print(f"  {table([outcome]).splitlines()[-1]} (PATCHes {outcome.patches}, changes "
                          f"{outcome.changes}, dead letters {outcome.dead_letters}, confirmed after a crash "
                          f"{outcome.confirmed})", file=sys.stderr, flush=True)
    except PostgresUnavailable as missing:
        print(missing, file=sys.stderr)
        return 2
    elapsed = time.monotonic() - started
    if arguments.json:
        print(json.dumps({"plan": asdict(plan), "cpus": os.cpu_count(), "seconds": round(elapsed),
                          "outcomes": [asdict(o) for o in outcomes]}, indent=2))
    else:
        print(table(outcomes))
        for outcome in outcomes:
            for note in outcome.notes:
                print(f"  {outcome.backend} {outcome.scenario}: {note}")
        print(f"{elapsed:.0f} s")
    return 0 if all(o.met for o in outcomes) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the apps and the server were stopped on the way out
        print("interrupted", file=sys.stderr)
        sys.exit(130)
