"""The sync engine: every live participant carries its person's current Slack profile.

Level-triggered, because Slack events alone cannot keep that promise (custom field edits send no event, calls
start long after a change, events are lost while the app is down):
- desired state: each Slack user's attributes, refreshed from Slack on `user_change` / `team_join`, on
  `/genesys-sync`, and by a paced background refresh; kept in the store with their hash;
- observed state: the live user participants of the whole org, polled from Genesys every few seconds;
- action: write to each live participant whose last written hash differs from the desired one. Nothing else,
  so an irrelevant change (status emoji, huddle, presence) costs zero Genesys requests.

Everything the engine must not forget (work to do, what was written where) is in the store, so a restart
or a crash at any instant loses nothing; a write is recorded in the same transaction as its audit entry,
after Genesys accepted it, so it is never repeated once recorded.

No exception ends the engine's thread: a work item that fails in a way nobody foresaw is retried with the same
back-off as a Genesys outage and becomes a dead letter after its attempts; a step of the loop (the poll, retention,
claiming work) that fails so is logged and the loop goes on. `liveness()` says when the loop last turned, so
/healthz can tell a stuck or dead engine from a working one.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, TypeVar

from genesys import (
    AttributesRejected,
    ConversationGone,
    ConversationSeen,
    GenesysError,
    GenesysUnavailable,
    GenesysUser,
    LiveParticipant,
    PushState,
    Stopping,
    VoiceSafeAttributes,
    WriteResult,
    check_attributes,
    normalize_email,
)
from profiles import FieldLabels, SlackUser
from slack_directory import TEAM_NOT_ALLOWED, SlackDirectoryError, SlackUserRecord
from store import (
    AuditEntry,
    Cutoffs,
    DesiredRow,
    LinkConflict,
    PrivacyChoice,
    Retained,
    Store,
    StoreError,
    Tenure,
    UserLink,
    WorkItem,
    WriteRecord,
    WriteTarget,
)
from sync.desired import AttributeRules, DesiredAttributes, desired_attributes
from sync.failures import logged_failure
from sync.leases import Heartbeat
from sync.observer import NO_OBSERVER, EngineObserver
from sync.rejected import RejectedWrites
from sync.target import SyncTarget
from sync.timer import SYSTEM_TIMER, Timer

log = logging.getLogger(__name__)

REFRESH = "refresh"
"""Work kind: read one Slack user's profile again and bring their live participants up to date."""

POLL_LEASE = "genesys-poll"
"""The store lease that makes one replica at a time poll Genesys and write to the participants it sees."""

WRITE_ROUNDS = 4
"""Decisions of one participant write: the first, and re-decisions after another writer recorded first."""

PERMANENT_SLACK_ERRORS = frozenset({"user_not_found", TEAM_NOT_ALLOWED})
"""Slack error codes no retry can fix: the work item becomes a dead letter at once."""

T = TypeVar("T")

PersonSynced = Callable[[str, str], None]
"""Told (team_id, user_id) after a person's profile was read and their participants written (the App Home
refreshes): called on the engine's thread, so it must only hand the news on."""


class GenesysPort(Protocol):
    """The part of `genesys.GenesysClient` the engine uses."""

    def find_user_by_email(self, email: str) -> GenesysUser | None: ...
    def live_participants(self, user_id: str) -> tuple[LiveParticipant, ...]: ...
    def org_live_participants(self) -> tuple[LiveParticipant, ...]: ...
    def write_attributes(self, conversation_id: str, participant_id: str,
                         attributes: VoiceSafeAttributes) -> WriteResult: ...
    def participant_attributes(self, conversation_id: str, participant_id: str) -> Mapping[str, str] | None: ...


class SlackPort(Protocol):
    """The part of `slack_directory.SlackDirectory` the engine uses: reads raise `SlackDirectoryError`."""

    def user(self, team_id: str, user_id: str) -> SlackUserRecord: ...
    def labels(self, team_id: str) -> FieldLabels: ...
    def user_ids(self, team_id: str) -> Iterator[str]: ...
    def forget(self, team_id: str) -> None: ...


class PushPort(Protocol):
    """Genesys' notifications of the followed users' conversations (`genesys.NotificationPool`)."""

    def start(self) -> None: ...
    def follow(self, user_ids: Collection[str]) -> None: ...
    def stop(self) -> None: ...
    def state(self) -> PushState: ...


class PushFactory(Protocol):
    """Builds a push port around the engine's two callbacks: a conversation seen, and a (re)connect
    (`functools.partial(NotificationPool, genesys_client)` is one)."""

    def __call__(self, *, on_conversation: Callable[[ConversationSeen], None],
                 on_connected: Callable[[], None]) -> PushPort: ...


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """Timings of the engine's background work."""

    poll_interval_s: float = 5.0
    """How often the org's live participants are polled while push is off or down; a call that starts is written
    within this then."""
    push_poll_interval_s: float = 60.0
    """How often the org is polled while push is healthy: a safety net for a notification that never came."""
    refresh_tick_s: float = 5.0
    """The paced refresh's tick: `refresh_per_tick` users are queued this often, whatever the poll's pace."""
    follow_every_s: float = 2.0
    """How often the followed Genesys users are read from the store and handed to push: a person linked later
    is subscribed within about this (plus a subscription call)."""
    pushed_memory_s: float = 300.0
    """A participant push saw (live, or ended) outranks the poll for this long: the analytics index the poll reads
    lags behind, and must not undo what a notification just said."""
    refresh_interval_s: float = 6 * 3600.0
    """Each user's profile is read again at least this often (custom field edits send no event)."""
    refresh_per_tick: int = 5
    """Paced refresh: at most this many users are queued per tick, to stay inside Slack's Tier 4."""
    max_attempts: int = 8
    """Attempts of a work item before it becomes a dead letter."""
    lease_s: float = 10.0
    """How long a claimed item stays this worker's without renewal; after a crash, its items return to the queue
    after this. While the worker is on them, a heartbeat renews them every third of it, so a slow item (a Slack read
    waiting out rate limits with its retries) stays this worker's however long it takes, up to `stalled_after_s`."""
    claim_batch: int = 3
    """Items claimed at a time: few, so a crash strands little work until its lease ends."""
    database_retry_s: float = 2.0
    """While the database is unreachable, or after a step of the loop failed unexpectedly, the engine waits this
    long before its next turn (so a failure that repeats cannot spin the loop)."""
    poll_lease_s: float = 15.0
    """How long the poll lease lasts without renewal: a replica that dies hands the poll over within this. The
    holder renews it every third of it from a heartbeat, also in the middle of a poll that takes minutes."""
    audit_retention_s: float = 30 * 86400.0
    """Audit rows older than this are deleted (AUDIT_RETENTION_DAYS), and so are write intents this old whose
    participant is no longer live."""
    event_retention_s: float = 7 * 86400.0
    """Recorded Slack event ids older than this are deleted (EVENT_RETENTION_DAYS)."""
    retention_every_s: float = 3600.0
    """How often retention runs (and once when this replica starts polling): an hour's worth of rows stays cheap."""
    stalled_after_s: float = 180.0
    """/healthz calls the engine stuck after this long without a turn of its loop or a finished unit of work.

    Not a multiple of the poll interval: the loop turns at least twice a second whatever POLL_INTERVAL_SECONDS is.
    Longer than the slowest step a healthy engine takes (a Genesys call gives up within 60 s; a Slack read may wait
    out Slack's rate limit twice), so waiting out a rate limit never looks like a hang."""
    link_trust_s: float = 3600.0
    """A Slack user's stored link to the Genesys user with their e-mail stands for a search this long after it was
    resolved, on every replica (the link is in the store, not in one process). After it, their next profile read (an
    event, a `/genesys-sync`, the paced refresh) searches again: a person whose Genesys account was replaced is
    re-linked within `refresh_interval_s` plus this. A changed e-mail is searched at once. An hour: longer than a
    burst of events (spread over replicas, it searches for each person once), shorter than the paced refresh (so its
    reads check the links too, one search per person per `refresh_interval_s`)."""
    missing_link_trust_s: float = 600.0
    """A stored "no Genesys user has this e-mail" (or a link conflict) stands for a search this long, on every
    replica. A person added to Genesys later is found at once by `/genesys-sync` (which searches again whenever the
    stored answer is "none"), and otherwise by their first profile read after it: within `refresh_interval_s`
    plus this, through the paced refresh."""
    rejected_limit: int = 10_000
    """At most this many refused writes are remembered (so not sent again); the oldest are forgotten first."""
    worker: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")


