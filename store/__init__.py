"""The sync engine's durable state, behind one small interface: `open_store(DATABASE_URL) -> Store`.

Tables (schema in `schema.py`, every statement in `queries.py`)::

    slack_events    event_id → seen_at, expires_at dedupe of Slack's retried deliveries; deleted after the retention
    desired         (team_id, user_id) → attributes, hash, profile `updated`, refreshed_at
    user_links      (team_id, user_id) → genesys_user_id (NULL = "no match", re-resolved later); one Slack user per
                    Genesys user (unique)
    link_conflicts  (team_id, user_id) → the Genesys user its e-mail matched and the Slack user holding that link
    last_written    (conversation_id, participant_id) → hash of the attributes last written there
    write_intents   (conversation_id, participant_id) → hash of a write sent but not yet recorded ("maybe written");
                    one of a participant no longer live is deleted after the retention
    audit           who, which keys, which conversation, result, Genesys contextId; deleted after the retention
    work            (kind, key) unique → payload, generation, attempts, next_attempt_at, lease (holder, token, until)
    dead_letters    work given up on, with the reason (`requeue_dead_letters` puts them back in the queue)
    privacy_choices (team_id, user_id) → the optional attribute keys the person keeps to themself (JSON array)
    slack_installations  (enterprise_id, team_id) → latest Slack OAuth installation and bot (JSON; holds tokens)
    oauth_states    OAuth `state` → expires_at, each consumed once (the install flow's CSRF check); deleted expired
    leases          name → holder, token, until: a job (the Genesys poll) runs on one replica at a time
    budgets         name → window_start, asked: a request budget (Genesys' per-minute limit) shared by replicas
    schema_version  the migrations applied

Backends: a SQLite file (`sqlite.py`, the default, one process) or PostgreSQL (`postgres.py`), which several
replicas share: migrations are applied once under an advisory lock, and claims skip rows another replica is
claiming (FOR UPDATE SKIP LOCKED), so no item is handed to two replicas. Same tables, same semantics.

Crash safety: every method is one transaction, committed before it returns (SQLite WAL, synchronous=NORMAL: a
commit survives the process being killed; see `sqlite.py`; PostgreSQL: the server has it once COMMIT returns). So
after a crash at any instant:

- work that `enqueue` returned from is pending; work whose `complete` returned is gone; nothing in between exists;
- a claimed item whose worker died stays leased until `lease_until`, then any worker claims it again (counted as a
  failed attempt) — it is never handed to two workers while a lease is live;
- `record_write('written')` stores the hash and the audit row together, so a write the store knows about is never
  sent again. `record_write_if` records only over the hash its writer decided from (compare-and-set), so writers
  of one participant on several threads or replicas are put in one order: a loser re-decides instead of
  recording an older write over a newer one. The only repeat possible is a write Genesys accepted just before the
  crash, before `record_write` committed: the engine then sends the same attributes once more, which changes nothing.

Leases: `take_lease` returns a `Tenure` whose token fences the holder (`lease_holds` before acting,
`renew_lease` from a heartbeat while slow work runs); a claimed item's lease is pushed on with `renew_claim` for as
long as its worker is on it.

`complete` deletes only the version of an item it was handed (`generation`); a newer payload enqueued meanwhile
stays pending. `retry_later` and `dead_letter` act only while the caller's lease token still holds the item.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from store.backend import Database
from store.database_url import DEFAULT_DATABASE_URL, PostgresLocation, masked, parse_database_url
from store.errors import StoreError
from store.schema import LATEST_VERSION, apply_migrations
from store.sql_store import Store
from store.sqlite import SqliteDatabase
from store.values import (
    PRIVACY,
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
    WriteTarget,
)

__all__ = [
    "DEFAULT_DATABASE_URL",
    "LATEST_VERSION",
    "PRIVACY",
    "AuditEntry",
    "Cutoffs",
    "DeadLetter",
    "DesiredRow",
    "LinkConflict",
    "LinkResult",
    "PrivacyChoice",
    "Retained",
    "SlackInstallation",
    "Store",
    "StoreError",
    "StoreHealth",
    "Tenure",
    "UserLink",
    "WorkItem",
    "WriteRecord",
    "WriteTarget",
    "masked",
    "open_store",
]


def open_store(
    database_url: str = DEFAULT_DATABASE_URL,
    *,
    clock: Callable[[], float] = time.time,
    busy_timeout_s: float = 5.0,
) -> Store:
    """Open (creating a SQLite file if needed) the database DATABASE_URL names and bring its schema up to date.

    `busy_timeout_s`: how long a call waits for SQLite's write lock, or for PostgreSQL to connect or for one of the
    process's connections to come free. Raises StoreError for a malformed URL, a file or folder that cannot be
    created or written, a file that is not a SQLite database, a PostgreSQL server that cannot be reached or refuses
    the login, or a schema newer than this code.
    """
    location = parse_database_url(database_url)
    database: Database
    if isinstance(location, PostgresLocation):
        # Imported here: psycopg takes about half a second to import, which SQLite deployments need not pay.
        from store.postgres import PostgresDatabase

        database = PostgresDatabase(location, busy_timeout_s=busy_timeout_s)
    else:
        database = SqliteDatabase(location, busy_timeout_s=busy_timeout_s)
    try:
        apply_migrations(database, clock=clock)
    except BaseException:
        database.close()
        raise
    return Store(database, clock=clock)
