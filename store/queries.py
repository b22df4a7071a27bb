"""Every statement the store runs (the tables themselves are in schema.py), written once for all dialects.

Placeholders are `:name`; `Dialect.sql` converts them. The dialect also supplies the parts that differ: the
claim's row lock and the two-argument minimum. Reading this file top to bottom is reading the store's data model.
"""

from __future__ import annotations

from store.backend import Dialect

_DESIRED_COLUMNS = (
    "team_id",
    "user_id",
    "email",
    "deleted",
    "attributes",
    "attributes_hash",
    "profile_updated",
    "refreshed_at",
)
_LINK_COLUMNS = ("team_id", "user_id", "email", "genesys_user_id", "resolved_at")
_AUDIT_COLUMNS = (
    "id",
    "at",
    "team_id",
    "user_id",
    "genesys_user_id",
    "conversation_id",
    "participant_id",
    "keys",
    "result",
    "context_id",
    "detail",
    "attributes_hash",
    "target",
)
_WORK_COLUMNS = "id, kind, key, payload, attempts, next_attempt_at, created_at, generation, lease_token"
_DEAD_LETTER_COLUMNS = "id, kind, key, payload, attempts, reason, last_error, at"
# What releasing a lease means everywhere: no holder, no token, no deadline.
_RELEASE = "leased_by = NULL, lease_token = NULL, lease_until = NULL"


def _excluded(columns: tuple[str, ...], keep: tuple[str, ...]) -> str:
    return ", ".join(f"{column} = excluded.{column}" for column in columns if column not in keep)


