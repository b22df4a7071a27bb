"""SYNC_TARGET as an operator uses it: the app as a real process, a call, a profile change, a transfer to another
person, and then the customer's and the people's participants read back (as the acceptance run does)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from localdev.app_process import Running, launch, wait_for
from localdev.genesys_cloud import FakeGenesysCloud
from localdev.slack_api import FakeSlack


@pytest.fixture(params=["customer", "both", None], ids=["customer", "both", "unset"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Running, str | None]]:
    with FakeSlack() as slack, FakeGenesysCloud() as genesys:
        # The shipped defaults otherwise (push on), as the acceptance run starts the app.
        running = launch(slack, genesys, tmp_path, env_changes={"SYNC_TARGET": request.param, "GENESYS_PUSH": None,
                                                                "POLL_INTERVAL_SECONDS": None})
        try:
            yield running, request.param
        finally:
            if running.process.poll() is None:
                running.process.kill()
            running.process.wait(timeout=10)


def test_a_call_a_change_and_a_transfer(app: tuple[Running, str | None]) -> None:
    """customer: the customer's participant follows the call (Ada, her new title, then Bob with Ada's pronouns
    cleared) and nobody's own participant is written; both: the own participants as well; unset: only the own."""
    running, target = app
    customer_side, own_side = target in ("customer", "both"), target in ("both", None)
    ada = running.slack.add_user("U0ADA", name="ada", email="ada@example.com", title="Support Engineer",
                                 pronouns="she/her")
    bob = running.slack.add_user("U0BOB", name="bob", email="bob@example.com", title="Billing Specialist")
    ada_id, bob_id = running.genesys.add_user("ada@example.com"), running.genesys.add_user("bob@example.com")
    running.event({"type": "user_change", "user": ada}, event_id="EvAda")
    running.event({"type": "user_change", "user": bob}, event_id="EvBob")
    wait_for(lambda: running.slack.call_count("users.profile.get") >= 2, 10, "both profiles to be read")
    call = running.genesys.start_conversation(ada_id)
    conversation = call.conversation_id
    customer = running.genesys.customer_participant_id(conversation)

    def on(participant: str) -> dict[str, str]:
        return running.genesys.attributes(conversation, participant)

    if customer_side:
        wait_for(lambda: on(customer).get("slack.agent.title") == "Support Engineer", 10, "Ada on the customer")
    if own_side:
        wait_for(lambda: on(call.participant_id).get("slack.title") == "Support Engineer", 10, "Ada on her own")
    changed = running.slack.update_profile("U0ADA", title="Team Lead")
    running.event({"type": "user_change", "user": changed}, event_id="EvAda2")
    if customer_side:
        wait_for(lambda: on(customer).get("slack.agent.title") == "Team Lead", 10, "the change on the customer")
    if own_side:
        wait_for(lambda: on(call.participant_id).get("slack.title") == "Team Lead", 10, "the change on her own")
    transfer = running.genesys.add_participant(conversation, bob_id)
    running.genesys.end_participant(conversation, call.participant_id)
    if customer_side:
        wait_for(lambda: on(customer).get("slack.agent.user_id") == "U0BOB", 10, "Bob on the customer")
        assert on(customer)["slack.agent.title"] == "Billing Specialist"
        assert on(customer)["slack.agent.pronouns"] == ""  # Ada's, which Bob lacks
        assert "synced U0BOB -> conversation" in running.log()
    else:
        wait_for(lambda: on(transfer.participant_id).get("slack.title") == "Billing Specialist", 10, "Bob's own")
        assert on(customer) == {}
    if own_side:
        wait_for(lambda: on(transfer.participant_id).get("slack.title") == "Billing Specialist", 10, "Bob's own")
        assert on(call.participant_id)["slack.title"] == "Team Lead"
    else:
        assert on(call.participant_id) == {}
        assert on(transfer.participant_id) == {}
    assert f"SYNC_TARGET={target or 'agent'}" in running.log()
