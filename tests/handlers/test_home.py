"""The App Home's listener functions and view, called directly: the in-memory engine, a real store, and a publish
function that keeps what it is given."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from handlers.home import HomeTab, act, chosen_withheld
from store import DeadLetter, DesiredRow, open_store
from sync import AttributeRules
from sync.engine import EngineSettings, GenesysStatus, SyncEngine, SyncStatus
from sync.home import AdminHome, HomeReader, HomeView, PersonHome, home_view
from sync.shared_budget import BudgetUse
from tests.clocks import FakeClock
from tests.sync.memory import TEAM, DrainingTimer, Memory, MemoryGenesys, MemorySlack


class Published:
    """A `Publish` that keeps each (team, user, view) and says when one arrives."""

    def __init__(self) -> None:
        self.views: list[tuple[str, str, Mapping[str, Any]]] = []
        self.arrived = threading.Event()

    def __call__(self, team_id: str, user_id: str, view: Mapping[str, Any]) -> None:
        self.views.append((team_id, user_id, view))
        self.arrived.set()

    def last_text(self) -> str:
        return json.dumps(self.views[-1][2], ensure_ascii=False)


@pytest.fixture
def home(tmp_path: Path) -> Iterator[tuple[Memory, HomeTab, Published]]:
    clock = FakeClock(1_700_000_000.0)
    store = open_store(f"sqlite:///{tmp_path}/sync.db", clock=clock)
    published = Published()
    tab = HomeTab(published)
    slack, genesys = MemorySlack(), MemoryGenesys()
    box: list[SyncEngine] = []
    engine = SyncEngine(store=store, genesys=genesys, slack=slack, rules=AttributeRules(), clock=clock,
                        settings=EngineSettings(worker="memory", max_attempts=1), timer=DrainingTimer(box),
                        on_person_synced=tab.person_synced)
    box.append(engine)
    tab.start(HomeReader(store, engine, clock=clock))
    slack.add("U0ADA", "ada@example.com", "Support Engineer")
    slack.edit("U0ADA", pronouns="she/her")
    yield Memory(slack, genesys, store, clock, engine), tab, published
    tab.stop()
    store.close()


def _body(view: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "block_actions", "user": {"id": "U0ADA", "team_id": TEAM}, "view": dict(view)}


def test_unticking_in_the_view_keeps_the_key_back_and_clears_it(home: tuple[Memory, HomeTab, Published]) -> None:
    """The checkbox action of a published view records the choice, syncs at once and publishes the outcome."""
    memory, tab, published = home
    participant = memory.genesys.on_call("ada@example.com")
    memory.engine.sync_now(TEAM, "U0ADA")
    assert memory.genesys.writes[-1][2]["slack.pronouns"] == "she/her"
    tab.opened(TEAM, "U0ADA", admin=False)
    view = tab.publish(TEAM, "U0ADA")
    action = {"action_id": "home_privacy_0", "block_id": "home_privacy_0", "type": "checkboxes",
              "selected_options": []}
    notice = act(tab, memory.engine, _body(view), action, TEAM, "U0ADA", admin=False)
    assert notice == "Kept to yourself: `slack.pronouns`; cleared on your live conversations."
    assert memory.genesys.writes[-1][:2] == (participant.conversation_id, participant.participant_id)
    assert memory.genesys.writes[-1][2]["slack.pronouns"] == ""
    assert memory.store.withheld_keys(TEAM, "U0ADA") == {"slack.pronouns"}
    assert notice in published.last_text()


def test_retry_is_refused_to_members(home: tuple[Memory, HomeTab, Published]) -> None:
    """A Retry from someone who is not an admin requeues nothing."""
    memory, tab, _published = home
    memory.engine.user_changed(TEAM, {"id": "U0GONE"}, None)
    memory.engine.work_once()
    assert memory.store.dead_letter_count() == 1
    tab.opened(TEAM, "U0ADA", admin=False)
    notice = act(tab, memory.engine, {}, {"action_id": "home_retry_all", "value": "all"}, TEAM, "U0ADA",
                 admin=False)
    assert notice.startswith("Only workspace admins")
    assert memory.store.dead_letter_count() == 1
    notice = act(tab, memory.engine, {}, {"action_id": "home_retry_all", "value": "all"}, TEAM, "U0ADA", admin=True)
    assert notice == "Requeued every dead letter (1); the engine works on it now."
    assert (memory.store.dead_letter_count(), memory.store.pending_count()) == (0, 1)


def test_the_engines_news_refreshes_only_people_looking(home: tuple[Memory, HomeTab, Published]) -> None:
    """A sync of someone who opened their Home lately republishes it (on the HomeTab's thread); of anyone else,
    nothing."""
    memory, tab, published = home
    memory.slack.add("U0BOB", "bob@example.com", "Agent")
    memory.changed("U0BOB")
    tab.opened(TEAM, "U0ADA", admin=False)
    memory.changed("U0ADA")
    assert published.arrived.wait(5)
    assert [(team, user) for team, user, _view in published.views] == [(TEAM, "U0ADA")]
    assert threading.current_thread().name != "home-refresh"


def test_an_action_in_progress_is_not_refreshed_behind_its_back(home: tuple[Memory, HomeTab, Published]) -> None:
    """The sync a Sync now click causes publishes once, with its outcome: the engine's news of it refreshes
    nothing while the action runs."""
    memory, tab, published = home
    tab.opened(TEAM, "U0ADA", admin=False)
    with tab.acting(TEAM, "U0ADA"):
        act(tab, memory.engine, {}, {"action_id": "home_sync_now", "value": "sync"}, TEAM, "U0ADA", admin=False)
        memory.changed("U0ADA")  # a refresh finishing meanwhile
    time.sleep(0.3)  # time enough for the refresher, had it been told
    assert len(published.views) == 1
    assert "Nothing written for your profile" in published.last_text()


@pytest.mark.parametrize(("withheld", "ticked", "expected"), [
    (set(), [], {"a", "b"}),
    (set(), ["a"], {"b"}),
    ({"a", "z"}, ["a", "b"], {"z"}),  # z is in another block: as it was
    ({"a"}, ["b"], {"a"}),
])
def test_chosen_withheld(withheld: set[str], ticked: list[str], expected: set[str]) -> None:
    """One block's unticked keys are kept back, its ticked ones shared, other blocks' choices left as they were."""
    options = [{"text": {"type": "plain_text", "text": key}, "value": key} for key in ("a", "b")]
    view = {"blocks": [{"type": "actions", "block_id": "home_privacy_0",
                        "elements": [{"type": "checkboxes", "action_id": "home_privacy_0", "options": options}]}]}
    action = {"action_id": "home_privacy_0", "block_id": "home_privacy_0",
              "selected_options": [option for option in options if option["value"] in ticked]}
    assert chosen_withheld(frozenset(withheld), view, action) == expected


def _status(attributes: int, withheld: frozenset[str] = frozenset()) -> SyncStatus:
    row = DesiredRow(TEAM, "U0ADA", "ada@example.com", False,
                     {f"slack.custom.Field {n:03d}": "x" * 300 for n in range(attributes)}, "h", 1, 1_700_000_000.0)
    return SyncStatus("U0ADA", row, None, (), 0, 0, True, withheld=withheld)


def test_the_biggest_view_stays_inside_slacks_bounds() -> None:
    """100 attributes, 60 optional keys and 10 dead letters: at most 100 blocks, every text within its bound."""
    optional = tuple(f"slack.custom.Field {n:03d}" for n in range(60))
    person = PersonHome(_status(100, frozenset(optional[:3])), optional, None, 2)
    dead = tuple(DeadLetter(n, "refresh", f"T:U{n}", {}, 8, "x" * 5000, None, 1_700_000_000.0) for n in range(10))
    admin = AdminHome(10, 20, 3, dead, 12, GenesysStatus(True), None, polling=True,
                      budget=BudgetUse(12, 50, 10.0, 300))
    view = home_view(HomeView(person, admin, notice="n" * 5000))
    assert view["type"] == "home"
    assert len(view["blocks"]) <= 100
    text = json.dumps(view, ensure_ascii=False)
    assert "… and 50 more." in text
    assert "Retry all 12" in text
    assert "12 of 50 in this 10-second window (300/min, shared by every replica)" in text
    checkbox_blocks = [block for block in view["blocks"] if block.get("block_id", "").startswith("home_privacy")]
    assert len(checkbox_blocks) == 5
    first = checkbox_blocks[0]["elements"][0]
    assert [option["value"] for option in first["initial_options"]] == list(optional[3:10])
    for block in view["blocks"]:
        assert len(block.get("text", {}).get("text", "")) <= 3000
        assert all(len(field["text"]) <= 2000 for field in block.get("fields", []))
        assert len(block.get("fields", [])) <= 10


def test_a_value_cannot_mention_or_link() -> None:
    """Values are escaped: `<!channel>` in a profile stays text."""
    status = _status(0)
    row = status.profile
    assert row is not None
    status = SyncStatus("U0ADA", DesiredRow(TEAM, "U0ADA", None, False, {"slack.title": "<!channel> & co"}, "h", 1,
                                            row.refreshed_at), None, (), 0, 0, None)
    view = home_view(HomeView(PersonHome(status, (), None, None)))
    assert "&lt;!channel&gt; &amp; co" in json.dumps(view)
    assert "Admin" not in json.dumps(view)
