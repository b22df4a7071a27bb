"""`/genesys-sync`: acknowledged at once; the work runs after the acknowledgement; answers are ephemeral.

    /genesys-sync                   sync me now
    /genesys-sync preview [@user]   the attributes that would be written, without writing
    /genesys-sync status [@user]    last sync and its result, pending work, dead letters, Genesys connectivity
                                    (about someone else, for non-admins: only whether their profile is synced)
    /genesys-sync @user             sync someone else now (workspace admins, owners, or SYNC_ADMINS)
    /genesys-sync all               paced resync of the whole workspace (same people), with progress
    /genesys-sync help
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from genesys import GenesysError
from slack_directory import SlackDirectoryError
from store import StoreError
from sync.desired import DesiredAttributes
from sync.engine import ResyncProgress, ResyncSummary, SyncReport, SyncStatus
from sync.failures import logged_failure

log = logging.getLogger(__name__)

COMMAND = "/genesys-sync"
USAGE = (
    "*/genesys-sync* keeps your Slack profile on your live Genesys Cloud conversations.\n"
    "• `/genesys-sync` sync me now\n"
    "• `/genesys-sync preview [@user]` show the attributes that would be written\n"
    "• `/genesys-sync status [@user]` last sync, pending work, Genesys connectivity\n"
    "• `/genesys-sync @user` sync someone else now (admins)\n"
    "• `/genesys-sync all` resync the whole workspace (admins)\n"
    "• `/genesys-sync help` this text"
)
_MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")


@dataclass(frozen=True, slots=True)
class Request:
    """A parsed `/genesys-sync` invocation."""

    action: str
    """sync, preview, status, all, help or usage (anything unrecognised)."""
    target: str | None = None
    """The user it is about; None means the person who typed it."""


def parse(text: str) -> Request:
    """Parse the command text (Slack escapes @mentions to `<@U…|name>` because should_escape is on)."""
    words = text.split()
    if not words:
        return Request("sync")
    head, rest = words[0].lower(), words[1:]
    if head == "help" and not rest:
        return Request("help")
    if head == "all" and not rest:
        return Request("all")
    if head in ("preview", "status") and len(rest) <= 1:
        target = _mentioned(rest[0]) if rest else None
        return Request(head, target) if not rest or target else Request("usage")
    if len(words) == 1 and (target := _mentioned(words[0])):
        return Request("sync", target)
    return Request("usage")


def _mentioned(word: str) -> str | None:
    match = _MENTION.match(word)
    return match.group(1) if match else None


class CommandEngine(Protocol):
    """What the command needs from the sync engine: values, which the `Renderer` words."""

    def sync_now(self, team_id: str, user_id: str) -> SyncReport: ...
    def preview(self, team_id: str, user_id: str) -> DesiredAttributes: ...
    def status(self, team_id: str, user_id: str) -> SyncStatus: ...
    def resync_all(self, team_id: str, progress: Callable[[ResyncProgress], None]) -> ResyncSummary: ...


def register(app: App, engine: CommandEngine, *, admins: frozenset[str], render: Renderer) -> None:
    """Listen for /genesys-sync: a fast acknowledgement, then the work in a lazy listener."""

    def acknowledge(ack: Ack, command: Mapping[str, Any]) -> None:
        ack(text=acknowledgement(parse(str(command.get("text", "")))), response_type="ephemeral")

    def work(command: Mapping[str, Any], respond: Respond, client: WebClient) -> None:
        run(engine, render, command, respond, is_admin=lambda user_id: is_admin(client, user_id, admins))

    app.command(COMMAND)(ack=acknowledge, lazy=[work])


def acknowledgement(request: Request) -> str:
    """What Slack shows within its 3 seconds."""
    return {
        "help": USAGE,
        "usage": "I didn't understand that.\n" + USAGE,
        "sync": "Syncing to your live Genesys conversations…",
        "preview": "Reading the profile…",
        "status": "Looking it up…",
        "all": "Starting a resync of the whole workspace…",
    }[request.action]


class Renderer(Protocol):
    """Turns engine results into Slack text (`sync.render.SlackText`)."""

    def sync_report(self, report: SyncReport, *, whose: str) -> str: ...
    def preview(self, desired: DesiredAttributes, *, whose: str) -> str: ...
    def status(self, status: SyncStatus, *, whose: str, full: bool) -> str: ...
    def resync_progress(self, progress: ResyncProgress) -> str: ...
    def resync_summary(self, summary: ResyncSummary) -> str: ...


def run(engine: CommandEngine, render: Renderer, command: Mapping[str, Any], respond: Callable[..., Any], *,
        is_admin: Callable[[str], bool]) -> str:
    """Do what the command asks and answer ephemerally; returns the answer (for tests and logs)."""
    request = parse(str(command.get("text", "")))
    if request.action in ("help", "usage"):
        return ""  # the acknowledgement already answered
    team_id, caller = str(command.get("team_id", "")), str(command.get("user_id", ""))
    target = request.target or caller
    try:
        answer = _answer(engine, render, request, team_id, caller, respond, is_admin)
    except StoreError as error:
        error_id = logged_failure(log, f"/genesys-sync {request.action} for {target!r}: the database is unreachable",
                                  error)
        answer = (f"The app cannot reach its database right now, so nothing was done; try again in a minute "
                  f"(error id {error_id}).")
    except (SlackDirectoryError, GenesysError) as error:  # Slack or Genesys said no: expected, no traceback
        error_id = logged_failure(log, f"/genesys-sync {request.action} for {target!r} failed", error)
        answer = f"Sorry, that failed (error id {error_id}). An operator finds the cause in the app's log by that id."
    except Exception as error:  # noqa: BLE001 (the person must get an answer; logged_failure keeps the traceback)
        error_id = logged_failure(log, f"/genesys-sync {request.action} for {target!r} failed", error, traceback=True)
        answer = f"Sorry, that failed (error id {error_id}). An operator finds the cause in the app's log by that id."
    respond(text=answer, response_type="ephemeral")
    return answer


def _answer(engine: CommandEngine, render: Renderer, request: Request, team_id: str, caller: str,
            respond: Callable[..., Any], is_admin: Callable[[str], bool]) -> str:
    target = request.target or caller
    whose = "your" if target == caller else f"<@{target}>'s"
    if (request.action == "all" and not is_admin(caller)) or (
            request.action == "sync" and not speaks_for(caller, target, is_admin)):
        return "Only workspace admins and owners (or people listed in SYNC_ADMINS) can sync other people."
    if request.action == "sync":
        return render.sync_report(engine.sync_now(team_id, target), whose=whose)
    if request.action == "preview":
        # Anyone's: it is what their Slack profile already shows, minus e-mail and phone unless the mapping opts in.
        return render.preview(engine.preview(team_id, target), whose=whose)
    if request.action == "status":
        return render.status(engine.status(team_id, target), whose=whose,
                             full=speaks_for(caller, target, is_admin))
    return render.resync_summary(engine.resync_all(
        team_id, lambda progress: respond(text=render.resync_progress(progress), response_type="ephemeral")))


def speaks_for(caller: str, target: str, is_admin: Callable[[str], bool]) -> bool:
    """Whether `caller` may sync `target` and see their conversations, times, Genesys user and e-mail: only
    `target` themself and admins (`is_admin`) may."""
    return target == caller or is_admin(caller)


def is_admin(client: WebClient, user_id: str, admins: frozenset[str]) -> bool:
    """Workspace admins and owners, or a configured SYNC_ADMINS member."""
    if user_id in admins:
        return True
    try:
        user = client.users_info(user=user_id).get("user") or {}
    except SlackApiError as error:
        log.warning("could not check whether %r is an admin: %s", user_id, error.response.get("error"))
        return False
    return any(user.get(flag) is True for flag in ("is_admin", "is_owner", "is_primary_owner"))
