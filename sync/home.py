"""The App Home: what one person (and an admin) sees on the app's Home tab, as values, and those values as the
Block Kit view Slack publishes (`home_view`). Every word of it is chosen here, in `sync.render`'s style.

`HomeReader` gathers the values from the store and the engine; the handlers (`handlers.home`) publish them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from slack_directory import SlackDirectoryError
from store import PRIVACY, AuditEntry, DeadLetter, Store
from sync.dead_letters import retry_dead_letters
from sync.desired import DesiredAttributes
from sync.engine import GenesysStatus, PushStatus, SyncStatus
from sync.render import push_line, slack_date
from sync.shared_budget import BudgetUse

log = logging.getLogger(__name__)

# Action ids of the Home's buttons and checkboxes (the handlers listen for these).
SYNC_NOW = "home_sync_now"
PREVIEW = "home_preview"
PRIVACY_CHOICE = "home_privacy"
"""The checkbox blocks' action ids start with this (one block per ten keys: `home_privacy_0`, …)."""
RETRY = "home_retry"
RETRY_ALL = "home_retry_all"

MAX_SHOWN_ATTRIBUTES = 50
"""Attributes shown in the table (5 per section block); the rest are counted."""
MAX_OPTIONAL_BLOCKS = 5
"""Checkbox blocks (10 keys each) at most: 50 optional keys."""
MAX_DEAD_LETTERS = 10
"""Dead letters listed, newest first, each with its Retry button."""
_SECTION_TEXT_MAX = 3000
_FIELD_TEXT_MAX = 2000


