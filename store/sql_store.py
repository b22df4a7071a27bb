"""The store itself: the sync engine's durable state over any `Database` (SQLite or PostgreSQL).

Every method is one transaction (or one read), so each either happened completely or not at all; see the package
docstring for what that means after a crash. Methods are safe to call from several threads.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from store.backend import Cursor, Database
from store.errors import StoreError
from store.queries import Queries
from store.schema import schema_version
from store.values import (
    PRIVACY,
    WRITE_OUTCOMES,
    AuditEntry,
    Cutoffs,
    DeadLetter,
    DesiredRow,
    LinkConflict,
    LinkResult,
    PrivacyChoice,
    Retained,
    SlackInstallation,
    StoreHealth,
    Tenure,
    UserLink,
    WorkItem,
    WriteRecord,
)

DEFAULT_EVENT_TTL_S = 86400.0
_LEASE_EXPIRED = "the lease ran out before the worker reported (it stopped or hung)"


def _json(value: Any) -> str:
    # Sorted and compact, so equal payloads are equal text (handy when reading the database by hand).
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class Store:
    """All durable state of the sync engine; build it with `store.open_store`."""

    def __init__(
        self,
        database: Database,
        *,
        clock: Callable[[], float],
    ) -> None:
        self._db = database
        self._q = Queries(database.dialect)
        self._clock = clock

    def __repr__(self) -> str:
        return f"Store({self._db.describe()})"

    # --- Slack events dedupe -------------------------------------------------------------------------------------

    def remember_event(self, event_id: str, *, ttl_s: float = DEFAULT_EVENT_TTL_S) -> bool:
        """True the first time an event_id is seen (or once its earlier sighting expired); False for a duplicate."""
        now = self._clock()
        with self._db.transaction("remember a Slack event") as cursor:
            cursor.execute(self._q.remember_event, {"event_id": event_id, "seen_at": now, "expires_at": now + ttl_s})
            return cursor.rowcount == 1

    # --- Desired state -------------------------------------------------------------------------------------------

    def save_desired(self, desired: DesiredRow) -> bool:
        """Store a user's desired attributes; True when they changed (hash or deleted flag) or the user is new.

        A row whose `profile_updated` is older than the stored one is a late, out-of-order delivery: ignored (False).
        """
        with self._db.transaction("save desired attributes") as cursor:
            cursor.execute(self._q.desired_version, {"team_id": desired.team_id, "user_id": desired.user_id})
            stored = cursor.fetchone()
            cursor.execute(
                self._q.save_desired,
                {
                    "team_id": desired.team_id,
                    "user_id": desired.user_id,
                    "email": desired.email,
                    "deleted": bool(desired.deleted),
                    "attributes": _json(dict(desired.attributes)),
                    "attributes_hash": desired.attributes_hash,
                    "profile_updated": desired.profile_updated,
                    "refreshed_at": desired.refreshed_at,
                },
            )
            if stored is None:
                return True
            if cursor.rowcount == 0:
                return False  # out of order: ignored
            stored_hash, stored_deleted = stored
            return stored_hash != desired.attributes_hash or bool(stored_deleted) != desired.deleted

    def desired(self, team_id: str, user_id: str) -> DesiredRow | None:
        """The stored desired row of one Slack user, or None."""
        with self._db.reading("read desired attributes") as cursor:
            cursor.execute(self._q.desired, {"team_id": team_id, "user_id": user_id})
            row = cursor.fetchone()
        return None if row is None else _desired_row(row)

    def desired_for_genesys_user(self, genesys_user_id: str) -> list[DesiredRow]:
        """The desired rows of every Slack user linked to this Genesys user (usually one)."""
        with self._db.reading("read desired attributes of a Genesys user") as cursor:
            cursor.execute(self._q.desired_for_genesys_user, {"genesys_user_id": genesys_user_id})
            found = cursor.fetchall()
        return [_desired_row(row) for row in found]

    def users_due_for_refresh(self, *, older_than: float, limit: int) -> list[tuple[str, str]]:
        """(team_id, user_id) of users last refreshed before `older_than`, least recently refreshed first."""
        with self._db.reading("list users due for refresh") as cursor:
            cursor.execute(self._q.users_due_for_refresh, {"older_than": older_than, "limit": limit})
            found = cursor.fetchall()
        return [(team_id, user_id) for team_id, user_id in found]

    def workspace_has_profiles(self, team_id: str) -> bool:
        """Whether any profile of this workspace was ever stored (False: its first sync is still to come)."""
        with self._db.reading("look for a workspace's profiles") as cursor:
            cursor.execute(self._q.workspace_has_profiles, {"team_id": team_id})
            return cursor.fetchone() is not None

    def forget_workspace(self, team_id: str) -> int:
        """Drop a workspace's desired rows and user links (the app was uninstalled there); returns how many
        profiles went. What was written to Genesys and the audit trail stay."""
        with self._db.transaction("forget a workspace") as cursor:
            cursor.execute(self._q.forget_workspace_desired, {"team_id": team_id})
            forgotten = cursor.rowcount
            cursor.execute(self._q.forget_workspace_links, {"team_id": team_id})
            cursor.execute(self._q.forget_workspace_conflicts, {"team_id": team_id})
            return forgotten

    # --- User links ----------------------------------------------------------------------------------------------

    def link_user(
        self, team_id: str, user_id: str, email: str | None, genesys_user_id: str | None, *, resolved_at: float
    ) -> LinkResult:
        """Remember which Genesys user a Slack user is; None records "no Genesys user has this e-mail" for now.

        A Genesys user has at most one Slack user: when another one holds its link already, the first link stays,
        this Slack user is left unlinked and the conflict is recorded (`new_conflict` the first time it is seen).
        """
        key = {"team_id": team_id, "user_id": user_id}
        with self._db.transaction("link a Slack user to a Genesys user") as cursor:
            holder = None
            if genesys_user_id is not None:
                if self._q.lock_genesys_user is not None:
                    cursor.execute(self._q.lock_genesys_user, {"genesys_user_id": genesys_user_id})
                cursor.execute(self._q.link_holder, {**key, "genesys_user_id": genesys_user_id})
                holder = cursor.fetchone()
            cursor.execute(self._q.link_user, {**key, "email": email, "resolved_at": resolved_at,
                                              "genesys_user_id": None if holder else genesys_user_id})
            if holder is None or genesys_user_id is None:
                cursor.execute(self._q.drop_link_conflict, key)
                return LinkResult(genesys_user_id)
            cursor.execute(self._q.link_conflict, key)
            known = cursor.fetchone()
            conflict = LinkConflict(team_id, user_id, genesys_user_id, holder[0], holder[1], resolved_at)
            if known is not None and tuple(known[2:5]) == (genesys_user_id, holder[0], holder[1]):
                return LinkResult(None, LinkConflict(*known), new_conflict=False)
            cursor.execute(self._q.save_link_conflict, {
                **key, "genesys_user_id": genesys_user_id, "holder_team_id": holder[0],
                "holder_user_id": holder[1], "since": resolved_at})
            return LinkResult(None, conflict, new_conflict=True)

    def link_conflict(self, team_id: str, user_id: str) -> LinkConflict | None:
        """The conflict that keeps this Slack user unlinked, or None."""
        with self._db.reading("read a link conflict") as cursor:
            cursor.execute(self._q.link_conflict, {"team_id": team_id, "user_id": user_id})
            row = cursor.fetchone()
        return None if row is None else LinkConflict(*row)

    def synced_people_count(self) -> int:
        """How many Slack users have a profile to write and a Genesys user to write it to."""
        with self._db.reading("count synced people") as cursor:
            cursor.execute(self._q.count_synced_people, {"no": False})
            (count,) = cursor.fetchone()
        return int(count)

    def link_conflict_count(self) -> int:
        """How many Slack users are left unlinked because their Genesys user has another Slack user."""
        return self._count(self._q.count_link_conflicts, "count link conflicts")

    def genesys_user_for(self, team_id: str, user_id: str) -> UserLink | None:
        """One Slack user's link (genesys_user_id None: resolved, no match), or None if never resolved."""
        with self._db.reading("read a user link") as cursor:
            cursor.execute(self._q.user_link, {"team_id": team_id, "user_id": user_id})
            row = cursor.fetchone()
        return None if row is None else UserLink(*row)

    def slack_users_for(self, genesys_user_id: str) -> list[UserLink]:
        """The Slack users linked to one Genesys user."""
        with self._db.reading("read the Slack users of a Genesys user") as cursor:
            cursor.execute(self._q.links_for_genesys_user, {"genesys_user_id": genesys_user_id})
            found = cursor.fetchall()
        return [UserLink(*row) for row in found]

    def followed_genesys_users(self) -> list[str]:
        """The Genesys users linked to a Slack user whose profile is to be written: whose conversations push follows."""
        with self._db.reading("read the followed Genesys users") as cursor:
            cursor.execute(self._q.followed_genesys_users, {"no": False})
            return [row[0] for row in cursor.fetchall()]

    # --- Last written and audit ----------------------------------------------------------------------------------

    def last_written(self, conversation_id: str, participant_id: str) -> str | None:
        """The hash of the attributes last written to this participant, or None."""
        with self._db.reading("read the last written attributes") as cursor:
            cursor.execute(self._q.last_written, {"conversation_id": conversation_id, "participant_id": participant_id})
            row = cursor.fetchone()
        return None if row is None else str(row[0])

    def intend_write(self, conversation_id: str, participant_id: str, attributes_hash: str) -> None:
        """Note a write about to be sent, so a crash before its outcome is recorded leaves a trace."""
        with self._db.transaction("note a write about to be sent") as cursor:
            cursor.execute(self._q.save_intent, {"conversation_id": conversation_id, "participant_id": participant_id,
                                                 "attributes_hash": attributes_hash, "at": self._clock()})

    def write_intents(self) -> list[tuple[str, str, str]]:
        """(conversation_id, participant_id, attributes_hash) of writes sent but never recorded (a crash)."""
        with self._db.reading("read unfinished writes") as cursor:
            cursor.execute(self._q.intents)
            return [(str(c), str(p), str(h)) for c, p, h in cursor.fetchall()]

    def record_write(self, write: WriteRecord) -> None:
        """Append the audit row; for 'written' also set last_written; clear the write's intent; one transaction."""
        self._record(write, check=False, expected=None)

    def record_write_if(self, write: WriteRecord, *, expected: str | None) -> bool:
        """`record_write`, but a 'written' outcome only over `expected`: the hash last written to the participant
        when the write was decided (None: nothing was). False, and nothing recorded, when another writer recorded
        a write there since: the caller's write may have landed before or after that one, so it must re-decide.

        Compare-and-set, one statement: of writers that decided from the same state, exactly one records."""
        return self._record(write, check=write.result == "written", expected=expected)

    def forget_written(self, conversation_id: str, participant_id: str) -> None:
        """Drop what is known to be written to one participant, so its next poll decides afresh."""
        with self._db.transaction("forget a participant's last write") as cursor:
            cursor.execute(self._q.forget_participant,
                           {"conversation_id": conversation_id, "participant_id": participant_id})

    def _record(self, write: WriteRecord, *, check: bool, expected: str | None) -> bool:
        if write.result not in WRITE_OUTCOMES:
            raise ValueError(f"record_write: result {write.result!r} is not one of {sorted(WRITE_OUTCOMES)}")
        where = {"conversation_id": write.conversation_id, "participant_id": write.participant_id}
        with self._db.transaction("record a write") as cursor:
            if write.result == "written":
                written = {**where, "attributes_hash": write.attributes_hash, "written_at": write.at}
                if not check:
                    cursor.execute(self._q.save_last_written, written)
                elif expected is None:
                    cursor.execute(self._q.first_last_written, written)
                else:
                    cursor.execute(self._q.replace_last_written, {**written, "expected": expected})
                if check and cursor.rowcount != 1:
                    return False  # another writer recorded first; its intent and ours stay until re-decided
            cursor.execute(self._q.drop_intent, where)
            cursor.execute(
                self._q.append_audit,
                {
                    "at": write.at,
                    "team_id": write.team_id,
                    "user_id": write.user_id,
                    "genesys_user_id": write.genesys_user_id,
                    "conversation_id": write.conversation_id,
                    "participant_id": write.participant_id,
                    "keys": _json(list(write.keys)),
                    "result": write.result,
                    "context_id": write.context_id,
                    "detail": write.detail,
                    "attributes_hash": write.attributes_hash,
                    "target": write.target,
                },
            )
        return True

    def writes_since(self, since: float) -> int:
        """How many writes Genesys accepted since `since` (as the audit trail keeps them)."""
        with self._db.reading("count writes") as cursor:
            cursor.execute(self._q.count_written_since, {"since": since})
            (count,) = cursor.fetchone()
        return int(count)

    # --- Privacy choices -----------------------------------------------------------------------------------------

    def withheld_keys(self, team_id: str, user_id: str) -> frozenset[str]:
        """The optional attribute keys this person keeps to themself (empty: they share everything)."""
        with self._db.reading("read a privacy choice") as cursor:
            cursor.execute(self._q.withheld_keys, {"team_id": team_id, "user_id": user_id})
            row = cursor.fetchone()
        return frozenset() if row is None else frozenset(json.loads(row[0]))

    def choose_privacy(self, choice: PrivacyChoice) -> None:
        """Keep a person's choice of withheld keys and append it to the audit trail (result "privacy", no
        conversation), in one transaction."""
        withheld = sorted(choice.withheld)
        with self._db.transaction("save a privacy choice") as cursor:
            cursor.execute(self._q.save_privacy_choice, {"team_id": choice.team_id, "user_id": choice.user_id,
                                                         "withheld": _json(withheld), "changed_at": choice.at})
            cursor.execute(self._q.append_audit, {
                "at": choice.at, "team_id": choice.team_id, "user_id": choice.user_id, "genesys_user_id": None,
                "conversation_id": "", "participant_id": "", "keys": _json(withheld), "result": PRIVACY,
                "context_id": None, "detail": choice.detail, "attributes_hash": "",
                "target": "agent",  # the column's default: a choice names no participant and holds for every target
            })

    def forget_participants(self, live: set[tuple[str, str]]) -> int:
        """Drop last_written rows of participants not in `live` (conversation_id, participant_id); returns how many.

        The table holds only live participants, so reading it whole is cheap. A participant missing from `live`
        only costs one repeated (identical) write should it turn out to be live after all.
        """
        with self._db.transaction("forget ended participants") as cursor:
            cursor.execute(self._q.written_participants)
            gone = [
                {"conversation_id": conversation_id, "participant_id": participant_id}
                for conversation_id, participant_id in cursor.fetchall()
                if (conversation_id, participant_id) not in live
            ]
            if gone:
                cursor.executemany(self._q.forget_participant, gone)
        return len(gone)

    def written_keys(self, conversation_id: str, participant_id: str) -> tuple[str, ...]:
        """The keys of the newest write recorded on this participant (empty if none is in the audit)."""
        with self._db.reading("read the keys last written") as cursor:
            cursor.execute(self._q.written_keys, {"conversation_id": conversation_id, "participant_id": participant_id})
            row = cursor.fetchone()
        return () if row is None else tuple(json.loads(row[0]))

    def audit(self, *, user_id: str | None = None, limit: int = 50) -> list[AuditEntry]:
        """The newest audit rows first, optionally of one Slack user."""
        with self._db.reading("read the audit log") as cursor:
            if user_id is None:
                cursor.execute(self._q.audit, {"limit": limit})
            else:
                cursor.execute(self._q.audit_for_user, {"user_id": user_id, "limit": limit})
            found = cursor.fetchall()
        return [_audit_entry(row) for row in found]

    # --- Work queue ----------------------------------------------------------------------------------------------

    def enqueue(self, kind: str, key: str, payload: Mapping[str, Any], *, not_before: float | None = None,
                event_id: str | None = None, event_ttl_s: float = DEFAULT_EVENT_TTL_S) -> bool:
        """Add work, or replace the payload of the pending (kind, key) and move its due time earlier (never later).

        Replacing an item that is claimed right now keeps its attempts and its lease; the claimer's `complete`
        then leaves this newer version pending. With `event_id`, the Slack event is remembered in the same
        transaction and a duplicate enqueues nothing (returns False): one commit per event on the hot path.
        """
        now = self._clock()
        with self._db.transaction("enqueue work") as cursor:
            if event_id is not None:
                cursor.execute(self._q.remember_event,
                               {"event_id": event_id, "seen_at": now, "expires_at": now + event_ttl_s})
                if cursor.rowcount != 1:
                    return False
            cursor.execute(
                self._q.enqueue,
                {
                    "kind": kind,
                    "key": key,
                    "payload": _json(dict(payload)),
                    "not_before": now if not_before is None else not_before,
                    "now": now,
                },
            )
        return True

    def claim(self, *, worker: str, now: float | None = None, lease_s: float = 60, limit: int = 10) -> list[WorkItem]:
        """Lease up to `limit` due items to `worker` for `lease_s` seconds, longest-due first, atomically.

        Items under a live lease (anyone's) are skipped; an expired lease is taken over and counted as an attempt.
        """
        if lease_s <= 0 or limit < 1:
            raise ValueError(f"claim: lease_s must be > 0 and limit >= 1 (got lease_s={lease_s}, limit={limit})")
        now = self._clock() if now is None else now
        token = uuid.uuid4().hex
        with self._db.transaction("claim work") as cursor:
            cursor.execute(self._q.claimable, {"now": now, "limit": limit})
            found = cursor.fetchall()
            if found:
                cursor.executemany(
                    self._q.lease,
                    [
                        {
                            "id": row[0],
                            "worker": worker,
                            "lease_token": token,
                            "lease_until": now + lease_s,
                            "expired_error": _LEASE_EXPIRED,
                        }
                        for row in found
                    ],
                )
        return [
            WorkItem(
                id=item_id,
                kind=kind,
                key=key,
                payload=json.loads(payload),
                attempts=attempts + (0 if previous_token is None else 1),
                next_attempt_at=next_attempt_at,
                created_at=created_at,
                generation=generation,
                lease_token=token,
            )
            for item_id, kind, key, payload, attempts, next_attempt_at, created_at, generation, previous_token in found
        ]

    def renew_claim(self, items: Sequence[WorkItem], *, lease_s: float) -> int:
        """Push the lease of claimed items on to `lease_s` from now; returns how many this claim still holds.

        For a worker still on them (a slow Slack read, a batch's later items): while it renews, no other worker
        takes them over, so slow work is not counted as a failed attempt. An item taken over already (its lease ran
        out first) or finished is left alone."""
        if lease_s <= 0:
            raise ValueError(f"renew_claim: lease_s must be > 0 (got {lease_s})")
        if not items:
            return 0
        until = self._clock() + lease_s
        held = 0
        with self._db.transaction("renew claimed work") as cursor:
            for item in items:
                cursor.execute(self._q.renew_claim, {"id": item.id, "lease_token": item.lease_token,
                                                     "lease_until": until})
                held += cursor.rowcount
        return held

    def complete(self, item: WorkItem) -> None:
        """The item's work is done: delete it, unless a newer version was enqueued meanwhile (that stays pending)."""
        with self._db.transaction("complete work") as cursor:
            self._finish(cursor, item)

    def retry_later(self, item: WorkItem, *, delay_s: float, error: str) -> None:
        """Count a failed attempt, release the lease and make the item due again in `delay_s` seconds.

        A no-op when this claim no longer holds the lease (it expired and another worker took the item, or the item
        was completed): that worker reports instead.
        """
        if delay_s < 0:
            raise ValueError(f"retry_later: delay_s must be >= 0 (got {delay_s})")
        with self._db.transaction("reschedule work") as cursor:
            cursor.execute(
                self._q.retry_later,
                {
                    "id": item.id,
                    "lease_token": item.lease_token,
                    "generation": item.generation,
                    "error": error,
                    "retry_at": self._clock() + delay_s,
                },
            )

    def dead_letter(self, item: WorkItem, *, reason: str) -> None:
        """Give up on the item: keep it in the dead letters with `reason` and remove it from the work queue.

        A newer version enqueued while this one was claimed stays pending with a fresh retry budget. A no-op when
        this claim no longer holds the lease.
        """
        with self._db.transaction("dead-letter work") as cursor:
            cursor.execute(
                self._q.bury,
                {
                    "id": item.id,
                    "lease_token": item.lease_token,
                    "payload": _json(dict(item.payload)),
                    "reason": reason,
                    "now": self._clock(),
                },
            )
            if cursor.rowcount == 1:
                self._finish(cursor, item)

    def _finish(self, cursor: Cursor, item: WorkItem) -> None:
        cursor.execute(self._q.delete_version, {"id": item.id, "generation": item.generation})
        if cursor.rowcount == 0:
            cursor.execute(self._q.release_newer_version, {"id": item.id, "lease_token": item.lease_token})

    def pending_count(self) -> int:
        """Work items not yet done (due, waiting or claimed)."""
        return self._count(self._q.pending_count, "count pending work")

    def dead_letters(self, *, limit: int = 50) -> list[DeadLetter]:
        """The newest dead letters first."""
        with self._db.reading("read dead letters") as cursor:
            cursor.execute(self._q.dead_letters, {"limit": limit})
            found = cursor.fetchall()
        return [_dead_letter(row) for row in found]

    def dead_letter_count(self) -> int:
        """How many dead letters are kept."""
        return self._count(self._q.dead_letter_count, "count dead letters")

    def requeue_dead_letters(self, ids: Iterable[int] | None = None) -> list[DeadLetter]:
        """Put dead letters back on the work queue, due now with a fresh retry budget, and delete them; `ids` None:
        every one. Returns those requeued, oldest first; an id that is no dead letter (never was, or requeued
        meanwhile) is left out.

        Requeued as `enqueue` queues work: one pending item per (kind, key), so a dead letter whose work is pending
        again already (a newer event) joins it instead of running twice. One transaction: all or none."""
        now = self._clock()
        requeued: list[DeadLetter] = []
        with self._db.transaction("requeue dead letters") as cursor:
            if ids is None:
                cursor.execute(self._q.all_dead_letter_ids)
                ids = [row[0] for row in cursor.fetchall()]
            for dead_id in dict.fromkeys(ids):
                cursor.execute(self._q.dead_letter, {"id": dead_id})
                row = cursor.fetchone()
                if row is None:
                    continue
                cursor.execute(self._q.delete_dead_letter, {"id": dead_id})
                if cursor.rowcount != 1:
                    continue
                dead = _dead_letter(row)
                cursor.execute(self._q.enqueue, {"kind": dead.kind, "key": dead.key, "not_before": now, "now": now,
                                                 "payload": _json(dict(dead.payload))})
                requeued.append(dead)
        return sorted(requeued, key=lambda dead: dead.id)

    # --- Slack OAuth installations --------------------------------------------------------------------------------

    def save_installation(self, installation: SlackInstallation) -> None:
        """Keep a workspace's latest installation (replacing any earlier one of that workspace)."""
        with self._db.transaction("save a Slack installation") as cursor:
            cursor.execute(self._q.save_installation, {
                "enterprise_id": installation.enterprise_id, "team_id": installation.team_id,
                "installation": installation.installation, "bot": installation.bot,
                "installed_at": installation.installed_at,
            })

    def installation(self, enterprise_id: str, team_id: str) -> SlackInstallation | None:
        """The installation of one workspace ('' for an id Slack does not give), or None."""
        with self._db.reading("read a Slack installation") as cursor:
            cursor.execute(self._q.installation, {"enterprise_id": enterprise_id, "team_id": team_id})
            row = cursor.fetchone()
        if row is None:
            return None
        return SlackInstallation(enterprise_id, team_id, installation=str(row[0]),
                                 bot=None if row[1] is None else str(row[1]), installed_at=float(row[2]))

    def delete_installation(self, enterprise_id: str, team_id: str) -> bool:
        """Forget a workspace's installation (uninstalled, tokens revoked); False if there was none."""
        with self._db.transaction("delete a Slack installation") as cursor:
            cursor.execute(self._q.delete_installation, {"enterprise_id": enterprise_id, "team_id": team_id})
            return cursor.rowcount > 0

    def installed_workspaces(self) -> list[tuple[str, str]]:
        """(enterprise_id, team_id) of every installation, oldest first."""
        with self._db.reading("list Slack installations") as cursor:
            cursor.execute(self._q.installed_workspaces)
            return [(str(enterprise_id), str(team_id)) for enterprise_id, team_id in cursor.fetchall()]

    def issue_oauth_state(self, state: str, *, ttl_s: float) -> None:
        """Remember an OAuth `state` handed to a browser; it is good for one use within ttl_s."""
        now = self._clock()
        with self._db.transaction("issue an OAuth state") as cursor:
            cursor.execute(self._q.purge_oauth_states, {"now": now})
            cursor.execute(self._q.issue_oauth_state, {"state": state, "expires_at": now + ttl_s})

    def consume_oauth_state(self, state: str) -> bool:
        """True once for a state issued and not expired; False for an unknown, used or expired one."""
        with self._db.transaction("consume an OAuth state") as cursor:
            cursor.execute(self._q.consume_oauth_state, {"state": state, "now": self._clock()})
            return cursor.rowcount > 0

    # --- Replicas: leases and shared request budgets --------------------------------------------------------------

    def hold_lease(self, name: str, holder: str, ttl_s: float) -> bool:
        """Take or renew the lease `name` for `holder` until `ttl_s` from now; True if `holder` holds it now.

        So that a job (the Genesys poll) runs on one replica at a time and moves to another when that one dies: a
        lease that is free, ran out, or is already `holder`'s is taken (renewed); one held by someone else is left
        alone (False). One statement decides, so of replicas asking at once exactly one wins. The holder renews well
        within `ttl_s`; `holder` must be unique per process, and replicas' clocks agree to a small part of `ttl_s`.
        """
        return self.take_lease(name, holder, ttl_s) is not None

    def take_lease(self, name: str, holder: str, ttl_s: float) -> Tenure | None:
        """`hold_lease` that says which tenure `holder` holds now (None: someone else holds the lease).

        The token is the one of the running tenure when `holder` renewed in time, a new one when the lease was free
        or had run out: a caller whose earlier tenure's token differs lost the lease in between."""
        if ttl_s <= 0:
            raise ValueError(f"hold_lease: ttl_s must be > 0 (got {ttl_s})")
        now = self._clock()
        with self._db.transaction("hold a lease") as cursor:
            cursor.execute(
                self._q.hold_lease,
                {"name": name, "holder": holder, "token": uuid.uuid4().hex, "until": now + ttl_s, "now": now},
            )
            row = cursor.fetchone()
        return None if row is None else Tenure(name, holder, str(row[0]))

    def renew_lease(self, tenure: Tenure, ttl_s: float) -> bool:
        """Push the tenure's end to `ttl_s` from now; False when it ended (ran out or changed hands): not revived."""
        if ttl_s <= 0:
            raise ValueError(f"renew_lease: ttl_s must be > 0 (got {ttl_s})")
        now = self._clock()
        with self._db.transaction("renew a lease") as cursor:
            cursor.execute(self._q.renew_lease, {"name": tenure.name, "holder": tenure.holder, "token": tenure.token,
                                                 "until": now + ttl_s, "now": now})
            return cursor.rowcount == 1

    def lease_holds(self, tenure: Tenure) -> bool:
        """Whether the tenure still holds the lease right now (one indexed read: cheap before each write)."""
        with self._db.reading("check a lease") as cursor:
            cursor.execute(self._q.lease_holds, {"name": tenure.name, "holder": tenure.holder,
                                                 "token": tenure.token, "now": self._clock()})
            return cursor.fetchone() is not None

    def release_lease(self, name: str, holder: str) -> None:
        """Give the lease up (a clean shutdown), so another replica takes it at once, not when it runs out.

        A no-op unless `holder` holds it."""
        with self._db.transaction("release a lease") as cursor:
            cursor.execute(self._q.release_lease, {"name": name, "holder": holder})

    def take_budget(self, name: str, want: int, per_window: int, window_s: float) -> int:
        """How many of `want` requests may be sent now (0..want), from `per_window` per `window_s` shared by all.

        So that a rate limit (Genesys' requests per minute per OAuth client) is shared by the replicas, not multiplied
        by their number. Windows are fixed and aligned to the clock (they start at multiples of `window_s`), so every
        replica counts in the same one; as with any fixed window, up to twice `per_window` can go out across a window
        boundary. Atomic: replicas taking at once never get more than `per_window` between them.
        """
        if want < 0 or per_window < 0 or window_s <= 0:
            raise ValueError(
                f"take_budget: want and per_window must be >= 0 and window_s > 0 (got want={want},"
                f" per_window={per_window}, window_s={window_s})"
            )
        if want == 0:
            return 0
        window_start = math.floor(self._clock() / window_s) * window_s
        with self._db.transaction("take from a request budget") as cursor:
            cursor.execute(self._q.take_budget, {"name": name, "window_start": window_start, "want": want})
            (asked,) = cursor.fetchone()
        asked_before = int(asked) - want
        return max(0, min(want, per_window - asked_before))

    def budget_window(self, name: str) -> tuple[float, int] | None:
        """The start of a request budget's latest window and the requests asked in it; None before the first."""
        with self._db.reading("read a request budget") as cursor:
            cursor.execute(self._q.budget_window, {"name": name})
            row = cursor.fetchone()
        return None if row is None else (float(row[0]), int(row[1]))

    # --- Maintenance and health ----------------------------------------------------------------------------------

    def delete_older_than(self, cutoffs: Cutoffs) -> Retained:
        """Retention, in one transaction: recorded Slack event ids and audit rows from before their cutoffs, OAuth
        states past their expiry, and write intents from before theirs whose participant is not in `cutoffs.live`.

        Idempotent, so any replica may run it. Never touched: pending work, desired state, user links, last_written,
        dead letters (work to do or to look at, not history), an event id still inside its dedupe window (else a
        retried delivery would be recorded twice), and the intent of a live participant (it makes the next poller
        read the participant before writing again, however old it is).
        """
        now = self._clock()
        with self._db.transaction("delete rows past the retention") as cursor:
            cursor.execute(self._q.purge_events, {"cutoff": cutoffs.events, "now": now})
            events = cursor.rowcount
            cursor.execute(self._q.purge_audit, {"cutoff": cutoffs.audit})
            audit = cursor.rowcount
            cursor.execute(self._q.purge_oauth_states, {"now": now})
            oauth_states = cursor.rowcount
            intents = 0
            if cutoffs.write_intents is not None:
                cursor.execute(self._q.old_intents, {"cutoff": cutoffs.write_intents})
                ended = [
                    {"conversation_id": conversation_id, "participant_id": participant_id,
                     "cutoff": cutoffs.write_intents}
                    for conversation_id, participant_id in cursor.fetchall()
                    if (conversation_id, participant_id) not in cutoffs.live
                ]
                if ended:
                    cursor.executemany(self._q.purge_intent, ended)
                intents = len(ended)
            return Retained(events=events, audit=audit, oauth_states=oauth_states, write_intents=intents)

    def health(self) -> StoreHealth:
        """Whether the database answers a real query right now."""
        kind = "PostgreSQL" if self._db.dialect.name == "postgresql" else "SQLite"
        try:
            with self._db.reading("health check") as cursor:
                cursor.execute(self._q.ping)
                (answer,) = cursor.fetchone()
            version = schema_version(self._db)
        except StoreError as exc:
            return StoreHealth(ok=False, detail=str(exc),
                               brief=f"{kind} does not answer; the log says why (HEALTH_DETAILS=1 shows it here)")
        if answer != 1:
            return StoreHealth(ok=False, detail=f"{self._db.describe()} answered {answer!r} to SELECT 1",
                               brief=f"{kind} answered {answer!r} to SELECT 1")
        return StoreHealth(ok=True, detail=f"{self._db.describe()} answers (schema version {version})",
                           brief=f"{kind} answers (schema version {version})")

    def close(self) -> None:
        """Close the database; later calls raise StoreError. Closing twice is fine."""
        self._db.close()

    def _count(self, statement: str, operation: str) -> int:
        with self._db.reading(operation) as cursor:
            cursor.execute(statement)
            (count,) = cursor.fetchone()
        return int(count)


