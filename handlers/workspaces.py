"""Requests from workspaces SLACK_ALLOWED_TEAMS does not list are acknowledged and otherwise ignored.

An installation stored before the operator removed its workspace from the list still authorizes Slack's requests
(Bolt finds its token), so the check runs after Bolt's authorization, on every event and command: Slack gets its
200 (no retries, no error shown), nothing is recorded or read, and one line per workspace says why. Only
`app_uninstalled` and `tokens_revoked` pass: they delete the workspace's installation, which is what the operator
wants for a workspace they no longer serve.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from slack_bolt import App, BoltContext, BoltResponse

from handlers.events import LIFECYCLE_EVENTS

log = logging.getLogger(__name__)

Allowed = Callable[[str | None, str | None], bool]


class WorkspaceGate:
    """Decides, per request, whether its workspace is served; remembers which refused ones it logged."""

    def __init__(self, allowed: Allowed) -> None:
        self._allowed = allowed
        self._logged: set[tuple[str | None, str | None]] = set()
        self._lock = threading.Lock()

    def admits(self, body: Mapping[str, Any], enterprise_id: str | None, team_id: str | None) -> bool:
        """True to serve the request; False (logged the first time for that workspace) to ignore it."""
        event = body.get("event")
        if isinstance(event, Mapping) and event.get("type") in LIFECYCLE_EVENTS:
            return True
        if self._allowed(enterprise_id, team_id):
            return True
        with self._lock:
            first = (enterprise_id, team_id) not in self._logged
            self._logged.add((enterprise_id, team_id))
        if first:
            log.warning("ignoring Slack requests from workspace %s%s: it is not in SLACK_ALLOWED_TEAMS (add its id "
                        "there and restart to serve it)", team_id or "(none named)",
                        f" of enterprise {enterprise_id}" if enterprise_id else "")
        return False


def register(app: App, allowed: Allowed) -> WorkspaceGate:
    """Install the gate as a global middleware, after Bolt's own authorization."""
    gate = WorkspaceGate(allowed)

    def only_allowed_workspaces(body: Mapping[str, Any], context: BoltContext,
                                next: Callable[[], None]) -> BoltResponse | None:
        if gate.admits(body, context.enterprise_id, context.team_id):
            next()
            return None
        return BoltResponse(status=200, body="")

    app.use(only_allowed_workspaces)
    return gate
