"""Benchmark: bench/event_burst.py's burst against one and against two app replicas sharing one PostgreSQL.

    .venv/bin/python bench/replica_burst.py [--replicas 1 2] [--runs 3] [--concurrency 16] [--rate 0]
                                            [--events 10000] [--users 1000] [--live 300]

Starts a throwaway PostgreSQL server (localdev/postgres.py: the distribution's server binaries, run as the postgres
user when root; scripts/install-test-services.sh installs them), then for each run and each replica count in
turn (1, 2, 1, 2, … with the defaults): a new empty database, new local fakes (localdev/slack_api.py and
localdev/genesys_cloud.py) with the same people as bench/event_burst.py, and N app processes in HTTP mode on
that database (DATABASE_URL=postgresql://…). Once what the replicas do by themselves at start (the first sync of
every member) has finished, the same burst as bench/event_burst.py (same seed: 10,000 signed `user_change`
deliveries over 1,000 users, title changes, status-only changes and Slack retries) goes to the replicas, client
connection n to replica n mod N, as a load balancer spreading connections would. A Slack retry may land on the
other replica than its first delivery. --concurrency, --rate and --client mean what they mean in
bench/event_burst.py.

Reported per run, then as the median and range over the runs for each replica count:
- events/s and acknowledgement latency (p50/p95/p99/max), non-2xx answers;
- drain: seconds from the last answer until the work queue (the `work` table) is empty and every participant on
  a live call carries its person's current Slack title, that state then holding for 2 s;
- Genesys PATCHes from the burst on, and repeated writes: PATCHes that change nothing on the participant (it
  already had every value sent; must be 0), and participants written more often than their person's title
  changed during the burst (must be 0);
- Genesys user searches from the burst on (every person was linked at start-up, and links are shared through the
  database, so one replica or two should search for nobody);
- each replica's resident memory (before, peak during the burst and drain, after);
- CPU seconds during the burst and during the drain of each replica, of PostgreSQL (the postmaster and its
  backends), of this process (the load generator and both fakes) and of everything else on the machine. Before
  each run the benchmark waits (up to --quiet-wait seconds) for the machine's other processes to leave the CPUs
  idle; the "other processes" figure shows whether they stayed so.

The replicas and the PostgreSQL server are stopped however the benchmark ends, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import collections
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import psycopg

from bench.event_burst import (
    DRAIN_STABLE_S,
    REPO,
    SEED,
    App,
    MemorySampler,
    add_burst_arguments,
    build_deliveries,
    cpu_seconds,
    fire,
    log_problems,
    machine_busy_seconds,
    percentile,
    proc_status_kb,
    set_up_people,
    stale_participants,
    stop_app,
)
from localdev.app_process import app_environment, free_port, wait_for
from localdev.genesys_cloud import FakeGenesysCloud, JoinedParticipant, RecordedPatch
from localdev.postgres import PostgresServer, PostgresUnavailable, remove_server, start_server
from localdev.slack_api import FakeSlack

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------------------------------ processes


def launch_replica(slack: FakeSlack, genesys: FakeGenesysCloud, workdir: Path, name: str, database_url: str, *,
                   genesys_rpm: int) -> App:
    """bench/event_burst.launch_app with a DATABASE_URL: one replica as a real process; waits for /healthz."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = app_environment(slack, genesys, workdir, port, database_url=database_url)
    env["GENESYS_REQUESTS_PER_MINUTE"] = str(genesys_rpm)
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen([sys.executable, str(REPO / "app.py"), "serve"], cwd=workdir, env=env,
                                   stdout=log_file, stderr=subprocess.STDOUT)
    app = App(process, f"http://127.0.0.1:{port}", log_path, workdir / "unused.db")  # the state is in PostgreSQL

    def healthy() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"replica {name} exited with {process.returncode}:\n{app.log()[-4000:]}")
        try:
            return httpx.get(f"{app.url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(healthy, 30, f"replica {name}'s /healthz to answer 200")
    except BaseException:
        stop_app(app)
        raise
    return app


def polls_genesys(app: App) -> bool:
    """Whether this replica's /healthz says it holds the Genesys poll lease."""
    try:
        return httpx.get(f"{app.url}/healthz", timeout=5).json()["genesys"]["detail"] == "polling"
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return False


def stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def postgres_cpu_seconds(server: PostgresServer) -> float:
    """CPU seconds of the server so far: the postmaster, its live backends and helpers, and those that ended
    (their time is added to the postmaster's cutime/cstime when it reaps them)."""
    try:
        postmaster = int((server.data_dir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    own = stat_fields(postmaster)
    if own is None:
        return 0.0
    ticks = sum(int(own[i]) for i in (11, 12, 13, 14))  # utime, stime, cutime, cstime
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (child := stat_fields(int(entry.name))) is not None and int(child[1]) == postmaster:
            ticks += int(child[11]) + int(child[12])
    return ticks / CLOCK_TICKS


def wait_quiet(max_wait_s: float, *, idle_cores: float = 0.2, window_s: float = 3.0) -> str:
    """Wait (at most max_wait_s) for a window_s window in which the rest of the machine keeps less than idle_cores
    busy: on a shared machine another job's CPU would be counted against the replicas. Returns what was seen."""
    started = time.perf_counter()
    while True:
        before = machine_busy_seconds()
        time.sleep(window_s)
        busy = (machine_busy_seconds() - before) / window_s
        waited = time.perf_counter() - started
        if busy < idle_cores:
            return f"machine quiet ({busy:.2f} cores busy) after {waited:.0f} s"
        if waited >= max_wait_s:
            return f"machine NOT quiet ({busy:.2f} cores busy by other processes) after {waited:.0f} s; running anyway"


@dataclass
class CpuSnapshot:
    replicas: list[float]
    postgres: float
    generator: float
    machine: float
    at: float

    @classmethod
    def take(cls, apps: list[App], server: PostgresServer) -> CpuSnapshot:
        return cls([cpu_seconds(app.process.pid) for app in apps], postgres_cpu_seconds(server),
                   cpu_seconds(os.getpid()), machine_busy_seconds(), time.perf_counter())

    def since(self, earlier: CpuSnapshot) -> dict[str, float]:
        """Seconds spent between `earlier` and this one: per replica, PostgreSQL, generator, everything else."""
        spent = {f"replica {n + 1}": now - then
                 for n, (now, then) in enumerate(zip(self.replicas, earlier.replicas, strict=True))}
        spent["apps"] = sum(spent.values())
        spent["postgres"] = self.postgres - earlier.postgres
        spent["generator"] = self.generator - earlier.generator
        spent["machine"] = self.machine - earlier.machine
        spent["elapsed"] = self.at - earlier.at
        spent["other"] = max(0.0, spent["machine"] - spent["apps"] - spent["postgres"] - spent["generator"])
        return spent


# ------------------------------------------------------------------------------------------------ checks


def pending(database: psycopg.Connection[tuple[int]]) -> int:
    """Items in the shared work queue (claimed ones stay in it until done)."""
    row = database.execute("SELECT COUNT(*) FROM work").fetchone()
    return int(row[0]) if row else 0


def settle(apps: list[App], slack: FakeSlack, genesys: FakeGenesysCloud, database: psycopg.Connection[tuple[int]],
           participants: dict[str, JoinedParticipant], timeout_s: float) -> tuple[float, bool, float]:
    """Wait for the queue to drain; (seconds until it was empty and every live participant carried its person's
    current title, whether that happened, seconds until the last users.profile.get or PATCH).

    Done once that state has held, with no Slack read or Genesys write, for DRAIN_STABLE_S (not counted).
    """
    started = time.perf_counter()
    last = (slack.call_count("users.profile.get"), genesys.request_count("PATCH"))
    last_activity, since = started, None
    while (now := time.perf_counter()) - started < timeout_s:
        for app in apps:
            if app.process.poll() is not None:
                raise RuntimeError(f"a replica exited with {app.process.returncode}:\n{app.log()[-4000:]}")
        seen = (slack.call_count("users.profile.get"), genesys.request_count("PATCH"))
        if seen != last:
            last, last_activity = seen, now
        if pending(database) == 0 and not stale_participants(slack, genesys, participants):
            since = now if since is None else since
            if now - since >= DRAIN_STABLE_S and now - last_activity >= DRAIN_STABLE_S:
                return since - started, True, last_activity - started
        else:
            since = None
        time.sleep(0.1)
    return time.perf_counter() - started, False, last_activity - started


def repeated_writes(patches: list[RecordedPatch]) -> int:
    """PATCHes that changed nothing: the participant already had every value sent (Genesys merges a PATCH)."""
    state: dict[tuple[str, str], dict[str, str]] = {}
    repeated = 0
    for patch in patches:
        current = state.setdefault((patch.conversation_id, patch.participant_id), {})
        if all(current.get(key) == value for key, value in patch.attributes.items()):
            repeated += 1
        current.update(patch.attributes)
    return repeated


# ------------------------------------------------------------------------------------------------ one run


@dataclass
class Result:
    replicas: int
    events_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int
    drain_s: float
    drained: bool
    patches: int
    repeated: int
    over_written: int
    searches: int
    """Genesys user searches (`POST /api/v2/users/search`) from the burst on, all replicas together."""
    rss_mib: list[tuple[float, float, float]]  # per replica: before, peak during burst and drain, after
    cpu_burst: dict[str, float]
    cpu_drain: dict[str, float]
    wall_s: float
    problems: list[str] = field(default_factory=list)


def one_run(arguments: argparse.Namespace, server: PostgresServer, replicas: int, label: str,
            workdir: Path) -> Result:
    name = f"replica_burst_{label}"
    database_url = server.create_database(name)
    rng = random.Random(SEED)
    try:
        with FakeSlack() as slack, FakeGenesysCloud(requests_per_minute=arguments.genesys_rpm) as genesys:
            genesys.set_rate_limit(arguments.genesys_rpm)
            user_ids, participants = set_up_people(slack, genesys, rng, arguments.users, arguments.live)
            apps: list[App] = []
            try:
                for n in range(replicas):
                    apps.append(launch_replica(slack, genesys, workdir / f"{label}-{n + 1}", f"replica-{n + 1}",
                                               database_url, genesys_rpm=arguments.genesys_rpm))
                with psycopg.connect(database_url, autocommit=True) as database:
                    return measure(arguments, server, rng, apps, slack, genesys, database, user_ids, participants)
            finally:
                for n, app in enumerate(apps):
                    stop_app(app)
                    if arguments.keep_logs:
                        Path(arguments.keep_logs).mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(app.log_path, Path(arguments.keep_logs) / f"{label}-replica-{n + 1}.log")
    finally:
        server.drop_database(name)


def measure(arguments: argparse.Namespace, server: PostgresServer, rng: random.Random, apps: list[App],
            slack: FakeSlack, genesys: FakeGenesysCloud, database: psycopg.Connection[tuple[int]],
            user_ids: list[str], participants: dict[str, JoinedParticipant]) -> Result:
    wait_for(lambda: genesys.request_count("POST", "/api/v2/analytics") > 0, 20, "the first Genesys poll")
    startup_s, settled, _ = settle(apps, slack, genesys, database, participants, arguments.drain_timeout)
    if not settled:
        raise RuntimeError(f"the replicas' start-up work did not settle in {startup_s:.0f} s "
                           f"({pending(database)} items pending)")
    pollers = [n + 1 for n, app in enumerate(apps) if polls_genesys(app)]
    print(f"  start-up: first sync of {slack.call_count('users.profile.get'):,} profiles, "
          f"{len(genesys.patches)} PATCHes, settled after {startup_s:.1f} s; replica {pollers} polls Genesys")

    deliveries = build_deliveries(slack, user_ids, rng, arguments.events)
    title_changes = collections.Counter(d.user_id for d in deliveries if d.change and "title" in d.change)
    patches_before = len(genesys.patches)
    reads_before = slack.call_count("users.profile.get")
    requests_before = len(genesys.requests)
    rss_before = [proc_status_kb(app.process.pid, "VmRSS") or 0 for app in apps]
    progress = [0]
    samplers = [MemorySampler(app.process.pid, progress) for app in apps]
    for sampler in samplers:
        sampler.start()
    cpu_start = CpuSnapshot.take(apps, server)
    try:
        client_cpu: list[float] = []
        latencies, statuses, wall = fire(apps[0], slack, deliveries, arguments.concurrency, arguments.rate,
                                         progress, urls=[app.url for app in apps], client=arguments.client,
                                         client_cpu=client_cpu)
        cpu_burst = CpuSnapshot.take(apps, server)
        pending_after = pending(database)
        drain_s, drained, activity_s = settle(apps, slack, genesys, database, participants, arguments.drain_timeout)
        cpu_drain = CpuSnapshot.take(apps, server)
    finally:
        for sampler in samplers:
            sampler.stop()
    rss = [(before / 1024, max((s[2] for s in sampler.samples), default=before) / 1024,
            (proc_status_kb(app.process.pid, "VmRSS") or 0) / 1024)
           for before, sampler, app in zip(rss_before, samplers, apps, strict=True)]

    ordered = sorted(latencies)
    bad = sum(not 200 <= s < 300 for s in statuses)
    patches = genesys.patches[patches_before:]
    writes = collections.Counter((p.conversation_id, p.participant_id) for p in patches)
    over_written = sum(writes[(participant.conversation_id, participant.participant_id)] > title_changes[user_id]
                       for user_id, participant in participants.items())
    live_changes = sum(title_changes[user_id] for user_id in participants)
    repeated = repeated_writes(genesys.patches)
    new_requests = genesys.requests[requests_before:]
    searches = sum(r.path.startswith("/api/v2/users/search") for r in new_requests)
    polls = sum(r.path.startswith("/api/v2/analytics") for r in new_requests)
    result = Result(
        replicas=len(apps), events_per_s=len(deliveries) / wall, p50_ms=percentile(ordered, 0.50) * 1000,
        p95_ms=percentile(ordered, 0.95) * 1000, p99_ms=percentile(ordered, 0.99) * 1000, max_ms=ordered[-1] * 1000,
        non_2xx=bad, drain_s=drain_s, drained=drained, patches=len(patches), repeated=repeated,
        over_written=over_written, searches=searches, rss_mib=rss, cpu_burst=cpu_burst.since(cpu_start),
        cpu_drain=cpu_drain.since(cpu_burst), wall_s=wall)
    result.cpu_burst["clients"] = sum(client_cpu)

    print(f"  burst: {len(deliveries):,} in {wall:.2f} s = {result.events_per_s:,.0f} events/s; ack p50 "
          f"{result.p50_ms:.1f} ms, p95 {result.p95_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, max {result.max_ms:.1f} ms;"
          f" non-2xx {bad:,}")
    print(f"  drain: {'done' if drained else 'NOT done'} {drain_s:.1f} s after the last answer ({pending_after:,} "
          f"items pending then; last Slack read or Genesys write at {activity_s:.1f} s)")
    print(f"  Genesys from the burst on: {len(patches):,} PATCHes for {live_changes:,} title changes of people on "
          f"calls; repeated writes {repeated} (since start); participants written more often than their title "
          f"changed: {over_written}; user searches {searches:,}, polls {polls:,}, requests {len(new_requests):,}")
    print(f"  Slack users.profile.get from the burst on: {slack.call_count('users.profile.get') - reads_before:,}")
    print("  RSS MiB (before, peak, after): " + "; ".join(
        f"replica {n + 1} {b:.0f}, {p:.0f}, {a:.0f}" for n, (b, p, a) in enumerate(rss)))
    for phase, spent in (("burst", result.cpu_burst), ("drain", result.cpu_drain)):
        per_replica = ", ".join(f"{spent[f'replica {n + 1}']:.1f}" for n in range(len(apps)))
        print(f"  CPU s in the {phase} (machine busy {spent['machine']:.1f} of {os.cpu_count()} cores x "
              f"{spent['elapsed']:.1f} s): apps {spent['apps']:.1f} ({per_replica}), PostgreSQL "
              f"{spent['postgres']:.1f}, generator and fakes {spent['generator']:.1f}"
              + (f" (client threads {spent['clients']:.1f})" if "clients" in spent else "")
              + f", other processes {spent['other']:.1f}")
    for n, app in enumerate(apps):
        text = app.log()
        recorded = text.count(" recorded (event ")
        problems = log_problems(text)
        result.problems += [f"replica {n + 1}: {line}" for line in problems]
        print(f"  replica {n + 1} log: {recorded:,} events recorded, {len(problems)} distinct warning/error lines")
        for line in problems[:6]:
            print(f"    {line[:240]}")
    if slack.server_errors or genesys.server_errors:
        print(f"  fake server errors: Slack {slack.server_errors[:3]}, Genesys {genesys.server_errors[:3]}")
    return result


# ------------------------------------------------------------------------------------------------ summary


def spread(values: list[float], fmt: str) -> str:
    """Median and range: "388 (380–395)"; the value alone for a single run."""
    median = format(statistics.median(values), fmt)
    if len(values) == 1:
        return median
    return f"{median} ({format(min(values), fmt)}–{format(max(values), fmt)})"


def summary(results: list[Result]) -> None:
    print("\nmedian (min–max) over the runs:")
    rows = [
        ("events/s", lambda r: r.events_per_s, ",.0f"),
        ("ack p50 ms", lambda r: r.p50_ms, ".1f"),
        ("ack p95 ms", lambda r: r.p95_ms, ".1f"),
        ("ack p99 ms", lambda r: r.p99_ms, ".1f"),
        ("ack max ms", lambda r: r.max_ms, ".0f"),
        ("non-2xx", lambda r: r.non_2xx, ".0f"),
        ("drain s", lambda r: r.drain_s, ".1f"),
        ("PATCHes", lambda r: r.patches, ".0f"),
        ("repeated writes (no-op PATCHes)", lambda r: r.repeated, ".0f"),
        ("participants written > changes", lambda r: r.over_written, ".0f"),
        ("Genesys user searches", lambda r: r.searches, ".0f"),
        ("events/s per app CPU core", lambda r: r.events_per_s * r.wall_s / r.cpu_burst["apps"], ",.0f"),
        ("peak RSS MiB, each replica", None, ""),
        ("CPU s burst: apps", lambda r: r.cpu_burst["apps"], ".1f"),
        ("CPU s burst: PostgreSQL", lambda r: r.cpu_burst["postgres"], ".1f"),
        ("CPU s burst: generator+fakes", lambda r: r.cpu_burst["generator"], ".1f"),
        ("  of which client threads", lambda r: r.cpu_burst["clients"], ".1f"),
        ("CPU s burst: other", lambda r: r.cpu_burst["other"], ".1f"),
        ("CPU s drain: apps", lambda r: r.cpu_drain["apps"], ".1f"),
        ("CPU s drain: PostgreSQL", lambda r: r.cpu_drain["postgres"], ".1f"),
        ("app CPU ms per event (burst+drain)",
         lambda r: (r.cpu_burst["apps"] + r.cpu_drain["apps"]) * 1000 / (r.events_per_s * r.wall_s), ".2f"),
        ("PostgreSQL CPU ms per event", lambda r: (r.cpu_burst["postgres"] + r.cpu_drain["postgres"]) * 1000
         / (r.events_per_s * r.wall_s), ".2f"),
    ]
    counts = sorted({r.replicas for r in results})
    print(f"  {'':36}" + "".join(f"{f'{n} replica' + ('s' if n > 1 else ''):>28}" for n in counts))
    for title, get, fmt in rows:
        cells = []
        for n in counts:
            runs = [r for r in results if r.replicas == n]
            if get is None:
                cells.append(" / ".join(spread([r.rss_mib[k][1] for r in runs], ".0f") for k in range(n)))
            else:
                cells.append(spread([float(get(r)) for r in runs], fmt))
        print(f"  {title:36}" + "".join(f"{cell:>28}" for cell in cells))
    undrained = sum(not r.drained for r in results)
    if undrained:
        print(f"  {undrained} run(s) did NOT drain within --drain-timeout")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2], help="replica counts, run in turn")
    parser.add_argument("--runs", type=int, default=3, help="runs of each replica count (alternating)")
    add_burst_arguments(parser)
    parser.add_argument("--drain-timeout", type=float, default=180.0, help="seconds to wait for the queue to drain")
    parser.add_argument("--genesys-rpm", type=int, default=100_000,
                        help="Genesys rate limit per minute, the fake's and the replicas' shared budget")
    parser.add_argument("--keep-logs", metavar="DIR", help="copy each replica's log here (they run in a temporary "
                                                            "directory)")
    parser.add_argument("--quiet-wait", type=float, default=300.0,
                        help="before each run, wait up to this many seconds for other processes to leave the CPUs "
                             "idle (a shared machine)")
    arguments = parser.parse_args()
    if min(arguments.events, arguments.users, arguments.concurrency, arguments.runs, *arguments.replicas) < 1 \
            or min(arguments.live, arguments.rate) < 0:
        parser.error("--events, --users, --concurrency, --runs and --replicas must be at least 1, --live and --rate "
                     "at least 0")
    try:
        server = start_server()
    except PostgresUnavailable as missing:
        print(missing, file=sys.stderr)
        return 2
    load = "closed loop" if arguments.rate <= 0 else f"offered at {arguments.rate:,.0f}/s"
    load += f", {arguments.client} client"
    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; PostgreSQL "
          f"{server.bin_dir.parent.name} on 127.0.0.1:{server.port}; {arguments.events:,} deliveries over "
          f"{arguments.users:,} users ({arguments.live} on calls), {arguments.concurrency} connections, {load}")
    results: list[Result] = []
    try:
        with tempfile.TemporaryDirectory(prefix="replica-burst-") as tmp:
            for run in range(arguments.runs):
                for replicas in arguments.replicas:
                    quiet = wait_quiet(arguments.quiet_wait)
                    print(f"\nrun {run + 1}, {replicas} replica{'s' if replicas > 1 else ''} ({quiet}):", flush=True)
                    results.append(one_run(arguments, server, replicas, f"{run + 1}_{replicas}", Path(tmp)))
                    sys.stdout.flush()
    finally:
        remove_server(server)
        if results:
            summary(results)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # replicas and the server were stopped on the way out
        print("interrupted", file=sys.stderr)
        sys.exit(130)
