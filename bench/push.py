"""Benchmark: Genesys Cloud's notifications (push) against the poll, with the app's default settings.

    .venv/bin/python bench/push.py [--sections calls idle scale fallback] [--quick] [--json] [--seed N]
                                   [--people 20] [--calls 100] [--idle 60] [--scale 1000 2500] [--window 60]

Each scenario starts new local fakes (localdev/slack_api.py, localdev/genesys_cloud.py with its Notifications API)
with --people people (a Slack user and the Genesys user of the same e-mail each), and the app as a real process in
HTTP mode on SQLite with its DEFAULT settings: GENESYS_PUSH, POLL_INTERVAL_SECONDS and PUSH_POLL_INTERVAL_SECONDS
unset (on, 5 s, 60 s; the start-up line the app logs is printed, so the values in force show), and Genesys' own
rate limit and the app's budget at their default 300 requests a minute. The app's first start reads every member's
profile and links them; a scenario begins once every person is linked (and, with push, subscribed and healthy).

Sections (--sections, default all):

  calls     New call → attributes. --calls voice calls, started one at a time with random gaps (0.2-0.8 s) on
            people not on a call; each call's latency is from just before `start_conversation` to the fake's
            timestamp of the participant's first attributes PATCH (both on this process' monotonic clock). A call
            ends once written. p50/p95/max, with push (the default) and with GENESYS_PUSH=off (fewer calls).
  idle      Analytics queries (the poll) in --idle seconds without calls, with push and with push off, counted in
            the fake's request log; the window starts after the fast poll's last turn once push is healthy.
  scale     --scale linked people (default 1,000 and 2,500): seconds from the app's start until every person is
            linked, and until every topic is subscribed (also counted from the moment the last link existed),
            channels and sockets, the app's VmRSS at /healthz 200 and once settled, and the Genesys requests it
            took. Linking 1,000 people takes 1,000 user searches, so here the fake's rate limit and the app's
            budget (GENESYS_REQUESTS_PER_MINUTE) are 100,000 a minute; at the default 300 it takes minutes.
            The full run adds the first size with push off, for the memory push costs.
  fallback  Push down: (a) every subscription Rejected (`conversation:communication:view` revoked before start),
            (b) every notification socket cut (`drop_sockets`) every --drop-every seconds. For each, during
            --window seconds with calls spread over it: new call → attributes and analytics queries a minute.
            Then one fault at a time on a healthy app (every channel expired; `socket_closing` on every socket),
            with --window-calls calls 0.5 s apart from the fault on: how long the engine said push was down, and
            the calls meanwhile.

--quick: 8 people, 10 calls with push and 4 without, 3 s idle windows, 150 people for scale, 6 s fallback
windows; the scenarios run side by side (seven apps at once) so it ends in about 20 s. The full run is sequential
(about 8 minutes).
The report goes to stdout (--json: one JSON document); progress to stderr. Every wait is bounded and every app is
stopped however the run ends. Exit status 1 when push carried the calls no faster than the poll would (p95 of the
push calls at or above POLL_INTERVAL_SECONDS); a scenario that does not settle within its bounded wait ends the
run with the AssertionError saying what it waited for.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.event_burst import TITLES, log_problems, percentile, proc_status_kb
from localdev.app_process import Running, launch, stop_process, wait_for
from localdev.genesys_cloud import PERM_COMMUNICATION_VIEW, FakeGenesysCloud
from localdev.slack_api import FakeSlack

DEFAULTS: Mapping[str, str | None] = {"GENESYS_PUSH": None, "POLL_INTERVAL_SECONDS": None,
                                      "PUSH_POLL_INTERVAL_SECONDS": None}
"""The push settings removed from app_process' test settings (which turn push off and poll every second)."""
PUSH_OFF: Mapping[str, str | None] = {**DEFAULTS, "GENESYS_PUSH": "off"}
POLL_INTERVAL_S = 5.0
"""The default POLL_INTERVAL_SECONDS: what push has to beat."""
SCALE_RPM = 100_000
GAP_S = (0.2, 0.8)
CALL_TIMEOUT_S = 20.0
"""A call not written this long after it started counts as not carried."""
SETTLE_TIMEOUT_S = 120.0
HEALTHY_GRACE_S = 6.0
"""After push turns healthy the fast poll's next turn (due within POLL_INTERVAL_SECONDS) still runs once: waited
for, this long at most."""
ANALYTICS = "/api/v2/analytics"
STARTED_LINE = re.compile(r"sync engine started \(worker [^,]+, (?P<how>[^)]*)\)")
PUSH_WORKS = "Genesys notifications work"
PUSH_DOWN = "Genesys notifications do not cover every followed person"
PUSH_PENDING = "newly followed person(s) to Genesys notifications"
"""The engine's lines when push turns healthy, or not (some followed people not covered, or still subscribing)."""


