"""The app's metrics: what each observer seam counts, the gauges read at scrape time, and the page itself.

Each test has its own registry (the app passes one in; nothing uses prometheus_client's global one), and the
counting packages are driven for real: the Genesys client against the local Genesys Cloud, the Slack directory
against the local Slack, the WSGI application called as waitress calls it.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from genesys import GenesysUnreachable, PushState, VoiceSafeLimits, check_attributes
from localdev.genesys_cloud import FakeGenesysCloud
from localdev.slack_api import FakeSlack
from metrics import AppMetrics
from slack_directory import SlackDirectory, SlackDirectoryError
from store import Store, StoreError
from sync import AttributeRules
from sync.engine import EngineSettings, SyncEngine
from tests.clocks import FakeClock
from tests.genesys.support import SECRET, fake_client
from tests.sync.memory import TEAM, MemoryGenesys, MemorySlack
from web.wsgi import HealthReport, wsgi_application


@pytest.fixture
def metrics() -> AppMetrics:
    return AppMetrics(CollectorRegistry())


def value(metrics: AppMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


@dataclass
class Engine:
    """An `EngineState`: whether this replica polls, and its push state."""

    polling: bool = True
    push: PushState | None = None

    def push_state(self) -> PushState | None:
        return self.push


def push_state(*, connected: bool) -> PushState:
    return PushState(connected=connected, channels=1, topics=3, rejected=0, uncovered=0, pending=0,
                     since_last_message_s=1.0, fallback_reason=None if connected else "the socket is down",
                     missing_permissions=())


def test_two_registries_count_apart(metrics: AppMetrics) -> None:
    """Metrics live in the registry passed in: a second AppMetrics in the same process starts from nothing."""
    metrics.write_finished("written")
    other = AppMetrics(CollectorRegistry())
    assert value(metrics, "genesys_sync_writes_total", result="written") == 1
    assert value(other, "genesys_sync_writes_total", result="written") is None


@pytest.mark.parametrize(("report", "sample", "labels"), [
    (lambda m: m.write_finished("rejected"), "genesys_sync_writes_total", {"result": "rejected"}),
    (lambda m: m.slack_event("user_change", "duplicate"), "genesys_sync_slack_events_total",
     {"type": "user_change", "outcome": "duplicate"}),
    (lambda m: m.genesys_request("token", None), "genesys_sync_genesys_requests_total",
     {"operation": "token", "status": "none"}),
    (lambda m: m.slack_api_call("users.info", "user_not_found"), "genesys_sync_slack_api_calls_total",
     {"method": "users.info", "result": "user_not_found"}),
    (lambda m: m.poll_finished(0.3), "genesys_sync_poll_duration_seconds_count", {}),
    (lambda m: m.write_sent(0.02), "genesys_sync_write_duration_seconds_bucket", {"le": "0.05"}),
    (lambda m: m.slack_request_answered(0.004), "genesys_sync_slack_ack_seconds_bucket", {"le": "0.005"}),
])
def test_each_report_counts_once_under_its_labels(metrics: AppMetrics, report: Any, sample: str,
                                                  labels: dict[str, str]) -> None:
    """Every observer method moves its own series by one, under the labels it was given."""
    report(metrics)
    assert value(metrics, sample, **labels) == 1


def test_gauges_read_the_store_and_the_engine_at_each_scrape(metrics: AppMetrics, store: Store) -> None:
    """Work pending and dead letters are the store's at the moment of the scrape; polling and push the engine's."""
    engine = Engine(push=push_state(connected=True))
    metrics.watch(store, engine)
    for key in ("a", "b"):
        store.enqueue("refresh", key, {})
    store.dead_letter(store.claim(worker="w", limit=1)[0], reason="gave up")
    assert [value(metrics, f"genesys_sync_{name}") for name in
            ("work_pending", "dead_letters", "database_up", "polling", "push_connected")] == [1, 1, 1, 1, 1]
    store.requeue_dead_letters()
    engine.polling, engine.push = False, push_state(connected=False)
    assert [value(metrics, f"genesys_sync_{name}") for name in
            ("work_pending", "dead_letters", "polling", "push_connected")] == [2, 0, 0, 0]
    engine.push = None  # push off, or another replica consumes it
    assert value(metrics, "genesys_sync_push_connected") == 0


class UnreachableStore:
    def pending_count(self) -> int:
        raise StoreError("the database is unreachable")

    def dead_letter_count(self) -> int:
        raise StoreError("the database is unreachable")


def test_an_unreachable_database_leaves_its_gauges_out_instead_of_failing_the_scrape(metrics: AppMetrics) -> None:
    """database_up 0, no work or dead-letter gauge, and the rest of the page still served."""
    metrics.watch(UnreachableStore(), Engine())
    metrics.write_finished("written")
    page = metrics.page()[0].decode()
    assert value(metrics, "genesys_sync_database_up") == 0
    assert "genesys_sync_work_pending" not in page
    assert "genesys_sync_dead_letters" not in page
    assert value(metrics, "genesys_sync_writes_total", result="written") == 1


@pytest.fixture
def genesys() -> Iterator[FakeGenesysCloud]:
    with FakeGenesysCloud(client_id="fake-client-id", client_secret=SECRET) as fake:
        yield fake


def test_the_genesys_client_reports_every_attempt_with_its_status(metrics: AppMetrics,
                                                                  genesys: FakeGenesysCloud) -> None:
    """A write answered 429 once, then accepted: the token request, the 429 (also a rate-limited one) and the
    accepted attempt are each counted under their operation and status."""
    participant = genesys.start_conversation(genesys.add_user("ada@example.com"))
    genesys.fail_next(429, 1, path_prefix="/api/v2/conversations/", retry_after=0)
    attributes = check_attributes({"slack.title": "Lead"}, VoiceSafeLimits()).sendable()
    clock = FakeClock()
    with fake_client(genesys, clock, observer=metrics) as client:
        result = client.write_attributes(participant.conversation_id, participant.participant_id, attributes)
    write = {"operation": "attributes write"}
    assert value(metrics, "genesys_sync_genesys_requests_total", **write, status="429") == 1
    assert value(metrics, "genesys_sync_genesys_requests_total", **write, status=str(result.status)) == 1
    assert value(metrics, "genesys_sync_genesys_rate_limited_total", **write) == 1
    assert value(metrics, "genesys_sync_genesys_requests_total", operation="token request", status="200") == 1


def test_the_genesys_client_reports_an_attempt_without_an_answer(metrics: AppMetrics) -> None:
    """A refused connection is an attempt with status none (a closed port: nothing listens there)."""
    with FakeGenesysCloud() as stopped:
        base_url = stopped.base_url
    clock = FakeClock()
    with fake_client(SimpleNamespace(base_url=base_url), clock, observer=metrics) as client, \
            pytest.raises(GenesysUnreachable, match="refused"):
        client.find_user_by_email("ada@example.com")
    attempts = value(metrics, "genesys_sync_genesys_requests_total", operation="token request", status="none")
    assert attempts is not None
    assert attempts >= 1


def test_the_slack_directory_reports_each_call_and_its_result(metrics: AppMetrics) -> None:
    """users.info and users.profile.get are counted ok; a missing user is counted under Slack's error code."""
    with FakeSlack() as slack:
        slack.add_user("U0ADA", name="ada", email="ada@example.com")
        web = SlackDirectory.web_client(slack.bot_token, slack.api_url)
        directory = SlackDirectory(lambda team_id: web, observer=metrics)
        directory.user(slack.team_id, "U0ADA")
        with pytest.raises(SlackDirectoryError):
            directory.user(slack.team_id, "U0NOBODY")
    assert value(metrics, "genesys_sync_slack_api_calls_total", method="users.info", result="ok") == 1
    assert value(metrics, "genesys_sync_slack_api_calls_total", method="users.profile.get", result="ok") == 1
    assert value(metrics, "genesys_sync_slack_api_calls_total", method="users.info", result="user_not_found") == 1


