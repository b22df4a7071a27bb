"""The store's tables, as an ordered list of migrations applied once, in one transaction, when the store opens.

`schema_version` holds one row per applied migration. Opening a file that some newer code migrated further than
`LATEST_VERSION` stops with StoreError instead of guessing. To change a table, append a migration; never edit one
that has shipped. A migration lists its statements per dialect, with the same tables, columns and meaning: where
SQLite says INTEGER PRIMARY KEY AUTOINCREMENT, REAL and INTEGER 0/1, PostgreSQL says BIGINT GENERATED ALWAYS AS
IDENTITY, DOUBLE PRECISION (its REAL is 4 bytes: seconds since 1970 would lose minutes) and BOOLEAN.

Several processes may open one database at once (replicas starting together): on PostgreSQL the migration
transaction first takes a transaction-scoped advisory lock, so one applies each migration and the others wait, then
find it applied. On SQLite, BEGIN IMMEDIATE already admits one writer at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from store.backend import Database
from store.errors import StoreError


@dataclass(frozen=True, slots=True)
class Migration:
    """One step of the schema: its statements per dialect, executed in order inside the opening transaction."""

    version: int
    description: str
    sqlite: tuple[str, ...]
    postgresql: tuple[str, ...]

    def statements(self, dialect: str) -> tuple[str, ...]:
        found: tuple[str, ...] | None = getattr(self, dialect, None)
        if found is None:
            raise StoreError(f"schema migration {self.version} has no statements for {dialect}; this is a bug")
        return found


# Any number, as long as nothing else using the database takes the same advisory lock.
MIGRATION_LOCK_KEY = 0x5347_5359_4E43  # "SGSYNC"
# Run first in the migration transaction, before schema_version is read.
_PREAMBLE: dict[str, tuple[str, ...]] = {
    "sqlite": (
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, description TEXT NOT NULL,"
        " applied_at REAL NOT NULL)",
    ),
    "postgresql": (
        # Released at COMMIT or ROLLBACK; concurrent CREATE TABLE IF NOT EXISTS would otherwise collide.
        f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})",
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, description TEXT NOT NULL,"
        " applied_at DOUBLE PRECISION NOT NULL)",
    ),
}

# Shipped before a Genesys user could have only one Slack user: of several Slack users linked to the same Genesys
# user, the first by (team_id, user_id) keeps the link (the one the engine was writing), the others become
# conflicts. Same SQL on both dialects (row values compare on SQLite 3.15+ and PostgreSQL).
_SPLIT_SHARED_LINKS = (
    """INSERT INTO link_conflicts (team_id, user_id, genesys_user_id, holder_team_id, holder_user_id, since)
    SELECT l.team_id, l.user_id, l.genesys_user_id, h.team_id, h.user_id, l.resolved_at
    FROM user_links l JOIN user_links h ON h.genesys_user_id = l.genesys_user_id
    WHERE (h.team_id, h.user_id) < (l.team_id, l.user_id)
    AND NOT EXISTS (SELECT 1 FROM user_links e WHERE e.genesys_user_id = l.genesys_user_id
                    AND (e.team_id, e.user_id) < (h.team_id, h.user_id))""",
    """UPDATE user_links SET genesys_user_id = NULL WHERE EXISTS (SELECT 1 FROM link_conflicts c
    WHERE c.team_id = user_links.team_id AND c.user_id = user_links.user_id)""",
    # One Slack user per Genesys user, whatever writes the table: a second link is refused by the database.
    "CREATE UNIQUE INDEX user_links_one_slack_user ON user_links (genesys_user_id) WHERE genesys_user_id IS NOT NULL",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        version=1,
        description="events, desired state, user links, last written, audit, work queue, dead letters",
        sqlite=(
            # Slack event_ids seen, so a retried delivery is recorded once; purged after expires_at.
            """CREATE TABLE slack_events (
                event_id TEXT PRIMARY KEY,
                seen_at REAL NOT NULL,
                expires_at REAL NOT NULL)""",
            "CREATE INDEX slack_events_by_expiry ON slack_events (expires_at)",
            # Desired state: each Slack user's mapped attributes (JSON object) and their hash.
            """CREATE TABLE desired (
                team_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                email TEXT,
                deleted INTEGER NOT NULL,
                attributes TEXT NOT NULL,
                attributes_hash TEXT NOT NULL,
                profile_updated INTEGER,
                refreshed_at REAL NOT NULL,
                PRIMARY KEY (team_id, user_id))""",
            "CREATE INDEX desired_by_refresh ON desired (refreshed_at)",
            # Slack user ↔ Genesys user, matched by e-mail; a NULL genesys_user_id is a remembered "no match".
            """CREATE TABLE user_links (
                team_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                email TEXT,
                genesys_user_id TEXT,
                resolved_at REAL NOT NULL,
                PRIMARY KEY (team_id, user_id))""",
            "CREATE INDEX user_links_by_genesys_user ON user_links (genesys_user_id)",
            # The hash of the attributes last written to each live participant: the engine writes only on change.
            """CREATE TABLE last_written (
                conversation_id TEXT NOT NULL,
                participant_id TEXT NOT NULL,
                attributes_hash TEXT NOT NULL,
                written_at REAL NOT NULL,
                PRIMARY KEY (conversation_id, participant_id))""",
            # A write about to be sent: set before the PATCH, removed when its outcome is recorded. One left
            # behind by a crash means "maybe written": the engine reads the participant before writing again.
            """CREATE TABLE write_intents (
                conversation_id TEXT NOT NULL,
                participant_id TEXT NOT NULL,
                attributes_hash TEXT NOT NULL,
                at REAL NOT NULL,
                PRIMARY KEY (conversation_id, participant_id))""",
            # Every write outcome; keys is a JSON array of the attribute names sent.
            """CREATE TABLE audit (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                at REAL NOT NULL,
                team_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                genesys_user_id TEXT,
                conversation_id TEXT NOT NULL,
                participant_id TEXT NOT NULL,
                keys TEXT NOT NULL,
                result TEXT NOT NULL,
                context_id TEXT,
                detail TEXT NOT NULL,
                attributes_hash TEXT NOT NULL)""",
            "CREATE INDEX audit_by_time ON audit (at)",
            "CREATE INDEX audit_by_user ON audit (user_id, id)",
            # Pending work, one row per (kind, key). AUTOINCREMENT so an id is never reused: a stale WorkItem of a
            # finished row can then never complete a newer row that happened to get the same id.
            """CREATE TABLE work (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                kind TEXT NOT NULL,
                key TEXT NOT NULL,
                payload TEXT NOT NULL,
                generation INTEGER NOT NULL,
                attempts INTEGER NOT NULL,
                next_attempt_at REAL NOT NULL,
                created_at REAL NOT NULL,
                leased_by TEXT,
                lease_token TEXT,
                lease_until REAL,
                last_error TEXT,
                UNIQUE (kind, key))""",
            "CREATE INDEX work_by_due ON work (next_attempt_at, id)",
            """CREATE TABLE dead_letters (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                kind TEXT NOT NULL,
                key TEXT NOT NULL,
                payload TEXT NOT NULL,
                attempts INTEGER NOT NULL,
                reason TEXT NOT NULL,
                last_error TEXT,
                at REAL NOT NULL)""",
        ),
        postgresql=(
            """CREATE TABLE slack_events (
                event_id TEXT PRIMARY KEY,
                seen_at DOUBLE PRECISION NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL)""",
            "CREATE INDEX slack_events_by_expiry ON slack_events (expires_at)",
            """CREATE TABLE desired (
                team_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                email TEXT,
                deleted BOOLEAN NOT NULL,
                attributes TEXT NOT NULL,
                attributes_hash TEXT NOT NULL,
                profile_updated BIGINT,
                refreshed_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (team_id, user_id))""",
            "CREATE INDEX desired_by_refresh ON desired (refreshed_at)",
            """CREATE TABLE user_links (
                team_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                email TEXT,
                genesys_user_id TEXT,
                resolved_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (team_id, user_id))""",
            "CREATE INDEX user_links_by_genesys_user ON user_links (genesys_user_id)",
            """CREATE TABLE last_written (
                conversation_id TEXT NOT NULL,
                participant_id TEXT NOT NULL,
                attributes_hash TEXT NOT NULL,
                written_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (conversation_id, participant_id))""",
            """CREATE TABLE write_intents (
                conversation_id TEXT NOT NULL,
                participant_id TEXT NOT NULL,
                attributes_hash TEXT NOT NULL,
                at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (conversation_id, participant_id))""",
            """CREATE TABLE audit (
                id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                at DOUBLE PRECISION NOT NULL,
                team_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                genesys_user_id TEXT,
                conversation_id TEXT NOT NULL,
                participant_id TEXT NOT NULL,
                keys TEXT NOT NULL,
                result TEXT NOT NULL,
                context_id TEXT,
                detail TEXT NOT NULL,
                attributes_hash TEXT NOT NULL)""",
            "CREATE INDEX audit_by_time ON audit (at)",
            "CREATE INDEX audit_by_user ON audit (user_id, id)",
            # A sequence never hands out an id twice, as AUTOINCREMENT promises on SQLite.
            """CREATE TABLE work (
                id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                kind TEXT NOT NULL,
                key TEXT NOT NULL,
                payload TEXT NOT NULL,
                generation BIGINT NOT NULL,
                attempts INTEGER NOT NULL,
                next_attempt_at DOUBLE PRECISION NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                leased_by TEXT,
                lease_token TEXT,
                lease_until DOUBLE PRECISION,
                last_error TEXT,
                UNIQUE (kind, key))""",
            "CREATE INDEX work_by_due ON work (next_attempt_at, id)",
            """CREATE TABLE dead_letters (
                id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                kind TEXT NOT NULL,
                key TEXT NOT NULL,
                payload TEXT NOT NULL,
                attempts INTEGER NOT NULL,
                reason TEXT NOT NULL,
                last_error TEXT,
                at DOUBLE PRECISION NOT NULL)""",
        ),
    ),
    Migration(
        version=2,
        description="Slack OAuth installations and install states",
        sqlite=(
            # One row per installed workspace (or Enterprise Grid org, team_id ''): the latest installation and its
            # bot, as slack_sdk's JSON. The bot token is in `bot`: treat the database as a secret.
            """CREATE TABLE slack_installations (
                enterprise_id TEXT NOT NULL,
                team_id TEXT NOT NULL,
                installation TEXT NOT NULL,
                bot TEXT,
                installed_at REAL NOT NULL,
                PRIMARY KEY (enterprise_id, team_id))""",
            # The OAuth `state` values handed to browsers at /slack/install, each usable once before it expires.
            """CREATE TABLE oauth_states (
                state TEXT PRIMARY KEY,
                expires_at REAL NOT NULL)""",
        ),
        postgresql=(
            """CREATE TABLE slack_installations (
                enterprise_id TEXT NOT NULL,
                team_id TEXT NOT NULL,
                installation TEXT NOT NULL,
                bot TEXT,
                installed_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (enterprise_id, team_id))""",
            """CREATE TABLE oauth_states (
                state TEXT PRIMARY KEY,
                expires_at DOUBLE PRECISION NOT NULL)""",
        ),
    ),
    Migration(
        version=3,
        description="leases and request budgets shared by replicas",
        sqlite=(
            # A named lease held by one replica at a time until `until` (e.g. the Genesys poll); `token` names the
            # tenure: new each time the lease changes hands or is taken again after it ran out, kept on renewal.
            """CREATE TABLE leases (
                name TEXT PRIMARY KEY,
                holder TEXT NOT NULL,
                token TEXT NOT NULL,
                until REAL NOT NULL)""",
            # A request budget per fixed window, shared by every replica; `asked` counts the requests asked for in
            # the window starting at window_start, granted or not.
            """CREATE TABLE budgets (
                name TEXT PRIMARY KEY,
                window_start REAL NOT NULL,
                asked INTEGER NOT NULL)""",
        ),
        postgresql=(
            """CREATE TABLE leases (
                name TEXT PRIMARY KEY,
                holder TEXT NOT NULL,
                token TEXT NOT NULL,
                until DOUBLE PRECISION NOT NULL)""",
            """CREATE TABLE budgets (
                name TEXT PRIMARY KEY,
                window_start DOUBLE PRECISION NOT NULL,
                asked BIGINT NOT NULL)""",
        ),
    ),
    Migration(
        version=4,
        description="indexes for the retention purges",
        # One per purge's WHERE clause, so the hourly purge reads only the rows it deletes, not the whole table.
        # audit (at) has had audit_by_time since version 1. slack_events_by_expiry (expires_at) serves the dedupe
        # upsert; the purge leads with seen_at (the retention cutoff), which is older than any live expiry.
        sqlite=(
            "CREATE INDEX slack_events_by_seen ON slack_events (seen_at)",
            "CREATE INDEX oauth_states_by_expiry ON oauth_states (expires_at)",
            "CREATE INDEX write_intents_by_time ON write_intents (at)",
        ),
        postgresql=(
            "CREATE INDEX slack_events_by_seen ON slack_events (seen_at)",
            "CREATE INDEX oauth_states_by_expiry ON oauth_states (expires_at)",
            "CREATE INDEX write_intents_by_time ON write_intents (at)",
        ),
    ),
    Migration(
        version=5,
        description="one Slack user per Genesys user; link conflicts",
        sqlite=(
            # A Slack user whose e-mail matched a Genesys user already linked to another Slack user (the holder):
            # not linked, so neither overwrites the other's attributes on live calls; `since` is when first seen.
            """CREATE TABLE link_conflicts (
                team_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                genesys_user_id TEXT NOT NULL,
                holder_team_id TEXT NOT NULL,
                holder_user_id TEXT NOT NULL,
                since REAL NOT NULL,
                PRIMARY KEY (team_id, user_id))""",
            *_SPLIT_SHARED_LINKS,
        ),
        postgresql=(
            """CREATE TABLE link_conflicts (
                team_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                genesys_user_id TEXT NOT NULL,
                holder_team_id TEXT NOT NULL,
                holder_user_id TEXT NOT NULL,
                since DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (team_id, user_id))""",
            *_SPLIT_SHARED_LINKS,
        ),
    ),
    Migration(
        version=6,
        description="audit names the target participant; the keys last written to a participant",
        # `target`: the person's own participant (agent) or the customer's participant of their call (customer).
        # The index serves `written_keys`: a customer's participant is told which keys of a previous person to clear.
        sqlite=(
            "ALTER TABLE audit ADD COLUMN target TEXT NOT NULL DEFAULT 'agent'",
            "CREATE INDEX audit_by_participant ON audit (conversation_id, participant_id, id)",
        ),
        postgresql=(
            "ALTER TABLE audit ADD COLUMN target TEXT NOT NULL DEFAULT 'agent'",
            "CREATE INDEX audit_by_participant ON audit (conversation_id, participant_id, id)",
        ),
    ),
    Migration(
        version=7,
        description="each person's privacy choices",
        sqlite=(
            # The optional attribute keys (person_optional) a person keeps to themself, as a sorted JSON array,
            # chosen on the App Home: left out of every write until ticked again. No row: everything is shared.
            """CREATE TABLE privacy_choices (
                team_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                withheld TEXT NOT NULL,
                changed_at REAL NOT NULL,
                PRIMARY KEY (team_id, user_id))""",
        ),
        postgresql=(
            """CREATE TABLE privacy_choices (
                team_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                withheld TEXT NOT NULL,
                changed_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (team_id, user_id))""",
        ),
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version


def apply_migrations(database: Database, *, clock: Callable[[], float]) -> int:
    """Bring the schema to LATEST_VERSION in one transaction (all or nothing); returns the version now in force."""
    dialect = database.dialect
    with database.transaction("migrate the schema") as cursor:
        for statement in _PREAMBLE[dialect.name]:
            cursor.execute(statement)
        cursor.execute("SELECT MAX(version) FROM schema_version")
        (current,) = cursor.fetchone()
        current = current or 0
        if current > LATEST_VERSION:
            raise StoreError(
                f"{database.describe()} has schema version {current}, newer than this code knows"
                f" ({LATEST_VERSION}); run the newer version of the app, or point DATABASE_URL at another file",
                database=database.describe(),
                operation="open",
            )
        for migration in MIGRATIONS:
            if migration.version <= current:
                continue
            for statement in migration.statements(dialect.name):
                cursor.execute(statement)
            cursor.execute(
                dialect.sql("INSERT INTO schema_version (version, description, applied_at) VALUES (:v, :d, :at)"),
                {"v": migration.version, "d": migration.description, "at": clock()},
            )
        return LATEST_VERSION


def schema_version(database: Database) -> int:
    """The highest migration applied to the database (0 for a new file)."""
    with database.reading("read the schema version") as cursor:
        cursor.execute("SELECT MAX(version) FROM schema_version")
        (current,) = cursor.fetchone()
    return int(current or 0)
