"""What the Genesys client reports about its requests, for metrics: an observer the composition root passes in.

The client knows nothing of how it is counted (genesys/ imports only httpx and the standard library): it calls
`RequestObserver.genesys_request` once per HTTP attempt, retries and token requests included, and the caller's
object counts (the app's Prometheus metrics, a test's list).
"""

from __future__ import annotations

from typing import Protocol


class RequestObserver(Protocol):
    """Told of every HTTP attempt the client makes to Genesys Cloud."""

    def genesys_request(self, operation: str, status: int | None) -> None:
        """One attempt of `operation` ("attributes write", "token", …) ended: Genesys answered `status`, or None
        when no answer came (refused, timed out, dropped)."""


class NoObserver:
    """Counts nothing: the default, for the commands and tests that do not look."""

    def genesys_request(self, operation: str, status: int | None) -> None:
        return None


NO_OBSERVER: RequestObserver = NoObserver()
