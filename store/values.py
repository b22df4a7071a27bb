"""The values that cross the store's boundary: frozen, typed, and free of any database type."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

WriteOutcome = Literal["written", "gone", "rejected", "failed"]
WriteTarget = Literal["agent", "customer"]
"""Whose participant a write goes to: the person's own, or the customer's (external) participant of their call."""
"""What became of a recorded write (not `genesys.WriteResult`, which is Genesys' answer to an accepted PATCH)."""
WRITE_OUTCOMES: frozenset[str] = frozenset({"written", "gone", "rejected", "failed"})
PRIVACY = "privacy"
"""The audit result of a person's privacy choice (no conversation: `conversation_id` is "")."""


@dataclass(frozen=True, slots=True)
class Cutoffs:
    """What one retention pass deletes: rows from before these moments (epoch seconds)."""

    events: float
    """Recorded Slack event ids seen before this (and out of their dedupe window)."""
    audit: float
    """Audit rows written before this."""
    write_intents: float | None = None
    """Write intents noted before this whose participant is not in `live`; None keeps every intent (who is live
    is not known, e.g. the last poll failed)."""
    live: frozenset[tuple[str, str]] = frozenset()
    """(conversation_id, participant_id) of the participants live now: their intents stay, however old."""


@dataclass(frozen=True, slots=True)
class Retained:
    """What one retention pass deleted."""

    events: int
    """Recorded Slack event ids (the dedupe table)."""
    audit: int
    """Audit rows."""
    oauth_states: int = 0
    """OAuth install states past their expiry (never usable again)."""
    write_intents: int = 0
    """Intents of writes whose outcome was never recorded, of participants no longer live."""


@dataclass(frozen=True, slots=True)
class DesiredRow:
    """What one Slack user's participants should carry, as last fetched from Slack."""

    team_id: str
    user_id: str
    email: str | None
    deleted: bool
    attributes: Mapping[str, str]
    attributes_hash: str
    profile_updated: int | None
    """Slack's `updated` of the profile (epoch seconds); orders out-of-order `user_change` deliveries."""
    refreshed_at: float


@dataclass(frozen=True, slots=True)
class UserLink:
    """A Slack user and the Genesys user with the same e-mail; `genesys_user_id` None means "none found"."""

    team_id: str
    user_id: str
    email: str | None
    genesys_user_id: str | None
    resolved_at: float


@dataclass(frozen=True, slots=True)
class LinkConflict:
    """A Slack user whose e-mail matched a Genesys user that another Slack user (the holder) is linked to already.

    Not linked: the first link stays, so neither person's profile overwrites the other's on live calls."""

    team_id: str
    user_id: str
    genesys_user_id: str
    holder_team_id: str
    holder_user_id: str
    since: float
    """When the conflict was first seen."""


@dataclass(frozen=True, slots=True)
class LinkResult:
    """What `Store.link_user` did: the Genesys user the Slack user is linked to now, or the conflict that kept it
    unlinked (`new_conflict`: first seen by this call, so it is logged once)."""

    genesys_user_id: str | None
    conflict: LinkConflict | None = None
    new_conflict: bool = False


@dataclass(frozen=True, slots=True)
class WriteRecord:
    """The outcome of one attributes write to one live participant, as the engine reports it."""

    conversation_id: str
    participant_id: str
    genesys_user_id: str | None
    team_id: str
    user_id: str
    attributes_hash: str
    keys: tuple[str, ...]
    result: WriteOutcome
    context_id: str | None
    detail: str
    at: float
    target: WriteTarget = "agent"
    """Whose participant: the person's own (`agent`) or the conversation's customer (`customer`)."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audit row: who, which keys, which conversation, what happened, and Genesys' contextId."""

    id: int
    at: float
    team_id: str
    user_id: str
    genesys_user_id: str | None
    conversation_id: str
    participant_id: str
    keys: tuple[str, ...]
    result: str
    context_id: str | None
    detail: str
    attributes_hash: str
    target: WriteTarget = "agent"
    """Whose participant was written: the person's own (`agent`) or the conversation's customer (`customer`)."""


@dataclass(frozen=True, slots=True)
class PrivacyChoice:
    """A person's choice of the optional attribute keys they keep to themself (the App Home's checkboxes)."""

    team_id: str
    user_id: str
    withheld: frozenset[str]
    """Left out of every write until shared again."""
    at: float
    detail: str = ""
    """What changed, in words, for the audit trail."""


@dataclass(frozen=True, slots=True)
class Tenure:
    """One holding of a named lease: `holder` took it at some moment and `token` names that holding.

    Renewals keep the token; the lease running out or changing hands ends the tenure for good, so a holder that
    checks its tenure before acting (a fencing token) never acts on a lease another replica has taken since."""

    name: str
    holder: str
    token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One claimed unit of pending work; hand it back to `complete`, `retry_later` or `dead_letter`."""

    id: int
    kind: str
    key: str
    payload: Mapping[str, Any]
    attempts: int
    """Failed attempts so far (0 on the first claim)."""
    next_attempt_at: float
    created_at: float
    generation: int = 1
    """Bumped by every `enqueue` of the same (kind, key); tells `complete` whether a newer version arrived."""
    lease_token: str = field(default="", repr=False)
    """Proves this claim still holds the lease; a stale holder's retry/dead-letter is then ignored."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Work the engine gave up on, with the reason an operator can act on."""

    id: int
    kind: str
    key: str
    payload: Mapping[str, Any]
    attempts: int
    reason: str
    last_error: str | None
    at: float


@dataclass(frozen=True, slots=True)
class SlackInstallation:
    """A workspace's Slack OAuth installation, kept as slack_sdk's JSON (the store knows no Slack types).

    `enterprise_id`/`team_id` are '' where Slack gives none (no Enterprise Grid; an org-wide install)."""

    enterprise_id: str
    team_id: str
    installation: str
    """The installation's JSON object."""
    bot: str | None
    """The bot's JSON object (with its token), or None for an installation without a bot."""
    installed_at: float

    def __repr__(self) -> str:  # the JSON holds tokens: keep them out of logs and tracebacks
        return f"SlackInstallation(enterprise_id={self.enterprise_id!r}, team_id={self.team_id!r})"


@dataclass(frozen=True, slots=True)
class StoreHealth:
    """The answer of a real round trip to the database."""

    ok: bool
    detail: str
    brief: str = ""
    """The same without where the database is (no path, user or host): what /healthz shows by default."""