# ------------------------------------------------------------------------------------------------ figures


@dataclass(frozen=True, slots=True)
class Latencies:
    """New call → attributes over the calls of one scenario, in seconds."""

    calls: int
    carried: int
    p50_s: float | None
    p95_s: float | None
    max_s: float | None

    @staticmethod
    def of(latencies: Sequence[float | None]) -> Latencies:
        done = sorted(value for value in latencies if value is not None)
        if not done:
            return Latencies(len(latencies), 0, None, None, None)
        return Latencies(len(latencies), len(done), round(percentile(done, 0.50), 3),
                         round(percentile(done, 0.95), 3), round(done[-1], 3))


@dataclass(frozen=True, slots=True)
class QueryRate:
    """Analytics queries (the poll) counted over a window."""

    seconds: float
    queries: int
    other_requests: int
    """Every other Genesys request in the window (subscriptions, PATCHes, searches, tokens)."""

    @property
    def per_minute(self) -> float:
        return round(self.queries * 60 / self.seconds, 1) if self.seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Scenario:
    """One app run: its name, how the app said it polls, and what was measured."""

    name: str
    people: int
    engine: str
    """The app's own start-up line: how it polls, with and without push."""
    settle_s: float
    latency: Latencies | None = None
    idle: QueryRate | None = None
    window: QueryRate | None = None
    """Analytics queries over the calls window (fallback scenarios)."""
    notes: tuple[str, ...] = ()
    down_s: float | None = None
    """A fault applied once: seconds from it until the engine said push works again (0: it never said otherwise)."""


@dataclass(frozen=True, slots=True)
class Scale:
    """Following many linked people."""

    people: int
    push: bool
    linked_s: float | None
    """From the app's start until every person was linked (their profile read, their Genesys user found)."""
    subscribed_s: float | None
    """From the app's start until every person's topic was subscribed."""
    subscribed_after_links_s: float | None
    """From the moment the last link existed until every topic was subscribed."""
    healthy_s: float | None
    """From the app's start until it logged that notifications work, every topic subscribed."""
    channels: int
    sockets: int
    topics: int
    rss_start_kib: int
    rss_settled_kib: int
    requests: Mapping[str, int]
    notes: tuple[str, ...] = ()


@dataclass
class Report:
    quick: bool
    cpus: int | None
    load: str
    scenarios: list[Scenario] = field(default_factory=list)
    scale: list[Scale] = field(default_factory=list)
    seconds: float = 0.0

    def scenario(self, name: str) -> Scenario | None:
        return next((s for s in self.scenarios if s.name == name), None)


# ------------------------------------------------------------------------------------------------ the world


@dataclass
class World:
    """The fakes, the people's Genesys user ids and the app."""

    slack: FakeSlack
    genesys: FakeGenesysCloud
    people: list[str]
    """Genesys user ids of the linked people."""
    workdir: Path
    app: Running | None = None

    @property
    def database(self) -> Path:
        return self.workdir / "sync.db"


@contextlib.contextmanager
def world(people: int, seed: int, *, rpm: int = 300, revoke: str | None = None) -> Iterator[World]:
    """New fakes with `people` people, none on a call; the app is started by `start_app` and stopped on the way out."""
    with tempfile.TemporaryDirectory(prefix="push-bench-") as tmp, FakeSlack() as slack, \
            FakeGenesysCloud(requests_per_minute=rpm) as genesys:
        genesys_ids = add_people(slack, genesys, random.Random(seed), people)
        if revoke is not None:
            genesys.revoke_permission(revoke)
        here = World(slack, genesys, genesys_ids, Path(tmp))
        try:
            yield here
        finally:
            if here.app is not None:
                stop_process(here.app.process)


