"""What Slack gets when a listener fails.

An unreachable database is expected (a restart, a failover): one warning line, and a 503 so that Slack delivers
the event again later (it retries failed deliveries three times over about five minutes, and the engine's paced
refresh reads every profile again anyway). Anything else is a bug: its traceback is logged, Slack gets a 500.
Either way Slack gets no exception text, and the log line carries an error id (`sync.failures`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from slack_bolt import App, BoltResponse

from store import StoreError
from sync.failures import logged_failure

log = logging.getLogger(__name__)


def register(app: App) -> None:
    """Install `answer_failure` as the app's listener error handler."""
    app.error(answer_failure)


def answer_failure(error: Exception, body: Mapping[str, Any]) -> BoltResponse:
    """The response for a failed listener (see the module docstring)."""
    event = body.get("event") if isinstance(body.get("event"), Mapping) else {}
    what = event.get("type") or body.get("command") or body.get("type") or "request"
    if isinstance(error, StoreError):
        logged_failure(log, f"Slack {what} {body.get('event_id', '')} not recorded: the database is unreachable; "
                            "Slack will deliver it again", error)
        return BoltResponse(status=503, body="the database is unreachable; deliver again later")
    logged_failure(log, f"Slack {what} {body.get('event_id', '')} failed", error, traceback=True)
    return BoltResponse(status=500, body="")
