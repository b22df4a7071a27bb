"""Benchmark: acknowledgement latency and throughput of a burst of signed `user_change` events.

    .venv/bin/python bench/event_burst.py [--events 10000] [--users 1000] [--concurrency 16] [--live 300] [--rate 0]
                                          [--client raw|httpx] [--app-log PATH]

Starts the local Slack (localdev/slack_api.py) and the local Genesys Cloud (localdev/genesys_cloud.py) on
127.0.0.1 with --users people (e-mail, title, custom fields; the same e-mails in Genesys), puts --live of them on
live voice calls, and runs the app as a real process in HTTP mode, as tests/test_service.py does
(POLL_INTERVAL_SECONDS=1, its database in a temporary directory). Genesys' rate limit (the fake's and the app's
own budget, GENESYS_REQUESTS_PER_MINUTE) is set to 100,000/min so Genesys is not the bottleneck. Whatever the app
does by itself at start (a first-start sync of every member) is left to finish before the burst.

Then --events signed `user_change` envelopes go to POST /slack/events from --concurrency threads, each with its own
keep-alive connection: by default a minimal HTTP/1.1 client on a socket (RawClient, about 0.1 ms of CPU per
request), or with --client httpx an httpx.Client (about 1.2 ms per request, whose queueing for this process's GIL
then shows up as the app's latency; the method of the first published figures, kept to compare with them). Users are
picked at random (fixed seed); before about half of the deliveries the person's profile changes in Slack (a title,
or only the status), the envelope carrying the new user object; about 10% of the deliveries are Slack retries of an
earlier envelope (same event_id, X-Slack-Retry-Num). Bodies are built and signed before the clock starts. Each
request's latency is the time to the full response. By default each client sends its next request as soon as it has
an answer (closed loop: the figures are at the app's saturation throughput); with --rate N the requests are due at N
per second and each latency counts from its due time (open loop).

Reports wall time, events/s, p50/p95/p99/max latency, non-2xx answers, the app's resident memory while the burst
ran (VmRSS samples, VmHWM at the end), and how long the engine took to drain its queue afterwards, with the
users.profile.get calls (fewer than the events when queued work for one person coalesces) and Genesys PATCHes.
The load generator and both fakes run in this process on the same machine: their CPU time (the client threads' own
apart) is printed beside the app's, and so is what every other process on the machine used meanwhile, since on a
small machine they all compete with the app for the cores. The app is stopped (SIGTERM, then SIGKILL)
however the benchmark ends, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import os
import platform
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from localdev.app_process import SIGNING_SECRET, app_environment, free_port, wait_for
from localdev.genesys_cloud import FakeGenesysCloud, JoinedParticipant
from localdev.slack_api import FakeSlack, event_envelope, signed_headers

REPO = Path(__file__).resolve().parent.parent
SEED = 20261125
TITLES = ["Support Engineer", "Team Lead — Billing", "Agent", "Supervisor", "Workforce Analyst", "QA Specialist",
          "Senior Agent", "Escalations Specialist"]
FIELDS = {"Xf01DEPT0001": "Department", "Xf01TEAM0002": "Team", "Xf01SITE0003": "Location"}
DEPARTMENTS = ["Customer Care", "Billing", "Technical Support", "Sales", "Retention"]
SITES = ["Dublin", "Cork", "Galway", "Remote"]
STATUSES = [("On a call", ":telephone_receiver:"), ("Lunch", ":sandwich:"), ("In a meeting", ":calendar:"),
            ("", "")]
TARGET_P99_MS = 100.0
DRAIN_STABLE_S = 2.0  # two poll intervals without a new Slack read or Genesys write


@dataclass
class Delivery:
    """One POST: the pre-signed body and headers, and the profile change to make in Slack just before it."""

    body: bytes
    headers: dict[str, str]
    user_id: str
    change: dict[str, str] | None = None
    retry: bool = False


@dataclass
class App:
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path
    database: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass
class MemorySampler:
    """Samples the app's VmRSS every `interval_s` with how many requests had been answered."""

    pid: int
    progress: list[int]
    interval_s: float = 0.25
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # (t, answered, rss_kb)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        started = time.perf_counter()
        while not self._stop.is_set():
            rss = proc_status_kb(self.pid, "VmRSS")
            if rss is not None:
                self.samples.append((time.perf_counter() - started, self.progress[0], rss))
            self._stop.wait(self.interval_s)


