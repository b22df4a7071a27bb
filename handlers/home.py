"""The App Home: `app_home_opened` publishes the person's Home tab (`views.publish`); its buttons and checkboxes
(`block_actions`) sync now, preview, keep optional fields to oneself and, for admins, retry dead letters.

Every listener acknowledges at once and works in a lazy listener after the acknowledgement (Bolt runs those on
its thread pool, over HTTP and Socket Mode alike), so Slack has its answer within 3 s whatever Slack, Genesys or
the database cost. The view is refreshed after each sync of a person who opened their Home lately: the engine tells
`HomeTab.person_synced` on its own thread, and the HomeTab's thread publishes.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient

from genesys import GenesysError
from handlers.commands import is_admin
from handlers.events import is_slack_id
from slack_directory import SlackDirectoryError
from store import PrivacyChoice, StoreError
from sync.desired import DesiredAttributes
from sync.engine import PushStatus, SyncReport, SyncStatus
from sync.failures import logged_failure
from sync.home import (
    PREVIEW,
    PRIVACY_CHOICE,
    RETRY,
    RETRY_ALL,
    SYNC_NOW,
    AdminHome,
    HomeView,
    PersonHome,
    home_view,
    privacy_notice,
    retried_notice,
)
from sync.render import SlackText

log = logging.getLogger(__name__)

HOME_EVENT = "app_home_opened"
PRIVACY_ACTION = re.compile(rf"^{PRIVACY_CHOICE}_\d+$")

Publish = Callable[[str, str, Mapping[str, Any]], None]
"""Publishes (team_id, user_id, view) to Slack (`SlackDirectory.publish_home`); raises SlackDirectoryError."""


class HomeSource(Protocol):
    """Where the Home's values come from (`sync.home.HomeReader`)."""

    def person(self, team_id: str, user_id: str, *, desired: DesiredAttributes | None = None) -> PersonHome: ...
    def admin(self, push: PushStatus | None) -> AdminHome: ...
    def retry_dead_letters(self, ids: Sequence[int] | None) -> int: ...


class HomeEngine(Protocol):
    """What the Home's buttons ask of the sync engine."""

    def sync_now(self, team_id: str, user_id: str) -> SyncReport: ...
    def status(self, team_id: str, user_id: str) -> SyncStatus: ...
    def preview(self, team_id: str, user_id: str) -> DesiredAttributes: ...
    def change_privacy(self, team_id: str, user_id: str, change: Callable[[frozenset[str]], frozenset[str]]
                       ) -> tuple[frozenset[str], PrivacyChoice]: ...


