"""Which Slack workspaces the engine serves: the ones due a first sync at start, a new install's, and what an
uninstall (or a revoked bot token) ends.

With OAuth the installation store is the list of workspaces: deleting a workspace's installation forgets its
people (the store's `on_uninstalled` calls `SyncEngine.forget_workspace`). With one workspace the bot token is the
workspace: losing it cannot be repaired by the app, so it says so, reports it on /healthz (`token_revoked`) and
forgets the workspace's people. What was written to Genesys stays either way.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from slack_directory import StoreInstallationStore
from sync.engine import SyncEngine

# These lines keep the name of the module they were first logged from, which operators' filters may match.
log = logging.getLogger("app")


def bootstrap_in_background(engine: SyncEngine, team_id: str) -> None:
    """Queue a workspace's members for their first sync, off the calling thread: listing a big workspace
    takes a while, and after an install Slack waits for the redirect page."""
    threading.Thread(target=engine.bootstrap, args=(team_id,), name=f"bootstrap-{team_id}", daemon=True).start()


def workspaces_to_sync(installations: StoreInstallationStore | None, token_team_id: str | None, *,
                       not_allowed: Callable[[str], None] = lambda team_id: None) -> list[str]:
    """The workspaces whose first-start sync may be due: every installed one SLACK_ALLOWED_TEAMS allows (OAuth),
    or the bot token's own (`token_team_id`). `not_allowed(team_id)` for each installed one it no longer allows,
    after a log line."""
    if installations is None:
        return [token_team_id] if token_team_id is not None else []
    due = []
    for enterprise_id, team_id in installations.installed_workspaces():
        if not team_id:
            continue
        if installations.allows(enterprise_id or None, team_id):
            due.append(team_id)
            continue
        log.warning("Slack workspace %s is installed but not in SLACK_ALLOWED_TEAMS: not synced, its stored "
                    "profiles are forgotten and its requests ignored (add its id and restart to sync it again)",
                    team_id)
        not_allowed(team_id)
    return due


class Uninstalls:
    """What `app_uninstalled` and `tokens_revoked` do (handlers.events calls it with enterprise and team id)."""

    def __init__(self, engine: SyncEngine, installations: StoreInstallationStore | None, *,
                 token_revoked: Callable[[], None]) -> None:
        self._engine = engine
        self._installations = installations
        self._token_revoked = token_revoked

    def __call__(self, enterprise_id: str | None, team_id: str) -> None:
        if self._installations is not None:  # OAuth: deleting the installation forgets the workspace
            self._installations.delete_all(enterprise_id=enterprise_id, team_id=team_id)
            return
        log.error("the app was uninstalled from workspace %s or its bot token revoked: SLACK_BOT_TOKEN no "
                  "longer works there; reinstall the app and update the token", team_id)
        self._token_revoked()
        self._engine.forget_workspace(team_id)