def add_people(slack: FakeSlack, genesys: FakeGenesysCloud, rng: random.Random, people: int) -> list[str]:
    """Slack users with an e-mail and a title, and the Genesys user of each e-mail; the Genesys ids."""
    genesys_ids = []
    for n in range(people):
        email = f"agent{n}@example.com"
        slack.add_user(f"UP{n:08d}", name=f"agent{n}", real_name=f"Agent {n}", email=email, title=rng.choice(TITLES))
        genesys_ids.append(genesys.add_user(email, name=f"Agent {n}"))
    return genesys_ids


def start_app(here: World, settings: Mapping[str, str | None], *, name: str = "app") -> Running:
    here.app = launch(here.slack, here.genesys, here.workdir, name=name, env_changes=settings)
    return here.app


def linked(database: Path) -> int:
    """People linked to a Genesys user, read-only from the app's SQLite file; 0 while unreadable."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1)) as connection:
            (count,) = connection.execute(
                "SELECT COUNT(*) FROM user_links WHERE genesys_user_id IS NOT NULL").fetchone()
            return int(count)
    except sqlite3.Error:
        return 0


def subscribed(here: World) -> int:
    wanted = {f"v2.users.{user_id}.conversations" for user_id in here.people}
    return len(wanted & here.genesys.subscribed_topics())


def engine_line(app: Running) -> str:
    found = STARTED_LINE.search(app.log())
    return found.group("how") if found else "(no start-up line)"


def push_works(app: Running) -> bool:
    """Whether the engine's last word on push is that it works (it logs each change)."""
    log_text = app.log()
    works = log_text.rfind(PUSH_WORKS)
    return works >= 0 and works > max(log_text.rfind(PUSH_DOWN), log_text.rfind(PUSH_PENDING))


def settle(here: World, *, push: bool, timeout: float = SETTLE_TIMEOUT_S) -> float:
    """Wait until every person is linked and, with push, subscribed with the app saying notifications work;
    seconds it took from now."""
    assert here.app is not None
    started = time.monotonic()
    everyone = len(here.people)
    wait_for(lambda: linked(here.database) >= everyone, timeout, f"{everyone} people linked")
    if push:
        wait_for(lambda: subscribed(here) >= everyone and push_works(here.app),  # type: ignore[arg-type]
                 max(1.0, timeout - (time.monotonic() - started)), "every topic subscribed and push healthy")
    return time.monotonic() - started


def past_fast_poll(genesys: FakeGenesysCloud) -> None:
    """Push just turned healthy: wait for the fast poll's last turn, so a window from now sees the slow poll only."""
    queries = genesys.request_count("POST", ANALYTICS)
    with contextlib.suppress(AssertionError):  # it may have run already: then the grace passes
        wait_for(lambda: genesys.request_count("POST", ANALYTICS) > queries, HEALTHY_GRACE_S, "the fast poll")
    time.sleep(0.2)


def count_window(genesys: FakeGenesysCloud, seconds: float, during: Callable[[], object] | None = None) -> QueryRate:
    """Analytics queries and other requests while `during` runs (or for `seconds` if None)."""
    before_queries, before_all = genesys.request_count("POST", ANALYTICS), genesys.request_count()
    started = time.monotonic()
    if during is None:
        time.sleep(seconds)
    else:
        during()
    elapsed = time.monotonic() - started
    queries = genesys.request_count("POST", ANALYTICS) - before_queries
    return QueryRate(round(elapsed, 1), queries, genesys.request_count() - before_all - queries)


