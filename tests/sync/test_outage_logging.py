"""A Genesys outage under the running app (a real process): one warning when it starts, naming the cause, and one
line when it ends, however many polls and retries fail in between."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from localdev.app_process import Running, agent_on_a_call, wait_for
from localdev.genesys_cloud import FakeGenesysCloud

OUTAGE_STARTED = "WARNING genesys.retries: Genesys unreachable: "
OUTAGE_ENDED = "INFO genesys.retries: Genesys reachable again after "
PER_POLL_LINES = ("Genesys poll failed", "retry 1 of", "writing Slack user", "failed (attempt")


def lines(app: Running, marker: str) -> list[str]:
    return [line for line in app.log().splitlines() if marker in line]


def answer_503_for_6_s(genesys: FakeGenesysCloud) -> None:
    genesys.fail_for(503, 6, path_prefix="/api/v2/", retry_after=1)


def stop_answering(genesys: FakeGenesysCloud) -> None:
    genesys.stop()


@pytest.mark.parametrize(
    ("outage", "cause", "ends"),
    [
        (answer_503_for_6_s, "503 service.unavailable from 127.0.0.1:", True),
        (stop_answering, "connection refused (ConnectError) at 127.0.0.1:", False),
    ],
)
def test_an_outage_is_one_warning_and_one_recovery_line(running: Running, outage: Callable[[FakeGenesysCloud], None],
                                                         cause: str, ends: bool) -> None:
    """Over ten poll intervals of outage the log has one warning naming the cause and host, then (once Genesys answers
    again) one line saying after how long; nothing per poll, retry or participant."""
    agent_on_a_call(running)
    wait_for(lambda: running.genesys.request_count(path_prefix="/api/v2/analytics") >= 2, 10, "two polls")
    outage(running.genesys)
    wait_for(lambda: bool(lines(running, OUTAGE_STARTED)), 10, f"the outage warning; log:\n{running.log()}")
    time.sleep(10)  # ten poll intervals
    [warning] = lines(running, OUTAGE_STARTED)
    assert cause in warning, warning
    assert warning.partition(cause)[2].split(";")[0] == str(running.genesys.base_url.rsplit(":", 1)[1].rstrip("/"))
    if ends:
        [ended] = lines(running, OUTAGE_ENDED)
        seconds = int(ended.partition(OUTAGE_ENDED)[2].split()[0])
        assert 4 <= seconds <= 12, ended
    else:
        assert lines(running, OUTAGE_ENDED) == []
    for marker in PER_POLL_LINES:
        assert lines(running, marker) == [], marker
    assert "Traceback" not in running.log()
