"""The App Home end to end: signed app_home_opened and block_actions requests to the running app, and the views it
publishes to the local Slack (as a person and as an admin)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

from localdev.app_process import Running, agent_on_a_call, launch, stop_process, wait_for
from localdev.genesys_cloud import FakeGenesysCloud, JoinedParticipant
from localdev.slack_api import FakeSlack, block_actions_body, slash_command_body

FORM = "application/x-www-form-urlencoded"


def open_home(running: Running, user_id: str) -> dict[str, Any]:
    """Open the person's Home tab as Slack does; returns the view the app publishes for it."""
    before = len(running.slack.published_views.get(user_id, []))
    started = time.monotonic()
    response = running.event({"type": "app_home_opened", "user": user_id, "channel": "D0HOME", "tab": "home",
                              "event_ts": f"{time.time():.6f}"})
    assert response.status_code == 200
    assert time.monotonic() - started < 3
    wait_for(lambda: len(running.slack.published_views.get(user_id, [])) > before, 10,
             f"the Home view of {user_id}; log:\n{running.log()[-3000:]}")
    view = running.slack.home_view(user_id)
    assert view is not None
    return view


def element(view: dict[str, Any], action_id: str, value: str | None = None) -> tuple[dict[str, Any], str]:
    """The element with this action_id (and button value) in the view, and the block_id of its block."""
    for block in view["blocks"]:
        for candidate in [*block.get("elements", []), *([block["accessory"]] if "accessory" in block else [])]:
            if candidate.get("action_id") == action_id and (value is None or candidate.get("value") == value):
                return candidate, block.get("block_id", "")
    raise AssertionError(f"no {action_id} {value or ''} in the view: {json.dumps(view)[:2000]}")


def click(running: Running, user_id: str, action_id: str, *, value: str | None = None,
          ticked: list[str] | None = None) -> dict[str, Any]:
    """Act on the person's current Home view as Slack sends it (a button, or the keys left ticked in a checkbox
    block); the acknowledgement comes within 3 s. Returns the view the app publishes next."""
    view = running.slack.home_view(user_id)
    assert view is not None
    found, block_id = element(view, action_id, value)
    action: dict[str, Any] = {"action_id": action_id, "block_id": block_id, "type": found["type"]}
    if found["type"] == "button":
        action["value"] = found["value"]
    else:
        action["selected_options"] = [option for option in found["options"] if option["value"] in (ticked or [])]
    before = len(running.slack.published_views[user_id])
    started = time.monotonic()
    response = running.post(block_actions_body(view, action, user_id=user_id), content_type=FORM)
    assert response.status_code == 200, response.text
    assert time.monotonic() - started < 3
    wait_for(lambda: len(running.slack.published_views[user_id]) > before, 15,
             f"the view published after {action_id}; log:\n{running.log()[-3000:]}")
    published = running.slack.home_view(user_id)
    assert published is not None
    return published


def text_of(view: dict[str, Any]) -> str:
    return json.dumps(view["blocks"], ensure_ascii=False)


def live_attributes(running: Running, participant: JoinedParticipant) -> dict[str, str]:
    return dict(running.genesys.attributes(participant.conversation_id, participant.participant_id))


def test_a_person_sees_what_genesys_sees_and_no_admin_part(running: Running) -> None:
    """The Home lists the attributes written, when the profile was read, the last write, the live conversations,
    the Sync now and Preview buttons, and pronouns as a ticked optional field; no admin part for a member."""
    _user, participant = agent_on_a_call(running)
    running.slack.update_profile("U0ADA", pronouns="she/her")
    running.event({"type": "user_change", "user": running.slack.user("U0ADA")})
    wait_for(lambda: live_attributes(running, participant).get("slack.pronouns") == "she/her", 10, "the write")
    view = open_home(running, "U0ADA")
    shown = text_of(view)
    for fragment in ("`slack.title`", "Support Engineer", "Profile read <!date^", "Last write <!date^",
                     "Live conversations carrying them now: *1*", "Sync now", "Preview"):
        assert fragment in shown, fragment
    privacy, _block = element(view, "home_privacy_0")
    assert [option["value"] for option in privacy["initial_options"]] == ["slack.pronouns"]
    assert "Admin" not in shown
    assert running.slack.server_errors == []


def test_sync_now_after_a_silent_edit_writes_the_new_value(running: Running) -> None:
    """A custom field edited in Slack sends no event; Sync now reads the profile fresh and writes it at once."""
    running.slack.define_field("Xf01", "Team")
    _user, participant = agent_on_a_call(running)
    open_home(running, "U0ADA")
    running.slack.set_custom_field("U0ADA", "Xf01", "Blue Team")
    view = click(running, "U0ADA", "home_sync_now")
    assert live_attributes(running, participant)["slack.custom.Team"] == "Blue Team"
    assert "Synced your profile" in text_of(view)
    assert "Blue Team" in text_of(view)


