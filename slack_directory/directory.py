"""`SlackDirectory`: reads one workspace's users, profiles and field definitions."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from profiles import FieldLabels, TeamProfileError

log = logging.getLogger(__name__)

LABELS_TTL_S = 600.0
"""Field definitions change rarely (and Slack sends no event for it over the Events API)."""


class SlackDirectoryError(Exception):
    """A Slack Web API call failed; the message names the method, Slack's error code and what to do."""

    def __init__(self, method: str, error: str, advice: str = "") -> None:
        super().__init__(f"Slack {method} failed: {error}" + (f"; {advice}" if advice else ""))
        self.method = method
        self.error = error


@dataclass(frozen=True, slots=True)
class SlackUserRecord:
    """A Slack user as the sync needs it: the user object (with the full profile) and what decides syncing."""

    team_id: str
    user_id: str
    user: Mapping[str, Any]
    updated: int | None = None
    """When the profile last changed (Slack's `updated`, epoch seconds): the store keeps the newest read of it."""

    @classmethod
    def of(cls, team_id: str, user_id: str, user: Mapping[str, Any]) -> SlackUserRecord:
        """A record of the user object as Slack sent it."""
        updated = user.get("updated")
        return cls(team_id, user_id, user, updated if isinstance(updated, int) else None)

    @property
    def email(self) -> str | None:
        profile = self.user.get("profile")
        email = profile.get("email") if isinstance(profile, Mapping) else None
        return email if isinstance(email, str) and email else None

    @property
    def syncable(self) -> bool:
        """Deactivated users, bots, app users and Slackbot are not synced."""
        return self.user.get("deleted") is not True and not is_bot_or_app(self.user, self.user_id)


SLACKBOT = "USLACKBOT"
"""Slackbot's user id in every workspace; its user object does not say it is a bot."""


def is_bot_or_app(user: Mapping[str, Any], user_id: str) -> bool:
    """Whether a Slack user is a bot, an app user or Slackbot: no person, so never synced (events and reads alike).

    `user_id` is passed apart because a profile read (`users.profile.get`) may carry no "id" of its own."""
    return user.get("is_bot") is True or user.get("is_app_user") is True or user_id == SLACKBOT


_ADVICE = {
    "invalid_auth": "check SLACK_BOT_TOKEN (or reinstall the app)",
    "not_authed": "set SLACK_BOT_TOKEN",
    "account_inactive": "the app was uninstalled or its token revoked; reinstall it",
    "token_revoked": "the app was uninstalled or its token revoked; reinstall it",
    "missing_scope": "add the scope to manifest.yml's bot scopes and reinstall the app",
    "user_not_found": "the user no longer exists in this workspace",
    "ratelimited": "Slack's rate limit held after retrying; the work is retried later",
}


class SlackCallObserver(Protocol):
    """Told of each Slack Web API call the directory makes, for metrics."""

    def slack_api_call(self, method: str, result: str) -> None:
        """`method` ("users.profile.get", …) ended: "ok", Slack's error code ("ratelimited", …) or "unreachable"."""


class _NoObserver:
    def slack_api_call(self, method: str, result: str) -> None:
        return None


class SlackDirectory:
    """Users and profiles of one or more workspaces, through one WebClient per bot token."""

    def __init__(self, client_for: Callable[[str], WebClient], *, clock: Callable[[], float] = time.monotonic,
                 labels_ttl_s: float = LABELS_TTL_S, observer: SlackCallObserver | None = None) -> None:
        self._client_for = client_for
        self._observer = observer or _NoObserver()
        self._clock = clock
        self._labels_ttl_s = labels_ttl_s
        self._labels: dict[str, tuple[float, FieldLabels]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def web_client(token: str | None, base_url: str | None = None) -> WebClient:
        """A WebClient that waits out Slack's 429 `Retry-After` (twice at most) and retries dropped connections."""
        return WebClient(
            token=token, base_url=base_url or "https://slack.com/api/", timeout=15,
            retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=2),
                            RateLimitErrorRetryHandler(max_retry_count=2)],
        )

    def user(self, team_id: str, user_id: str) -> SlackUserRecord:
        """The user object with its full profile: `users.info` for the account, `users.profile.get` for the
        profile with custom fields and e-mail."""
        client = self._client_for(team_id)
        info = self._call("users.info", lambda: client.users_info(user=user_id))
        profile = self._call("users.profile.get", lambda: client.users_profile_get(user=user_id))
        user = dict(info.get("user") or {})
        user["profile"] = profile.get("profile") or {}
        return SlackUserRecord.of(team_id, user_id, user)

    def labels(self, team_id: str) -> FieldLabels:
        """The workspace's custom field definitions, cached for a while."""
        with self._lock:
            cached = self._labels.get(team_id)
            if cached is not None and self._clock() - cached[0] < self._labels_ttl_s:
                return cached[1]
        client = self._client_for(team_id)
        response = self._call("team.profile.get", lambda: client.team_profile_get())
        try:
            labels = FieldLabels.from_team_profile(response)
        except TeamProfileError as error:
            raise SlackDirectoryError("team.profile.get", f"unexpected answer: {error}") from None
        with self._lock:
            self._labels[team_id] = (self._clock(), labels)
        return labels

    def publish_home(self, team_id: str, user_id: str, view: Mapping[str, Any]) -> None:
        """Publish a person's App Home view (`views.publish`); raises SlackDirectoryError."""
        client = self._client_for(team_id)
        self._call("views.publish", lambda: client.views_publish(user_id=user_id, view=dict(view)))

    def forget(self, team_id: str) -> None:
        """Drop what is cached of a workspace (the app was uninstalled there)."""
        with self._lock:
            self._labels.pop(team_id, None)

    def user_ids(self, team_id: str) -> Iterator[str]:
        """Every member of the workspace that may be synced (users.list, 200 per page)."""
        client = self._client_for(team_id)
        cursor = None
        while True:
            page = self._call("users.list", lambda c=cursor: client.users_list(limit=200, cursor=c))
            for member in page.get("members") or []:
                if isinstance(member, Mapping) and isinstance(member.get("id"), str):
                    record = SlackUserRecord.of(team_id, member["id"], member)
                    if record.syncable:
                        yield member["id"]
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return

    def _call(self, method: str, call: Callable[[], Any]) -> Mapping[str, Any]:
        try:
            response = call()
        except SlackApiError as error:
            code = str(error.response.get("error", "unknown_error")) if error.response is not None else "unknown_error"
            self._observer.slack_api_call(method, code if code.isidentifier() else "unknown_error")
            raise SlackDirectoryError(method, code, _ADVICE.get(code, "")) from None
        except SlackClientError as error:
            self._observer.slack_api_call(method, "unreachable")
            raise SlackDirectoryError(method, f"could not reach Slack ({type(error).__name__})") from None
        except OSError as error:
            self._observer.slack_api_call(method, "unreachable")
            raise SlackDirectoryError(method, f"could not reach Slack ({error.strerror or type(error).__name__})") \
                from None
        self._observer.slack_api_call(method, "ok")
        return response.data if isinstance(response.data, Mapping) else {}