def run_calls(here: World, calls: int, rng: random.Random, *, spread_s: float | None = None) -> list[float | None]:
    """Start `calls` voice calls one at a time on people not on a call (random gaps, or spread evenly over
    `spread_s`); each ends once written. Seconds from start to the participant's first PATCH (None: never)."""
    genesys = here.genesys
    started: dict[tuple[str, str], float] = {}
    written: dict[tuple[str, str], float] = {}
    busy: set[str] = set()
    owner: dict[tuple[str, str], str] = {}
    seen = [len(genesys.patches)]

    def collect() -> None:
        patches = genesys.patches
        upto = len(patches)  # the list only grows (the app may PATCH while this reads)
        for patch in patches[seen[0]:upto]:
            key = (patch.conversation_id, patch.participant_id)
            if key in started and key not in written:
                written[key] = patch.at
                genesys.end_conversation(patch.conversation_id)
                busy.discard(owner[key])
        seen[0] = upto

    gap = (spread_s / calls, spread_s / calls) if spread_s else GAP_S
    for _ in range(calls):
        free = [person for person in here.people if person not in busy]
        while not free:
            time.sleep(0.02)
            collect()
            free = [person for person in here.people if person not in busy]
        person = rng.choice(free)
        busy.add(person)
        at = time.monotonic()  # the fake's clock: RecordedPatch.at is time.monotonic() too
        joined = genesys.start_conversation(person, media_type="voice")
        key = (joined.conversation_id, joined.participant_id)
        started[key], owner[key] = at, person
        wake = time.monotonic() + rng.uniform(*gap)
        while time.monotonic() < wake:
            collect()
            time.sleep(0.01)
    deadline = time.monotonic() + CALL_TIMEOUT_S
    while len(written) < len(started) and time.monotonic() < deadline:
        collect()
        time.sleep(0.01)
    for key in started:
        if key not in written:
            genesys.end_conversation(key[0])
    return [written[key] - at if key in written else None for key, at in started.items()]


def problems(app: Running) -> tuple[str, ...]:
    return tuple(f"log: {line[:200]}" for line in log_problems(app.log())[:6])


# ------------------------------------------------------------------------------------------------ scenarios


@dataclass(frozen=True, slots=True)
class Plan:
    people: int
    calls: int
    calls_off: int
    idle_s: float
    scale: tuple[int, ...]
    window_s: float
    window_calls: int
    drop_every_s: float
    seed: int


def push_on(plan: Plan, sections: set[str]) -> Scenario:
    """The defaults: idle window, then calls."""
    with world(plan.people, plan.seed) as here:
        app = start_app(here, DEFAULTS)
        settle_s = settle(here, push=True)
        past_fast_poll(here.genesys)
        idle = count_window(here.genesys, plan.idle_s) if "idle" in sections else None
        rng = random.Random(plan.seed)
        latency = Latencies.of(run_calls(here, plan.calls, rng)) if "calls" in sections else None
        return Scenario("push (defaults)", plan.people, engine_line(app), round(settle_s, 1), latency, idle,
                        notes=problems(app))


def flapping(plan: Plan) -> Scenario:
    """Push on and healthy, then calls over the window while every socket is cut every `drop_every_s`."""
    with world(plan.people, plan.seed) as here:
        app = start_app(here, DEFAULTS)
        settle_s = settle(here, push=True)
        past_fast_poll(here.genesys)
        dropped: list[float] = []
        stop = threading.Event()

        def cut() -> None:
            while not stop.wait(plan.drop_every_s):
                here.genesys.drop_sockets()
                dropped.append(time.monotonic())

        cutter = threading.Thread(target=cut, name="drop-sockets", daemon=True)
        latencies: list[float | None] = []
        cutter.start()
        try:
            window = count_window(here.genesys, plan.window_s, lambda: latencies.extend(
                run_calls(here, plan.window_calls, random.Random(plan.seed), spread_s=plan.window_s)))
        finally:
            stop.set()
            cutter.join(timeout=5)
        reconnects = app.log().count("was lost (closed without a close frame)")
        return Scenario(f"push, every socket cut every {plan.drop_every_s:g} s", plan.people, engine_line(app),
                        round(settle_s, 1), Latencies.of(latencies), None, window,
                        notes=(f"{len(dropped)} cuts, {reconnects} losses logged", *problems(app)))


def push_off(plan: Plan, sections: set[str]) -> Scenario:
    """GENESYS_PUSH=off, the poll at its default interval: idle window, then calls."""
    with world(plan.people, plan.seed) as here:
        app = start_app(here, PUSH_OFF)
        settle_s = settle(here, push=False)
        idle = count_window(here.genesys, plan.idle_s) if "idle" in sections else None
        latency = Latencies.of(run_calls(here, plan.calls_off, random.Random(plan.seed))) \
            if "calls" in sections else None
        return Scenario("push off (GENESYS_PUSH=off)", plan.people, engine_line(app), round(settle_s, 1), latency,
                        idle, notes=problems(app))


