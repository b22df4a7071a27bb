"""Slack text for the engine's results (ephemeral `/genesys-sync` answers)."""

from __future__ import annotations

from sync.desired import DesiredAttributes
from sync.engine import SyncReport

_MAX_LINES = 40


class SlackText:
    """Renders sync reports and previews as Slack mrkdwn."""

    def sync_report(self, report: SyncReport, *, whose: str) -> str:
        if report.problem:
            return f"Nothing written for {whose} profile: {report.problem}."
        written = [leg for leg in report.legs if leg.result == "written"]
        unchanged = [leg for leg in report.legs if leg.result == "unchanged"]
        if not report.legs:
            return (f"No live Genesys conversation right now; {whose} next conversation gets the current profile "
                    "automatically.")
        count = len(report.desired.report.attributes) if report.desired else 0
        lines = [f"Synced {whose} profile ({count} attributes) to {len(report.legs)} live participant(s):"]
        for leg in report.legs:
            mark = {"written": "written", "unchanged": "already up to date", "gone": "ended before the write",
                    "rejected": "REJECTED by Genesys", "failed": "failed, retried automatically"}.get(leg.result,
                                                                                                    leg.result)
            detail = f" — {leg.detail}" if leg.detail and leg.result in ("rejected", "failed") else ""
            lines.append(f"• {leg.media_type} conversation `{leg.conversation_id}`: {mark}{detail}")
        if not written and unchanged and len(unchanged) == len(report.legs):
            lines.append("Nothing had changed since the last write.")
        return "\n".join(lines)

    def preview(self, desired: DesiredAttributes, *, whose: str) -> str:
        attributes = desired.report.attributes
        lines = [f"{whose[:1].upper() + whose[1:]} profile would write {len(attributes)} attribute(s):"]
        shown = list(attributes.items())[:_MAX_LINES]
        lines.extend(f"• `{key}` = {value or '(empty)'}" for key, value in shown)
        if len(attributes) > len(shown):
            lines.append(f"… and {len(attributes) - len(shown)} more")
        sensitive = [e.source_key for e in desired.mapped.excluded if e.reason.startswith("sensitive")]
        if sensitive:
            lines.append(f"Left out until an admin opts in: {', '.join(sensitive)}")
        if not desired.ok:
            lines.append("Not voice-safe, so nothing would be written:")
            lines.extend(f"• {problem}" for problem in desired.report.problems[:10])
        return "\n".join(lines)
