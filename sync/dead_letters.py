"""Dead letters: work the engine gave up on, looked at and sent back to the queue by an operator.

`retry_dead_letters` is the one way back, for the `dead-letters retry` command and the admins' Home tab alike: the
store requeues them (due now, a fresh retry budget) and one log line says which and at whose request, so a retry is
found in the log like any other change. The running engine's worker picks them up on its next turn, on any replica.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

from store import DeadLetter

log = logging.getLogger(__name__)


class DeadLetterStore(Protocol):
    """The part of `store.Store` dead letters need."""

    def dead_letters(self, *, limit: int = 50) -> list[DeadLetter]: ...
    def dead_letter_count(self) -> int: ...
    def requeue_dead_letters(self, ids: Collection[int] | None = None) -> list[DeadLetter]: ...


@dataclass(frozen=True, slots=True)
class Retried:
    """The outcome of `retry_dead_letters`."""

    requeued: tuple[DeadLetter, ...]
    """Back on the work queue, oldest first."""
    unknown: tuple[int, ...] = ()
    """Ids asked for that are no dead letter (mistyped, or requeued meanwhile by someone else)."""


def retry_dead_letters(store: DeadLetterStore, ids: Collection[int] | None, *, by: str) -> Retried:
    """Requeue the dead letters `ids` (None: every one); `by` says who asked, for the log line ("the dead-letters
    command", "admin U0123 on the Home tab")."""
    requeued = tuple(store.requeue_dead_letters(None if ids is None else list(ids)))
    found = {dead.id for dead in requeued}
    unknown = tuple(dict.fromkeys(dead_id for dead_id in ids or () if dead_id not in found))
    if requeued:
        log.info("requeued %d dead letter(s) at the request of %s: %s", len(requeued), by,
                 ", ".join(f"#{dead.id} {dead.kind} {dead.key}" for dead in requeued))
    return Retried(requeued, unknown)