FAULTS: Mapping[str, Callable[[FakeGenesysCloud], None]] = {
    "every channel expired": FakeGenesysCloud.expire_channels,
    "socket_closing on every socket": FakeGenesysCloud.announce_socket_closing,
}


def one_fault(plan: Plan, name: str) -> Scenario:
    """Push healthy, then one fault and calls over the next `window_calls` × 0.5 s: how long push was down, and
    the calls meanwhile."""
    with world(plan.people, plan.seed) as here:
        app = start_app(here, DEFAULTS)
        settle_s = settle(here, push=True)
        past_fast_poll(here.genesys)
        offset = len(app.log())
        down: list[float] = []
        stop = threading.Event()

        def watch(at: float) -> None:
            while not stop.wait(0.02):
                tail = app.log()[offset:]
                if (PUSH_DOWN in tail or PUSH_PENDING in tail) and push_works(app):
                    down.append(time.monotonic() - at)
                    return

        watcher = threading.Thread(target=watch, args=(time.monotonic(),), name="watch-push", daemon=True)
        FAULTS[name](here.genesys)
        watcher.start()
        latencies: list[float | None] = []
        spread = plan.window_calls * 0.5
        window = count_window(here.genesys, spread, lambda: latencies.extend(
            run_calls(here, plan.window_calls, random.Random(plan.seed), spread_s=spread)))
        stop.set()
        watcher.join(timeout=5)
        tail = app.log()[offset:]
        went_down = PUSH_DOWN in tail or PUSH_PENDING in tail
        return Scenario(f"push, {name}", plan.people, engine_line(app), round(settle_s, 1), Latencies.of(latencies),
                        None, window, notes=problems(app),
                        down_s=round(down[0], 2) if down else (None if went_down else 0.0))


def rejected(plan: Plan) -> Scenario:
    """Push on, every topic Rejected (the permission it needs revoked before start): calls over the window."""
    with world(plan.people, plan.seed, revoke=PERM_COMMUNICATION_VIEW) as here:
        app = start_app(here, DEFAULTS)
        started = time.monotonic()
        settle(here, push=False)
        wait_for(lambda: PUSH_DOWN in app.log(), SETTLE_TIMEOUT_S, "the app to say push does not cover everyone")
        settle_s = time.monotonic() - started
        latencies: list[float | None] = []
        window = count_window(here.genesys, plan.window_s, lambda: latencies.extend(
            run_calls(here, plan.window_calls, random.Random(plan.seed), spread_s=plan.window_s)))
        named = next((line for line in app.log().splitlines() if PUSH_DOWN in line), "")
        return Scenario("push, every topic rejected", plan.people, engine_line(app), round(settle_s, 1),
                        Latencies.of(latencies), None, window,
                        notes=(f"names the permission: {PERM_COMMUNICATION_VIEW in named}",
                               f"topics subscribed: {subscribed(here)} of {plan.people}",
                               *problems(app)))