def proc_status_kb(pid: int, key: str) -> int | None:
    """A kB figure (VmRSS, VmHWM) from /proc/<pid>/status, or None once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def launch_app(slack: FakeSlack, genesys: FakeGenesysCloud, workdir: Path, *, genesys_rpm: int) -> App:
    """The app as a real process (as tests/test_service.launch, plus the Genesys budget); waits for /healthz."""
    port = free_port()
    env = app_environment(slack, genesys, workdir, port)
    env["GENESYS_REQUESTS_PER_MINUTE"] = str(genesys_rpm)
    log_path = workdir / "app.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen([sys.executable, str(REPO / "app.py"), "serve"], cwd=workdir, env=env,
                                   stdout=log_file, stderr=subprocess.STDOUT)
    app = App(process, f"http://127.0.0.1:{port}", log_path, workdir / "sync.db")

    def healthy() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited with {process.returncode}:\n{app.log()[-4000:]}")
        try:
            return httpx.get(f"{app.url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(healthy, 30, "/healthz to answer 200")
    except BaseException:
        stop_app(app)
        raise
    return app


def stop_app(app: App) -> int | None:
    """SIGTERM, then SIGKILL after 10 s; returns the exit status (None if it could not be reaped)."""
    if app.process.poll() is None:
        app.process.send_signal(signal.SIGTERM)
        try:
            app.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            app.process.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        app.process.wait(timeout=10)
    return app.process.returncode


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy so far (everything but idle and iowait), from /proc/stat; 0 if unreadable."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")  # user nice system idle iowait irq softirq steal


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (all its threads), from /proc/<pid>/stat; 0 if gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (fields 14 and 15)


def pending_work(database: Path) -> int | None:
    """Rows in the app's work queue, read-only from its SQLite file; None if unreadable."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1)) as connection:
            (count,) = connection.execute("SELECT COUNT(*) FROM work").fetchone()
            return int(count)
    except sqlite3.Error:
        return None


def set_up_people(slack: FakeSlack, genesys: FakeGenesysCloud, rng: random.Random, users: int,
                  live: int) -> tuple[list[str], dict[str, JoinedParticipant]]:
    """Slack users with e-mails and custom fields, the same people in Genesys, `live` of them on a voice call."""
    for ordering, (field_id, label) in enumerate(FIELDS.items()):
        slack.define_field(field_id, label, ordering=ordering)
    user_ids, genesys_ids = [], {}
    for n in range(users):
        user_id = f"UB{n:08d}"
        email = f"agent{n}@example.com"
        fields = {"Xf01DEPT0001": {"value": rng.choice(DEPARTMENTS), "alt": ""},
                  "Xf01TEAM0002": {"value": f"Team {n % 40:02d}", "alt": ""},
                  "Xf01SITE0003": {"value": rng.choice(SITES), "alt": ""}}
        slack.add_user(user_id, name=f"agent{n}", real_name=f"Agent {n}", email=email, title=rng.choice(TITLES),
                       fields=fields, display_name=f"agent{n}", pronouns=rng.choice(["she/her", "he/him", "they/them"]))
        genesys_ids[user_id] = genesys.add_user(email, name=f"Agent {n}")
        user_ids.append(user_id)
    participants = {user_id: genesys.start_conversation(genesys_ids[user_id], media_type="voice")
            for user_id in rng.sample(user_ids, min(live, users))}
    return user_ids, participants


