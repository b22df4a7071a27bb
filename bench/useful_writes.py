"""Benchmark: Genesys requests per useful write over a realistic mix of profile changes and calls.

    .venv/bin/python bench/useful_writes.py [--seconds 60] [--users 200] [--rate 5] [--cooldown 61]

Starts the local Slack and the local Genesys Cloud (localdev/) on 127.0.0.1 and runs the app as a real process in
HTTP mode, as tests/test_service.py does (POLL_INTERVAL_SECONDS=1; Genesys' default budget of 300 requests/min, the
fake's and the app's). --users people exist in both, with e-mails, titles and three custom fields; about 30% start
on a call. A warm-up first delivers one `user_change` per person (as `/genesys-sync all` would) and waits until the
app has read every profile and written every live participant, then waits out the rest of that minute (the warm-up's
user searches spend most of the app's per-minute Genesys budget), so the window starts in a steady state.

Then, for --seconds, a seeded script does about --rate things per second, at random intervals:
- calls start (voice, some messaging) for people not on one; calls end; a second agent joins a call (consult);
- a person's title changes, or a custom field changes (set_custom_field), each followed by a `user_change`;
- a status-only change (status text and emoji) with its `user_change`, only for a quarter of the people (the
  "status-only" group, who never get any other change), so every write to them can be told apart;
- a Slack retry re-delivers a recent envelope with the same event_id.
After the script the app gets (bounded) time to finish its queue; that settling time is part of the window.

A useful write is a PATCH that first wrote a participant or changed a stored value (replaying the fake's accepted
PATCHes in order, merge semantics). The figure is the Genesys requests the app made in the window — every kind,
except token requests and the org-wide analytics poll, which are reported apart because they scale with time, not
with writes — per useful write; the ratio with everything counted is printed too. The status-only group's live
participants must get no PATCH besides their first write.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.event_burst import App, launch_app, log_problems, pending_work, stop_app
from localdev.app_process import SIGNING_SECRET, wait_for
from localdev.genesys_cloud import FakeGenesysCloud, JoinedParticipant, RecordedRequest
from localdev.slack_api import FakeSlack, event_envelope, signed_headers

SEED = 20261126
TARGET = 1.1
TITLES = ["Support Engineer", "Team Lead — Billing", "Agent", "Supervisor", "Workforce Analyst", "QA Specialist",
          "Senior Agent", "Escalations Specialist"]
FIELDS = {"Xf02DEPT0001": ("Department", ["Customer Care", "Billing", "Technical Support", "Sales", "Retention"]),
          "Xf02TEAM0002": ("Team", [f"Team {n:02d}" for n in range(12)]),
          "Xf02SKIL0003": ("Skills", ["English", "English, Irish", "English, French", "English, German, Spanish"])}
STATUSES = [("On a call", ":telephone_receiver:"), ("Lunch", ":sandwich:"), ("In a meeting", ":calendar:"),
            ("Focus time", ":headphones:"), ("", "")]
POLL_PATH = "/api/v2/analytics/conversations/details/query"
TOKEN_PATH = "/oauth/token"
SETTLE_QUIET_S = 2.5  # two poll intervals and a half with no new Slack read or Genesys write
ACTIONS = (("start call", 0.20), ("end call", 0.17), ("consult", 0.04), ("title", 0.20), ("custom field", 0.14),
           ("status only", 0.15), ("retry", 0.10))


@dataclass
class World:
    """What the script did, and who is on which call."""

    slack: FakeSlack
    genesys: FakeGenesysCloud
    user_ids: list[str]
    genesys_ids: dict[str, str]
    status_group: set[str]
    participants: dict[str, list[JoinedParticipant]] = field(default_factory=dict)  # live participants per Slack user
    # (conversation, participant) -> Slack user
    every_participant: dict[tuple[str, str], str] = field(default_factory=dict)
    conversations: dict[str, list[str]] = field(default_factory=dict)  # live conversation -> Slack users on it
    sent: list[bytes] = field(default_factory=list)  # envelopes delivered, for retries
    done: Counter[str] = field(default_factory=Counter)
    status_on_call: int = 0  # status-only changes made while that person was on a call
    answers: Counter[int] = field(default_factory=Counter)

    def idle(self) -> list[str]:
        return [u for u in self.user_ids if not self.participants.get(u)]


def deliver(client: httpx.Client, app: App, world: World, body: bytes, *, retry: bool = False) -> None:
    headers = signed_headers(SIGNING_SECRET, body)
    if retry:
        headers.update({"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    try:
        status = client.post(f"{app.url}/slack/events", content=body, headers=headers).status_code
    except httpx.HTTPError:
        status = -1
    world.answers[status] += 1
    if not retry:
        world.sent.append(body)


def user_change(client: httpx.Client, app: App, world: World, user_id: str) -> None:
    now = int(time.time())
    event = {"type": "user_change", "user": world.slack.user(user_id), "cache_ts": now, "event_ts": f"{now}.000100"}
    number = sum(world.answers.values())
    deliver(client, app, world, json.dumps(event_envelope(event, team_id=world.slack.team_id,
                                                          event_id=f"EvUW{SEED % 1000:03d}{number:07d}")).encode())


def start_call(world: World, user_id: str, rng: random.Random) -> None:
    participant = world.genesys.start_conversation(world.genesys_ids[user_id],
                                           media_type="voice" if rng.random() < 0.85 else "message")
    world.participants.setdefault(user_id, []).append(participant)
    world.every_participant[(participant.conversation_id, participant.participant_id)] = user_id
    world.conversations[participant.conversation_id] = [user_id]


def end_call(world: World, conversation_id: str) -> None:
    world.genesys.end_conversation(conversation_id)
    for user_id in world.conversations.pop(conversation_id):
        world.participants[user_id] = [participant for participant in world.participants[user_id]
                                       if participant.conversation_id != conversation_id]


def act(kind: str, rng: random.Random, client: httpx.Client, app: App, world: World) -> bool:
    """One scripted step; False when it could not apply (nobody idle, no call, ...)."""
    changing = [u for u in world.user_ids if u not in world.status_group]
    if kind == "start call":
        idle = world.idle()
        if not idle:
            return False
        start_call(world, rng.choice(idle), rng)
    elif kind == "end call":
        if not world.conversations:
            return False
        end_call(world, rng.choice(list(world.conversations)))
    elif kind == "consult":
        idle = world.idle()
        alone = [c for c, users in world.conversations.items() if len(users) == 1]
        if not idle or not alone:
            return False
        conversation_id, user_id = rng.choice(alone), rng.choice(idle)
        participant = world.genesys.add_participant(conversation_id, world.genesys_ids[user_id])
        world.participants.setdefault(user_id, []).append(participant)
        world.every_participant[(participant.conversation_id, participant.participant_id)] = user_id
        world.conversations[conversation_id].append(user_id)
    elif kind == "title":
        user_id = rng.choice(changing)
        world.slack.update_profile(user_id, title=rng.choice(TITLES) + ("" if rng.random() < 0.5 else
                                                                        f" ({rng.randrange(100)})"))
        user_change(client, app, world, user_id)
    elif kind == "custom field":
        user_id = rng.choice(changing)
        field_id = rng.choice(sorted(FIELDS))
        world.slack.set_custom_field(user_id, field_id, rng.choice(FIELDS[field_id][1]))
        user_change(client, app, world, user_id)
    elif kind == "status only":
        user_id = rng.choice(sorted(world.status_group))
        text, emoji = rng.choice(STATUSES)
        world.slack.update_profile(user_id, status_text=text, status_emoji=emoji)
        world.status_on_call += bool(world.participants.get(user_id))
        user_change(client, app, world, user_id)
    elif kind == "retry":
        if not world.sent:
            return False
        deliver(client, app, world, rng.choice(world.sent[-30:]), retry=True)
    world.done[kind] += 1
    return True


def settle(app: App, world: World, timeout_s: float) -> bool:
    """Wait until the work queue is empty and no Slack read or Genesys PATCH happened for SETTLE_QUIET_S."""
    started = time.monotonic()
    last, last_change = None, started
    while time.monotonic() - started < timeout_s:
        seen = (world.slack.call_count("users.profile.get"), world.genesys.request_count("PATCH"))
        now = time.monotonic()
        if seen != last or pending_work(app.database) not in (0, None):
            last, last_change = seen, now
        elif now - last_change >= SETTLE_QUIET_S:
            return True
        time.sleep(0.1)
    return False


def classify_patches(genesys: FakeGenesysCloud, first: int) -> list[bool]:
    """For each accepted PATCH from index `first` on: useful or not (replaying every PATCH since the start)."""
    state: dict[tuple[str, str], dict[str, str]] = {}
    useful: list[bool] = []
    for n, patch in enumerate(genesys.patches):
        where = (patch.conversation_id, patch.participant_id)
        before = state.get(where)
        after = {**(before or {}), **patch.attributes}
        if n >= first:
            useful.append(before is None or after != before)
        state[where] = after
    return useful


def kind_of(request: RecordedRequest) -> str:
    if request.path == TOKEN_PATH:
        return "token"
    if request.path == POLL_PATH:
        return "analytics poll"
    if request.path.startswith("/api/v2/users/search"):
        return "user search"
    if request.method == "PATCH":
        return "PATCH"
    if request.method == "GET" and request.path.startswith("/api/v2/conversations/"):
        return "conversation read"
    return f"{request.method} {request.path}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the scripted mix")
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--rate", type=float, default=5.0, help="scripted actions per second (on average)")
    parser.add_argument("--cooldown", type=float, default=61.0,
                        help="seconds from the warm-up's start before the window opens (the budget's minute)")
    parser.add_argument("--genesys-rpm", type=int, default=300,
                        help="Genesys rate limit per minute, the fake's and the app's own budget (default: Genesys')")
    arguments = parser.parse_args()
    if arguments.seconds <= 0 or arguments.users < 8 or arguments.rate <= 0 or arguments.seconds > 3600:
        parser.error("--seconds must be in (0, 3600], --users at least 8, --rate above 0")
    rng = random.Random(SEED)
    with tempfile.TemporaryDirectory(prefix="useful-writes-") as tmp, FakeSlack() as slack, \
            FakeGenesysCloud(requests_per_minute=arguments.genesys_rpm) as genesys:
        world = set_up(slack, genesys, rng, arguments.users)
        app = launch_app(slack, genesys, Path(tmp), genesys_rpm=arguments.genesys_rpm)
        try:
            with httpx.Client(timeout=30) as client:
                return run(arguments, rng, client, app, world)
        finally:
            print(f"app stopped (exit status {stop_app(app)})")


def set_up(slack: FakeSlack, genesys: FakeGenesysCloud, rng: random.Random, users: int) -> World:
    for ordering, (field_id, (label, _values)) in enumerate(FIELDS.items()):
        slack.define_field(field_id, label, ordering=ordering)
    user_ids, genesys_ids = [], {}
    for n in range(users):
        user_id, email = f"UW{n:08d}", f"person{n}@example.com"
        fields = {field_id: {"value": rng.choice(values), "alt": ""} for field_id, (_label, values) in FIELDS.items()}
        slack.add_user(user_id, name=f"person{n}", real_name=f"Person {n}", email=email, title=rng.choice(TITLES),
                       fields=fields, pronouns=rng.choice(["she/her", "he/him", "they/them"]))
        genesys_ids[user_id] = genesys.add_user(email, name=f"Person {n}")
        user_ids.append(user_id)
    world = World(slack, genesys, user_ids, genesys_ids, set(rng.sample(user_ids, users // 4)))
    for user_id in rng.sample(user_ids, int(users * 0.3)):
        start_call(world, user_id, rng)
    return world


def run(arguments: argparse.Namespace, rng: random.Random, client: httpx.Client, app: App, world: World) -> int:
    slack, genesys = world.slack, world.genesys
    # Warm-up: the app learns every profile and writes every live participant (as after `/genesys-sync all`).
    warm_started = time.monotonic()
    for user_id in world.user_ids:
        user_change(client, app, world, user_id)
    wait_for(lambda: slack.call_count("users.profile.get") >= len(world.user_ids), 120, "the warm-up reads")
    settled = settle(app, world, 60)
    warm_requests, warm_patches = len(genesys.requests), len(genesys.patches)
    warm_s = time.monotonic() - warm_started
    # The warm-up's user searches spend most of a minute's budget; starting the window with what is left would
    # measure the app's own pacing (delayed polls), not its steady state.
    cooldown = max(0.0, warm_started + arguments.cooldown - time.monotonic())
    print(f"{len(world.user_ids)} people ({len(world.status_group)} in the status-only group), "
          f"{len(world.conversations)} live conversations at the start; warm-up {'done' if settled else 'NOT settled'}"
          f" in {warm_s:.1f} s (Slack users.list {slack.call_count('users.list')}, users.profile.get "
          f"{slack.call_count('users.profile.get')}): {warm_requests} Genesys requests, {warm_patches} PATCHes; "
          f"waiting {cooldown:.0f} s "
          f"more so the window starts with a full Genesys budget")
    time.sleep(cooldown)

    request_start, patch_start, answers_start = len(genesys.requests), len(genesys.patches), sum(world.answers.values())
    log_start = len(app.log())
    reads_start = Counter(call.params.get("user") for call in slack.calls("users.profile.get"))
    window_started = time.monotonic()
    deadline = window_started + arguments.seconds
    kinds, weights = zip(*ACTIONS, strict=True)
    skipped = 0
    next_at = window_started
    while True:
        next_at += rng.expovariate(arguments.rate)
        if next_at >= deadline:
            break
        time.sleep(max(0.0, next_at - time.monotonic()))
        if not act(rng.choices(kinds, weights)[0], rng, client, app, world):
            skipped += 1
    time.sleep(max(0.0, deadline - time.monotonic()))
    settle_started = time.monotonic()
    settled = settle(app, world, 30)
    window_s = time.monotonic() - window_started

    requests = genesys.requests[request_start:]
    by_kind = Counter(kind_of(r) for r in requests)
    refused = Counter(f"{kind_of(r)} {r.status}" for r in requests if not 200 <= r.status < 300)
    useful_flags = classify_patches(genesys, patch_start)
    useful = sum(useful_flags)
    accepted = len(useful_flags)
    token, polls = by_kind["token"], by_kind["analytics poll"]
    counted = len(requests) - token - polls

    status_extra = status_group_rewrites(genesys.requests, request_start, world)
    reads_end = Counter(call.params.get("user") for call in slack.calls("users.profile.get"))
    status_reads = sum(reads_end[u] - reads_start[u] for u in world.status_group)

    print(f"window: {arguments.seconds:.0f} s of scripted changes + {time.monotonic() - settle_started:.1f} s to "
          f"settle ({'settled' if settled else 'NOT settled'}); {sum(world.done.values())} actions "
          f"({', '.join(f'{k} {world.done[k]}' for k in kinds)}; {skipped} skipped: nothing to apply them to)")
    print(f"Slack deliveries in the window: {sum(world.answers.values()) - answers_start}; answers overall "
          f"{dict(sorted(world.answers.items()))}")
    print(f"Genesys requests in the window: {len(requests)} — "
          + ", ".join(f"{k} {v}" for k, v in by_kind.most_common())
          + (f"; refused: {dict(refused)}" if refused else "; none refused"))
    print(f"PATCHes accepted: {accepted}, of which useful {useful} (first write of a participant or a changed value), "
          f"not useful {accepted - useful}; PATCHes refused: {by_kind['PATCH'] - accepted}")
    ratio = counted / useful if useful else float("inf")
    overall = len(requests) / useful if useful else float("inf")
    print(f"requests per useful write, without token and analytics polls: {counted} / {useful} = {ratio:.3f}")
    print(f"requests per useful write, everything counted:                {len(requests)} / {useful} = {overall:.3f}"
          f"  (analytics polls: {polls}, {polls / window_s * 60:.0f}/min; token requests: {token})")
    print(f"status-only changes: {world.done['status only']} ({world.status_on_call} while that person was on a call),"
          f" {status_reads} profile reads of those people, {status_extra} PATCHes beyond their participants' first "
          f"write -> {'0 PATCHes: OK' if status_extra == 0 else 'status-only changes caused PATCHes: NOT OK'}")
    stale = stale_participants(world)
    print(f"converged: {len(stale)} live participants differ from their person's current Slack title/custom fields"
          + (f", e.g. {stale[0]}" if stale else ""))
    window_log = app.log()[log_start:]
    waits = window_log.count("Genesys rate limit: waiting")
    print(f"app log in the window: {window_log.count(' synced ')} 'synced' lines, {waits} Genesys rate-limit waits of "
          f"a second or more")
    problems = log_problems(app.log())
    for line in problems[:10]:
        print(f"  app log: {line[:240]}")

    met = ratio <= TARGET
    reasons = []
    if not met:
        if accepted > useful:
            reasons.append(f"{accepted - useful} PATCHes repeated unchanged attributes")
        if by_kind["PATCH"] > accepted:
            reasons.append(f"{by_kind['PATCH'] - accepted} PATCHes refused (calls that ended before the write)")
        if by_kind["user search"]:
            reasons.append(f"{by_kind['user search']} user searches")
        other = counted - by_kind["PATCH"] - by_kind["user search"]
        if other:
            reasons.append(f"{other} other requests")
    print(f"\ntarget: at most {TARGET} requests per useful write -> {'met' if met else 'NOT met'}"
          + (f" ({'; '.join(reasons)})" if reasons else ""))
    return 0


def patched_participant(request: RecordedRequest) -> tuple[str, str] | None:
    """(conversation, participant) of an attributes PATCH, from its path."""
    parts = request.path.split("/")  # /api/v2/conversations/{c}/participants/{p}/attributes
    if request.method != "PATCH" or len(parts) != 8 or parts[5] != "participants":
        return None
    return parts[4], parts[6]


def status_group_rewrites(requests: list[RecordedRequest], start: int, world: World) -> int:
    """PATCH requests in the window to the status-only group's participants, other than each one's first write.

    Those people never get a change that matters, so any such PATCH was caused by a status-only change (or a bug).
    """
    attempts: Counter[tuple[str, str]] = Counter()
    before: set[tuple[str, str]] = set()
    for n, request in enumerate(requests):
        where = patched_participant(request)
        if where is None or world.every_participant.get(where) not in world.status_group:
            continue
        if n < start:
            before.add(where)
        else:
            attempts[where] += 1
    return sum(count - (0 if where in before else 1) for where, count in attempts.items())


def stale_participants(world: World) -> list[str]:
    """Live participants whose title or custom fields differ from the person's current Slack profile."""
    labels = {field_id: label for field_id, (label, _values) in FIELDS.items()}
    stale = []
    for user_id, participants in world.participants.items():
        profile = world.slack.user(user_id)["profile"]
        want = {"slack.title": profile["title"]}
        want.update({f"slack.custom.{labels[f]}": v["value"] for f, v in profile["fields"].items() if f in labels})
        for participant in participants:
            have = world.genesys.attributes(participant.conversation_id, participant.participant_id)
            wrong = {k: (have.get(k), v) for k, v in want.items() if have.get(k) != v}
            if wrong:
                stale.append(f"{user_id} on {participant.conversation_id}: {wrong}")
    return stale


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the app was stopped on the way out (main's finally)
        print("interrupted", file=sys.stderr)
        sys.exit(130)
