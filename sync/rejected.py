"""The writes Genesys refused, remembered so the engine does not send the same refused map to the same participant
on every poll; bounded, so a long-running process does not keep every refusal it ever saw."""

from __future__ import annotations

import threading
from collections.abc import Collection

RejectedWrite = tuple[str, str, str]
"""(conversation_id, participant_id, attributes_hash)."""


class RejectedWrites:
    """A bounded set of refused writes; thread-safe (the engine's thread and `/genesys-sync` both write).

    Two bounds, because either alone leaves a gap: the poller keeps only the participants it just found live
    (`keep_only`), which empties it as conversations end; a replica that does not poll never prunes, so at most
    `limit` entries are kept, the oldest forgotten first. Forgetting one costs at most one more refused request.
    """

    def __init__(self, limit: int = 10_000) -> None:
        if limit < 1:
            raise ValueError(f"RejectedWrites: limit must be at least 1 (got {limit})")
        self._limit = limit
        self._entries: dict[RejectedWrite, None] = {}  # insertion-ordered: the first key is the oldest
        self._lock = threading.Lock()

    def add(self, write: RejectedWrite) -> None:
        with self._lock:
            self._entries.pop(write, None)
            self._entries[write] = None
            while len(self._entries) > self._limit:
                del self._entries[next(iter(self._entries))]

    def __contains__(self, write: object) -> bool:
        with self._lock:
            return write in self._entries

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def keep_only(self, live: Collection[tuple[str, str]]) -> int:
        """Forget the refusals of participants not in `live` (conversation_id, participant_id); returns how many."""
        with self._lock:
            gone = [write for write in self._entries if (write[0], write[1]) not in live]
            for write in gone:
                del self._entries[write]
        return len(gone)