def call(application: Any, method: str, path: str) -> tuple[str, dict[str, str], bytes]:
    answered: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        answered.update(status=status, headers=dict(headers))

    body = b"".join(application({"REQUEST_METHOD": method, "PATH_INFO": path, "wsgi.input": io.BytesIO(b"")},
                                start_response))
    return answered["status"], answered["headers"], body


def test_metrics_are_served_beside_healthz_without_secrets(metrics: AppMetrics) -> None:
    """GET /metrics answers the text format (HEAD: no body); a request to the Slack path is timed as its ack."""
    metrics.genesys_request("attributes write", 200)

    def slack(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [b""]

    verifier = type("Verifier", (), {"is_valid": lambda *args: True})()
    application = wsgi_application(slack, HealthReport, verifier=verifier, metrics=metrics)  # type: ignore[arg-type]
    status, headers, body = call(application, "GET", "/metrics")
    assert status == "200 OK"
    assert headers["Content-Type"].startswith("text/plain")
    families = {family.name for family in text_string_to_metric_families(body.decode())}
    assert {"genesys_sync_genesys_requests", "genesys_sync_writes", "genesys_sync_slack_ack_seconds"} <= families
    assert call(application, "HEAD", "/metrics")[2] == b""
    call(application, "POST", "/slack/events")
    assert value(metrics, "genesys_sync_slack_ack_seconds_count") == 1
    assert call(wsgi_application(None, HealthReport), "GET", "/metrics")[0].startswith("404")


def test_the_engine_reports_each_write_and_poll(metrics: AppMetrics, store: Store, clock: FakeClock) -> None:
    """One profile written, then polled twice more: written once, unchanged twice, one PATCH timed, three polls."""
    slack, genesys = MemorySlack(), MemoryGenesys()
    engine = SyncEngine(store=store, genesys=genesys, slack=slack, rules=AttributeRules(), clock=clock,
                        settings=EngineSettings(worker="metrics"), timer=clock, observer=metrics)
    slack.add("U0ADA", "ada@example.com", "Support Engineer")
    genesys.on_call("ada@example.com")
    engine.user_changed(TEAM, {"id": "U0ADA"}, None)
    engine.work_once()
    assert [engine.poll_once() for _ in range(3)] == [1, 0, 0]
    assert value(metrics, "genesys_sync_writes_total", result="written") == 1
    assert value(metrics, "genesys_sync_writes_total", result="unchanged") == 2
    assert value(metrics, "genesys_sync_write_duration_seconds_count") == 1
    assert value(metrics, "genesys_sync_poll_duration_seconds_count") == 3
