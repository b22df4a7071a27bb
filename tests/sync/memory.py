"""In-memory Slack and Genesys ports for engine tests (not a test module): no HTTP, no sockets, no real waiting."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from genesys import GenesysUnavailable, GenesysUser, LiveParticipant, VoiceSafeAttributes, WriteResult
from profiles import FieldLabels
from slack_directory import SlackDirectoryError, SlackUserRecord
from store import Store
from sync.engine import SyncEngine
from tests.clocks import FakeClock

TEAM = "T0MEM"


class MemorySlack:
    """A `SlackPort` over a dict of user objects; `failures` are raised by the next profile reads, in turn."""

    def __init__(self) -> None:
        self.users: dict[str, dict[str, Any]] = {}
        self.failures: list[Exception] = []
        self.reads = 0

    def add(self, user_id: str, email: str, title: str, *, updated: int = 1) -> None:
        self.users[user_id] = {"id": user_id, "name": user_id.lower(), "updated": updated,
                               "profile": {"email": email, "title": title}}

    def edit(self, user_id: str, **profile: str) -> None:
        user = self.users[user_id]
        user["profile"] = {**user["profile"], **profile}
        user["updated"] += 1

    def user(self, team_id: str, user_id: str) -> SlackUserRecord:
        self.reads += 1
        if self.failures:
            raise self.failures.pop(0)
        if user_id not in self.users:
            raise SlackDirectoryError("users.info", "user_not_found")
        return SlackUserRecord.of(team_id, user_id, self.users[user_id])

    def labels(self, team_id: str) -> FieldLabels:
        return FieldLabels.empty()

    def user_ids(self, team_id: str) -> Iterator[str]:
        return iter(list(self.users))

    def forget(self, team_id: str) -> None:
        pass


@dataclass
class MemoryGenesys:
    """A `GenesysPort` over dicts: users by e-mail, live participants, and every write in `writes`."""

    users: dict[str, GenesysUser] = field(default_factory=dict)
    live: list[LiveParticipant] = field(default_factory=list)
    attributes: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    writes: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    down: bool = False
    polls: list[float] = field(default_factory=list)
    """When (on `clock`) each org-wide poll was asked for."""
    clock: FakeClock | None = None

    def on_call(self, email: str, conversation_id: str = "c1") -> LiveParticipant:
        user = self.users.setdefault(email, GenesysUser(f"g-{email}", email, email, "active"))
        participant = LiveParticipant(conversation_id, f"p-{conversation_id}", user.id, "voice")
        self.live.append(participant)
        return participant

    def find_user_by_email(self, email: str) -> GenesysUser | None:
        return self.users.get(email)

    def live_participants(self, user_id: str) -> tuple[LiveParticipant, ...]:
        return tuple(p for p in self.live if p.user_id == user_id)

    def org_live_participants(self) -> tuple[LiveParticipant, ...]:
        self.polls.append(self.clock() if self.clock is not None else 0.0)
        if self.down:
            raise GenesysUnavailable("polling live conversations", "Genesys Cloud answered 503", status=503)
        return tuple(self.live)

    def write_attributes(self, conversation_id: str, participant_id: str,
                         attributes: VoiceSafeAttributes) -> WriteResult:
        sent = dict(attributes.attributes)
        self.writes.append((conversation_id, participant_id, sent))
        self.attributes.setdefault((conversation_id, participant_id), {}).update(sent)
        return WriteResult(conversation_id, participant_id, 202, f"ctx-{len(self.writes)}")

    def participant_attributes(self, conversation_id: str, participant_id: str) -> Mapping[str, str] | None:
        return self.attributes.get((conversation_id, participant_id))


class DrainingTimer(FakeClock):
    """A fake timer whose sleeps let the engine work: what the background loop would do meanwhile, on this thread."""

    def __init__(self, engine: list[SyncEngine]) -> None:
        super().__init__(0.0)
        self._engine = engine

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        while self._engine[0].work_once():
            pass

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """The item leases' heartbeat waits here, on its own thread: until `work_once` stops it, never spinning."""
        return event.wait(timeout)


@dataclass
class Memory:
    slack: MemorySlack
    genesys: MemoryGenesys
    store: Store
    clock: FakeClock
    engine: SyncEngine

    def changed(self, user_id: str) -> None:
        self.engine.user_changed(TEAM, {"id": user_id}, None)
        while self.engine.work_once():
            pass