def build_deliveries(slack: FakeSlack, user_ids: list[str], rng: random.Random, events: int) -> list[Delivery]:
    """The burst, signed: user objects evolve on a local copy; the same changes are made in Slack while sending."""
    shadow = {user_id: slack.user(user_id) for user_id in user_ids}
    deliveries: list[Delivery] = []
    originals: list[int] = []
    for n in range(events):
        if len(originals) > 32 and rng.random() < 0.10:  # a Slack retry of a recent delivery, same event_id
            first = deliveries[rng.choice(originals[-400:-16])]
            headers = signed_headers(SIGNING_SECRET, first.body)
            headers.update({"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
            deliveries.append(Delivery(first.body, headers, first.user_id, retry=True))
            continue
        user_id = rng.choice(user_ids)
        user = shadow[user_id]
        roll = rng.random()
        change: dict[str, str] | None = None
        if roll < 0.30:
            change = {"title": rng.choice(TITLES) + ("" if rng.random() < 0.5 else f" ({rng.randrange(100)})")}
        elif roll < 0.50:
            text, emoji = rng.choice(STATUSES)
            change = {"status_text": text, "status_emoji": emoji}
        if change is not None:
            user["profile"].update(change)
            user["updated"] = max(user["updated"] + 1, int(time.time()))
        now = int(time.time())
        event = {"type": "user_change", "user": copy.deepcopy(user), "cache_ts": now, "event_ts": f"{now}.{n:06d}"}
        body = json.dumps(event_envelope(event, team_id=slack.team_id, event_id=f"Ev{SEED % 1000:03d}{n:08d}",
                                         event_time=now)).encode()
        deliveries.append(Delivery(body, signed_headers(SIGNING_SECRET, body), user_id, change))
        originals.append(n)
    return deliveries


class RawClient:
    """A keep-alive HTTP/1.1 client on one socket that sends a POST and reads the answer's status and body.

    The load generator shares the app's cores, and httpx spends about 1.2 ms of CPU per request here (its client
    threads then queue for this process's GIL, and that wait counts as the app's latency): against a WSGI app that
    does nothing, 16 httpx connections measure p99 of 64-97 ms on 2 cores, this client 9-16 ms at about 0.07 ms of
    CPU per request. It understands what waitress sends: Content-Length or chunked bodies, and `Connection: close`
    (it reconnects for the next request).
    """

    def __init__(self, url: str, timeout_s: float) -> None:
        parsed = httpx.URL(url)
        self._address = (parsed.host, parsed.port or 80)
        self._host = f"{parsed.host}:{parsed.port}" if parsed.port else parsed.host
        self._path = parsed.raw_path.decode()
        self._timeout_s = timeout_s
        self._socket: socket.socket | None = None
        self._buffer = b""

    def post(self, body: bytes, headers: dict[str, str]) -> int:
        """The answer's status code; OSError when there was no complete answer (the next call reconnects)."""
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        request = (f"POST {self._path} HTTP/1.1\r\nHost: {self._host}\r\nContent-Length: {len(body)}\r\n{head}"
                   "\r\n").encode("latin-1") + body
        try:
            if self._socket is None:
                self._socket = socket.create_connection(self._address, timeout=self._timeout_s)
                self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._buffer = b""
            self._socket.sendall(request)
            status, close = self._read_response()
        except (OSError, ValueError) as error:
            self.close()
            raise OSError(f"no complete answer: {error}") from error
        if close:
            self.close()
        return status

    def _read_response(self) -> tuple[int, bool]:
        while b"\r\n\r\n" not in self._buffer:
            self._receive()
        head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        fields = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
        if fields.get("transfer-encoding", "").lower() == "chunked":
            while True:
                while b"\r\n" not in self._buffer:
                    self._receive()
                size_line, _, self._buffer = self._buffer.partition(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                while len(self._buffer) < size + 2:
                    self._receive()
                self._buffer = self._buffer[size + 2:]
                if size == 0:  # no trailers from waitress
                    break
        else:
            length = int(fields.get("content-length", "0"))
            while len(self._buffer) < length:
                self._receive()
            self._buffer = self._buffer[length:]
        return status, fields.get("connection", "").lower() == "close"

    def _receive(self) -> None:
        assert self._socket is not None
        chunk = self._socket.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self._buffer += chunk

    def close(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.close()
            self._socket = None


class HttpxClient:
    """The same as RawClient through httpx.Client (--client httpx: the method of the first published figures)."""

    def __init__(self, url: str, timeout_s: float) -> None:
        self._url = url
        # Built before the clock starts: an httpx.Client costs tens of milliseconds (it loads an SSL context).
        self._client = httpx.Client(timeout=timeout_s,
                                    limits=httpx.Limits(max_connections=1, max_keepalive_connections=1))

    def post(self, body: bytes, headers: dict[str, str]) -> int:
        try:
            return self._client.post(self._url, content=body, headers=headers).status_code
        except httpx.HTTPError as error:
            raise OSError(f"no complete answer: {error}") from error

    def close(self) -> None:
        self._client.close()


CLIENTS = {"raw": RawClient, "httpx": HttpxClient}


def fire(app: App, slack: FakeSlack, deliveries: list[Delivery], concurrency: int, rate: float,
         progress: list[int], urls: list[str] | None = None, *, client: str = "raw",
         client_cpu: list[float] | None = None) -> tuple[list[float], list[int], float]:
    """POST every delivery from `concurrency` keep-alive clients; (latencies s, statuses, wall s).

    rate 0: each client sends its next request as soon as it has the last answer (closed loop). rate > 0: request n
    is due at n / rate seconds and its latency counts from then, so a late send is not hidden (open loop).
    urls: several apps' base URLs (bench/replica_burst.py), client n sending to urls[n % len(urls)], as a load
    balancer spreading connections would; default: app.url only.
    client: a key of CLIENTS (raw: RawClient; httpx: the first figures' method). client_cpu: when given, the client
    threads' CPU seconds (their own, on the clock while they ran) are appended to it.
    """
    latencies = [0.0] * len(deliveries)
    statuses = [0] * len(deliveries)
    next_index = iter(range(len(deliveries)))
    take = threading.Lock()
    targets = [f"{base}/slack/events" for base in (urls or [app.url])]
    stop = threading.Event()
    clients = [CLIENTS[client](targets[n % len(targets)], 30.0) for n in range(concurrency)]
    sender_cpu = [0.0] * concurrency

    def sender(n: int, connection: RawClient | HttpxClient) -> None:
        cpu_start = time.thread_time()
        try:
            while not stop.is_set():
                with take:
                    index = next(next_index, None)
                if index is None:
                    return
                delivery = deliveries[index]
                if delivery.change is not None:
                    slack.update_profile(delivery.user_id, **delivery.change)  # the edit that caused this event
                started = time.perf_counter()
                if rate > 0:
                    due = begun + index / rate
                    if due > started:
                        time.sleep(due - started)
                    started = due
                try:
                    statuses[index] = connection.post(delivery.body, delivery.headers)
                except OSError:
                    statuses[index] = -1  # no answer at all (connection error or 30 s timeout)
                latencies[index] = time.perf_counter() - started
                with take:
                    progress[0] += 1
        finally:
            connection.close()
            sender_cpu[n] = time.thread_time() - cpu_start

    threads = [threading.Thread(target=sender, args=(n, connection), name=f"sender-{n}", daemon=True)
               for n, connection in enumerate(clients)]
    started = begun = time.perf_counter()
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(timeout=0.5)
    finally:
        stop.set()
    wall = time.perf_counter() - started
    for thread in threads:
        thread.join(timeout=5)
    if client_cpu is not None:
        client_cpu.append(sum(sender_cpu))
    return latencies, statuses, wall


def wait_for_drain(app: App, slack: FakeSlack, genesys: FakeGenesysCloud, timeout_s: float) -> tuple[float, bool]:
    """Seconds from now until the queue was empty and the last Slack read / Genesys write happened; (s, drained).
    Also used before the burst, for whatever the app does by itself at start.

    Drained: the app's work table is empty (when readable) and neither users.profile.get calls nor PATCHes grew
    for DRAIN_STABLE_S. The figure excludes that final quiet period.
    """
    started = time.perf_counter()
    last = (slack.call_count("users.profile.get"), genesys.request_count("PATCH"))
    last_change = started
    while time.perf_counter() - started < timeout_s:
        if app.process.poll() is not None:
            return time.perf_counter() - started, False
        now = time.perf_counter()
        seen = (slack.call_count("users.profile.get"), genesys.request_count("PATCH"))
        if seen != last:
            last, last_change = seen, now
        pending = pending_work(app.database)
        if pending == 0 or pending is None:
            if now - last_change >= DRAIN_STABLE_S:
                return last_change - started, True
        else:
            last_change = now
        time.sleep(0.1)
    return time.perf_counter() - started, False


def stale_participants(slack: FakeSlack, genesys: FakeGenesysCloud,
                       participants: dict[str, JoinedParticipant]) -> list[tuple[str, str, str | None]]:
    """(user, current Slack title, title on the participant) for each live participant whose title is not current."""
    stale = []
    for user_id, participant in participants.items():
        want = slack.user(user_id)["profile"]["title"]
        have = genesys.attributes(participant.conversation_id, participant.participant_id).get("slack.title")
        if have != want:
            stale.append((user_id, want, have))
    return stale


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


QUEUE_DEPTH = "WARNING waitress.queue: Task queue depth is "


def log_problems(text: str) -> list[str]:
    """Distinct WARNING/ERROR lines and tracebacks in the app's log (counted, timestamp cut); waitress' "Task
    queue depth" warnings (requests waiting for one of its threads) are summed into one line."""
    seen: dict[str, int] = {}
    depths: list[int] = []
    for line in text.splitlines():
        if " WARNING " in line or " ERROR " in line or " CRITICAL " in line or line.startswith("Traceback"):
            key = line.split(" ", 2)[-1] if line[:2].isdigit() else line
            if key.startswith(QUEUE_DEPTH) and key[len(QUEUE_DEPTH):].isdigit():
                depths.append(int(key[len(QUEUE_DEPTH):]))
                continue
            seen[key] = seen.get(key, 0) + 1
    lines = [f"{count}x {line}" for line, count in seen.items()]
    if depths:
        lines.insert(0, f"{len(depths):,}x {QUEUE_DEPTH}N (requests waiting for a waitress thread), N up to "
                        f"{max(depths)}")
    return lines


def add_burst_arguments(parser: argparse.ArgumentParser) -> None:
    """The burst's shape, the same for this benchmark and bench/replica_burst.py."""
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--live", type=int, default=300, help="people on a live voice call during the burst")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="offered events/s (open loop; latency counted from each request's due time); "
                             "default 0: as fast as the connections go (closed loop)")
    parser.add_argument("--client", choices=sorted(CLIENTS), default="raw",
                        help="raw (default): a minimal keep-alive HTTP/1.1 client on a socket, about 0.1 ms of CPU "
                             "per request; httpx: httpx.Client, about 1.2 ms (the method of the first figures)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_burst_arguments(parser)
    parser.add_argument("--app-log", metavar="PATH", help="keep a copy of the app's log (it runs in a temporary "
                                                          "directory)")
    parser.add_argument("--drain-timeout", type=float, default=120.0, help="seconds to wait for the queue to drain")
    parser.add_argument("--genesys-rpm", type=int, default=100_000,
                        help="Genesys rate limit per minute, the fake's and the app's own budget")
    arguments = parser.parse_args()
    if min(arguments.events, arguments.users, arguments.concurrency) < 1 or min(arguments.live, arguments.rate) < 0:
        parser.error("--events, --users and --concurrency must be at least 1, --live and --rate at least 0")
    rng = random.Random(SEED)
    with tempfile.TemporaryDirectory(prefix="event-burst-") as tmp, FakeSlack() as slack, \
            FakeGenesysCloud(requests_per_minute=arguments.genesys_rpm) as genesys:
        genesys.set_rate_limit(arguments.genesys_rpm)
        user_ids, participants = set_up_people(slack, genesys, rng, arguments.users, arguments.live)
        app = launch_app(slack, genesys, Path(tmp), genesys_rpm=arguments.genesys_rpm)
        try:
            return run(arguments, rng, app, slack, genesys, user_ids, participants)
        finally:
            status = stop_app(app)
            print(f"app stopped (exit status {status})")


def run(arguments: argparse.Namespace, rng: random.Random, app: App, slack: FakeSlack, genesys: FakeGenesysCloud,
        user_ids: list[str], participants: dict[str, JoinedParticipant]) -> int:
    wait_for(lambda: genesys.request_count("POST", "/api/v2/analytics") > 0, 10, "the first Genesys poll")
    # Whatever the app does by itself at start (a first-start sync of every member, if it has one) finishes before
    # the burst, so the burst meets an app in its steady state and the drain below is the burst's own.
    startup_s, startup_done = wait_for_drain(app, slack, genesys, arguments.drain_timeout)
    startup = (f"app start-up work: users.list {slack.call_count('users.list')}, users.profile.get "
               f"{slack.call_count('users.profile.get')}, Genesys requests {len(genesys.requests)} "
               f"(PATCH {len(genesys.patches)}); {'settled' if startup_done else 'NOT settled'} after "
               f"{startup_s:.1f} s")
    deliveries = build_deliveries(slack, user_ids, rng, arguments.events)
    retries = sum(d.retry for d in deliveries)
    changes = [d.change for d in deliveries if d.change is not None]
    title_changes = sum("title" in c for c in changes)
    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; app pid "
          f"{app.process.pid}")
    print(f"{arguments.users:,} users ({len(participants)} on live voice calls); {len(deliveries):,} deliveries of "
          f"{len(deliveries) - retries:,} distinct events ({retries:,} Slack retries), {title_changes:,} title "
          f"changes and {len(changes) - title_changes:,} status-only changes among them; mean body "
          f"{sum(len(d.body) for d in deliveries) / len(deliveries):,.0f} bytes; {arguments.concurrency} keep-alive "
          f"connections, " + (f"offered at {arguments.rate:,.0f}/s" if arguments.rate > 0 else "closed loop"))
    print(startup)
    slack_before = {m: slack.call_count(m) for m in ("users.profile.get", "users.info", "team.profile.get")}
    genesys_before = len(genesys.requests)
    rss_start = proc_status_kb(app.process.pid, "VmRSS") or 0
    progress = [0]
    sampler = MemorySampler(app.process.pid, progress)
    cpu_start = (cpu_seconds(app.process.pid), cpu_seconds(os.getpid()), machine_busy_seconds())
    sampler.start()
    try:
        client_seconds: list[float] = []
        latencies, statuses, wall = fire(app, slack, deliveries, arguments.concurrency, arguments.rate, progress,
                                         client=arguments.client, client_cpu=client_seconds)
        burst_done = time.perf_counter()
        cpu_burst = (cpu_seconds(app.process.pid), cpu_seconds(os.getpid()), machine_busy_seconds())
        pending_after_burst = pending_work(app.database)
        reads_after_burst = slack.call_count("users.profile.get")
        drain_s, drained = wait_for_drain(app, slack, genesys, arguments.drain_timeout)
        drain_end = time.perf_counter() - burst_done
        cpu_drain = (cpu_seconds(app.process.pid), cpu_seconds(os.getpid()))
    finally:
        sampler.stop()
    hwm = proc_status_kb(app.process.pid, "VmHWM") or 0
    rss_end = proc_status_kb(app.process.pid, "VmRSS") or 0

    ordered = sorted(latencies)
    ms = {name: percentile(ordered, p) * 1000 for name, p in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))}
    worst = ordered[-1] * 1000
    bad = [s for s in statuses if not 200 <= s < 300]
    by_status: dict[int, int] = {}
    for s in statuses:
        by_status[s] = by_status.get(s, 0) + 1
    print(f"\nburst: {len(deliveries):,} requests in {wall:.2f} s = {len(deliveries) / wall:,.0f} events/s")
    print(f"acknowledgement latency: p50 {ms['p50']:.1f} ms, p95 {ms['p95']:.1f} ms, p99 {ms['p99']:.1f} ms, "
          f"max {worst:.1f} ms")
    print(f"answers: {', '.join(f'{k}: {v:,}' for k, v in sorted(by_status.items()))}; non-2xx: {len(bad):,}")
    app_cpu, own_cpu, client_cpu = cpu_burst[0] - cpu_start[0], cpu_burst[1] - cpu_start[1], sum(client_seconds)
    others_cpu = max(0.0, cpu_burst[2] - cpu_start[2] - app_cpu - own_cpu)
    print(f"CPU during the burst ({os.cpu_count()} CPUs x {wall:.0f} s): app {app_cpu:.1f} s "
          f"({app_cpu / len(deliveries) * 1000:.2f} ms per delivery); this process {own_cpu:.1f} s, of which its "
          f"{arguments.concurrency} {arguments.client} client threads {client_cpu:.1f} s "
          f"({client_cpu / len(deliveries) * 1000:.2f} ms per request) and both fakes the rest; everything else on "
          f"the machine {others_cpu:.1f} s (other processes, and kernel work charged to none)")
    if wall > 280:
        print("  (the burst ran close to Slack's 5-minute signature window: late requests may be refused as stale)")

    burst_samples = [s for s in sampler.samples if s[0] <= wall]
    peak_burst = max((s[2] for s in burst_samples), default=rss_start)
    quarters = []
    for q in (0.25, 0.5, 0.75, 1.0):
        at = [s[2] for s in burst_samples if s[1] <= q * len(deliveries)]
        quarters.append(f"{q:.0%}: {at[-1] / 1024:.0f}" if at else f"{q:.0%}: -")
    print(f"app memory (MiB): RSS {rss_start / 1024:.0f} before the burst, {peak_burst / 1024:.0f} peak during it "
          f"({len(burst_samples)} samples), RSS by requests answered {'; '.join(quarters)}; "
          f"{rss_end / 1024:.0f} after the drain; VmHWM (lifetime peak) {hwm / 1024:.0f}")

    slack_calls = {m: slack.call_count(m) - slack_before[m] for m in slack_before}
    new_requests = genesys.requests[genesys_before:]
    patches = sum(1 for r in new_requests if r.method == "PATCH")
    searches = sum(1 for r in new_requests if r.path.startswith("/api/v2/users/search"))
    polls = sum(1 for r in new_requests if r.path.startswith("/api/v2/analytics"))
    failed = sum(1 for r in new_requests if not 200 <= r.status < 300)
    print(f"drain: {'done' if drained else 'NOT done'} {drain_s:.1f} s after the last answer"
          f"{'' if drained else f' (gave up after {drain_end:.0f} s; {pending_work(app.database)} items pending)'}")
    print(f"  work items pending when the burst ended: {pending_after_burst}; users.profile.get calls during the "
          f"drain: {slack.call_count('users.profile.get') - reads_after_burst:,}; CPU during the drain: app "
          f"{cpu_drain[0] - cpu_burst[0]:.1f} s, this process {cpu_drain[1] - cpu_burst[1]:.1f} s")
    print(f"Slack reads from the burst on: users.profile.get {slack_calls['users.profile.get']:,} "
          f"({slack_calls['users.profile.get'] / len(deliveries):.2f} per delivery), users.info "
          f"{slack_calls['users.info']:,}, team.profile.get {slack_calls['team.profile.get']:,}")
    print(f"Genesys requests from the burst on: {len(new_requests):,} — PATCH {patches:,}, user searches "
          f"{searches:,}, analytics polls {polls:,}, other {len(new_requests) - patches - searches - polls:,}; "
          f"non-2xx {failed:,}")
    known = {d.user_id for d in deliveries} | {str(c.params.get("user")) for c in slack.calls("users.profile.get")}
    # the app knows of these only
    participants = {user_id: participant for user_id, participant in participants.items() if user_id in known}
    stale = stale_participants(slack, genesys, participants)
    print(f"converged: {len(participants) - len(stale)}/{len(participants)} live participants (of people "
          f"the app heard of) carry their person's current Slack title")
    if stale:
        for user_id, want, have in stale[:5]:
            print(f"  not converged: {user_id} has title {have!r} on its call, Slack says {want!r}")
        time.sleep(5)
        print(f"  5 s later: {len(stale_participants(slack, genesys, participants))} still not converged")
    log_text = app.log()
    if arguments.app_log is not None:
        Path(arguments.app_log).write_text(log_text)
    recorded = log_text.count(" recorded (event ")
    print(f"app log: {recorded:,} events recorded (distinct events sent: {len(deliveries) - retries:,}); "
          f"{len(log_text.splitlines()):,} lines")
    problems = log_problems(log_text)
    for line in problems[:12]:
        print(f"  app log: {line[:240]}")
    if len(problems) > 12:
        print(f"  app log: … and {len(problems) - 12} more distinct warning/error lines")
    if slack.server_errors or genesys.server_errors:
        print(f"fake server errors: Slack {slack.server_errors[:3]}, Genesys {genesys.server_errors[:3]}")

    met = ms["p99"] < TARGET_P99_MS and not bad
    why = [] if met else ([f"p99 {ms['p99']:.0f} ms"] if ms["p99"] >= TARGET_P99_MS else []) + \
        ([f"{len(bad):,} non-2xx"] if bad else [])
    print(f"\ntarget: p99 < {TARGET_P99_MS:.0f} ms and no non-2xx -> {'met' if met else 'NOT met'}"
          f"{'' if met else ' (' + ', '.join(why) + ')'}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the app was stopped on the way out (main's finally)
        print("interrupted", file=sys.stderr)
        sys.exit(130)
