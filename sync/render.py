"""Slack text for the engine's results (ephemeral `/genesys-sync` answers): the engine returns values, and every
word a person reads in Slack about them is chosen here.

Nothing here prints an exception's text: failures arrive as error ids (see `sync.failures`).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime

from store import PRIVACY, LinkConflict
from sync.desired import DesiredAttributes
from sync.engine import PushStatus, ResyncProgress, ResyncSummary, SyncReport, SyncStatus
from sync.target import SyncTarget

_MAX_LINES = 40
_MARKS = {"written": "written", "unchanged": "already up to date", "gone": "ended before the write",
          "rejected": "REJECTED by Genesys", "failed": "failed, retried automatically"}
"""How each participant's outcome reads in a sync report."""


class SlackText:
    """Renders sync reports and previews as Slack mrkdwn; `target` (SYNC_TARGET) and the mapping's key prefix say
    where a preview's attributes would go and under which keys."""

    def __init__(self, target: SyncTarget | None = None, mapping_prefix: str = "slack.") -> None:
        self._target = target or SyncTarget()
        self._mapping_prefix = mapping_prefix

    def sync_report(self, report: SyncReport, *, whose: str) -> str:
        if report.not_synced is not None:  # a conflict's text ends a sentence already: its double stop is old
            return f"Nothing written for {whose} profile: {_not_synced_text(report)}."
        written = [outcome for outcome in report.participants if outcome.result == "written"]
        unchanged = [outcome for outcome in report.participants if outcome.result == "unchanged"]
        poller = (f"The customer's participant of {report.customers_left_to_poller} live conversation(s) is written "
                  "by the replica of the app that polls Genesys, within a poll.") if report.customers_left_to_poller \
            else ""
        if not report.participants:
            if poller:
                return poller
            return (f"No live Genesys conversation right now; {whose} next conversation gets the current profile "
                    "automatically.")
        count = len(report.desired.report.attributes) if report.desired else 0
        lines = [f"Synced {whose} profile ({count} attributes) to {len(report.participants)} live participant(s):"]
        for outcome in report.participants:
            mark = _MARKS.get(outcome.result, outcome.result)
            shown = outcome.detail and outcome.result in ("rejected", "failed")
            detail = f" — {outcome.detail}" if shown else ""
            if outcome.error_id:
                detail += f" (error id {outcome.error_id})"
            whose_participant = " (the customer's participant)" if outcome.target == "customer" else ""
            lines.append(f"• {outcome.media_type} conversation `{outcome.conversation_id}`{whose_participant}: "
                         f"{mark}{detail}")
        if not written and unchanged and len(unchanged) == len(report.participants):
            lines.append("Nothing had changed since the last write.")
        if poller:
            lines.append(poller)
        return "\n".join(lines)

    def preview(self, desired: DesiredAttributes, *, whose: str) -> str:
        attributes = desired.report.attributes
        lines = [f"{whose[:1].upper() + whose[1:]} profile would write {len(attributes)} attribute(s):"]
        shown = list(attributes.items())[:_MAX_LINES]
        lines.extend(f"• `{key}` = {value or '(empty)'}" for key, value in shown)
        if len(attributes) > len(shown):
            lines.append(f"… and {len(attributes) - len(shown)} more")
        if desired.withheld and whose == "your":  # which fields a colleague keeps back is theirs to say
            lines.append(withheld_line(desired.withheld, whose=whose))
        sensitive = [e.source_key for e in desired.mapped.excluded if e.reason.startswith("sensitive")]
        if sensitive:
            lines.append(f"Left out until an admin opts in: {', '.join(sensitive)}")
        if not desired.ok:
            lines.append("Not voice-safe, so nothing would be written:")
            lines.extend(f"• {problem}" for problem in desired.report.problems[:10])
        lines.append(f"Written to {self._target.where()}.")
        if self._target.customer and attributes:
            key = next(iter(attributes))
            lines.append(f"On the customer's participant the keys are renamed: `{key}` → "
                         f"`{self._target.customer_key(key, self._mapping_prefix)}`.")
        return "\n".join(lines)

    def status(self, status: SyncStatus, *, whose: str, full: bool) -> str:
        """`full`: for the person themself and admins, with times, conversations, the Genesys user and the e-mail.
        Otherwise only whether the profile is synced: what a colleague may know without seeing when someone was
        on a call, who they talked to (conversation ids) or an e-mail their profile may hide."""
        lines = _status_lines(status) if full else _colleague_status_lines(status, whose)
        if full and status.withheld:
            lines.append(withheld_line(status.withheld, whose=whose))
        genesys = {None: "not polled yet", True: "reachable"}.get(
            status.genesys_ok, f"unreachable (error id {status.genesys_error_id})" if status.genesys_error_id
            else "unreachable")
        lines.append(f"Attributes go to {status.target.where()}.")
        lines.append(f"Pending work: {status.pending}; dead letters: {status.dead_letters}; Genesys: {genesys}.")
        lines.append(_push_line(status.push))
        return "\n".join(lines)


    def resync_progress(self, progress: ResyncProgress) -> str:
        if progress.pending is None:
            return f"Queued {progress.queued} people for a resync; reading their profiles now…"
        return f"Resync {progress.done:.0%} done ({progress.pending} still to read)…"

    def resync_summary(self, summary: ResyncSummary) -> str:
        if not summary.waited:
            return (f"Queued {summary.queued} people for a resync; each live participant is brought up to date as "
                    f"their profile is read. `/genesys-sync status` shows pending work.")
        finished = "finished" if not summary.pending \
            else f"still running ({summary.pending} to read; it carries on by itself)"
        return (f"Resync {finished}: {summary.queued} people queued, {summary.written} participant write(s) made, "
                f"{summary.dead_letters} dead letter(s) in total.")