class HomeEngine(Protocol):
    """What the Home reads from the sync engine."""

    def status(self, team_id: str, user_id: str) -> SyncStatus: ...
    def preview(self, team_id: str, user_id: str) -> DesiredAttributes: ...
    def live_conversations(self, genesys_user_id: str) -> int | None: ...
    def genesys_status(self) -> GenesysStatus: ...
    @property
    def polling(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class PersonHome:
    """One person's part of the Home."""

    status: SyncStatus
    """Their stored profile (what Genesys sees now), link, newest writes and the app's state."""
    optional: tuple[str, ...]
    """The attribute keys they may keep to themself, in order: their profile's optional keys and those withheld."""
    last_write: AuditEntry | None
    """Their newest write outcome (not a privacy choice); None before the first."""
    live_conversations: int | None
    """Live conversations carrying their attributes now; None when not known."""


@dataclass(frozen=True, slots=True)
class AdminHome:
    """The app's state, for admins."""

    synced_people: int
    writes_today: int
    """Writes Genesys accepted since midnight UTC."""
    pending: int
    dead_letters: tuple[DeadLetter, ...]
    """The newest few (`MAX_DEAD_LETTERS`)."""
    dead_letter_count: int
    genesys: GenesysStatus
    push: PushStatus | None
    polling: bool
    """Whether this replica polls Genesys (the others do not know how the poll goes)."""
    budget: BudgetUse | None = None
    """The shared Genesys request budget's current window; None when not known."""


@dataclass(frozen=True, slots=True)
class HomeView:
    """Everything one publish of the Home shows."""

    person: PersonHome
    admin: AdminHome | None = None
    notice: str = ""
    """The outcome of the person's last action on the Home (Slack mrkdwn), shown at the top; "" for none."""


class HomeReader:
    """Gathers the Home's values: the store's state and the engine's (one fresh profile read for the optional keys)."""

    def __init__(self, store: Store, engine: HomeEngine, *, clock: Callable[[], float] = time.time,
                 budget: Callable[[], BudgetUse] | None = None) -> None:
        """`budget`: the shared Genesys request budget's use now (`StoreBudget.use`)."""
        self._store = store
        self._engine = engine
        self._clock = clock
        self._budget = budget

    def person(self, team_id: str, user_id: str, *, desired: DesiredAttributes | None = None) -> PersonHome:
        """`desired`: a fresh preview already read (else read now; a failed read lists the withheld keys only)."""
        status = self._engine.status(team_id, user_id)
        if desired is None:
            try:
                desired = self._engine.preview(team_id, user_id)
            except SlackDirectoryError as error:  # the Home still shows the stored state and the withheld keys
                log.warning("reading Slack user %s's profile for the Home tab failed: %s", user_id, error)
        optional = tuple(dict.fromkeys((*(desired.optional if desired else ()), *sorted(status.withheld))))
        writes = [entry for entry in self._store.audit(user_id=user_id, limit=20)
                  if entry.result != PRIVACY and entry.team_id == team_id]
        link = status.link
        live = self._engine.live_conversations(link.genesys_user_id) if link and link.genesys_user_id else None
        return PersonHome(status, optional, writes[0] if writes else None, live)

    def admin(self, push: PushStatus | None) -> AdminHome:
        """`push`: as the person's status reported it (the engine words push once, for both)."""
        midnight = datetime.fromtimestamp(self._clock(), UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        status = self._engine.genesys_status()
        return AdminHome(
            synced_people=self._store.synced_people_count(), writes_today=self._store.writes_since(
                midnight.timestamp()), pending=self._store.pending_count(),
            dead_letters=tuple(self._store.dead_letters(limit=MAX_DEAD_LETTERS)),
            dead_letter_count=self._store.dead_letter_count(), genesys=status, push=push,
            polling=self._engine.polling, budget=self._budget() if self._budget is not None else None)

    def retry_dead_letters(self, ids: Sequence[int] | None) -> int:
        """Requeue dead letters (None: all), as the `dead-letters retry` command does; returns how many."""
        return len(retry_dead_letters(self._store, ids, by="an admin's App Home").requeued)


# --------------------------------------------------------------------------------------------- Block Kit


def home_view(view: HomeView) -> dict[str, Any]:
    """The Home tab view (`views.publish`'s `view`): at most about 50 blocks, well inside Slack's 100."""
    blocks: list[dict[str, Any]] = []
    if view.notice:
        blocks.append(_section(_clip(view.notice, _SECTION_TEXT_MAX)))
        blocks.append({"type": "divider"})
    blocks.extend(_person_blocks(view.person))
    if view.admin is not None:
        blocks.extend(_admin_blocks(view.admin))
    return {"type": "home", "blocks": blocks}


def _person_blocks(person: PersonHome) -> list[dict[str, Any]]:
    status = person.status
    row = status.profile
    blocks: list[dict[str, Any]] = [_header("What Genesys Cloud sees about you")]
    facts = []
    if row is None:
        facts.append("Your profile has not been read yet: press *Sync now*.")
    else:
        facts.append(f"Profile read {slack_date(row.refreshed_at)}.")
    facts.append(_last_write_text(person.last_write))
    if status.conflict is not None:
        facts.append("Not synced: another Slack user is linked to the Genesys user with your e-mail; "
                     "`/genesys-sync status` says who.")
    elif status.link is not None and status.link.genesys_user_id is None:
        facts.append(f"Not synced: Genesys Cloud has no user with the e-mail {status.link.email or '(none in Slack)'}.")
    if person.live_conversations is not None:
        facts.append(f"Live conversations carrying them now: *{person.live_conversations}*.")
    blocks.append(_section("\n".join(facts)))
    attributes = dict(row.attributes) if row is not None and not row.deleted else {}
    blocks.extend(_attribute_table(attributes))
    blocks.append({"type": "actions", "block_id": "home_person_actions", "elements": [
        _button("Sync now", SYNC_NOW, "sync", primary=True), _button("Preview", PREVIEW, "preview")]})
    blocks.extend(_privacy_blocks(person))
    return blocks


def _budget_text(budget: BudgetUse) -> str:
    return (f"*Genesys request budget*\n{budget.asked} of {budget.per_window} in this {budget.window_s:g}-second "
            f"window ({budget.requests_per_minute}/min, shared by every replica)")


def _last_write_text(entry: AuditEntry | None) -> str:
    if entry is None:
        return "No write recorded yet."
    words = {"written": "written", "gone": "the conversation had ended", "rejected": "REJECTED by Genesys",
             "failed": "failed, retried automatically"}.get(entry.result, entry.result)
    context = f", contextId {entry.context_id}" if entry.context_id else ""
    return f"Last write {slack_date(entry.at)}: {words} ({len(entry.keys)} keys{context})."


def _attribute_table(attributes: dict[str, str]) -> list[dict[str, Any]]:
    if not attributes:
        return [_section("_No attributes are written for you now._")]
    shown = list(attributes.items())[:MAX_SHOWN_ATTRIBUTES]
    blocks = []
    for start in range(0, len(shown), 5):  # a section holds 10 fields: five key/value rows
        fields = []
        for key, value in shown[start:start + 5]:
            fields.append({"type": "mrkdwn", "text": _clip(f"`{_escape(key)}`", _FIELD_TEXT_MAX)})
            fields.append({"type": "mrkdwn", "text": _clip(_escape(value) if value else "_(empty)_",
                                                           _FIELD_TEXT_MAX)})
        blocks.append({"type": "section", "fields": fields})
    if len(attributes) > len(shown):
        blocks.append(_context(f"… and {len(attributes) - len(shown)} more."))
    return blocks


def _privacy_blocks(person: PersonHome) -> list[dict[str, Any]]:
    optional = person.optional[:MAX_OPTIONAL_BLOCKS * 10]
    if not optional:
        return []
    withheld = person.status.withheld
    row = person.status.profile
    values = dict(row.attributes) if row is not None else {}
    blocks: list[dict[str, Any]] = [
        {"type": "divider"}, _header("Shared with Genesys Cloud"),
        _context("Untick a field to keep it to yourself: it is cleared on your live conversations within seconds "
                 "and never written again until you tick it.")]
    for number, start in enumerate(range(0, len(optional), 10)):
        options = [_option(key, values.get(key, "")) for key in optional[start:start + 10]]
        ticked = [option for option, key in zip(options, optional[start:start + 10], strict=True)
                  if key not in withheld]
        element: dict[str, Any] = {"type": "checkboxes", "action_id": f"{PRIVACY_CHOICE}_{number}",
                                   "options": options}
        if ticked:
            element["initial_options"] = ticked
        blocks.append({"type": "actions", "block_id": f"{PRIVACY_CHOICE}_{number}", "elements": [element]})
    return blocks


def _admin_blocks(admin: AdminHome) -> list[dict[str, Any]]:
    genesys = admin.genesys
    if not admin.polling:
        reach = "another replica polls it"
    else:
        reach = {None: "not polled yet", True: "reachable"}.get(genesys.ok, "unreachable (the log says why)")
    blocks: list[dict[str, Any]] = [
        {"type": "divider"}, _header("Admin: the app"),
        {"type": "section", "fields": [
            {"type": "mrkdwn", "text": f"*People synced*\n{admin.synced_people}"},
            {"type": "mrkdwn", "text": f"*Writes today (UTC)*\n{admin.writes_today}"},
            {"type": "mrkdwn", "text": f"*Pending work*\n{admin.pending}"},
            {"type": "mrkdwn", "text": f"*Dead letters*\n{admin.dead_letter_count}"},
            {"type": "mrkdwn", "text": f"*Genesys Cloud*\n{reach}"},
            *([{"type": "mrkdwn", "text": _budget_text(admin.budget)}] if admin.budget is not None else []),
        ]},
        _context(push_line(admin.push)),
    ]
    if not admin.dead_letters:
        return blocks
    blocks.append(_section(f"*Dead letters* (newest {len(admin.dead_letters)} of {admin.dead_letter_count}): work "
                           "given up on. Retry puts it back in the queue with fresh attempts."))
    for dead in admin.dead_letters:
        text = (f"`{_escape(dead.kind)} {_escape(dead.key)}` {slack_date(dead.at)}, {dead.attempts} attempt(s): "
                f"{_escape(dead.reason)}")
        blocks.append({"type": "section", "block_id": f"dead_letter_{dead.id}", "text": _mrkdwn(_clip(text, 3000)),
                       "accessory": _button("Retry", RETRY, str(dead.id))})
    blocks.append({"type": "actions", "block_id": "home_retry_all", "elements": [
        _button(f"Retry all {admin.dead_letter_count}", RETRY_ALL, "all")]})
    return blocks


# --------------------------------------------------------------------------------------------- notices


def retried_notice(count: int, *, all_of_them: bool) -> str:
    if count == 0:
        return "Nothing to retry: that dead letter was retried or is gone already."
    which = "every dead letter" if all_of_them else "the dead letter"
    return f"Requeued {which} ({count}); the engine works on it now."


def privacy_notice(hidden: Sequence[str], shared: Sequence[str]) -> str:
    parts = []
    if hidden:
        parts.append(f"Kept to yourself: {', '.join(f'`{key}`' for key in hidden)}; cleared on your live "
                     "conversations.")
    if shared:
        parts.append(f"Shared again: {', '.join(f'`{key}`' for key in shared)}.")
    return " ".join(parts) or "Nothing changed."


# --------------------------------------------------------------------------------------------- pieces


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": text[:150]}}


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text)}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [_mrkdwn(_clip(text, 3000))]}


def _button(text: str, action_id: str, value: str, *, primary: bool = False) -> dict[str, Any]:
    button = {"type": "button", "text": {"type": "plain_text", "text": text}, "action_id": action_id,
              "value": value}
    if primary:
        button["style"] = "primary"
    return button


def _option(key: str, value: str) -> dict[str, Any]:
    option: dict[str, Any] = {"text": {"type": "plain_text", "text": _clip(key, 75)}, "value": key}
    if value:
        option["description"] = {"type": "plain_text", "text": _clip(value, 75)}
    return option


def _escape(text: str) -> str:
    """Slack mrkdwn's three control characters, so a value cannot mention, link or break the layout."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
