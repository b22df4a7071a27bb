"""What Slack gets when a listener fails.

An unreachable database is expected (a restart, a failover): one warning line, and a 503 so that Slack delivers
the event again later (it retries failed deliveries three times over about five minutes, and the engine's paced
refresh reads every profile again anyway). Anything else is a bug: its traceback is logged, Slack gets a 500.
Either way Slack gets no exception text, and the log line carries an error id (`sync.failures`).
"""

from __future__ import annotations

import logging
import re
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
    what = _plain(event.get("type") or body.get("command") or body.get("type") or "request")
    if isinstance(error, StoreError):
        logged_failure(log, f"Slack {what} {_plain(body.get('event_id', ''))} not recorded: the database is "
                            "unreachable; Slack will deliver it again", error)
        return BoltResponse(status=503, body="the database is unreachable; deliver again later")
    logged_failure(log, f"Slack {what} {_plain(body.get('event_id', ''))} failed", error, traceback=True)
    return BoltResponse(status=500, body="")


_PLAIN = re.compile(r"[\w/.-]{0,64}", re.ASCII)


def _plain(value: object) -> str:
    """A value from the body as it is when it is a plain word (an event type, a command, an id), else quoted, so
    whatever the body holds cannot start a forged log line."""
    return value if isinstance(value, str) and _PLAIN.fullmatch(value) else repr(value)