def _dead_letter(row: tuple[Any, ...]) -> DeadLetter:
    dead_id, kind, key, payload, attempts, reason, last_error, at = row
    return DeadLetter(id=dead_id, kind=kind, key=key, payload=json.loads(payload), attempts=attempts, reason=reason,
                      last_error=last_error, at=at)


def _desired_row(row: tuple[Any, ...]) -> DesiredRow:
    team_id, user_id, email, deleted, attributes, attributes_hash, profile_updated, refreshed_at = row
    return DesiredRow(
        team_id=team_id,
        user_id=user_id,
        email=email,
        deleted=bool(deleted),
        attributes=json.loads(attributes),
        attributes_hash=attributes_hash,
        profile_updated=profile_updated,
        refreshed_at=refreshed_at,
    )


def _audit_entry(row: tuple[Any, ...]) -> AuditEntry:
    (
        audit_id,
        at,
        team_id,
        user_id,
        genesys_user_id,
        conversation_id,
        participant_id,
        keys,
        result,
        context_id,
        detail,
        attributes_hash,
        target,
    ) = row
    return AuditEntry(
        id=audit_id,
        at=at,
        team_id=team_id,
        user_id=user_id,
        genesys_user_id=genesys_user_id,
        conversation_id=conversation_id,
        participant_id=participant_id,
        keys=tuple(json.loads(keys)),
        result=result,
        context_id=context_id,
        detail=detail,
        attributes_hash=attributes_hash,
        target=target,
    )