def scale(people: int, seed: int, *, push: bool = True) -> Scale:
    """`people` linked people: how long until all are followed, channels, memory, requests (push off: the same
    people without push, for the memory it costs)."""
    with world(people, seed, rpm=SCALE_RPM) as here:
        begun = time.monotonic()
        app = start_app(here, {**(DEFAULTS if push else PUSH_OFF), "GENESYS_REQUESTS_PER_MINUTE": str(SCALE_RPM)})
        rss_start = proc_status_kb(app.process.pid, "VmRSS") or 0
        linked_at = subscribed_at = healthy_at = None
        deadline = begun + SETTLE_TIMEOUT_S + people * 0.2
        settled = False
        while time.monotonic() < deadline and not settled:
            now = time.monotonic()
            if linked_at is None and linked(here.database) >= people:
                linked_at = now
            if subscribed_at is None and subscribed(here) >= people:
                subscribed_at = now
            if healthy_at is None and subscribed_at is not None and push_works(app):
                healthy_at = now
            settled = linked_at is not None and (not push or (subscribed_at is not None and healthy_at is not None))
            time.sleep(0.05)
        time.sleep(2)  # let the first polls and writes of the settled app pass before reading its memory
        rss_settled = proc_status_kb(app.process.pid, "VmRSS") or 0
        channels = here.genesys.notification_channels()
        recorded = list(here.genesys.requests)  # a copy: the log only grows
        requests = {
            "user searches": sum(r.path.startswith("/api/v2/users/search") for r in recorded),
            "channels created": sum(r.method == "POST" and r.path == "/api/v2/notifications/channels"
                                    for r in recorded),
            "subscription calls": sum(r.path.endswith("/subscriptions") for r in recorded),
            "analytics queries": sum(r.path.startswith(ANALYTICS) for r in recorded),
            "tokens": sum(r.path == "/oauth/token" for r in recorded),
            "all": len(recorded),
        }

        def since(at: float | None, origin: float | None = begun) -> float | None:
            return None if at is None or origin is None else round(at - origin, 1)

        return Scale(people, push, since(linked_at), since(subscribed_at),
                     None if linked_at is None or subscribed_at is None else round(max(0.0, subscribed_at - linked_at),
                                                                                   1),
                     since(healthy_at), len(channels), here.genesys.socket_connections(),
                     sum(c.topic_count for c in channels), rss_start, rss_settled, requests,
                     notes=(f"channels' topics: {[c.topic_count for c in channels]}", *problems(app)))


# ------------------------------------------------------------------------------------------------ report


