"""The end of a Slack OAuth install: Bolt's own pages, except for a workspace SLACK_ALLOWED_TEAMS does not list.

Slack names the workspace only when the app exchanges the code for a token, so the refusal comes after Slack
issued one: the installation store refuses to keep it (`WorkspaceNotAllowed`), Bolt hands that to the failure
handler here, which revokes the token at once (`auth.revoke`) and tells the person, in plain words, what happened
and whom to ask.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable

from slack_bolt import BoltResponse
from slack_bolt.oauth.callback_options import CallbackOptions, FailureArgs, SuccessArgs
from slack_sdk.errors import SlackApiError, SlackClientError

from slack_directory import WorkspaceNotAllowed

log = logging.getLogger(__name__)

Revoke = Callable[[str], object]
"""Revokes a bot token (auth.revoke with that token)."""


def callback_options(revoke: Revoke) -> CallbackOptions:
    """Bolt's OAuth callback options: its own pages, but the refusal page for a workspace not allowed."""

    def success(args: SuccessArgs) -> BoltResponse:
        return args.default.success(args)

    def failure(args: FailureArgs) -> BoltResponse:
        if isinstance(args.error, WorkspaceNotAllowed):
            return refused_install(args.error, revoke, clear_state_cookie=args.settings.state_utils
                                   .build_set_cookie_for_deletion())
        return args.default.failure(args)

    return CallbackOptions(success=success, failure=failure)


def refused_install(refused: WorkspaceNotAllowed, revoke: Revoke, *, clear_state_cookie: str) -> BoltResponse:
    """Revoke the token Slack just issued, and answer the refusal page (403)."""
    revoked = False
    if refused.bot_token:
        try:
            revoke(refused.bot_token)
            revoked = True
        except (SlackApiError, SlackClientError, OSError) as error:  # urllib's URLError is an OSError
            # The token is not stored anywhere, so it is unusable to the app either way; say so for the operator.
            log.warning("could not revoke the token Slack issued to refused workspace %s (%s); it was not stored, "
                        "and the workspace's admins can remove the app from their workspace", refused.team_id,
                        type(error).__name__)
    return BoltResponse(status=403, body=refusal_page(refused, revoked=revoked),
                        headers={"Content-Type": "text/html; charset=utf-8", "Set-Cookie": clear_state_cookie})


def refusal_page(refused: WorkspaceNotAllowed, *, revoked: bool) -> str:
    """The page a person sees when their workspace may not install the app."""
    workspace_id = refused.team_id or refused.enterprise_id or "(unknown)"
    name = f"{refused.team_name} ({workspace_id})" if refused.team_name else workspace_id
    withdrawn = (" The access Slack granted a moment ago has been withdrawn." if revoked else
                 " You can remove the app from the workspace's Manage apps page.")
    text = (f"This app is not enabled for the Slack workspace {name}, so it was not installed and nothing about "
            f"the workspace was kept.{withdrawn}")
    ask = (f"If the workspace should use it, ask the person who runs this app to add {workspace_id} to "
           "SLACK_ALLOWED_TEAMS and restart it, then install again.")
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Not installed</title></head>"
            "<body style=\"font-family: sans-serif; max-width: 40em; margin: 2em auto\">"
            f"<h2>Not installed</h2><p>{html.escape(text)}</p><p>{html.escape(ask)}</p></body></html>\n")
