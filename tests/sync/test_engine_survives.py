"""The running app (a real process) keeps syncing after Slack's answer is cut off mid-body (a proxy or network
fault that makes http.client raise IncompleteRead), and /healthz reports the engine's liveness."""

from __future__ import annotations

import httpx
import pytest

from localdev.app_process import Running, agent_on_a_call, wait_for


def title_is(app: Running, conversation_id: str, participant_id: str, title: str) -> bool:
    return app.genesys.attributes(conversation_id, participant_id).get("slack.title") == title


@pytest.mark.parametrize("method", ["users.info", "users.profile.get"])
def test_an_answer_cut_off_mid_body_delays_the_write_and_stops_nothing(running: Running, method: str) -> None:
    """A profile read whose answer is cut off is retried; the change and later ones are written, health stays ok."""
    user, participant = agent_on_a_call(running)
    running.slack.cut_next(method)
    assert running.event({"type": "user_change", "user": user}, event_id="EvCut").status_code == 200
    wait_for(lambda: title_is(running, participant.conversation_id, participant.participant_id, "Support Engineer"), 20,
             f"the title to be written once {method} answers whole again")
    assert running.slack.call_count(method) >= 2  # the cut answer, then a whole one
    changed = running.slack.update_profile("U0ADA", title="Team Lead")
    running.event({"type": "user_change", "user": changed}, event_id="EvLater")
    wait_for(lambda: title_is(running, participant.conversation_id, participant.participant_id, "Team Lead"), 10,
             "a later change to be written")
    answer = httpx.get(f"{running.url}/healthz", timeout=5)
    assert answer.status_code == 200
    engine = answer.json()["engine"]
    assert engine["ok"] is True
    assert 0 <= engine["last_tick_s_ago"] < 5
    assert "IncompleteRead" in running.log()  # the cause is named
    assert "Exception in thread" not in running.log()  # and no thread ended on it