@dataclass(frozen=True, slots=True)
class Liveness:
    """Whether the engine's loop is turning, for /healthz."""

    running: bool
    """The loop has started and not returned."""
    last_tick_s_ago: float | None
    """Seconds since the loop last finished a turn or a unit of work (since it started, before the first);
    None before it started."""
    stalled_after_s: float
    failing: Mapping[str, str] = field(default_factory=dict)
    """Steps of the loop whose last run failed unexpectedly, with the error (the loop goes on regardless)."""

    @property
    def ok(self) -> bool:
        return self.running and self.last_tick_s_ago is not None and self.last_tick_s_ago < self.stalled_after_s


@dataclass(frozen=True, slots=True)
class GenesysStatus:
    """How the engine's last poll of Genesys went, for /healthz and `/genesys-sync status`."""

    ok: bool | None
    """Whether it worked; None before the first poll, or while another replica polls."""
    error: str = ""
    """When it did not: Genesys' answer or the failure, for operators (may name a client id: /healthz masks it)."""


@dataclass(frozen=True, slots=True)
class ParticipantResult:
    """What happened to one participant in a sync."""

    conversation_id: str
    participant_id: str
    media_type: str
    result: str
    """written, unchanged, gone, rejected or failed."""
    detail: str = ""
    """Why, in words fit for the person asking: never an exception's text (that is logged under `error_id`)."""
    context_id: str | None = None
    error_id: str = ""
    """Set when Genesys refused or failed the write: the id of the log line that holds its answer."""
    target: WriteTarget = "agent"
    """Whose participant: the person's own, or the customer's participant of the conversation."""


NotSynced = Literal["not_syncable", "not_voice_safe", "no_genesys_user", "link_conflict", "newer_read_not_synced"]
"""Why `sync_now` wrote nothing: a deactivated user, bot or app user; attributes that are not voice-safe (the
problems are in `desired`); no Genesys user with their e-mail; their Genesys user linked to another Slack user; a
newer read of the profile, stored meanwhile, that says it is not synced."""


@dataclass(frozen=True, slots=True)
class SyncReport:
    """The outcome of syncing one person now (for `/genesys-sync`)."""

    desired: DesiredAttributes | None
    genesys_user_id: str | None
    """Their Genesys user, from the store's link or a search (None: not synced)."""
    participants: tuple[ParticipantResult, ...]
    not_synced: NotSynced | None = None
    """Why nothing was written, when nothing could be (`sync.render` words it)."""
    email: str | None = None
    """With "no_genesys_user": the e-mail no Genesys user has (None: there is none in Slack)."""
    conflict: LinkConflict | None = None
    """With "link_conflict": the Slack user who holds the link to their Genesys user."""
    customers_left_to_poller: int = 0
    """Live conversations whose customer's participant the replica that polls writes (this one does not see
    everyone on them), with SYNC_TARGET customer or both."""


@dataclass(frozen=True, slots=True)
class ResyncProgress:
    """How far a `/genesys-sync all` has got: told to the person twice at most (a response_url takes five posts)."""

    queued: int
    pending: int | None = None
    """Items still to read; None right after queueing, before any was read."""

    @property
    def done(self) -> float:
        """The share of the resync done (0 to 1)."""
        return 0.0 if self.pending is None else 1 - self.pending / max(self.queued, self.pending)


@dataclass(frozen=True, slots=True)
class ResyncSummary:
    """The outcome of `resync_all`."""

    queued: int
    waited: bool
    """Whether it waited for the queue to drain; without waiting, the other counts are zero."""
    pending: int = 0
    """Items still to read when it stopped waiting (the worker carries on with them)."""
    written: int = 0
    """Participant writes made while it waited."""
    dead_letters: int = 0
    """Dead letters in total (not only this resync's)."""


@dataclass(frozen=True, slots=True)
class SyncStatus:
    """One person's sync state and the app's (for `/genesys-sync status`); the renderer decides who sees what."""

    user_id: str
    profile: DesiredRow | None
    """Their profile as last read from Slack; None if it has not been read yet."""
    link: UserLink | None
    """Their Genesys user (or the e-mail no Genesys user has); None if not looked up yet."""
    writes: tuple[AuditEntry, ...]
    """Their newest writes, newest first."""
    pending: int
    dead_letters: int
    genesys_ok: bool | None
    """Whether the last poll of Genesys worked; None before the first poll or while another replica polls."""
    genesys_error_id: str = ""
    """When it did not: the id of the log line that holds why."""
    conflict: LinkConflict | None = None
    """Set when their e-mail matched a Genesys user another Slack user was linked to first: they are not synced."""
    push: PushStatus | None = None
    """Genesys' notifications as this replica sees them; None with GENESYS_PUSH off."""
    target: SyncTarget = field(default_factory=SyncTarget)
    """Where attributes go (SYNC_TARGET, CUSTOMER_KEY_PREFIX)."""
    withheld: frozenset[str] = frozenset()
    """The optional attribute keys they keep to themself (their App Home choice): never written."""


@dataclass(frozen=True, slots=True)
class PushStatus:
    """Whether Genesys' notifications bring new calls now, for `/genesys-sync status`."""

    state: PushState | None
    """None while another replica consumes them."""
    fast_poll_s: float
    """The poll's interval while push does not cover everyone."""


