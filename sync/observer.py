"""What the sync engine reports as it works, for metrics: an observer the composition root passes in.

The engine calls it at the few places its work ends (a participant write decided, a write sent, a poll of Genesys
done); how that is counted (the app's Prometheus metrics, a test's list) is the caller's business.
"""

from __future__ import annotations

from typing import Protocol


class EngineObserver(Protocol):
    """Told of the engine's writes and polls."""

    def write_finished(self, result: str) -> None:
        """One participant write ended: written, unchanged, gone, rejected or failed (`ParticipantResult.result`)."""

    def write_sent(self, seconds: float) -> None:
        """A participant attributes PATCH took `seconds` (retries and rate-limit waits included), whatever came."""

    def poll_finished(self, seconds: float) -> None:
        """A poll of the org's live participants (every page of the analytics query) took `seconds`."""


class NoObserver:
    """Counts nothing: the default, for tests and the commands that do not look."""

    def write_finished(self, result: str) -> None:
        return None

    def write_sent(self, seconds: float) -> None:
        return None

    def poll_finished(self, seconds: float) -> None:
        return None


NO_OBSERVER: EngineObserver = NoObserver()
