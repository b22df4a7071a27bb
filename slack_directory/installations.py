"""Slack OAuth installations kept in the app's own database, for installing into many workspaces.

Bolt's OAuth flow saves each installation through an `InstallationStore` and looks the bot token up through it
for every request; the sync engine needs the same token for its background reads. Keeping installations in the
store (SQLite or PostgreSQL) instead of slack_sdk's file store means one place to back up, and every replica sees
an install at once (file stores break under several replicas: slackapi/bolt-python#782, #1172).

Only workspaces the operator allows (SLACK_ALLOWED_TEAMS, passed in as `allowed`) are saved: any other install is
refused before its token is stored (`WorkspaceNotAllowed`), and the engine gets no client for a workspace no longer
allowed.

Only bot tokens are kept, one installation per workspace (the latest): the app asks for no user scopes, so there
are no per-user installations to keep apart. Organisation-wide Enterprise Grid installs are saved (Bolt answers
their requests), but the engine syncs workspace-level installs only (`WorkspaceClients` looks up a team's own).
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections.abc import Callable
from logging import Logger
from typing import Any

from slack_bolt.error import BoltError
from slack_sdk import WebClient
from slack_sdk.oauth.installation_store import Bot, Installation, InstallationStore
from slack_sdk.oauth.state_store import OAuthStateStore

from slack_directory.directory import SlackDirectoryError
from store import SlackInstallation, Store

log = logging.getLogger(__name__)

Allowed = Callable[[str | None, str | None], bool]
"""Whether the workspace (enterprise_id, team_id) may use the app: SLACK_ALLOWED_TEAMS."""


def _any_workspace(enterprise_id: str | None, team_id: str | None) -> bool:
    return True


class WorkspaceNotAllowed(BoltError):
    """An install from a workspace SLACK_ALLOWED_TEAMS does not list; nothing was stored.

    A BoltError because Bolt's OAuth flow hands exactly those to the callback's failure handler, which explains the
    refusal to the person and revokes the token Slack issued (`bot_token`)."""

    def __init__(self, installation: Installation) -> None:
        self.enterprise_id = installation.enterprise_id
        self.team_id = installation.team_id
        self.team_name = installation.team_name or installation.enterprise_name or ""
        self.bot_token = installation.bot_token
        super().__init__(f"workspace {self.team_id or '(organisation-wide)'}"
                         f"{f' of enterprise {self.enterprise_id}' if self.enterprise_id else ''} is not in "
                         "SLACK_ALLOWED_TEAMS")

    def __repr__(self) -> str:  # keep the token out of tracebacks
        return f"WorkspaceNotAllowed(enterprise_id={self.enterprise_id!r}, team_id={self.team_id!r})"


def _key(enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None) -> tuple[str, str]:
    # An org-wide install belongs to the enterprise, whatever workspace a request came from.
    return enterprise_id or "", "" if is_enterprise_install else team_id or ""


def _json(value: Installation | Bot) -> str:
    # __dict__ is what slack_sdk's own file store persists; its constructors take the same names back.
    return json.dumps(vars(value))


class StoreInstallationStore(InstallationStore):
    """slack_sdk's InstallationStore over the app's store; `on_installed(team_id)` runs after each install of a
    workspace, `on_uninstalled(team_id)` after its installation was deleted; `allowed` decides which workspaces
    may be installed at all."""

    def __init__(self, store: Store, *, on_installed: Callable[[str], None] | None = None,
                 on_uninstalled: Callable[[str], None] | None = None, allowed: Allowed = _any_workspace) -> None:
        self._store = store
        self.allows = allowed
        self._on_installed = on_installed
        self._on_uninstalled = on_uninstalled

    def installed_workspaces(self) -> list[tuple[str, str]]:
        """(enterprise_id, team_id) of every installation ('' where Slack gives none)."""
        return self._store.installed_workspaces()

    @property
    def logger(self) -> Logger:
        return log

    def save(self, installation: Installation) -> None:
        if not self.allows(installation.enterprise_id, installation.team_id):
            refused = WorkspaceNotAllowed(installation)
            log.warning("refused to install into Slack workspace %s (%s): %s; nothing was stored",
                        installation.team_name or "", refused.team_id or refused.enterprise_id, refused)
            raise refused
        enterprise_id, team_id = _key(installation.enterprise_id, installation.team_id,
                                      installation.is_enterprise_install)
        bot = installation.to_bot() if installation.bot_token else None
        self._store.save_installation(SlackInstallation(
            enterprise_id, team_id, installation=_json(installation),
            bot=None if bot is None else _json(bot), installed_at=float(installation.installed_at)))
        log.info("installed into Slack workspace %s%s", team_id or "(organisation-wide)",
                 f" of enterprise {enterprise_id}" if enterprise_id else "")
        if self._on_installed is not None and team_id:
            self._on_installed(team_id)

    def save_bot(self, bot: Bot) -> None:
        # Bolt calls save_bot only for a refreshed rotating token; keep it with the installation it belongs to.
        enterprise_id, team_id = _key(bot.enterprise_id, bot.team_id, bot.is_enterprise_install)
        found = self._store.installation(enterprise_id, team_id)
        if found is None:
            log.warning("Slack sent a bot token for workspace %s, which is not installed; ignored", team_id)
            return
        self._store.save_installation(SlackInstallation(
            enterprise_id, team_id, installation=found.installation, bot=_json(bot),
            installed_at=found.installed_at))

    def find_bot(self, *, enterprise_id: str | None, team_id: str | None,
                 is_enterprise_install: bool | None = False) -> Bot | None:
        found = self._store.installation(*_key(enterprise_id, team_id, is_enterprise_install))
        if found is None or found.bot is None:
            return None
        return Bot(**json.loads(found.bot))

    def find_installation(self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None,
                          is_enterprise_install: bool | None = False) -> Installation | None:
        found = self._store.installation(*_key(enterprise_id, team_id, is_enterprise_install))
        if found is None:
            return None
        installation = Installation(**json.loads(found.installation))
        if found.bot is not None:  # a rotated bot token is newer than the one in the installation
            bot = Bot(**json.loads(found.bot))
            installation.bot_token = bot.bot_token
            installation.bot_refresh_token = bot.bot_refresh_token
            installation.bot_token_expires_at = bot.bot_token_expires_at
        if user_id is not None and user_id != installation.user_id:
            return None  # no per-user installations are kept (no user scopes), so none for another user
        return installation

    # Bolt's token revocation listeners (app_uninstalled, tokens_revoked) call these. Only bot tokens are kept,
    # so losing the bot or the installation both mean the app is gone from that workspace.

    def delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        self._forget(enterprise_id, team_id)

    def delete_installation(self, *, enterprise_id: str | None, team_id: str | None,
                            user_id: str | None = None) -> None:
        if user_id is None:  # a user's revoked token: there are no user tokens to delete
            self._forget(enterprise_id, team_id)

    def delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        self._forget(enterprise_id, team_id)

    def _forget(self, enterprise_id: str | None, team_id: str | None) -> None:
        # The workspace's own installation, else (an org-wide install) the enterprise's.
        for key in ((enterprise_id or "", team_id or ""), (enterprise_id or "", "")):
            if (key[0] or key[1]) and self._store.delete_installation(*key):
                log.info("uninstalled from Slack workspace %s; its installation is deleted",
                         key[1] or f"(organisation-wide) of enterprise {key[0]}")
                if self._on_uninstalled is not None and key[1]:
                    self._on_uninstalled(key[1])
                return


class StoreOAuthStateStore(OAuthStateStore):
    """The install flow's one-time `state` values in the app's store, so any replica can finish an install."""

    def __init__(self, store: Store, *, expiration_s: float = 600.0) -> None:
        self._store = store
        self._expiration_s = expiration_s

    @property
    def logger(self) -> Logger:
        return log

    def issue(self, *args: Any, **kwargs: Any) -> str:
        state = secrets.token_urlsafe(24)
        self._store.issue_oauth_state(state, ttl_s=self._expiration_s)
        return state

    def consume(self, state: str) -> bool:
        return self._store.consume_oauth_state(state)


TEAM_NOT_ALLOWED = "team_not_allowed"
"""The SlackDirectoryError code for a workspace SLACK_ALLOWED_TEAMS does not list: no use retrying."""


class WorkspaceClients:
    """The WebClient of each installed workspace's bot, for the engine's reads outside any Slack request."""

    def __init__(self, installations: StoreInstallationStore, make_client: Callable[[str], WebClient]) -> None:
        self._installations = installations
        self._make_client = make_client
        self._clients: dict[str, WebClient] = {}
        self._lock = threading.Lock()

    def __call__(self, team_id: str) -> WebClient:
        if not self._installations.allows(None, team_id) and not self._allowed_by_enterprise(team_id):
            raise SlackDirectoryError("installation lookup", TEAM_NOT_ALLOWED,
                                      f"workspace {team_id} is not in SLACK_ALLOWED_TEAMS")
        bot = self._installations.find_bot(enterprise_id=None, team_id=team_id) or self._enterprise_bot(team_id)
        if bot is None or not bot.bot_token:
            raise SlackDirectoryError("installation lookup", f"the app is not installed in workspace {team_id}",
                                      "install it again from /slack/install")
        with self._lock:
            client = self._clients.get(bot.bot_token)
            if client is None:
                client = self._clients[bot.bot_token] = self._make_client(bot.bot_token)
            return client

    def _allowed_by_enterprise(self, team_id: str) -> bool:
        return any(installed_team == team_id and enterprise_id and self._installations.allows(enterprise_id, team_id)
                   for enterprise_id, installed_team in self._installations.installed_workspaces())

    def _enterprise_bot(self, team_id: str) -> Bot | None:
        # A workspace of an Enterprise Grid org is stored under its enterprise id, which events do not always
        # carry to the engine: find the workspace among the installations.
        for enterprise_id, installed_team in self._installations.installed_workspaces():
            if installed_team == team_id and enterprise_id:
                return self._installations.find_bot(enterprise_id=enterprise_id, team_id=team_id)
        return None
