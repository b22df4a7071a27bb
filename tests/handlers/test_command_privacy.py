"""`/genesys-sync status|preview @colleague`: a colleague's calls, Genesys user and e-mail stay theirs.

The listener is called directly with the real engine (SQLite, the local Slack Web API and Genesys Cloud) and the
real admin rule (`is_admin`: users.info flags and SYNC_ADMINS), as `register` wires them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from genesys import ClientCredentials, GenesysClient, GenesysEndpoints, RetryPolicy
from handlers.commands import is_admin, run
from localdev.genesys_cloud import FakeGenesysCloud
from localdev.slack_api import FakeSlack
from slack_directory import SlackDirectory
from store import open_store
from sync import AttributeRules
from sync.engine import EngineSettings, ParticipantResult, SyncEngine, SyncReport
from sync.render import SlackText

TEAM = "T0FAKE"
SYNC_ADMINS = frozenset({"UADMIN"})


@dataclass(frozen=True)
class Office:
    """Ada on a call (synced, so her status has a conversation, times and a Genesys user), Bob without a Genesys
    user (his status has his e-mail), and the people who ask."""

    slack: FakeSlack
    genesys: FakeGenesysCloud
    engine: SyncEngine
    conversation_id: str
    genesys_user_id: str

    def ask(self, text: str, caller: str) -> str:
        client = SlackDirectory.web_client("xoxb-fake-bot-token", self.slack.api_url)
        answers: list[str] = []
        run(self.engine, SlackText(), {"text": text, "user_id": caller, "team_id": TEAM},
            lambda **kw: answers.append(kw["text"]), is_admin=lambda user_id: is_admin(client, user_id, SYNC_ADMINS))
        [answer] = answers
        return answer


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Office]:
    with FakeSlack() as slack, FakeGenesysCloud() as genesys:
        store = open_store(f"sqlite:///{tmp_path_factory.mktemp('privacy')}/sync.db")
        client = GenesysClient(ClientCredentials("fake-client-id", "fake-client-secret"),
                               GenesysEndpoints(genesys.base_url, genesys.base_url),
                               retry_policy=RetryPolicy(max_attempts=1))
        web = SlackDirectory.web_client("xoxb-fake-bot-token", slack.api_url)
        engine = SyncEngine(store=store, genesys=client, slack=SlackDirectory(lambda team_id: web),
                            rules=AttributeRules(), settings=EngineSettings(worker="test"))
        slack.add_user("U0ADA", name="ada", email="ada@example.com", title="Support Engineer", phone="+353 1 555 0100")
        slack.add_user("U0BOB", name="bob", email="bob@example.com", title="Agent")
        slack.add_user("U0EVE", name="eve", email="eve@example.com")
        slack.add_user("U0BOSS", name="boss", email="boss@example.com", is_admin=True)
        slack.add_user("U0OWNER", name="owner", email="owner@example.com", is_owner=True)
        slack.add_user("UADMIN", name="listed", email="listed@example.com")
        genesys_user_id = genesys.add_user("ada@example.com")
        participant = genesys.start_conversation(genesys_user_id)
        assert [r.result for r in engine.sync_now(TEAM, "U0ADA").participants] == ["written"]
        assert engine.sync_now(TEAM, "U0BOB").genesys_user_id is None
        yield Office(slack, genesys, engine, participant.conversation_id, genesys_user_id)
        client.close()
        store.close()


def facts(office: Office) -> dict[str, tuple[str, str]]:
    """What must stay theirs: (whose status shows it, a pattern for it)."""
    return {
        "conversation id": ("U0ADA", re.escape(office.conversation_id)),
        "Genesys user id": ("U0ADA", re.escape(office.genesys_user_id)),
        "times": ("U0ADA", r"<!date\^"),
        "e-mail": ("U0BOB", re.escape("bob@example.com")),
    }


REQUESTERS = [
    pytest.param(None, True, id="self"),
    pytest.param("U0BOSS", True, id="workspace admin"),
    pytest.param("U0OWNER", True, id="workspace owner"),
    pytest.param("UADMIN", True, id="SYNC_ADMINS member"),
    pytest.param("U0EVE", False, id="other member"),
]


@pytest.mark.parametrize("fact", ["conversation id", "Genesys user id", "times", "e-mail"])
@pytest.mark.parametrize(("requester", "sees"), REQUESTERS)
def test_status_shows_a_colleagues_calls_genesys_user_and_e_mail_only_to_them_and_admins(
        office: Office, fact: str, requester: str | None, sees: bool) -> None:
    """`status @user`: conversation ids, times, the Genesys user and the e-mail for themself and admins only."""
    target, pattern = facts(office)[fact]
    answer = office.ask(f"status <@{target}>", requester or target)
    assert bool(re.search(pattern, answer)) is sees, answer


@pytest.mark.parametrize(("target", "state"), [("U0ADA", "is synced"), ("U0BOB", "is not synced")])
def test_a_member_still_learns_whether_a_colleague_is_synced(office: Office, target: str, state: str) -> None:
    """A non-admin asking about a colleague hears whether they are synced, and who may see more."""
    answer = office.ask(f"status <@{target}>", "U0EVE")
    assert f"<@{target}>'s profile {state}" in answer
    assert "only to them and to admins" in answer
    assert "Pending work:" in answer


@pytest.mark.parametrize(("requester", "sees"), REQUESTERS)
def test_preview_of_a_colleague_has_no_e_mail_or_phone(office: Office, requester: str | None, sees: bool) -> None:
    """`preview @user` is the mapped attributes, which leave e-mail and phone out unless the mapping opts them in."""
    answer = office.ask("preview <@U0ADA>", requester or "U0ADA")
    assert "`slack.title` = " in answer
    assert "ada@example.com" not in answer
    assert "555 0100" not in answer


def test_a_rejected_write_shows_an_error_id_instead_of_genesys_words(office: Office,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    """A write Genesys refuses is reported with the error id of its log line, not with Genesys' answer."""
    office.slack.update_profile("U0ADA", title="Team Lead")
    office.genesys.fail_next(400, path_prefix=f"/api/v2/conversations/{office.conversation_id}/participants")
    with caplog.at_level(logging.WARNING):
        answer = office.ask("", "U0ADA")
    assert "REJECTED by Genesys (error id " in answer
    [error_id] = re.findall(r"error id ([0-9a-f]{8})", answer)
    [line] = [message for message in caplog.messages if f"[error id {error_id}]" in message]
    assert "Genesys rejected the attributes of Slack user U0ADA" in line
    assert "AttributesRejected" in line
    assert "AttributesRejected" not in answer


@pytest.mark.parametrize(
    ("result", "shown"),
    [("failed", "failed, retried automatically (error id 0badc0de)"),
     ("rejected", "REJECTED by Genesys (error id 0badc0de)")],
)
def test_failed_participants_render_their_error_id(result: str, shown: str) -> None:
    """A failed or rejected participant is rendered with the error id of its log line."""
    participant = ParticipantResult("c1", "p1", "voice", result, context_id="ctx", error_id="0badc0de")
    assert shown in SlackText().sync_report(SyncReport(None, None, (participant,)), whose="your")
