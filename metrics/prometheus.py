"""`AppMetrics`: the app's metrics in one Prometheus registry, served at `GET /metrics` in the text format.

Two kinds, read two ways:
- **process metrics** (counters and histograms): what this process did since it started (writes by result, Slack
  events, Genesys requests by status, Slack API calls, durations). The packages report them through their own small
  observer seams (`genesys.RequestObserver`, `sync.observer.EngineObserver`, `handlers.events.EventObserver`,
  `slack_directory.directory.SlackCallObserver`, `web.wsgi.WebMetrics`), which `AppMetrics` implements; none of
  them imports prometheus_client. A restart starts them at zero, as Prometheus' `rate()` expects; with several
  replicas, sum them over the replicas.
- **state** (gauges): read from the store and the engine at each scrape (`StateCollector`), so every replica reports
  the same work pending and dead letters (the database's), and its own push and poll state.

The registry is passed in by the composition root (`app.py`): no module-level registry, so each test has its own.
No label carries a secret or a person: labels are results, HTTP statuses, operation names and Slack method names.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from genesys import PushState
from store import StoreError

log = logging.getLogger(__name__)

PREFIX = "genesys_sync"

_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
"""A Genesys call takes tens of milliseconds; a poll of many pages, or a call waiting out a rate limit, minutes."""
_ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0)
"""Slack wants its answer within 3 s: the buckets are fine below that and say little above."""


class StoreState(Protocol):
    """The part of `store.Store` the gauges read."""

    def pending_count(self) -> int: ...
    def dead_letter_count(self) -> int: ...


class EngineState(Protocol):
    """The part of `sync.engine.SyncEngine` the gauges read."""

    @property
    def polling(self) -> bool: ...
    def push_state(self) -> PushState | None: ...


class StateCollector(Collector):
    """Gauges read at scrape time: work pending and dead letters (the store's, shared by the replicas), whether the
    database answered, and this replica's poll and push state. A database that does not answer leaves its two gauges
    out and says so in `…_database_up`, instead of failing the scrape."""

    def __init__(self, store: StoreState, engine: EngineState) -> None:
        self._store = store
        self._engine = engine

    def collect(self) -> Iterator[Metric]:
        try:
            counts = (self._store.pending_count(), self._store.dead_letter_count())
        except StoreError as error:
            log.debug("metrics: the database did not answer: %s", error)
            counts = None
        yield _gauge("database_up", "1 when the database answered this scrape's reads, else 0", counts is not None)
        if counts is not None:
            yield _gauge("work_pending", "Work items not yet done (due, waiting or claimed), all replicas'", counts[0])
            yield _gauge("dead_letters", "Work items the engine gave up on (`python app.py dead-letters` lists them)",
                         counts[1])
        yield _gauge("polling", "1 when this replica holds the poll lease (polls Genesys and writes)",
                     self._engine.polling)
        push = self._engine.push_state()
        yield _gauge("push_connected", "1 when this replica's Genesys notification sockets are all open (0: push off, "
                     "down, or another replica consumes it)", push is not None and push.connected)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", documentation, value=float(value))


class AppMetrics:
    """The process's metrics: every observer seam of the packages, the gauges (`watch`) and the page (`page`)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

        def counter(name: str, documentation: str, labels: tuple[str, ...]) -> Counter:
            return Counter(f"{PREFIX}_{name}", documentation, labels, registry=registry)

        def histogram(name: str, documentation: str, buckets: tuple[float, ...]) -> Histogram:
            return Histogram(f"{PREFIX}_{name}", documentation, buckets=buckets, registry=registry)

        self._writes = counter("writes", "Participant writes by result: written, unchanged (carried the attributes "
                               "already), gone (the call ended), rejected (by Genesys), failed (retried later)",
                               ("result",))
        self._events = counter("slack_events", "Slack user events (user_change, team_join) by outcome: recorded, "
                               "duplicate (a redelivery) or ignored", ("type", "outcome"))
        self._genesys_requests = counter("genesys_requests", "HTTP attempts to Genesys Cloud (retries and token "
                                         "requests included) by operation and status; status none: no answer",
                                         ("operation", "status"))
        self._rate_limited = counter("genesys_rate_limited", "Genesys answers 429 (rate limited), by operation",
                                     ("operation",))
        self._slack_calls = counter("slack_api_calls", "Slack Web API calls reading profiles, by method and result "
                                    "(ok, Slack's error code, or unreachable)", ("method", "result"))
        self._poll = histogram("poll_duration_seconds", "How long a poll of the org's live participants took (every "
                               "page of the analytics query)", _DURATION_BUCKETS)
        self._write = histogram("write_duration_seconds", "How long a participant attributes PATCH took (retries "
                                "and rate-limit waits included)", _DURATION_BUCKETS)
        self._ack = histogram("slack_ack_seconds", "How long Slack's requests to /slack/events waited for their "
                              "answer (HTTP mode; Slack wants it within 3 s)", _ACK_BUCKETS)

    def watch(self, store: StoreState, engine: EngineState) -> None:
        """Add the gauges read from `store` and `engine` at each scrape (once the engine exists)."""
        self.registry.register(StateCollector(store, engine))

    def page(self) -> tuple[bytes, str]:
        """Every metric in Prometheus' text format, and its Content-Type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    # genesys.RequestObserver
    def genesys_request(self, operation: str, status: int | None) -> None:
        self._genesys_requests.labels(operation, "none" if status is None else str(status)).inc()
        if status == 429:
            self._rate_limited.labels(operation).inc()

    # sync.observer.EngineObserver
    def write_finished(self, result: str) -> None:
        self._writes.labels(result).inc()

    def write_sent(self, seconds: float) -> None:
        self._write.observe(seconds)

    def poll_finished(self, seconds: float) -> None:
        self._poll.observe(seconds)

    # handlers.events.EventObserver
    def slack_event(self, event_type: str, outcome: str) -> None:
        self._events.labels(event_type, outcome).inc()

    # slack_directory.directory.SlackCallObserver
    def slack_api_call(self, method: str, result: str) -> None:
        self._slack_calls.labels(method, result).inc()

    # web.wsgi.WebMetrics
    def slack_request_answered(self, seconds: float) -> None:
        self._ack.observe(seconds)
