"""What `GET /healthz` reports: one part per thing the app depends on, each a value, rendered to the JSON
the endpoint serves (`HealthReport`). The app is healthy only when no part says `"ok": false`.

The parts are read fresh on every request, from the objects that know: the store's round trip, the engine's
liveness and last poll, the Slack authorization verified at start, the Socket Mode connection.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

from slack_bolt.adapter.socket_mode import SocketModeHandler

from handlers.app import SlackAuthorization
from slack_directory import StoreInstallationStore
from store import Store, StoreError
from sync.engine import Liveness, PushState, SyncEngine
from web.wsgi import HealthReport


@dataclass(frozen=True, slots=True)
class DatabasePart:
    """Whether the database answered a real query just now."""

    ok: bool
    detail: str

    def json(self) -> dict[str, object]:
        return {"ok": self.ok, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class LinksPart:
    """Slack users not synced because their Genesys user is linked to another Slack user (/genesys-sync status
    names who). Counted, never `ok: false`: everyone else still syncs."""

    conflicts: int | None
    """None when the database could not be asked."""

    def json(self) -> dict[str, object]:
        if self.conflicts is None:
            return {"detail": "the database is unreachable"}
        return {"conflicts": self.conflicts}


def engine_json(liveness: Liveness) -> dict[str, object]:
    """The `engine` part: whether the loop turns, how long ago it last did, and which of its steps fail."""
    part: dict[str, object] = {"ok": liveness.ok}
    if liveness.last_tick_s_ago is not None:
        part["last_tick_s_ago"] = round(liveness.last_tick_s_ago, 1)
    if not liveness.running:
        part["detail"] = "the sync engine is not running" if liveness.last_tick_s_ago is None \
            else "the sync engine stopped"
    elif not liveness.ok:
        part["detail"] = (f"the sync engine has not turned for {liveness.last_tick_s_ago:.0f} s (stuck; more than "
                          f"{liveness.stalled_after_s:.0f} s): restart the app")
    if liveness.failing:
        part["failing"] = dict(liveness.failing)
    return part


@dataclass(frozen=True, slots=True)
class GenesysPart:
    """The engine's last poll of Genesys: None before the first one, or while another replica polls."""

    ok: bool | None
    detail: str

    def json(self) -> dict[str, object]:
        return {"ok": self.ok, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class PushPart:
    """Genesys' notifications. Never `ok: false`: while they are down or refused the fast poll finds new calls (the
    app works, only slower), so a load balancer must not take the replica out; `state` and `detail` say why."""

    enabled: bool
    polling: bool
    """Whether this replica holds the poll lease (the one that consumes notifications)."""
    state: PushState | None

    def json(self) -> dict[str, object]:
        if not self.enabled:
            return {"state": "off", "detail": "GENESYS_PUSH is off: new calls are found by the poll"}
        if self.state is None:
            return {"state": "another replica" if not self.polling else "starting"}
        state = self.state
        part: dict[str, object] = {
            "state": "connected" if state.healthy else "fallback", "channels": state.channels,
            "topics": state.topics}
        if state.since_last_message_s is not None:
            part["last_message_s_ago"] = round(state.since_last_message_s, 1)
        if not state.healthy:
            part["detail"] = f"{state.fallback_reason}; new calls are found by the fast poll meanwhile"
        if state.missing_permissions:
            part["missing_permissions"] = list(state.missing_permissions)
        return part


@dataclass(frozen=True, slots=True)
class SlackPart:
    """How Slack reaches the app and whether its requests can be authorized. The field order is the JSON's."""

    mode: str
    """"http" or "socket"."""
    ok: bool
    workspace: str | None = None
    """One workspace: the bot token's."""
    auth: str | None = None
    detail: str | None = None
    """What is wrong, when the bot token no longer works."""
    workspaces: int | None = None
    """OAuth: how many workspaces installed the app."""
    connection: str | None = None
    """Socket Mode: "connected" or "not connected"."""

    def json(self) -> dict[str, object]:
        return {name: value for name, value in asdict(self).items() if value is not None}


@dataclass(frozen=True, slots=True)
class Health:
    """Every part of /healthz, in the order the JSON lists them."""

    database: DatabasePart
    engine: Liveness
    links: LinksPart
    genesys: GenesysPart
    slack: SlackPart
    push: PushPart

    def report(self) -> HealthReport:
        return HealthReport({"database": self.database.json(), "engine": engine_json(self.engine),
                             "links": self.links.json(), "genesys": self.genesys.json(), "push": self.push.json(),
                             "slack": self.slack.json()})


def health_report(store: Store, engine: SyncEngine, socket_mode: SocketModeHandler | None,
                  authorization: SlackAuthorization,
                  installations: StoreInstallationStore | None = None, *, details: bool = True,
                  client_ids: Sequence[str] = ()) -> HealthReport:
    """/healthz; without `details` (HEALTH_DETAILS) it names neither where the database is (path, user, host) nor
    the OAuth `client_ids`, since anyone who reaches the port may read it."""
    database = store.health()
    links = LinksPart(None)
    # The database may stop answering after its part said ok: the links part then keeps its detail.
    with contextlib.suppress(StoreError):
        if database.ok:
            links = LinksPart(store.link_conflict_count())
    workspaces = len(installations.installed_workspaces()) if installations is not None and database.ok else None
    return Health(
        database=DatabasePart(database.ok, database.detail if details else database.brief),
        engine=engine.liveness(),
        links=links,
        genesys=genesys_part(engine, client_ids=() if details else client_ids),
        slack=slack_part(authorization, socket_mode, workspaces),
        push=push_part(engine, client_ids=() if details else client_ids),
    ).report()


def genesys_part(engine: SyncEngine, *, client_ids: Sequence[str] = ()) -> GenesysPart:
    """The last poll's outcome; `client_ids` are masked in its error (a refused client's id is in Genesys' text)."""
    status = engine.genesys_status()
    ok, error = status.ok, _masked(status.error, client_ids)
    if not engine.polling and ok is None:
        return GenesysPart(ok, "another replica polls")
    return GenesysPart(ok, error or ("polling" if ok else "not polled yet"))


def push_part(engine: SyncEngine, *, client_ids: Sequence[str] = ()) -> PushPart:
    """Push's state; `client_ids` are masked in its reason (a refused subscription call names the client)."""
    state = engine.push_state()
    if state is not None and state.fallback_reason:
        state = replace(state, fallback_reason=_masked(state.fallback_reason, client_ids))
    return PushPart(engine.push_enabled, engine.polling, state)


def _masked(text: str, client_ids: Sequence[str]) -> str:
    for client_id in (client_id for client_id in client_ids if client_id):
        text = text.replace(client_id, "***")
    return text


def slack_part(authorization: SlackAuthorization, socket_mode: SocketModeHandler | None,
               workspaces: int | None) -> SlackPart:
    """Slack's part: the authorization verified at start (or OAuth's per-request one) and the Socket Mode link."""
    identity = authorization.identity
    if identity is None:
        part = SlackPart("http", True, auth="each workspace's installation (OAuth)", workspaces=workspaces)
    elif authorization.revoked:
        part = SlackPart("http", False, identity.team_id, workspaces=workspaces,
                         detail="the app was uninstalled or its bot token revoked; reinstall it and update "
                                "SLACK_BOT_TOKEN")
    else:
        part = SlackPart("http", True, identity.team_id, auth="bot token verified at start (auth.test)",
                         workspaces=workspaces)
    if socket_mode is None:
        return part
    connected = bool(socket_mode.client.is_connected())
    return replace(part, mode="socket", ok=part.ok and connected,
                   connection="connected" if connected else "not connected")