def attributes_hash(attributes: Mapping[str, str]) -> str:
    """A stable digest of an attribute map (keys sorted)."""
    encoded = json.dumps(attributes, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()[:32]


class SyncEngine:
    """Desired × observed → writes. Thread-safe for its callers: handlers record work, one thread runs it."""

    def __init__(self, *, store: Store, genesys: GenesysPort, slack: SlackPort, rules: AttributeRules,
                 settings: EngineSettings | None = None, clock: Callable[[], float] = time.time,
                 timer: Timer = SYSTEM_TIMER, push: PushFactory | None = None,
                 observer: EngineObserver = NO_OBSERVER, target: SyncTarget | None = None,
                 on_person_synced: PersonSynced | None = None) -> None:
        self._store = store
        self._observer = observer
        """Told of each write and poll, for metrics."""
        self._genesys = genesys
        self._slack = slack
        self._rules = rules
        self._settings = settings or EngineSettings()
        self._target = target or SyncTarget()
        """Which participants carry a person's attributes (SYNC_TARGET): their own, the customer's, or both."""
        self._clock = clock
        """The wall clock: it stamps what is stored (profiles read, links resolved, audit rows)."""
        self._timer = timer
        """Liveness, the poll's pace and every wait are measured on it: a wall clock set back or forward must not
        make the engine look stuck (see `sync.timer`)."""
        self._live: tuple[LiveParticipant, ...] = ()
        self._live_lock = threading.Lock()
        self._rejected = RejectedWrites(self._settings.rejected_limit)
        self._running = False
        self._ticked_at: float | None = None
        self._failing: dict[str, str] = {}
        """Steps of the loop failing unexpectedly now, with their error: logged in full once, then one line each."""
        self._last_poll_ok: bool | None = None
        self._last_poll_error = ""
        self._poll_warned = False
        """Whether this poll failure was logged here (not an outage: the Genesys client logs those, once each)."""
        self._last_poll_error_id = ""
        """The error id of the log line of the failed poll that began the current outage (`status` shows it)."""
        self._polling = False
        """Whether this replica holds the poll lease (always, with one process)."""
        self._poll_tenure: Tenure | None = None
        """The holding of the poll lease this replica's writes are fenced by (checked before each write)."""
        self._poll_heartbeat: Heartbeat | None = None
        # One participant is written by one thread of this process at a time (the engine's, a /genesys-sync's);
        # other replicas are put in order by the store's compare-and-set. Striped: bounded, no per-call allocation.
        self._write_locks = tuple(threading.Lock() for _ in range(64))
        self._privacy_locks = tuple(threading.Lock() for _ in range(16))
        # Writes sent before a crash whose outcome was never recorded: read before writing them again.
        self._unconfirmed = {(c, p): h for c, p, h in store.write_intents()}
        self._push_factory = push
        """Builds the push of one tenure of the poll lease: the replica that polls consumes the notifications."""
        self._push: PushPort | None = None
        """This tenure's push, while this replica holds the poll lease (None: another replica's, or push is off)."""
        self._seen: dict[tuple[str, str], ConversationSeen] = {}
        """Notifications not yet acted on, by (user, conversation): of a burst for one conversation the last counts."""
        self._seen_lock = threading.Lock()
        self._pushed: dict[tuple[str, str], tuple[float, tuple[LiveParticipant, ...]]] = {}
        """What push said of each (user, conversation) and when (timer): outranks the poll for `pushed_memory_s`."""
        self._wake = threading.Event()
        """Set by a notification, a reconnect or queued work: the loop's idle wait ends at once."""
        self._catch_up = False
        """A (re)connected socket, or newly subscribed people, may have missed notifications: one poll soon (no
        sooner than POLL_INTERVAL_SECONDS after the last; see `_loop`)."""
        self._on_person_synced = on_person_synced

    # --------------------------------------------------------------- intake (handlers)

    def user_changed(self, team_id: str, user: Mapping[str, Any], event_id: str | None) -> bool:
        """Record that a Slack user changed (an event); durable before return. False for a duplicate event."""
        user_id = user.get("id")
        if not isinstance(user_id, str) or not user_id:
            log.warning("Slack event %s has a user without an id; ignored", event_id)
            return False
        return self._enqueue_refresh(team_id, user_id, event_id)

    def _enqueue_refresh(self, team_id: str, user_id: str, event_id: str | None = None) -> bool:
        """Queue one person's refresh. One key per person, so an event, a resync and the schedule coalesce."""
        queued = self._store.enqueue(REFRESH, f"{team_id}:{user_id}", {"team_id": team_id, "user_id": user_id},
                                     event_id=event_id)
        self._wake.set()  # this process's loop takes it now rather than at its next turn
        return queued

    # ------------------------------------------------------------------ one person now

    def preview(self, team_id: str, user_id: str) -> DesiredAttributes:
        """The attributes `user_id` would get now, read fresh from Slack; writes nothing."""
        record = self._slack.user(team_id, user_id)
        return desired_attributes(SlackUser(record.user, "Slack profile"), self._slack.labels(team_id), self._rules,
                                  withheld=self._store.withheld_keys(team_id, user_id))

    def keep_to_themself(self, team_id: str, user_id: str, withheld: Collection[str]) -> PrivacyChoice:
        """Record which optional keys a person keeps to themself (kept and audited); see `change_privacy`."""
        return self.change_privacy(team_id, user_id, lambda before: frozenset(withheld))[1]

    def change_privacy(self, team_id: str, user_id: str, change: Callable[[frozenset[str]], frozenset[str]]
                       ) -> tuple[frozenset[str], PrivacyChoice]:
        """Apply `change` to the keys a person keeps to themself and record the result (kept and audited); returns
        the keys kept back before, and the choice recorded.

        One change of one person at a time in this process, so two quick clicks cannot each start from the same
        choice and undo the other. The stored profile loses the newly withheld keys at once (written as ""), so
        the poll and push clear them even when the fresh read that follows (`sync_now`) fails; a refresh is queued
        as well, which brings back keys shared again."""
        with self._privacy_locks[hash((team_id, user_id)) % len(self._privacy_locks)]:
            before = self._store.withheld_keys(team_id, user_id)
            now = frozenset(change(before))
            hidden, shared = sorted(now - before), sorted(before - now)
            detail = "; ".join(part for part in (f"kept to themself: {', '.join(hidden)}" if hidden else "",
                                                 f"shared again: {', '.join(shared)}" if shared else "") if part)
            choice = PrivacyChoice(team_id, user_id, now, self._clock(), detail or "unchanged")
            if now == before:
                return before, choice  # nothing to record (a click that changed nothing, or a repeated one)
            self._store.choose_privacy(choice)
            row = self._store.desired(team_id, user_id)
            if hidden and row is not None and not row.deleted and row.attributes_hash:
                attributes = {key: "" if key in now else value for key, value in row.attributes.items()}
                self._store.save_desired(replace(row, attributes=attributes,
                                                 attributes_hash=attributes_hash(attributes)))
        self._enqueue_refresh(team_id, user_id)
        log.info("Slack user %s: %s", user_id, choice.detail)
        return before, choice

    def live_conversations(self, genesys_user_id: str) -> int | None:
        """How many live conversations the Genesys user is on now: from the last poll and push while this replica
        polls, else asked of Genesys; None when it cannot be known now."""
        if self._polling:
            live = [p for p in self._live_participants() if p.user_id == genesys_user_id]
        else:
            try:
                live = list(self._genesys.live_participants(genesys_user_id))
            except GenesysError:
                return None
        return len({participant.conversation_id for participant in live})

    def sync_now(self, team_id: str, user_id: str) -> SyncReport:
        """Read the user's profile, save it and write it to each of their live participants now."""
        record = self._slack.user(team_id, user_id)
        desired, row = self._save_desired(record)
        # Write what the store kept: when this read was older than the profile stored (a late Slack answer, another
        # replica's newer read), the store refused it, and writing it would put an older profile on the call.
        row = self._store.desired(team_id, user_id) or row
        if not record.syncable:
            return SyncReport(desired, None, (), "not_syncable")
        if not desired.ok:
            return SyncReport(desired, None, (), "not_voice_safe")
        # The person asking may have just been given a Genesys account or had their e-mail fixed there: a stored
        # "none" is searched again (one search per request), a stored link is trusted like the worker trusts it.
        genesys_user_id = self._link(record, trust_none=False)
        if genesys_user_id is None:
            conflict = self._store.link_conflict(team_id, user_id)
            if conflict is not None:
                return SyncReport(desired, None, (), "link_conflict", conflict=conflict)
            return SyncReport(desired, None, (), "no_genesys_user", email=record.email)
        if row.deleted or not row.attributes_hash:
            return SyncReport(desired, genesys_user_id, (), "newer_read_not_synced")
        participants = self._genesys.live_participants(genesys_user_id)
        results = [self._write(participant, row) for participant in participants] if self._target.agent else []
        left = 0
        if self._target.customer and self._polling:
            results += [self._write_customer(customer, source)
                        for customer, source in self._customer_writes(participants)]
        elif self._target.customer:
            # Which person the customer's participant describes is decided from everyone on the call, which only the
            # replica that polls sees; it writes the stored profile on its next poll or notification.
            left = len({participant.conversation_id for participant in participants if participant.customers})
        report = SyncReport(desired, genesys_user_id, tuple(results), customers_left_to_poller=left)
        self._person_synced(team_id, user_id)
        return report

    def status(self, team_id: str, user_id: str) -> SyncStatus:
        """Last read and writes of `user_id`, pending work, dead letters and Genesys connectivity."""
        poll_ok = self.genesys_status().ok
        return SyncStatus(
            user_id=user_id, profile=self._store.desired(team_id, user_id),
            link=self._store.genesys_user_for(team_id, user_id),
            writes=tuple(self._store.audit(user_id=user_id, limit=3)), pending=self._store.pending_count(),
            dead_letters=self._store.dead_letter_count(), genesys_ok=poll_ok,
            genesys_error_id=self._last_poll_error_id if poll_ok is False else "",
            conflict=self._store.link_conflict(team_id, user_id),
            push=PushStatus(self.push_state(), self._settings.poll_interval_s) if self.push_enabled else None,
            target=self._target,
            withheld=self._store.withheld_keys(team_id, user_id),
        )

    def bootstrap(self, team_id: str) -> int:
        """On a workspace's first start (none of its profiles stored yet), queue every member; returns how many
        items are pending."""
        if self._store.workspace_has_profiles(team_id):
            return 0
        try:
            queued = self.resync_all(team_id, lambda progress: None, wait_s=0).queued
        except SlackDirectoryError as error:
            log.warning("first start: could not list the workspace's members (%s); profiles are read as they "
                        "change, or run /genesys-sync all", error)
            return 0
        log.info("first start: queued the workspace's %d members for their first sync", queued)
        return self._store.pending_count()

    def forget_workspace(self, team_id: str) -> None:
        """The app was uninstalled from a workspace: stop syncing its people (what was written stays)."""
        forgotten = self._store.forget_workspace(team_id)
        self._slack.forget(team_id)
        log.info("workspace %s: forgot %d profiles; its people are no longer synced", team_id, forgotten)

    def resync_all(self, team_id: str, progress: Callable[[ResyncProgress], None], *, wait_s: float = 25 * 60.0,
                   check_every_s: float = 5.0) -> ResyncSummary:
        """Queue every member of the workspace for a refresh (the worker paces them); with `wait_s`, report
        progress as the queue drains (at half and 90 %) and return a summary (`sync.render` words both)."""
        started = self._clock()
        queued = 0
        for user_id in self._slack.user_ids(team_id):
            self._enqueue_refresh(team_id, user_id)
            queued += 1
        if wait_s <= 0:
            return ResyncSummary(queued, waited=False)
        progress(ResyncProgress(queued))
        deadline, marks = self._timer.monotonic() + wait_s, [0.5, 0.9]
        while (pending := self._store.pending_count()) and self._timer.monotonic() < deadline:
            now = ResyncProgress(queued, pending)
            if marks and now.done >= marks[0]:
                progress(now)
                marks.pop(0)
            self._timer.sleep(check_every_s)
        writes = [entry for entry in self._store.audit(limit=10_000) if entry.at >= started]
        written = sum(entry.result == "written" for entry in writes)
        return ResyncSummary(queued, waited=True, pending=pending, written=written,
                             dead_letters=self._store.dead_letter_count())

    # ------------------------------------------------------------------ background work

    def run(self, stop: threading.Event) -> None:
        """Poll, refresh and work until `stop` is set; returns within about a second of it. Never raises: every
        failure is logged and the loop goes on (see the module docstring)."""
        if self._push_factory is None:
            log.info("sync engine started (worker %s, poll every %.0f s)", self._settings.worker,
                     self._settings.poll_interval_s)
        else:
            log.info("sync engine started (worker %s, Genesys notifications with a poll every %.0f s, every %.0f s "
                     "while they are down)", self._settings.worker, self._settings.push_poll_interval_s,
                     self._settings.poll_interval_s)
        log.info("attributes go to %s (SYNC_TARGET=%s)", self._target.where(), self._target.name)
        self._running = True
        self._beat()
        try:
            self._loop(stop)
        finally:
            self._running = False
            was_polling = self._polling
            self._stop_polling()
            if was_polling:  # hand the poll over at once instead of after the lease runs out
                try:
                    self._store.release_lease(POLL_LEASE, self._settings.worker)
                except StoreError as error:
                    log.warning("could not hand the Genesys poll over (it moves when the lease ends): %s", error)
            log.info("sync engine stopped")

    def _loop(self, stop: threading.Event) -> None:
        settings = self._settings
        next_poll = next_refresh = next_follow = next_recheck = 0.0
        last_poll = -settings.poll_interval_s
        next_retention = 0.0  # on the engine's clock (the seam tests move), not the monotonic poll timer
        database_down = ""
        push_was_healthy = False
        push_condition: object = None
        while not stop.is_set():
            failed = False
            try:
                now = self._timer.monotonic()
                watched = self._step("watching Genesys notifications",
                                     functools.partial(self._watch_push, push_condition))
                push, push_condition = watched if watched is not None else (None, push_condition)
                failed |= watched is None
                push_healthy = push is not None and push.healthy
                if push_was_healthy and not push_healthy:
                    next_poll = now  # push went down: the fast poll takes over at once
                if self._catch_up:
                    # A socket (re)connected, or people were newly subscribed: one poll for what it missed, though
                    # no sooner than the fast poll's interval after the last poll (a first start subscribes people
                    # every few seconds, and each would cost an analytics query).
                    self._catch_up = False
                    next_poll = min(next_poll, max(now, last_poll + settings.poll_interval_s))
                push_was_healthy = push_healthy
                if now >= next_poll:
                    last_poll = now
                    next_poll = now + (settings.push_poll_interval_s if push_healthy else settings.poll_interval_s)
                    failed |= self._step("polling Genesys", self._poll_turn) is None
                if self._polling and push_healthy and now >= next_recheck:
                    # The poll is slow now: profiles other replicas saved (their reads cannot write, they see no
                    # participants) reach the live calls at the fast poll's pace anyway, with no Genesys query.
                    next_recheck = now + settings.poll_interval_s
                    failed |= self._step("writing changed profiles to live calls", self.write_known_live) is None
                if self._polling and now >= next_refresh:
                    next_refresh = now + settings.refresh_tick_s
                    failed |= self._step("scheduling profile refreshes", self.schedule_refreshes) is None
                if self._push is not None and now >= next_follow:
                    # At a pace, not at each new link: each hand-over may cost a subscription call (the channel's
                    # whole topic list) and a catch-up poll, and a first start links people three at a time.
                    next_follow = now + settings.follow_every_s
                    failed |= self._step("following Genesys users", self.follow_linked) is None
                failed |= self._step("writing what Genesys notified", self.write_notified) is None
                # Retention runs on the replica that polls: one replica deletes (the statements are idempotent, but N
                # replicas deleting the same rows at once only wait on each other's locks), and only the poller
                # knows which participants are live, which the write intents' purge needs.
                if self._polling and self._clock() >= next_retention:
                    started = self._clock()
                    if self._step("applying retention", self.apply_retention) is None:
                        failed = True  # tried again at the poll's pace, not on every turn
                        next_retention = started + self._settings.poll_interval_s
                    else:
                        next_retention = started + self._settings.retention_every_s
                worked = self._step("working on queued items", lambda: self.work_once(stop))
                failed |= worked is None
            except StoreError as error:
                # Everything the engine does starts from the store: wait for it, then carry on where the store
                # says (claimed work returns to the queue when its lease ends, nothing is lost).
                if not database_down:
                    log.error("the database is unreachable, sync paused until it answers again: %s", error)
                database_down = str(error)
                self._stop_polling()
                self._beat()  # waiting for the database is the engine doing its job; /healthz names the database
                self._timer.wait(stop, self._settings.database_retry_s)
                continue
            if database_down:
                log.info("the database answers again; sync resumed")
                database_down = ""
            self._beat()
            if failed:
                self._timer.wait(stop, self._settings.database_retry_s)
            elif not worked:
                # Woken by a notification or a reconnect; else at least twice a second, so `stop` is seen soon.
                self._timer.wait(self._wake, min(0.5, max(0.0, next_poll - self._timer.monotonic())))
                self._wake.clear()

    def _step(self, doing: str, step: Callable[[], T]) -> T | None:
        """Run one step of the loop; an unexpected failure is logged (in full the first time, then one line each
        time it repeats) and gives None, so the loop goes on. StoreError goes up: the loop waits for the database."""
        try:
            result = step()
        except StoreError:
            raise
        except Exception as error:  # the loop's documented guard: nothing may end the engine
            described = _describe(error)
            if self._failing.get(doing) != described:
                log.exception("sync engine: %s failed unexpectedly; the engine carries on", doing)
            else:
                log.error("sync engine: %s failed again: %s", doing, described)
            self._failing[doing] = described
            if doing == "polling Genesys":  # /healthz must not keep saying the poll works
                self._last_poll_ok, self._last_poll_error = False, f"the poll failed unexpectedly: {described}"
            return None
        if self._failing.pop(doing, None) is not None:
            log.info("sync engine: %s works again", doing)
        return result

    def _poll_turn(self) -> bool:
        if self.take_poll_turn():
            self.poll_once()
        return True

    def _beat(self) -> None:
        self._ticked_at = self._timer.monotonic()

    def liveness(self) -> Liveness:
        """Whether the loop is turning: /healthz answers 503 when it has not for `stalled_after_s`."""
        ticked = self._ticked_at
        age = None if ticked is None else max(0.0, self._timer.monotonic() - ticked)
        return Liveness(self._running, age, self._settings.stalled_after_s, dict(self._failing))

    def take_poll_turn(self) -> bool:
        """Hold (or renew) the poll lease; True when this replica is the one that polls Genesys now.

        With several replicas on one database, one polls and writes what it sees; the others refresh profiles
        (which the poller writes on its next poll). A replica taking over reads the writes left unconfirmed by
        the one before it, so a write that one sent just before dying is checked instead of sent again.
        """
        tenure = self._store.take_lease(POLL_LEASE, self._settings.worker, ttl_s=self._settings.poll_lease_s)
        if tenure is not None and tenure != self._poll_tenure:
            # A new tenure (also when this replica's own ran out unnoticed and it took the lease again): another
            # replica may have polled meanwhile and left writes in doubt.
            self._unconfirmed = {(c, p): h for c, p, h in self._store.write_intents()}
            if not self._polling:
                log.info("this replica (%s) now polls Genesys for live conversations", self._settings.worker)
            self._stop_polling()
            self._poll_tenure = tenure
            self._poll_heartbeat = Heartbeat(
                "the Genesys poll lease", lambda: self._store.renew_lease(tenure, self._settings.poll_lease_s),
                self._settings.poll_lease_s / 3, progressing=self._progressing, timer=self._timer).start()
            if self._push_factory is not None:  # the poller consumes the notifications too: one replica at a time
                self._push = self._push_factory(on_conversation=self.conversation_seen,
                                                on_connected=self.push_connected)
                self._push.start()
        elif tenure is None and self._polling:
            log.info("another replica polls Genesys now; this one (%s) keeps refreshing profiles",
                     self._settings.worker)
            self._stop_polling()
        self._polling = tenure is not None
        return self._polling

    def _stop_polling(self) -> None:
        """Let go of the poll turn: no heartbeat, no tenure, and no observations steering writes."""
        if self._poll_heartbeat is not None:
            self._poll_heartbeat.stop()
        self._poll_heartbeat, self._poll_tenure = None, None
        if self._push is not None:
            self._push.stop()
            self._push = None
        if self._polling:
            with self._live_lock:
                self._live = ()  # observations this replica no longer renews must not steer writes
                self._pushed = {}
            with self._seen_lock:
                self._seen = {}
            self._last_poll_ok, self._last_poll_error = None, ""
        self._polling = False

    def _poll_lease_holds(self) -> bool:
        """The fence before each write of the poller: this replica's tenure of the poll lease still holds.

        Checked in the store, not only from the heartbeat's last answer: a renewal that came too late, or a process
        paused past its lease, must not write beside the replica that took over. Without a tenure (one process used
        directly, as by the preview and tests) there is nothing to check."""
        tenure, heartbeat = self._poll_tenure, self._poll_heartbeat
        if tenure is None:
            return True
        return not (heartbeat is not None and heartbeat.lost) and self._store.lease_holds(tenure)

    def _lost_poll_lease(self, left: int) -> None:
        log.warning("this replica (%s) lost the Genesys poll lease (another replica took it, or it ran out): stopped "
                    "writing at once, %d participant(s) left to the poller", self._settings.worker, left)
        self._stop_polling()

    def _progressing(self) -> bool:
        """Whether the engine is turning (as /healthz judges it): heartbeats renew leases only while it is."""
        ticked = self._ticked_at
        return ticked is None or self._timer.monotonic() - ticked < self._settings.stalled_after_s

    def poll_once(self) -> int:
        """Poll the org's live participants and write where the last write differs; returns writes made."""
        started = self._timer.monotonic()
        try:
            live = self._genesys.org_live_participants()
        except Stopping:
            return 0  # the app is stopping: not a poll failure worth a line or a /healthz change
        except GenesysError as error:
            if isinstance(error, GenesysUnavailable):
                # An outage: the client logged its start and logs its end; a line per poll would only repeat it.
                log.debug("Genesys poll failed, retrying next interval: %s", error)
                self._last_poll_error_id = ""  # status points to the client's one "Genesys unreachable" line
            elif self._last_poll_ok is not False:  # one line per failure, not one per poll
                self._last_poll_error_id = logged_failure(log, "Genesys poll failed, retrying next interval", error)
                self._poll_warned = True
            self._last_poll_ok, self._last_poll_error = False, str(error)
            return 0
        finally:
            self._observer.poll_finished(self._timer.monotonic() - started)
        if not self._poll_lease_holds():  # the query outlived the lease and another replica polls now
            self._lost_poll_lease(len(live))
            return 0
        if self._poll_warned:
            log.info("Genesys poll works again (%d live participants)", len(live))
            self._poll_warned = False
        self._last_poll_ok, self._last_poll_error = True, ""
        with self._live_lock:
            self._live = live
            self._forget_old_pushed(self._timer.monotonic())
        live = self._live_participants()  # with what push saw since the analytics index did
        live_keys = _live_keys(live)
        self._store.forget_participants(live_keys)
        self._rejected.keep_only(live_keys)
        return self._write_all(live)

    # ------------------------------------------------------------------ push

    def conversation_seen(self, seen: ConversationSeen) -> None:
        """Genesys notified a change of a followed user's conversation (called on push's thread): act on it soon."""
        with self._seen_lock:
            self._seen[(seen.user_id, seen.conversation_id)] = seen
        self._wake.set()

    def push_connected(self) -> None:
        """Push (re)connected or subscribed newcomers (called on its thread): one catch-up poll, for what happened
        before."""
        self._catch_up = True
        self._wake.set()

    def write_notified(self) -> int:
        """Write to the participants the notifications since the last turn showed live; returns writes made.

        A burst of notifications for one conversation counts once (the last), and a participant that carries its
        person's attributes already costs nothing: the same decision and record as the poll's writes."""
        with self._seen_lock:
            seen, self._seen = self._seen, {}
        if not seen or not self._polling:
            return 0
        now = self._timer.monotonic()
        with self._live_lock:
            self._forget_old_pushed(now)
            for key, conversation in seen.items():
                self._pushed[key] = (now, conversation.live)
        return self._write_all(participant for conversation in seen.values() for participant in conversation.live)

    def _forget_old_pushed(self, now: float) -> None:
        """Drop what push said longer than `pushed_memory_s` ago: by then the poll knows (call with `_live_lock`)."""
        forget_before = now - self._settings.pushed_memory_s
        self._pushed = {key: value for key, value in self._pushed.items() if value[0] >= forget_before}

    @property
    def push_enabled(self) -> bool:
        """Whether Genesys' notifications are used (GENESYS_PUSH)."""
        return self._push_factory is not None

    def push_state(self) -> PushState | None:
        """Push's state on this replica; None with push off, or while another replica consumes it."""
        push = self._push
        return push.state() if push is not None else None

    def write_known_live(self) -> int:
        """Write to the live participants known from the last poll and push wherever the stored profile differs
        from what was last written (a profile another replica read); returns writes made. No Genesys query."""
        return self._write_all(self._live_participants())

    def _watch_push(self, condition: object) -> tuple[PushState | None, object]:
        """Push's state now and what it means (`_push_condition`), with a line when the meaning changed."""
        push = self.push_state()
        if push is None:
            return None, None
        if _push_condition(push) != condition:
            self._log_push_change(push)
        return push, _push_condition(push)

    def _log_push_change(self, state: PushState) -> None:
        """One line when push starts or stops covering everyone, or falls back for another reason."""
        if state.healthy:
            log.info("Genesys notifications work (%d people followed): polling every %.0f s as a safety net",
                     state.topics, self._settings.push_poll_interval_s)
        elif _push_condition(state) == "subscribing":
            log.info("subscribing %d newly followed person(s) to Genesys notifications: polling every %.0f s "
                     "until done", state.pending, self._settings.poll_interval_s)
        else:
            log.warning("Genesys notifications do not cover every followed person (%s): polling every %.0f s "
                        "until they do", state.fallback_reason, self._settings.poll_interval_s)

    def follow_linked(self) -> int:
        """Hand push the Genesys users to follow now (every linked person with a profile); returns how many."""
        push = self._push
        if push is None:
            return 0
        followed = self._store.followed_genesys_users()
        push.follow(followed)
        return len(followed)

    def apply_retention(self) -> Retained:
        """Delete what is past its retention (events, audit rows, expired OAuth states, write intents of
        participants no longer live); one line if anything went.

        Write intents are purged only after a poll that worked, from the participants it found live: an intent
        matters while its participant may still be written to (it makes a replica taking over read the
        participant before writing again), so one whose participant is live stays, however old."""
        now, settings = self._clock(), self._settings
        live = frozenset(_live_keys(self._live_participants()))
        deleted = self._store.delete_older_than(Cutoffs(
            events=now - settings.event_retention_s, audit=now - settings.audit_retention_s,
            write_intents=now - settings.audit_retention_s if self._polling and self._last_poll_ok else None,
            live=live))
        if deleted.events or deleted.audit or deleted.oauth_states or deleted.write_intents:
            log.info("retention: deleted %d Slack events older than %g days, %d audit rows older than %g days, %d "
                     "expired OAuth states and %d write intents of ended conversations", deleted.events,
                     settings.event_retention_s / 86400, deleted.audit, settings.audit_retention_s / 86400,
                     deleted.oauth_states, deleted.write_intents)
        return deleted

    def schedule_refreshes(self) -> int:
        """Queue the users whose profile is the oldest, a few per tick (custom field edits send no event); returns
        how many were due."""
        due = self._store.users_due_for_refresh(older_than=self._clock() - self._settings.refresh_interval_s,
                                                limit=self._settings.refresh_per_tick)
        for team_id, user_id in due:
            self._enqueue_refresh(team_id, user_id)
        return len(due)

    def work_once(self, stop: threading.Event | None = None) -> int:
        """Claim due work items and run them; returns how many ran."""
        lease_s = self._settings.lease_s
        items = self._store.claim(worker=self._settings.worker, lease_s=lease_s, limit=self._settings.claim_batch)
        if not items:
            return 0
        # Renewed while this worker is on them (the batch's later items wait for the first): a slow Slack read must
        # not hand an item to another worker, which would read it twice and count a failed attempt.
        with Heartbeat("work item leases", lambda: self._store.renew_claim(items, lease_s=lease_s) > 0, lease_s / 3,
                       progressing=self._progressing, timer=self._timer) as heartbeat:
            for item in items:
                if (stop is not None and stop.is_set()) or heartbeat.lost:
                    break  # the claimed rest come back when their lease ends
                self._run_item(item)
                self._beat()  # a long batch (slow Slack, rate limits) is progress, not a hang
        return len(items)

    # ------------------------------------------------------------------ status

    def genesys_status(self) -> GenesysStatus:
        """How the last poll went: `ok` None before the first poll, or while another replica polls."""
        return GenesysStatus(self._last_poll_ok, self._last_poll_error)

    @property
    def polling(self) -> bool:
        """Whether this replica polls Genesys (holds the poll lease)."""
        return self._polling

    # ------------------------------------------------------------------ private

    def _run_item(self, item: WorkItem) -> None:
        team_id, user_id = item.payload.get("team_id"), item.payload.get("user_id")
        if item.kind != REFRESH or not isinstance(team_id, str) or not isinstance(user_id, str):
            self._store.dead_letter(item, reason=f"unknown work item {item.kind}:{item.key}")
            return
        try:
            record = self._slack.user(team_id, user_id)
            desired, _row = self._save_desired(record)
            if record.syncable and desired.ok:
                genesys_user_id = self._link(record)
                if genesys_user_id is not None:
                    self._write_all(participant for participant in self._live_participants()
                                    if participant.user_id == genesys_user_id)
            elif not desired.ok:
                log.warning("Slack user %s: attributes not voice-safe, nothing written: %s", user_id,
                            "; ".join(str(p) for p in desired.report.problems[:3]))
        except StoreError:
            raise  # the loop waits for the database; the item returns to the queue when its lease ends
        except SlackDirectoryError as error:
            self._give_up_or_retry(item, str(error), permanent=error.error in PERMANENT_SLACK_ERRORS)
            return
        except GenesysError as error:
            # 400, 403, 404, refused credentials: the same request fails the same way, so a dead letter at once.
            # An outage is logged once by the Genesys client, not once per item it delays.
            self._give_up_or_retry(item, str(error), permanent=not error.retryable,
                                   level=logging.DEBUG if error.retryable else logging.INFO)
            return
        except Exception as error:  # noqa: BLE001 -- the item's guard: a failure nobody foresaw must not end the engine
            # Retried like an outage, since it may be one (an answer cut off mid-body raises IncompleteRead, which
            # is neither a Slack nor an OS error); the traceback once, then one line per attempt.
            first = item.attempts == 0
            self._give_up_or_retry(item, f"unexpected error: {_describe(error)}",
                                   level=logging.ERROR if first else logging.WARNING, exc_info=first)
            return
        self._store.complete(item)
        self._person_synced(team_id, user_id)

    def _person_synced(self, team_id: str, user_id: str) -> None:
        """Tell `on_person_synced`; its failure is its own (logged), never the write's."""
        if self._on_person_synced is None:
            return
        try:
            self._on_person_synced(team_id, user_id)
        except Exception:  # a listener's bug must not fail the sync it hears about
            log.exception("telling that Slack user %s was synced failed", user_id)

    def _give_up_or_retry(self, item: WorkItem, error: str, *, permanent: bool = False,
                          level: int = logging.INFO, exc_info: bool = False) -> None:
        if permanent or item.attempts + 1 >= self._settings.max_attempts:
            log.warning("giving up on %s %s after %d attempt(s): %s", item.kind, item.key, item.attempts + 1, error,
                        exc_info=exc_info)
            self._store.dead_letter(item, reason=error)
            return
        delay = min(300.0, 2.0 ** (item.attempts + 1))
        log.log(level, "%s %s failed (attempt %d), retrying in %.0f s: %s", item.kind, item.key, item.attempts + 1,
                delay, error, exc_info=exc_info)
        self._store.retry_later(item, delay_s=delay, error=error)

    def _save_desired(self, record: SlackUserRecord) -> tuple[DesiredAttributes, DesiredRow]:
        # The keys the person keeps to themself are left out here, where every later write (each target) starts.
        desired = desired_attributes(SlackUser(record.user, "Slack profile"), self._slack.labels(record.team_id),
                                     self._rules, withheld=self._store.withheld_keys(record.team_id, record.user_id))
        attributes = dict(desired.report.attributes) if desired.ok else {}
        if attributes:
            attributes = self._with_cleared_keys(record, attributes)
        row = DesiredRow(
            team_id=record.team_id, user_id=record.user_id, email=record.email, deleted=not record.syncable,
            attributes=attributes, attributes_hash=attributes_hash(attributes) if desired.ok else "",
            profile_updated=record.updated, refreshed_at=self._clock(),
        )
        if self._store.save_desired(row):
            log.info("Slack user %s: %d attribute(s) to write%s", record.user_id, len(attributes),
                     "" if record.syncable else " (not synced: deactivated, bot or app user)")
        return desired, row

    def _with_cleared_keys(self, record: SlackUserRecord, attributes: dict[str, str]) -> dict[str, str]:
        """Keys written before but gone from the profile now (a cleared custom field) are written as "".

        Genesys merges the attributes a PATCH sends into what the participant has (the fake does; the real
        behaviour is undocumented), so leaving a key out would leave its old value in place. Kept only while
        the map stays within the voice-safe limits.
        """
        previous = self._store.desired(record.team_id, record.user_id)
        if previous is None:
            return attributes
        cleared = {key: "" for key in previous.attributes if key not in attributes}
        if not cleared:
            return attributes
        combined = {**attributes, **cleared}
        if not check_attributes(combined, self._rules.voice_safe).ok:
            return attributes
        return dict(sorted(combined.items()))

    def _link(self, record: SlackUserRecord, *, trust_none: bool = True) -> str | None:
        """The id of the Genesys user this Slack user is linked to (None: no Genesys user has their e-mail, or
        another Slack user holds its link): the store's link while it is trusted (`_stored_link`), else a search,
        recorded in the store for every replica. `trust_none=False` searches again when the stored answer is None."""
        stored = self._stored_link(record)
        if stored is not None and (stored.genesys_user_id is not None or trust_none):
            return stored.genesys_user_id
        email = record.email
        genesys_user = self._genesys.find_user_by_email(email) if email else None
        linked = self._store.link_user(record.team_id, record.user_id, email,
                                      genesys_user.id if genesys_user else None, resolved_at=self._clock())
        if linked.conflict is not None:
            if linked.new_conflict:  # the store knows whether it is new: one line per conflict, across restarts
                conflict = linked.conflict
                log.warning("Slack user %s (workspace %s) has the e-mail of Genesys user %s, which is linked to Slack "
                            "user %s (workspace %s) already: the first link stays and %s is not synced; give each "
                            "person their own e-mail in Slack or Genesys Cloud", conflict.user_id, conflict.team_id,
                            conflict.genesys_user_id, conflict.holder_user_id, conflict.holder_team_id,
                            conflict.user_id)
            return None
        return linked.genesys_user_id

    def _stored_link(self, record: SlackUserRecord) -> UserLink | None:
        """The store's link of this Slack user when it may stand for a search now, else None: resolved for the
        e-mail they have now (compared as Genesys compares addresses: trimmed, ignoring case), `link_trust_s` ago
        at most (`missing_link_trust_s` for "none found").

        Whichever replica resolved it, so a burst spread over replicas searches each person once. Its age is taken
        both ways: replicas' clocks differ a little (a link stamped a moment in this one's future is fresh), and a
        clock set back by hours must not make a link trusted for those hours."""
        email = _address(record.email)
        if email is None:
            return None
        link = self._store.genesys_user_for(record.team_id, record.user_id)
        if link is None or _address(link.email) != email:
            return None
        settings = self._settings
        trust_s = settings.link_trust_s if link.genesys_user_id is not None else settings.missing_link_trust_s
        return link if abs(self._clock() - link.resolved_at) < trust_s else None

    def _live_participants(self) -> tuple[LiveParticipant, ...]:
        """The last poll's live participants, overruled by what push said since of a user's conversation."""
        with self._live_lock:
            if not self._pushed:
                return self._live
            polled = tuple(participant for participant in self._live
                           if (participant.user_id, participant.conversation_id) not in self._pushed)
            return polled + tuple(participant for _at, live in self._pushed.values() for participant in live)

    def _write_all(self, participants: Iterable[LiveParticipant]) -> int:
        """The poller's writes (the poll's, and a refreshed profile's to the participants the poll found): each one
        fenced by the poll lease, so a replica that lost it stops before its next write."""
        written = 0
        pending = list(participants)
        if self._target.agent:
            for index, participant in enumerate(pending):
                self._beat()  # writing to many participants under the request budget takes minutes: progress
                row = self._person_row(participant.user_id)
                if row is None:
                    continue
                try:
                    if self._write(participant, row, fence=self._poll_lease_holds).result == "written":
                        written += 1
                        self._person_synced(row.team_id, row.user_id)
                except _LeaseLost:
                    self._lost_poll_lease(len(pending) - index)
                    return written
        if self._target.customer:
            customers = self._customer_writes(pending)
            for index, (customer, row) in enumerate(customers):
                self._beat()
                try:
                    if self._write_customer(customer, row, fence=self._poll_lease_holds).result == "written":
                        written += 1
                except _LeaseLost:
                    self._lost_poll_lease(len(customers) - index)
                    return written
        return written

    def _person_row(self, genesys_user_id: str) -> DesiredRow | None:
        """The profile written for a Genesys user: the first linked Slack user with one (one Slack user per Genesys
        user), or None when nobody synced is linked to it."""
        for row in self._store.desired_for_genesys_user(genesys_user_id):
            if not row.deleted and row.attributes_hash:
                return row
        return None

    # ------------------------------------------------------------------ the customer's participant

    def _customer_writes(self, participants: Iterable[LiveParticipant]) -> list[tuple[LiveParticipant, DesiredRow]]:
        """The customer's participants of the conversations `participants` are in, each with the profile of the
        person it must describe: of the synced people on the conversation now, the most recently connected one.

        Everyone on the conversation counts, not only `participants` (one person's refresh, one notification): the
        poll's view, overruled by what push said since. A conversation with no synced person on it is left alone,
        so when the last person leaves, the customer's participant keeps who handled it last."""
        given = list(participants)
        conversations = {participant.conversation_id for participant in given if participant.customers}
        if not conversations:
            return []
        on_call: dict[str, dict[str, LiveParticipant]] = {conversation_id: {} for conversation_id in conversations}
        for participant in (*self._live_participants(), *given):  # the given ones are the newest word
            if participant.conversation_id in on_call:
                on_call[participant.conversation_id][participant.participant_id] = participant
        writes: list[tuple[LiveParticipant, DesiredRow]] = []
        for conversation_id in sorted(conversations):
            people = list(on_call[conversation_id].values())
            # Newest connection first; of equal times the later observed (a transfer's new leg comes after the old).
            ranked = sorted(enumerate(people), key=lambda pair: (pair[1].connected_at, pair[0]), reverse=True)
            for _, person in ranked:
                row = self._person_row(person.user_id)
                if row is None:
                    continue
                customers = dict.fromkeys(c for p in people for c in p.customers)
                writes.extend((LiveParticipant(conversation_id, customer, person.user_id, person.media_type,
                                               person.connected_at, person.customers), row)
                              for customer in customers)
                break
        return writes

    def _write_customer(self, customer: LiveParticipant, row: DesiredRow, *,
                        fence: Callable[[], bool] | None = None) -> ParticipantResult:
        """Write a person's profile (`row`) to a customer's participant, as `_customer_row` shapes it."""
        return self._write(customer, row, fence=fence, target="customer",
                           shape=lambda person: self._customer_row(customer, person))

    def _customer_row(self, customer: LiveParticipant, person: DesiredRow) -> DesiredRow:
        """What the customer's participant must carry to describe `person`: their attributes under the prefix, and
        "" for every key written there before (a previous person's) that they lack.

        The keys written before come from the audit's newest write to that participant, so they survive a restart
        and a gap with nobody on the call (a customer back in queue). Kept only while within the voice-safe limits;
        the hash is of this map, so an unchanged person on an unchanged call costs no write."""
        prefix = self._rules.mapping.prefix
        attributes = {self._target.customer_key(key, prefix): value for key, value in person.attributes.items()}
        previous = self._store.written_keys(customer.conversation_id, customer.participant_id)
        cleared = {key: "" for key in previous if key not in attributes}
        if cleared and check_attributes({**attributes, **cleared}, self._rules.voice_safe).ok:
            attributes = {**attributes, **cleared}
        attributes = dict(sorted(attributes.items()))
        return replace(person, attributes=attributes, attributes_hash=attributes_hash(attributes))

    def _write(self, participant: LiveParticipant, row: DesiredRow, *, fence: Callable[[], bool] | None = None,
               target: WriteTarget = "agent", shape: Callable[[DesiredRow], DesiredRow] | None = None
               ) -> ParticipantResult:
        """Write `row` to one participant unless it carries it already; `fence` (the poll lease) is checked right
        before anything is sent, and _LeaseLost raised when it fails. `shape` turns the person's profile into what
        this participant carries (the customer's participant: prefixed keys, a previous person's cleared), for the
        first decision and each re-decision alike.

        Writers of one participant take turns: one thread of this process at a time, and across replicas a write
        is recorded only over the last write it was decided from (the store's compare-and-set). A writer that loses
        re-decides from the profile the store keeps now, reading the participant first, since its write may have
        landed after the one recorded: so an older profile never stays on the call after a newer one."""
        key = (participant.conversation_id, participant.participant_id)
        with self._write_locks[hash(key) % len(self._write_locks)]:
            doubt = False
            decided = row if shape is None else shape(row)
            for _ in range(WRITE_ROUNDS):
                result = self._write_once(participant, decided, fence=fence, doubt=doubt, target=target)
                if result is not None:
                    self._observer.write_finished(result.result)
                    return result
                log.info("conversation %s participant %s: another write was recorded there meanwhile; deciding "
                         "again from the stored profile", participant.conversation_id, participant.participant_id)
                latest = self._store.desired(row.team_id, row.user_id)
                if latest is None or latest.deleted or not latest.attributes_hash:
                    break
                decided, doubt = (latest if shape is None else shape(latest)), True
            # Still contended (or the profile went): forget what is known, so that the next poll decides afresh.
            self._store.forget_written(participant.conversation_id, participant.participant_id)
            self._observer.write_finished("failed")
            return ParticipantResult(participant.conversation_id, participant.participant_id, participant.media_type,
                                     "failed", "other writes to this participant kept coming; the next poll writes it",
                                     target=target)

    def _write_once(self, participant: LiveParticipant, row: DesiredRow, *, fence: Callable[[], bool] | None,
                    doubt: bool, target: WriteTarget = "agent") -> ParticipantResult | None:
        """One decision and its write; None when another writer recorded first (`doubt` then: decide again, and
        read the participant before trusting what the store says it carries)."""
        key = (participant.conversation_id, participant.participant_id)
        where = (*key, participant.media_type)
        expected = self._store.last_written(*key)
        if expected == row.attributes_hash and not doubt:
            return ParticipantResult(*where, "unchanged", target=target)
        if (*key, row.attributes_hash) in self._rejected:
            return ParticipantResult(*where, "rejected", "Genesys rejected these attributes before", target=target)
        checked = check_attributes(row.attributes, self._rules.voice_safe)
        if not checked.ok:  # the limits changed since the row was saved: it is refreshed on its next read
            return ParticipantResult(*where, "rejected", "; ".join(str(p) for p in checked.problems[:3]),
                                     target=target)
        attributes = checked.sendable()
        keys = tuple(sorted(row.attributes))
        unconfirmed = self._unconfirmed.pop(key, None) == row.attributes_hash

        def audit(result: str, detail: str = "", context_id: str | None = None) -> WriteRecord:
            return WriteRecord(
                conversation_id=participant.conversation_id, participant_id=participant.participant_id,
                genesys_user_id=participant.user_id, team_id=row.team_id, user_id=row.user_id,
                attributes_hash=row.attributes_hash, keys=keys, result=result, context_id=context_id,
                detail=detail, at=self._clock(), target=target,
            )

        def record(result: str, detail: str = "", context_id: str | None = None, *, told: str | None = None,
                   error_id: str = "") -> ParticipantResult:
            """Audit the outcome with `detail`; the person is `told` instead when `detail` is Genesys' words."""
            self._store.record_write(audit(result, detail, context_id))
            return ParticipantResult(*where, result, detail if told is None else told, context_id, error_id, target)

        def record_written(detail: str = "", context_id: str | None = None) -> ParticipantResult | None:
            if not self._store.record_write_if(audit("written", detail, context_id), expected=expected):
                return None
            return ParticipantResult(*where, "written", detail, context_id, target=target)

        if fence is not None and not fence():
            raise _LeaseLost
        try:
            # Compared with the map that is sent (values cut to the voice-safe limits now in force), not the stored
            # one: a row saved under other limits would otherwise never match, and be sent again after a restart.
            if (unconfirmed or doubt) and self._already_there(participant, attributes.attributes):
                if unconfirmed:
                    log.info("conversation %s participant %s already has %s's attributes (sent before a restart)",
                             participant.conversation_id, participant.participant_id, row.user_id)
                return record_written("confirmed after a restart: the write sent before it had landed" if unconfirmed
                                      else "confirmed by reading the participant after another write")
            self._store.intend_write(participant.conversation_id, participant.participant_id, row.attributes_hash)
            sent = self._timer.monotonic()
            try:
                outcome = self._genesys.write_attributes(*key, attributes)
            finally:
                self._observer.write_sent(self._timer.monotonic() - sent)
        except ConversationGone as error:
            # Expected (the call ended between the poll and the write): no log line, so no error id.
            return record("gone", str(error), error.context_id, told="the conversation ended")
        except AttributesRejected as error:
            self._rejected.add((participant.conversation_id, participant.participant_id, row.attributes_hash))
            error_id = logged_failure(log, f"Genesys rejected the attributes of Slack user {row.user_id} on "
                                           f"conversation {participant.conversation_id}", error)
            return record("rejected", str(error), error.context_id, told="", error_id=error_id)
        except GenesysError as error:
            # During an outage the client's one line says it all; a line per participant per poll would bury it.
            error_id = logged_failure(log, f"writing Slack user {row.user_id} to conversation "
                                           f"{participant.conversation_id} failed, retried next poll", error,
                                      level=logging.DEBUG if error.retryable else logging.WARNING)
            return ParticipantResult(*where, "failed", "", None, error_id, target)
        log.info("synced %s -> conversation %s %sparticipant %s (%d keys, contextId %s)", row.user_id,
                 participant.conversation_id, "customer's " if target == "customer" else "", participant.participant_id,
                 len(keys), outcome.context_id)
        return record_written("", outcome.context_id)

    def _already_there(self, participant: LiveParticipant, attributes: Mapping[str, str]) -> bool:
        current = self._genesys.participant_attributes(participant.conversation_id, participant.participant_id)
        return current is not None and all(current.get(key) == value for key, value in attributes.items())


class _LeaseLost(Exception):
    """Raised before a poller's write when its tenure of the poll lease no longer holds: it must not write."""


def _live_keys(live: Iterable[LiveParticipant]) -> set[tuple[str, str]]:
    """(conversation, participant) of the live participants and of their conversations' customers."""
    keys: set[tuple[str, str]] = set()
    for participant in live:
        keys.add((participant.conversation_id, participant.participant_id))
        keys.update((participant.conversation_id, customer) for customer in participant.customers)
    return keys


def _address(email: str | None) -> str | None:
    """An e-mail in the form Genesys matches it (`normalize_email`); None for none, or for one that is not an
    address (never trusted: searched, as before)."""
    try:
        return normalize_email(email) if email else None
    except ValueError:
        return None


def _push_condition(state: PushState) -> object:
    """What push's state means for the poll and the log, without its counts (which change without news)."""
    if state.healthy:
        return "healthy"
    if not state.rejected and not state.uncovered and (state.pending or state.connected):
        return "subscribing"  # people just followed, on a socket that is open or opening for them
    return (state.connected, bool(state.rejected), bool(state.uncovered), state.missing_permissions)


def _describe(error: BaseException) -> str:
    """An unexpected error in one line: its type (which says most, e.g. IncompleteRead) and its message."""
    text, name = str(error), type(error).__name__
    if text.startswith(name):  # IncompleteRead's text is already "IncompleteRead(8 bytes read, …)"
        return text
    return f"{name}: {text}" if text else name