class Queries:
    """The store's statements in one dialect; attribute names say what each does."""

    def __init__(self, dialect: Dialect) -> None:
        sql = dialect.sql
        least = dialect.least

        # --- Slack event dedupe. An expired id still in the table (not yet purged) counts as new again.
        self.remember_event = sql(
            dialect.upsert(
                "slack_events",
                ("event_id", "seen_at", "expires_at"),
                ("event_id",),
                "seen_at = excluded.seen_at, expires_at = excluded.expires_at"
                " WHERE slack_events.expires_at <= :seen_at",
            )
        )
        # Retention: an id is kept past its dedupe window as a record of what Slack sent, until the cutoff; one
        # still inside its window is kept whatever the cutoff, so retention never lets a retried delivery through.
        self.purge_events = sql("DELETE FROM slack_events WHERE seen_at < :cutoff AND expires_at <= :now")

        # --- Desired state.
        self.desired_version = sql(
            "SELECT attributes_hash, deleted FROM desired WHERE team_id = :team_id AND user_id = :user_id"
        )
        # A profile older than the stored one is a late, out-of-order user_change: the WHERE leaves the row alone
        # (no row changed). The rule sits in the statement so it also holds with concurrent writers.
        self.save_desired = sql(
            dialect.upsert(
                "desired",
                _DESIRED_COLUMNS,
                ("team_id", "user_id"),
                _excluded(_DESIRED_COLUMNS, ("team_id", "user_id"))
                + " WHERE excluded.profile_updated IS NULL OR desired.profile_updated IS NULL"
                " OR excluded.profile_updated >= desired.profile_updated",
            )
        )
        self.desired = sql(
            f"SELECT {', '.join(_DESIRED_COLUMNS)} FROM desired WHERE team_id = :team_id AND user_id = :user_id"
        )
        self.desired_for_genesys_user = sql(
            f"SELECT {', '.join('d.' + column for column in _DESIRED_COLUMNS)} FROM user_links l"
            " JOIN desired d ON d.team_id = l.team_id AND d.user_id = l.user_id"
            " WHERE l.genesys_user_id = :genesys_user_id ORDER BY d.team_id, d.user_id"
        )
        self.users_due_for_refresh = sql(
            "SELECT team_id, user_id FROM desired WHERE refreshed_at < :older_than"
            " ORDER BY refreshed_at, team_id, user_id LIMIT :limit"
        )

        self.workspace_has_profiles = sql("SELECT 1 FROM desired WHERE team_id = :team_id LIMIT 1")
        self.forget_workspace_desired = sql("DELETE FROM desired WHERE team_id = :team_id")
        self.forget_workspace_links = sql("DELETE FROM user_links WHERE team_id = :team_id")

        # --- User links.
        self.link_user = sql(
            dialect.upsert(
                "user_links", _LINK_COLUMNS, ("team_id", "user_id"), _excluded(_LINK_COLUMNS, ("team_id", "user_id"))
            )
        )
        self.user_link = sql(
            f"SELECT {', '.join(_LINK_COLUMNS)} FROM user_links WHERE team_id = :team_id AND user_id = :user_id"
        )
        # Who else holds this Genesys user's link: the one Slack user it may have (see link_conflicts).
        self.link_holder = sql(
            "SELECT team_id, user_id FROM user_links WHERE genesys_user_id = :genesys_user_id"
            " AND NOT (team_id = :team_id AND user_id = :user_id)"
        )
        # PostgreSQL: linkers of one Genesys user take turns, so the second sees the first's link and records a
        # conflict instead of failing on the unique index. SQLite's BEGIN IMMEDIATE already admits one writer.
        self.lock_genesys_user = (
            sql("SELECT pg_advisory_xact_lock(1397119316, hashtext(:genesys_user_id))")
            if dialect.name == "postgresql" else None
        )
        _conflict_columns = ("team_id", "user_id", "genesys_user_id", "holder_team_id", "holder_user_id", "since")
        self.link_conflict = sql(
            f"SELECT {', '.join(_conflict_columns)} FROM link_conflicts WHERE team_id = :team_id AND user_id = :user_id"
        )
        self.save_link_conflict = sql(
            dialect.upsert("link_conflicts", _conflict_columns, ("team_id", "user_id"),
                           _excluded(_conflict_columns, ("team_id", "user_id")))
        )
        self.drop_link_conflict = sql("DELETE FROM link_conflicts WHERE team_id = :team_id AND user_id = :user_id")
        self.count_link_conflicts = sql("SELECT COUNT(*) FROM link_conflicts")
        # People synced: a stored profile to write and a Genesys user linked to it.
        self.count_synced_people = sql(
            "SELECT COUNT(*) FROM desired d JOIN user_links l ON l.team_id = d.team_id AND l.user_id = d.user_id"
            " WHERE d.deleted = :no AND d.attributes_hash <> '' AND l.genesys_user_id IS NOT NULL"
        )
        self.forget_workspace_conflicts = sql(
            "DELETE FROM link_conflicts WHERE team_id = :team_id OR holder_team_id = :team_id"
        )
        self.links_for_genesys_user = sql(
            f"SELECT {', '.join(_LINK_COLUMNS)} FROM user_links WHERE genesys_user_id = :genesys_user_id"
            " ORDER BY team_id, user_id"
        )

        # The Genesys users whose conversations push follows: linked, with a profile to write. `deleted` compared
        # with a value both dialects read as false (SQLite stores 0, PostgreSQL a boolean).
        self.followed_genesys_users = sql(
            "SELECT DISTINCT l.genesys_user_id FROM user_links l"
            " JOIN desired d ON d.team_id = l.team_id AND d.user_id = l.user_id"
            " WHERE l.genesys_user_id IS NOT NULL AND d.deleted = :no AND d.attributes_hash <> ''"
            " ORDER BY l.genesys_user_id"
        )

        # --- Last written and audit.
        self.last_written = sql(
            "SELECT attributes_hash FROM last_written"
            " WHERE conversation_id = :conversation_id AND participant_id = :participant_id"
        )
        self.save_last_written = sql(
            dialect.upsert(
                "last_written",
                ("conversation_id", "participant_id", "attributes_hash", "written_at"),
                ("conversation_id", "participant_id"),
                "attributes_hash = excluded.attributes_hash, written_at = excluded.written_at",
            )
        )
        # Compare-and-set: a write is recorded only over the hash that was last written when it was decided (or
        # when there was none), so of writers that decided from the same state one records and the others re-decide.
        # The WHERE is evaluated under the row lock (PostgreSQL re-checks it after waiting for another writer).
        self.replace_last_written = sql(
            "UPDATE last_written SET attributes_hash = :attributes_hash, written_at = :written_at"
            " WHERE conversation_id = :conversation_id AND participant_id = :participant_id"
            " AND attributes_hash = :expected"
        )
        self.first_last_written = sql(
            "INSERT INTO last_written (conversation_id, participant_id, attributes_hash, written_at)"
            " VALUES (:conversation_id, :participant_id, :attributes_hash, :written_at)"
            " ON CONFLICT (conversation_id, participant_id) DO NOTHING"
        )
        self.save_intent = sql(
            dialect.upsert(
                "write_intents",
                ("conversation_id", "participant_id", "attributes_hash", "at"),
                ("conversation_id", "participant_id"),
                "attributes_hash = excluded.attributes_hash, at = excluded.at",
            )
        )
        self.drop_intent = sql(
            "DELETE FROM write_intents WHERE conversation_id = :conversation_id AND participant_id = :participant_id"
        )
        self.intents = sql("SELECT conversation_id, participant_id, attributes_hash FROM write_intents ORDER BY at")
        # Retention: candidates only; which of them belong to live participants is decided by the caller's live set.
        self.old_intents = sql("SELECT conversation_id, participant_id FROM write_intents WHERE at < :cutoff")
        self.purge_intent = sql(
            "DELETE FROM write_intents WHERE conversation_id = :conversation_id AND participant_id = :participant_id"
            " AND at < :cutoff"
        )
        self.written_participants = sql("SELECT conversation_id, participant_id FROM last_written")
        self.forget_participant = sql(
            "DELETE FROM last_written WHERE conversation_id = :conversation_id AND participant_id = :participant_id"
        )
        audit_insert_columns = _AUDIT_COLUMNS[1:]
        self.append_audit = sql(
            f"INSERT INTO audit ({', '.join(audit_insert_columns)})"
            f" VALUES ({', '.join(':' + column for column in audit_insert_columns)})"
        )
        self.audit = sql(f"SELECT {', '.join(_AUDIT_COLUMNS)} FROM audit ORDER BY id DESC LIMIT :limit")
        self.audit_for_user = sql(
            f"SELECT {', '.join(_AUDIT_COLUMNS)} FROM audit WHERE user_id = :user_id ORDER BY id DESC LIMIT :limit"
        )
        # The keys of the newest write recorded on one participant (audit_by_participant): what a customer's
        # participant was given before, so the keys a new person lacks are cleared.
        self.written_keys = sql(
            "SELECT keys FROM audit WHERE conversation_id = :conversation_id AND participant_id = :participant_id"
            " AND result = 'written' ORDER BY id DESC LIMIT 1"
        )
        self.purge_audit = sql("DELETE FROM audit WHERE at < :cutoff")
        self.count_written_since = sql("SELECT COUNT(*) FROM audit WHERE result = 'written' AND at >= :since")

        # --- Privacy choices: the optional keys each person keeps to themself.
        self.withheld_keys = sql("SELECT withheld FROM privacy_choices WHERE team_id = :team_id AND user_id = :user_id")
        self.save_privacy_choice = sql(dialect.upsert(
            "privacy_choices", ("team_id", "user_id", "withheld", "changed_at"), ("team_id", "user_id"),
            "withheld = excluded.withheld, changed_at = excluded.changed_at"))

        # --- Work queue.
        # Enqueue coalesces on (kind, key): the newest payload wins, generation counts versions, the due time only
        # moves earlier. A version that replaces an unclaimed item is new work with a fresh retry budget; one that
        # replaces a claimed item keeps the attempts the claimer is about to report on.
        self.enqueue = sql(
            "INSERT INTO work (kind, key, payload, generation, attempts, next_attempt_at, created_at)"
            " VALUES (:kind, :key, :payload, 1, 0, :not_before, :now)"
            " ON CONFLICT (kind, key) DO UPDATE SET"
            " payload = excluded.payload,"
            " generation = work.generation + 1,"
            f" next_attempt_at = {least}(work.next_attempt_at, excluded.next_attempt_at),"
            " attempts = CASE WHEN work.lease_until > :now THEN work.attempts ELSE 0 END,"
            " last_error = CASE WHEN work.lease_until > :now THEN work.last_error ELSE NULL END"
        )
        # Due and not under a live lease, longest-due first. A lease still held by the caller itself is not
        # handed out again either: one item is in one pair of hands at a time.
        self.claimable = sql(
            f"SELECT {_WORK_COLUMNS} FROM work"
            " WHERE next_attempt_at <= :now AND (lease_until IS NULL OR lease_until <= :now)"
            f" ORDER BY next_attempt_at, id LIMIT :limit {dialect.claim_lock}"
        )
        # A lease token still set at claim time means the last holder's lease ran out without a report (it crashed
        # or hung): that counts as a failed attempt, so work that kills its worker ends in the dead letters.
        self.lease = sql(
            "UPDATE work SET leased_by = :worker, lease_token = :lease_token, lease_until = :lease_until,"
            " attempts = attempts + CASE WHEN lease_token IS NULL THEN 0 ELSE 1 END,"
            " last_error = CASE WHEN lease_token IS NULL THEN last_error ELSE :expired_error END"
            " WHERE id = :id"
        )
        # A worker still on its items pushes their lease on; the token proves nobody took them over meanwhile.
        self.renew_claim = sql(
            "UPDATE work SET lease_until = :lease_until WHERE id = :id AND lease_token = :lease_token"
        )
        # complete/dead_letter: delete only the version that was worked on; a newer version stays, released.
        self.delete_version = sql("DELETE FROM work WHERE id = :id AND generation = :generation")
        self.release_newer_version = sql(
            f"UPDATE work SET {_RELEASE}, attempts = 0, last_error = NULL WHERE id = :id AND lease_token = :lease_token"
        )
        self.retry_later = sql(
            f"UPDATE work SET {_RELEASE}, attempts = attempts + 1, last_error = :error,"
            " next_attempt_at = CASE WHEN generation = :generation THEN :retry_at"
            f" ELSE {least}(next_attempt_at, :retry_at) END"
            " WHERE id = :id AND lease_token = :lease_token"
        )
        self.bury = sql(
            "INSERT INTO dead_letters (kind, key, payload, attempts, reason, last_error, at)"
            " SELECT kind, key, :payload, attempts + 1, :reason, last_error, :now FROM work"
            " WHERE id = :id AND lease_token = :lease_token"
        )
        self.pending_count = sql("SELECT COUNT(*) FROM work")
        self.delete_dead_letter = sql("DELETE FROM dead_letters WHERE id = :id")
        self.dead_letters = sql(f"SELECT {_DEAD_LETTER_COLUMNS} FROM dead_letters ORDER BY id DESC LIMIT :limit")
        self.dead_letter_count = sql("SELECT COUNT(*) FROM dead_letters")
        self.all_dead_letter_ids = sql("SELECT id FROM dead_letters ORDER BY id")
        self.dead_letter = sql(f"SELECT {_DEAD_LETTER_COLUMNS} FROM dead_letters WHERE id = :id")
        # Deleted first: of two operators retrying one dead letter at once, only the one whose delete counted
        # requeues it (PostgreSQL's second DELETE waits for the first to commit, then finds nothing).
        self.delete_dead_letter = sql("DELETE FROM dead_letters WHERE id = :id")

        # --- Slack OAuth installations (workspace key: enterprise_id and team_id, '' where Slack gives none).
        self.save_installation = sql(
            dialect.upsert(
                "slack_installations",
                ("enterprise_id", "team_id", "installation", "bot", "installed_at"),
                ("enterprise_id", "team_id"),
                "installation = excluded.installation, bot = excluded.bot, installed_at = excluded.installed_at",
            )
        )
        self.installation = sql(
            "SELECT installation, bot, installed_at FROM slack_installations WHERE enterprise_id = :enterprise_id"
            " AND team_id = :team_id"
        )
        self.delete_installation = sql(
            "DELETE FROM slack_installations WHERE enterprise_id = :enterprise_id AND team_id = :team_id"
        )
        self.installed_workspaces = sql(
            "SELECT enterprise_id, team_id FROM slack_installations ORDER BY installed_at, enterprise_id, team_id"
        )
        self.issue_oauth_state = sql("INSERT INTO oauth_states (state, expires_at) VALUES (:state, :expires_at)")
        # Deleting is consuming: a state works once, and only if it had not expired.
        self.consume_oauth_state = sql("DELETE FROM oauth_states WHERE state = :state AND expires_at > :now")
        self.purge_oauth_states = sql("DELETE FROM oauth_states WHERE expires_at <= :now")

        # --- Leases: one holder per name at a time. Taken when free, run out or already the caller's; the WHERE
        # decides inside the one statement, so of replicas asking at once exactly one changes the row (rowcount 1).
        # The token is kept while the same holder renews, and new when the lease is taken afresh.
        self.hold_lease = sql(
            "INSERT INTO leases (name, holder, token, until) VALUES (:name, :holder, :token, :until)"
            " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until,"
            " token = CASE WHEN leases.holder = excluded.holder AND leases.until > :now THEN leases.token"
            " ELSE excluded.token END"
            " WHERE leases.holder = excluded.holder OR leases.until <= :now"
            " RETURNING token"
        )
        # Renewing a tenure (holder and token) that has not run out; one that ran out is not revived, even if nobody
        # took it meanwhile: its holder must take the lease afresh (a new token) and re-read what it left in doubt.
        self.renew_lease = sql(
            "UPDATE leases SET until = :until WHERE name = :name AND holder = :holder AND token = :token"
            " AND until > :now"
        )
        self.lease_holds = sql(
            "SELECT 1 FROM leases WHERE name = :name AND holder = :holder AND token = :token AND until > :now"
        )
        self.release_lease = sql("DELETE FROM leases WHERE name = :name AND holder = :holder")

        # --- Shared request budgets: a counter per fixed window. `asked` adds up every request asked for in the
        # window, granted or not, so the one statement decides and the caller derives its share from what it returns
        # (asked before = asked - want). A caller whose clock is behind (an older window) counts against the stored
        # window rather than starting its own.
        self.budget_window = sql("SELECT window_start, asked FROM budgets WHERE name = :name")
        self.take_budget = sql(
            "INSERT INTO budgets (name, window_start, asked) VALUES (:name, :window_start, :want)"
            " ON CONFLICT (name) DO UPDATE SET"
            " asked = CASE WHEN excluded.window_start > budgets.window_start THEN excluded.asked"
            " ELSE budgets.asked + excluded.asked END,"
            " window_start = CASE WHEN excluded.window_start > budgets.window_start THEN excluded.window_start"
            " ELSE budgets.window_start END"
            " RETURNING asked"
        )

        # --- Health.
        self.ping = sql("SELECT 1")
