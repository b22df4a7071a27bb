"""The screening of /slack/events bodies for the App Home: its event and its block_actions pass, broken ones do not."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest

from localdev.slack_api import block_actions_body, event_envelope
from web.slack_request import SHAPE, screen

FORM = "application/x-www-form-urlencoded"
VIEW = {"id": "V0HOME", "type": "home", "blocks": [], "hash": "1.x", "state": {"values": {}}}


def test_app_home_opened_passes() -> None:
    """app_home_opened is a subscribed event: Bolt gets it."""
    body = json.dumps(event_envelope({"type": "app_home_opened", "user": "U0ADA", "channel": "D0ADA",
                                      "tab": "home", "view": VIEW, "event_ts": "1.2"})).encode()
    assert screen(body, "application/json") is None


@pytest.mark.parametrize("action", [
    {"action_id": "home_sync_now", "block_id": "b", "type": "button", "value": "sync",
     "text": {"type": "plain_text", "text": "Sync now"}},
    {"action_id": "home_privacy_0", "block_id": "home_privacy_0", "type": "checkboxes",
     "selected_options": [{"text": {"type": "plain_text", "text": "slack.pronouns"}, "value": "slack.pronouns"}]},
])
def test_block_actions_from_the_home_pass(action: dict[str, Any]) -> None:
    """A Home tab click (form-encoded payload=) is screened in, with the view it came from."""
    assert screen(block_actions_body(VIEW, action, user_id="U0ADA"), FORM) is None


@pytest.mark.parametrize(("actions", "reason"), [
    (None, "without a list of actions"),
    ([], "without a list of actions"),
    (["home_sync_now"], "without a list of actions"),
    ([{"block_id": "b"}], "names no action_id"),
    ([{"action_id": 7}], "a number at action_id, not a string"),
])
def test_block_actions_bolt_cannot_route_are_screened_out(actions: object, reason: str) -> None:
    """A block_actions without a usable first action is a SHAPE problem (Bolt would fail or answer 404)."""
    payload = {"type": "block_actions", "user": {"id": "U0ADA"}, "team": {"id": "T0FAKE"}, "actions": actions}
    problem = screen(urlencode({"payload": json.dumps(payload)}).encode(), FORM)
    assert problem is not None
    assert problem.kind == SHAPE
    assert reason in problem.reason


def test_other_interactivity_is_still_screened_out() -> None:
    """A view_submission (no listener) is not handed to Bolt."""
    payload = {"type": "view_submission", "user": {"id": "U0ADA"}, "view": VIEW}
    problem = screen(urlencode({"payload": json.dumps(payload)}).encode(), FORM)
    assert problem is not None
    assert "view_submission" in problem.reason