class HomeTab:
    """Publishes people's Home views, and refreshes the views of people who opened theirs lately when the engine
    says it synced them (on a thread of its own: the engine never waits for Slack).

    Who opened their Home, and whether as an admin, is kept in this process for `recent_s` (at most `max_recent`
    people): a sync that another replica did, or one long after, refreshes nobody's view, and the next opening of
    the Home shows the news anyway."""

    def __init__(self, publish: Publish, *, recent_s: float = 3600.0, max_recent: int = 10_000,
                 notice_s: float = 600.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._publish = publish
        self._recent_s, self._max_recent, self._notice_s = recent_s, max_recent, notice_s
        self._monotonic = monotonic
        self._source: HomeSource | None = None
        self._lock = threading.Lock()
        self._recent: OrderedDict[tuple[str, str], tuple[float, bool]] = OrderedDict()
        self._notices: dict[tuple[str, str], tuple[float, str]] = {}
        self._due: dict[tuple[str, str], None] = {}
        self._acting: dict[tuple[str, str], int] = {}
        """People whose action is being worked on: that action publishes its outcome, so the engine's news of the
        sync it causes refreshes nothing (a refresh racing it could land last, without the outcome)."""
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, source: HomeSource) -> None:
        """Start refreshing views; before it, news of syncs is dropped (nobody has opened a Home yet)."""
        self._source = source
        self._thread = threading.Thread(target=self._refresh_loop, name="home-refresh", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def opened(self, team_id: str, user_id: str, *, admin: bool) -> None:
        """The person looks at their Home now (opened it, or acted on it)."""
        with self._lock:
            self._recent[(team_id, user_id)] = (self._monotonic(), admin)
            self._recent.move_to_end((team_id, user_id))
            while len(self._recent) > self._max_recent:
                self._recent.popitem(last=False)

    def person_synced(self, team_id: str, user_id: str) -> None:
        """The engine's news (`on_person_synced`): refresh the person's view soon if they opened it lately."""
        if self._source is None or self._looking(team_id, user_id) is None:
            return
        with self._lock:
            if (team_id, user_id) in self._acting:
                return
            self._due[(team_id, user_id)] = None
        self._wake.set()

    def publish(self, team_id: str, user_id: str, *, notice: str | None = None,
                desired: DesiredAttributes | None = None) -> dict[str, Any]:
        """Build and publish the person's view now; `notice` (the outcome of their action) stays on it for a few
        minutes. Returns the view. Raises SlackDirectoryError, StoreError."""
        source = self._source
        if source is None:
            raise RuntimeError("HomeTab.publish before start")
        key = (team_id, user_id)
        with self._lock:
            now = self._monotonic()
            if notice is not None:
                # Notices outlive `notice_s` only until the next one is kept: bounded by the people acting lately.
                self._notices = {held: kept for held, kept in self._notices.items() if now - kept[0] < self._notice_s}
                self._notices[key] = (now, notice)
            noticed = self._notices.get(key)
        admin = self._looking(team_id, user_id) is True
        person = source.person(team_id, user_id, desired=desired)
        fresh = noticed is not None and self._monotonic() - noticed[0] < self._notice_s
        view = home_view(HomeView(person, source.admin(person.status.push) if admin else None,
                                  noticed[1] if fresh and noticed is not None else ""))
        self._publish(team_id, user_id, view)
        return view

    @contextlib.contextmanager
    def acting(self, team_id: str, user_id: str) -> Iterator[None]:
        """While the person's action is worked on and its outcome published (see `_acting`)."""
        key = (team_id, user_id)
        with self._lock:
            self._acting[key] = self._acting.get(key, 0) + 1
            self._due.pop(key, None)
        try:
            yield
        finally:
            with self._lock:
                self._acting[key] -= 1
                if not self._acting[key]:
                    del self._acting[key]

    def retry(self, ids: Sequence[int] | None) -> int:
        """Requeue dead letters (None: all); returns how many."""
        if self._source is None:
            raise RuntimeError("HomeTab.retry before start")
        return self._source.retry_dead_letters(ids)

    def _looking(self, team_id: str, user_id: str) -> bool | None:
        """Whether the person opened their Home lately (True: as an admin); None: not lately."""
        with self._lock:
            seen = self._recent.get((team_id, user_id))
        if seen is None or self._monotonic() - seen[0] > self._recent_s:
            return None
        return seen[1]

    def _refresh_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                due, self._due = list(self._due), {}
            for team_id, user_id in due:
                if self._stop.is_set():
                    return
                try:
                    self.publish(team_id, user_id)
                except (SlackDirectoryError, StoreError) as error:
                    log.warning("could not refresh the Home tab of %s: %s", user_id, error)
                except Exception:  # the refresher must outlive a bug; the traceback says where
                    log.exception("refreshing the Home tab of %s failed", user_id)


def register(app: App, home: HomeTab, engine: HomeEngine, *, admins: frozenset[str]) -> None:
    """Listen to app_home_opened and the Home's actions: an acknowledgement at once, the work lazily."""

    def acknowledge(ack: Ack) -> None:
        ack()

    def on_opened(event: Mapping[str, Any], body: Mapping[str, Any], context: BoltContext,
                  client: WebClient) -> None:
        user_id, team_id = event.get("user"), context.team_id or body.get("team_id")
        if event.get("tab") != "home" or not is_slack_id(user_id) or not is_slack_id(team_id):
            return  # the Messages tab, or no usable ids: nothing to publish
        home.opened(team_id, user_id, admin=is_admin(client, user_id, admins))
        _publish(home, team_id, user_id, "opening the Home tab", None)

    def on_action(body: Mapping[str, Any], action: Mapping[str, Any], context: BoltContext,
                  client: WebClient) -> None:
        user = body.get("user") if isinstance(body.get("user"), Mapping) else {}
        user_id, team_id = context.user_id or user.get("id"), context.team_id or user.get("team_id")
        if not is_slack_id(user_id) or not is_slack_id(team_id):
            log.warning("a Home tab action names no usable user or workspace; ignored")
            return
        admin = is_admin(client, user_id, admins)
        home.opened(team_id, user_id, admin=admin)
        with home.acting(team_id, user_id):
            act(home, engine, body, action, team_id, user_id, admin=admin)

    app.event(HOME_EVENT)(ack=acknowledge, lazy=[on_opened])
    for action_id in (SYNC_NOW, PREVIEW, RETRY, RETRY_ALL, PRIVACY_ACTION):
        app.action(action_id)(ack=acknowledge, lazy=[on_action])


def act(home: HomeTab, engine: HomeEngine, body: Mapping[str, Any], action: Mapping[str, Any], team_id: str,
        user_id: str, *, admin: bool) -> str:
    """Do what one Home action asks and publish the view with its outcome; returns the notice (for tests)."""
    action_id = str(action.get("action_id", ""))
    desired: DesiredAttributes | None = None
    render = SlackText()
    try:
        if action_id == SYNC_NOW:
            notice = render.sync_report(engine.sync_now(team_id, user_id), whose="your")
        elif action_id == PREVIEW:
            desired = engine.preview(team_id, user_id)
            notice = "*Preview* (nothing written): " + render.preview(desired, whose="your")
        elif action_id in (RETRY, RETRY_ALL):
            notice = _retry(home, action, user_id, admin=admin)
        elif PRIVACY_ACTION.match(action_id):
            notice = _choose(engine, body, action, team_id, user_id)
        else:
            return ""
    except StoreError as error:
        error_id = logged_failure(log, f"Home tab {action_id} for {user_id!r}: the database is unreachable", error)
        notice = f"The app cannot reach its database right now, so nothing was done; try again in a minute " \
                 f"(error id {error_id})."
    except (SlackDirectoryError, GenesysError) as error:
        error_id = logged_failure(log, f"Home tab {action_id} for {user_id!r} failed", error)
        notice = f"Sorry, that failed (error id {error_id}). An operator finds the cause in the app's log by that id."
    except Exception as error:  # noqa: BLE001 (the person must get an answer; logged_failure keeps the traceback)
        error_id = logged_failure(log, f"Home tab {action_id} for {user_id!r} failed", error, traceback=True)
        notice = f"Sorry, that failed (error id {error_id}). An operator finds the cause in the app's log by that id."
    _publish(home, team_id, user_id, f"the Home tab's {action_id}", notice, desired)
    return notice


def _retry(home: HomeTab, action: Mapping[str, Any], user_id: str, *, admin: bool) -> str:
    if not admin:
        log.warning("Slack user %s pressed an admin's Retry on the Home tab without being an admin; refused", user_id)
        return "Only workspace admins and owners (or people listed in SYNC_ADMINS) can retry dead letters."
    if action.get("action_id") == RETRY_ALL:
        count = home.retry(None)
        log.info("Slack user %s requeued every dead letter (%d) from the Home tab", user_id, count)
        return retried_notice(count, all_of_them=True)
    value = str(action.get("value", ""))
    if not value.isdigit():
        return "That Retry button names no dead letter; reopen the Home tab."
    count = home.retry([int(value)])
    log.info("Slack user %s requeued dead letter %s from the Home tab", user_id, value)
    return retried_notice(count, all_of_them=False)


def _choose(engine: HomeEngine, body: Mapping[str, Any], action: Mapping[str, Any], team_id: str,
            user_id: str) -> str:
    """Record the ticked and unticked optional keys of one checkbox block, then sync now so that an unticked key
    is cleared on the live participants within seconds."""
    before, choice = engine.change_privacy(team_id, user_id,
                                           lambda before: chosen_withheld(before, body.get("view"), action))
    withheld = choice.withheld
    hidden, shared = sorted(withheld - before), sorted(before - withheld)
    notice = privacy_notice(hidden, shared)
    if not hidden and not shared:
        return notice
    report = engine.sync_now(team_id, user_id)
    if report.not_synced is None and not report.participants:
        notice += " No live conversation right now; your next one gets your choice."
    return notice


def chosen_withheld(withheld: frozenset[str], view: object, action: Mapping[str, Any]) -> frozenset[str]:
    """The keys kept back after a change of one checkbox block: that block's keys not ticked, the other blocks'
    choices as they were. The block's keys are read from the view Slack sent with the action."""
    ticked = {str(option.get("value")) for option in action.get("selected_options") or []
              if isinstance(option, Mapping)}
    in_block = set(ticked)
    blocks = view.get("blocks") if isinstance(view, Mapping) else None
    for block in blocks if isinstance(blocks, list) else []:
        if isinstance(block, Mapping) and block.get("block_id") == action.get("block_id"):
            for element in block.get("elements") or []:
                if isinstance(element, Mapping):
                    in_block |= {str(option.get("value")) for option in element.get("options") or []
                                 if isinstance(option, Mapping)}
    return frozenset((withheld - in_block) | (in_block - ticked))


def _publish(home: HomeTab, team_id: str, user_id: str, doing: str, notice: str | None,
             desired: DesiredAttributes | None = None) -> None:
    try:
        home.publish(team_id, user_id, notice=notice, desired=desired)
    except (SlackDirectoryError, StoreError) as error:
        logged_failure(log, f"publishing the Home tab of {user_id!r} after {doing} failed", error)

