"""The Slack Web API side of the sync: users, their full profiles (custom fields included) and the
workspace's custom field definitions, read with slack_sdk's WebClient.

Slack sends no event when only a custom profile field changes, and `users.info` / `users.list` omit custom
fields, so a profile is read with `users.profile.get`; field labels come from `team.profile.get`, cached per
workspace as Slack recommends.
"""

from slack_directory.directory import SlackDirectory, SlackDirectoryError, SlackUserRecord, is_bot_or_app
from slack_directory.installations import (
    TEAM_NOT_ALLOWED,
    StoreInstallationStore,
    StoreOAuthStateStore,
    WorkspaceClients,
    WorkspaceNotAllowed,
)

__all__ = [
    "TEAM_NOT_ALLOWED",
    "SlackDirectory",
    "SlackDirectoryError",
    "SlackUserRecord",
    "StoreInstallationStore",
    "StoreOAuthStateStore",
    "WorkspaceClients",
    "WorkspaceNotAllowed",
    "is_bot_or_app",
]
