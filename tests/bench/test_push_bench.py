"""bench/push.py --quick: the report has every scenario, push carried the calls faster than the poll could, the
poll carried them without push, and the fallbacks kept calls within the fast poll's interval."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from bench.push import POLL_INTERVAL_S, Latencies
from localdev.app_process import REPO

FAULTED = ("push off (GENESYS_PUSH=off)", "push, every topic rejected", "push, every socket cut every 5 s",
           "push, every channel expired", "push, socket_closing on every socket")
SCENARIOS = {"push (defaults)", *FAULTED}


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    done = subprocess.run([sys.executable, str(REPO / "bench" / "push.py"), "--quick", "--json"],
                          capture_output=True, text=True, timeout=80, cwd=REPO, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return dict(json.loads(done.stdout))


def scenario(report: dict[str, Any], name: str) -> dict[str, Any]:
    return dict(next(s for s in report["scenarios"] if s["name"] == name))


def test_percentiles_are_nearest_rank_and_never_carried_calls_count_apart() -> None:
    """Latencies.of: nearest-rank p50/p95 over the carried calls; a call never written is counted, not timed."""
    figures = Latencies.of([0.1 * n for n in range(1, 21)] + [None])
    assert (figures.calls, figures.carried, figures.p50_s, figures.p95_s, figures.max_s) == (21, 20, 1.0, 1.9, 2.0)
    assert Latencies.of([None]) == Latencies(1, 0, None, None, None)


@pytest.mark.timeout(90)
def test_quick_report_has_every_scenario(report: dict[str, Any]) -> None:
    """Every scenario ran with the app's own defaults (its start-up line says how it polls), and scale was measured."""
    assert {s["name"] for s in report["scenarios"]} == SCENARIOS
    assert "notifications with a poll every 60 s, every 5 s while they are down" in \
        scenario(report, "push (defaults)")["engine"]
    assert scenario(report, "push off (GENESYS_PUSH=off)")["engine"] == "poll every 5 s"
    (scale,) = report["scale"]
    assert (scale["people"], scale["channels"], scale["topics"]) == (150, 1, 150)
    assert scale["subscribed_s"] is not None
    assert scale["rss_settled_kib"] > 0
    assert scale["requests"]["user searches"] >= 150


@pytest.mark.timeout(90)
def test_push_carries_every_call_faster_than_the_poll(report: dict[str, Any]) -> None:
    """With push every call is written well within the poll's interval, and the idle poll is the slow one."""
    push = scenario(report, "push (defaults)")
    assert push["latency"]["carried"] == push["latency"]["calls"] == 10
    assert push["latency"]["p95_s"] < 1.0 < POLL_INTERVAL_S
    assert push["idle"]["queries"] == 0  # 3 s of a 60 s poll, after the fast poll's last turn


@pytest.mark.timeout(90)
def test_without_push_the_poll_carries_the_calls(report: dict[str, Any]) -> None:
    """Push off, rejected, cut, expired or closing: every call still written, within the fast poll's interval and
    a bit."""
    for name in FAULTED:
        latency = scenario(report, name)["latency"]
        assert latency["carried"] == latency["calls"] > 0, name
        assert latency["max_s"] < POLL_INTERVAL_S + 1.5, name
    assert "names the permission: True" in scenario(report, "push, every topic rejected")["notes"]


@pytest.mark.timeout(90)
def test_push_comes_back_after_one_fault(report: dict[str, Any]) -> None:
    """After expired channels or socket_closing the engine says push works again within the window."""
    for name in ("push, every channel expired", "push, socket_closing on every socket"):
        down_s = scenario(report, name)["down_s"]
        assert down_s is not None, name
        assert down_s < 5, name