def test_preview_shows_what_would_be_written(running: Running) -> None:
    """Preview publishes the attributes the profile would write now, writing nothing."""
    agent_on_a_call(running)
    open_home(running, "U0ADA")
    view = click(running, "U0ADA", "home_preview")
    assert "would write" in text_of(view)
    assert running.genesys.patches == []


def test_unticked_fields_are_cleared_and_stay_cleared_after_a_restart_and_a_change(tmp_path: Path) -> None:
    """Unticking pronouns and a custom field clears both on the live call within seconds; after a restart and a
    later profile change they stay cleared while the rest is written; status and preview say so."""
    with FakeSlack() as slack, FakeGenesysCloud() as genesys:
        slack.define_field("Xf01", "Team")
        first = launch(slack, genesys, tmp_path, name="first")
        try:
            _user, participant = agent_on_a_call(first)
            slack.update_profile("U0ADA", pronouns="she/her")
            slack.set_custom_field("U0ADA", "Xf01", "Blue Team")
            first.event({"type": "user_change", "user": slack.user("U0ADA")})
            wait_for(lambda: live_attributes(first, participant).get("slack.custom.Team") == "Blue Team", 10,
                     "the first write")
            view = open_home(first, "U0ADA")
            checkboxes, _block = element(view, "home_privacy_0")
            assert [option["value"] for option in checkboxes["options"]] == ["slack.custom.Team", "slack.pronouns"]
            started = time.monotonic()
            view = click(first, "U0ADA", "home_privacy_0", ticked=[])
            cleared = live_attributes(first, participant)
            assert (cleared["slack.pronouns"], cleared["slack.custom.Team"]) == ("", "")
            assert time.monotonic() - started < 5
            assert cleared["slack.title"] == "Support Engineer"
            assert "Kept to yourself" in text_of(view)
            assert "initial_options" not in element(view, "home_privacy_0")[0]
        finally:
            stop_process(first.process)
        second = launch(slack, genesys, tmp_path, name="second")
        try:
            changed = slack.update_profile("U0ADA", title="Team Lead", pronouns="they/them")
            second.event({"type": "user_change", "user": changed})
            wait_for(lambda: live_attributes(second, participant).get("slack.title") == "Team Lead", 10,
                     "the later change")
            after = live_attributes(second, participant)
            assert (after["slack.pronouns"], after["slack.custom.Team"]) == ("", "")
            assert all("they/them" not in json.dumps(patch.attributes) for patch in genesys.patches)
            url = slack.response_url("status")
            second.post(slash_command_body("status", user_id="U0ADA", response_url=url), content_type=FORM)
            wait_for(lambda: bool(slack.responses_to(url)), 10, "the status answer")
            assert "Kept to yourself (never written): `slack.custom.Team`, `slack.pronouns`" in \
                slack.responses_to(url)[-1]["text"]
            view = open_home(second, "U0ADA")
            ticked_again = click(second, "U0ADA", "home_privacy_0", ticked=["slack.pronouns"])
            assert live_attributes(second, participant)["slack.pronouns"] == "they/them"
            assert "Shared again: `slack.pronouns`" in text_of(ticked_again)
        finally:
            stop_process(second.process)


def test_an_admin_sees_dead_letters_and_retry_requeues_them(running: Running) -> None:
    """SYNC_ADMINS member: totals, Genesys and push state, each dead letter with Retry; Retry requeues the work,
    which then succeeds; Retry from a member is refused."""
    running.slack.add_user("UADMIN", name="boss", email="boss@example.com")
    running.slack.add_user("U0EVE", name="eve", email="eve@example.com")
    for user_id in ("U0GONE", "U0LOST"):  # not in Slack (yet): users.info says user_not_found, a dead letter at once
        running.event({"type": "user_change", "user": {"id": user_id, "team_id": "T0FAKE", "profile": {}}})
    wait_for(lambda: running.slack.call_count("users.info") >= 2, 10, "the reads")
    time.sleep(0.5)
    view = open_home(running, "UADMIN")
    shown = text_of(view)
    for fragment in ("Admin: the app", "*People synced*", "*Writes today (UTC)*", "*Dead letters*\\n2",
                     "refresh T0FAKE:U0GONE", "Push: off", "Retry all 2",
                     "*Genesys request budget*"):
        assert fragment in shown, fragment
    [dead] = [block for block in view["blocks"] if "U0GONE" in json.dumps(block)]
    dead_id = dead["accessory"]["value"]
    running.slack.add_user("U0GONE", name="gone", email="gone@example.com", title="Back")
    reads = running.slack.call_count("users.info")
    view = click(running, "UADMIN", "home_retry", value=dead_id)
    assert "Requeued the dead letter (1)" in text_of(view)
    wait_for(lambda: running.slack.call_count("users.info") > reads, 10, "the requeued refresh")
    member = open_home(running, "U0EVE")
    assert "Admin" not in text_of(member)
    view = click(running, "UADMIN", "home_retry_all")
    assert "Requeued every dead letter (1)" in text_of(view)
    assert httpx.get(f"{running.url}/healthz", timeout=5).status_code == 200