def seconds(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def down_for(scenario: Scenario) -> str:
    if scenario.name not in {f"push, {name}" for name in FAULTS}:
        return ""
    if scenario.down_s is None:
        return "not back within the window"
    return "never down" if scenario.down_s == 0 else seconds(scenario.down_s)


def text(report: Report) -> str:
    lines = [f"{report.cpus} CPUs; load at start: {report.load}; {'--quick' if report.quick else 'full run'}", ""]
    lines += ["| scenario | how the app polls (its start-up line) | calls carried | p50 | p95 | max |",
              "|---|---|---|---|---|---|"]
    for s in report.scenarios:
        if s.latency is not None:
            lat = s.latency
            lines.append(f"| {s.name} | {s.engine} | {lat.carried}/{lat.calls} | {seconds(lat.p50_s)} | "
                         f"{seconds(lat.p95_s)} | {seconds(lat.max_s)} |")
    lines += ["", "| scenario | window | analytics queries | per minute | other Genesys requests | push down for |",
              "|---|---|---|---|---|---|"]
    for s in report.scenarios:
        for label, rate in (("idle", s.idle), ("calls", s.window)):
            if rate is not None:
                down = down_for(s) if label == "calls" else ""
                rate_text = "" if down else f"{rate.per_minute:g}"  # one fault in a few seconds: no rate to speak of
                lines.append(f"| {s.name} | {label} {rate.seconds:.0f} s | {rate.queries} | {rate_text} | "
                             f"{rate.other_requests} | {down} |")
    if report.scale:
        lines += ["", "| linked people | push | linked | all subscribed | subscribed after the last link | push "
                      f"healthy | channels | sockets | RSS at start → settled | Genesys requests (app and budget at "
                      f"{SCALE_RPM:,}/min) |", "|---|---|---|---|---|---|---|---|---|---|"]
        for c in report.scale:
            asked = ", ".join(f"{k} {v:,}" for k, v in c.requests.items())
            lines.append(f"| {c.people:,} | {'on' if c.push else 'off'} | {seconds(c.linked_s)} | "
                         f"{seconds(c.subscribed_s)} | {seconds(c.subscribed_after_links_s)} | "
                         f"{seconds(c.healthy_s)} | {c.channels} | {c.sockets} | "
                         f"{c.rss_start_kib / 1024:.0f} → {c.rss_settled_kib / 1024:.0f} MiB | "
                         f"{asked} |")
    notes = [f"  {s.name}: {note}" for s in report.scenarios for note in s.notes]
    notes += [f"  {c.people:,} people: {note}" for c in report.scale for note in c.notes]
    if notes:
        lines += ["", "notes:", *notes]
    lines.append(f"\n{report.seconds:.0f} s")
    return "\n".join(lines)


def plan_from(arguments: argparse.Namespace) -> Plan:
    quick = arguments.quick
    return Plan(people=arguments.people or (8 if quick else 20), calls=arguments.calls or (10 if quick else 100),
                calls_off=arguments.calls_off or (4 if quick else 30),
                idle_s=arguments.idle or (3.0 if quick else 60.0),
                scale=tuple(arguments.scale or ((150,) if quick else (1000, 2500))),
                window_s=arguments.window or (6.0 if quick else 60.0),
                window_calls=arguments.window_calls or (4 if quick else 30),
                drop_every_s=arguments.drop_every, seed=arguments.seed)


def load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sections = ("calls", "idle", "scale", "fallback")
    parser.add_argument("--sections", nargs="+", choices=sections, default=list(sections))
    parser.add_argument("--quick", action="store_true", help="small and side by side: about 20 s")
    parser.add_argument("--people", type=int, default=0, help="people linked (default 20; --quick 8)")
    parser.add_argument("--calls", type=int, default=0, help="calls with push (default 100; --quick 10)")
    parser.add_argument("--calls-off", type=int, default=0, help="calls with push off (default 30; --quick 4)")
    parser.add_argument("--idle", type=float, default=0.0, help="idle window, seconds (default 60; --quick 3)")
    parser.add_argument("--scale", type=int, nargs="+", help="linked people to follow (default 1000 2500; --quick "
                                                             "150)")
    parser.add_argument("--window", type=float, default=0.0, help="fallback window, seconds (default 60; --quick 6)")
    parser.add_argument("--window-calls", type=int, default=0, help="calls in a fallback window (default 30; "
                                                                    "--quick 4)")
    parser.add_argument("--drop-every", type=float, default=5.0, help="seconds between socket cuts (default 5)")
    parser.add_argument("--seed", type=int, default=20261204)
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of tables")
    arguments = parser.parse_args(argv)
    plan = plan_from(arguments)
    if min(plan.people, plan.calls, plan.calls_off, plan.window_calls) < 1 or min(plan.idle_s, plan.window_s) <= 0:
        parser.error("--people and the call counts must be at least 1, the windows above 0")
    chosen = set(arguments.sections)
    report = Report(arguments.quick, os.cpu_count(), load())
    started = time.monotonic()
    jobs: list[Callable[[], object]] = []
    if chosen & {"calls", "idle"}:
        jobs += [lambda: push_on(plan, chosen), lambda: push_off(plan, chosen)]
    if "fallback" in chosen:
        jobs += [lambda: rejected(plan), lambda: flapping(plan)]
        jobs += [lambda name=name: one_fault(plan, name) for name in FAULTS]  # type: ignore[misc]
    if "scale" in chosen:
        jobs += [lambda people=people: scale(people, plan.seed) for people in plan.scale]  # type: ignore[misc]
        if not arguments.quick:  # what push's threads, sockets and state cost, beside the same people without it
            jobs.append(lambda: scale(plan.scale[0], plan.seed, push=False))
    print(f"{len(jobs)} app runs{' side by side' if arguments.quick else ''}", file=sys.stderr, flush=True)
    def timed(job: Callable[[], object]) -> object:
        result = job()
        print(f"  {type(result).__name__} done ({time.monotonic() - started:.0f} s in)", file=sys.stderr, flush=True)
        return result

    if arguments.quick:
        with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
            results = list(pool.map(timed, jobs))
    else:
        results = []
        results = [timed(job) for job in jobs]
    for result in results:
        if isinstance(result, Scale):
            report.scale.append(result)
        elif isinstance(result, Scenario):
            report.scenarios.append(result)
    report.seconds = round(time.monotonic() - started, 1)
    if arguments.json:
        print(json.dumps(asdict(report), indent=2))
    else:
        print(text(report))
    on = report.scenario("push (defaults)")
    slow = on is not None and on.latency is not None and (on.latency.p95_s is None
                                                          or on.latency.p95_s >= POLL_INTERVAL_S)
    return 1 if slow else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # every app was stopped on the way out
        print("interrupted", file=sys.stderr)
        sys.exit(130)
