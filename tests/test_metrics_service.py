"""`GET /metrics` of the running app (a real process against the local Slack and Genesys Cloud), with its log in
LOG_FORMAT=json: the counters and gauges move with the work the app does, and every log line is a JSON object."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from localdev.app_process import SIGNING_SECRET, Running, agent_on_a_call, launch, wait_for
from localdev.genesys_cloud import FakeGenesysCloud
from localdev.slack_api import FakeSlack

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Running]:
    with FakeSlack() as slack, FakeGenesysCloud() as genesys:
        running = launch(slack, genesys, tmp_path, env_changes={"LOG_FORMAT": "json"})
        try:
            yield running
        finally:
            running.process.terminate()
            running.process.wait(timeout=10)


def scrape(app: Running) -> Samples:
    response = httpx.get(f"{app.url}/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of `name` over every series whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(value for (sample, series), value in samples.items() if sample == name and wanted <= series)


def test_metrics_move_with_the_apps_work(app: Running) -> None:
    """A profile change written to a live call (its first PATCH answered 429), the same event delivered again and
    an event for a user Slack does not know: writes, events, Genesys requests and 429s, Slack calls, the three
    histograms and the gauges all show it; nothing secret is on the page."""
    before = scrape(app)
    assert total(before, "genesys_sync_database_up") == 1
    assert total(before, "genesys_sync_push_connected") == 0  # GENESYS_PUSH is off for these fakes
    user, participant = agent_on_a_call(app)
    app.genesys.fail_next(429, 1, path_prefix="/api/v2/conversations/", retry_after=0)
    for _ in range(2):  # Slack's redelivery of the same event
        assert app.event({"type": "user_change", "user": user}, event_id="EvMetrics").status_code == 200
    wait_for(lambda: app.genesys.attributes(participant.conversation_id, participant.participant_id)
             .get("slack.title") == "Support Engineer", 15, "the write")
    assert app.event({"type": "user_change", "user": {"id": "U0GHOST", "name": "ghost"}},
                     event_id="EvGhost").status_code == 200
    wait_for(lambda: total(scrape(app), "genesys_sync_dead_letters") == 1, 15, "the unknown user's dead letter")
    wait_for(lambda: total(scrape(app), "genesys_sync_work_pending") == 0, 15, "the queue to drain")

    after = scrape(app)
    assert total(after, "genesys_sync_writes_total", result="written") == 1
    assert total(after, "genesys_sync_slack_events_total", type="user_change", outcome="recorded") == 2
    assert total(after, "genesys_sync_slack_events_total", type="user_change", outcome="duplicate") == 1
    assert total(after, "genesys_sync_genesys_rate_limited_total") == 1
    assert total(after, "genesys_sync_genesys_requests_total", status="429") == 1
    assert total(after, "genesys_sync_genesys_requests_total", operation="attributes write") == 2
    assert total(after, "genesys_sync_genesys_requests_total", operation="token request", status="200") >= 1
    assert total(after, "genesys_sync_slack_api_calls_total", method="users.profile.get", result="ok") == 1
    assert total(after, "genesys_sync_slack_api_calls_total", method="users.info", result="user_not_found") == 1
    assert total(after, "genesys_sync_write_duration_seconds_count") == 1
    assert total(after, "genesys_sync_poll_duration_seconds_count") > total(before,
                                                                            "genesys_sync_poll_duration_seconds_count")
    assert total(after, "genesys_sync_slack_ack_seconds_count") == 3
    assert total(after, "genesys_sync_slack_ack_seconds_bucket", le="3.0") == 3  # every ack within Slack's 3 s
    assert total(after, "genesys_sync_polling") == 1
    page = httpx.get(f"{app.url}/metrics", timeout=5).text
    for secret in ("fake-client-secret", "xoxb-fake-bot-token", SIGNING_SECRET, "ada@example.com"):
        assert secret not in page


def test_every_log_line_is_a_json_object(app: Running) -> None:
    """LOG_FORMAT=json: each line of the running app's log parses, with time, level, logger and message; the write
    is there as the text format words it."""
    user, participant = agent_on_a_call(app)
    app.event({"type": "user_change", "user": user}, event_id="EvJson")
    wait_for(lambda: "synced U0ADA -> conversation" in app.log(), 15, "the write's line")
    lines = [json.loads(line) for line in app.log().splitlines()]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    [synced] = [line for line in lines if line["message"].startswith("synced U0ADA -> conversation")]
    assert synced["logger"] == "sync.engine"
    assert synced["level"] == "INFO"
    assert participant.participant_id in synced["message"]