def withheld_line(withheld: Collection[str], *, whose: str) -> str:
    """The optional keys a person keeps to themself (their App Home choice)."""
    who = "yourself" if whose == "your" else "themself"
    return f"Kept to {who} (never written): {', '.join(f'`{key}`' for key in sorted(withheld))}"


def push_line(push: PushStatus | None) -> str:
    """Whether Genesys' notifications bring new calls now, in one sentence."""
    return _push_line(push)


def _push_line(push: PushStatus | None) -> str:
    if push is None:
        return "Push: off (GENESYS_PUSH); new calls are found by the poll."
    if push.state is None:
        return "Push: on; another replica of the app receives Genesys' notifications."
    if push.state.healthy:
        return "Push: on; new calls are written as Genesys notifies them."
    return (f"Push: on, but not covering everyone now ({push.state.fallback_reason}); new calls are found by the "
            f"poll every {push.fast_poll_s:g} s meanwhile.")


def _not_synced_text(report: SyncReport) -> str:
    why = report.not_synced
    if why == "link_conflict":
        return conflict_text(report.conflict) if report.conflict is not None \
            else "another Slack user is linked to the same Genesys user"
    if why == "not_voice_safe":
        problems = report.desired.report.problems[:3] if report.desired is not None else ()
        return "the attributes are not voice-safe: " + "; ".join(str(problem) for problem in problems)
    if why == "no_genesys_user":
        return f"Genesys Cloud has no user with the e-mail {report.email or '(no e-mail in Slack)'}"
    if why == "newer_read_not_synced":
        return "a newer read of this profile says it is not synced"
    return "this user is deactivated, a bot or an app user: not synced"  # not_syncable


def slack_date(at: float) -> str:
    """A moment as Slack shows it in each reader's own time zone, with UTC where a client cannot."""
    return f"<!date^{int(at)}^{{date_short_pretty}} {{time}}|{datetime.fromtimestamp(at, UTC):%Y-%m-%d %H:%M} UTC>"


def conflict_text(conflict: LinkConflict) -> str:
    """Why a Slack user is not linked, for /genesys-sync (names the other Slack user: the person and admins only)."""
    return (f"Not synced: the Genesys user with this e-mail ({conflict.genesys_user_id}) is linked to Slack user "
            f"`{conflict.holder_user_id}` of workspace `{conflict.holder_team_id}` already, and the first link stays. "
            "Ask an admin to give each person their own e-mail in Slack or Genesys Cloud.")


def _status_lines(status: SyncStatus) -> list[str]:
    lines = []
    row, link = status.profile, status.link
    if row is None:
        lines.append(f"<@{status.user_id}>'s profile has not been read yet.")
    else:
        state = "not synced (deactivated, bot or app user)" if row.deleted else f"{len(row.attributes)} attributes"
        lines.append(f"Profile read {slack_date(row.refreshed_at)}: "
                     f"{state}.")
    if status.conflict is not None:
        lines.append(conflict_text(status.conflict))
    elif link is not None:
        lines.append(f"Genesys user: {link.genesys_user_id}" if link.genesys_user_id
                     else f"No Genesys user has the e-mail {link.email or '(none in Slack)'}.")
    for entry in status.writes:
        if entry.result == PRIVACY:
            lines.append(f"• {slack_date(entry.at)}: privacy choice "
                         f"({entry.detail})")
            continue
        where = "the customer's participant of conversation" if entry.target == "customer" else "conversation"
        lines.append(f"• {slack_date(entry.at)}: {entry.result} "
                     f"on {where} `{entry.conversation_id}` ({len(entry.keys)} keys"
                     f"{', contextId ' + entry.context_id if entry.context_id else ''})")
    if not status.writes:
        lines.append("No write recorded yet.")
    return lines


def _colleague_status_lines(status: SyncStatus, whose: str) -> list[str]:
    row, link = status.profile, status.link
    if row is None:
        state = "has not been read yet"
    elif row.deleted:
        state = "is not synced (deactivated, bot or app user)"
    elif status.conflict is not None:  # who holds the link tells who else has that e-mail: not for colleagues
        state = "is not synced: another Slack user is linked to the same Genesys user"
    elif link is not None and link.genesys_user_id:
        state = f"is synced ({len(row.attributes)} attributes)"
    else:  # not why: "no Genesys user has this e-mail" is about an address their profile may hide
        state = "is not synced to Genesys Cloud"
    return [f"{whose[:1].upper() + whose[1:]} profile {state}.",
            "When it was synced and to which conversations is shown only to them and to admins."]
