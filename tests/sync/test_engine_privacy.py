"""A person's privacy choices in the engine: withheld keys are cleared on the live call, then never written again
until shared; preview and status show them; the engine tells who was synced."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from slack_directory import SlackDirectoryError
from store import PRIVACY, open_store
from sync import AttributeRules
from sync.engine import EngineSettings, SyncEngine
from sync.render import SlackText
from tests.clocks import FakeClock
from tests.sync.memory import TEAM, DrainingTimer, Memory, MemoryGenesys, MemorySlack


def _ada(memory: Memory) -> None:
    memory.slack.add("U0ADA", "ada@example.com", "Support Engineer")
    memory.slack.edit("U0ADA", pronouns="she/her")


def test_withheld_keys_are_cleared_then_left_out_until_shared_again(memory: Memory) -> None:
    """Unticking pronouns writes "" to the live call; a later change leaves it out; ticking it writes it again."""
    _ada(memory)
    participant = memory.genesys.on_call("ada@example.com")
    memory.engine.sync_now(TEAM, "U0ADA")
    assert memory.genesys.writes[-1][2]["slack.pronouns"] == "she/her"
    choice = memory.engine.keep_to_themself(TEAM, "U0ADA", {"slack.pronouns"})
    assert choice.detail == "kept to themself: slack.pronouns"
    report = memory.engine.sync_now(TEAM, "U0ADA")
    assert [outcome.result for outcome in report.participants] == ["written"]
    assert memory.genesys.writes[-1][2]["slack.pronouns"] == ""
    memory.slack.edit("U0ADA", title="Team Lead", pronouns="they/them")
    memory.changed("U0ADA")
    memory.engine.poll_once()
    sent = memory.genesys.writes[-1][2]
    assert (sent["slack.title"], sent.get("slack.pronouns", "")) == ("Team Lead", "")
    assert participant.conversation_id == memory.genesys.writes[-1][0]
    memory.engine.keep_to_themself(TEAM, "U0ADA", ())
    memory.engine.sync_now(TEAM, "U0ADA")
    assert memory.genesys.writes[-1][2]["slack.pronouns"] == "they/them"
    assert [entry.detail for entry in memory.store.audit(user_id="U0ADA") if entry.result == PRIVACY] == [
        "shared again: slack.pronouns", "kept to themself: slack.pronouns"]


def test_a_withheld_key_is_cleared_by_the_poll_even_when_the_fresh_read_fails(memory: Memory) -> None:
    """The choice clears the stored profile at once: with Slack failing the read that follows, the next poll still
    writes "" for the key, and no later write carries its value."""
    _ada(memory)
    memory.genesys.on_call("ada@example.com")
    memory.engine.sync_now(TEAM, "U0ADA")
    memory.slack.failures.append(SlackDirectoryError("users.profile.get", "ratelimited"))
    memory.engine.keep_to_themself(TEAM, "U0ADA", {"slack.pronouns"})
    assert memory.engine.poll_once() == 1
    assert memory.genesys.writes[-1][2]["slack.pronouns"] == ""
    assert all(sent.get("slack.pronouns") in (None, "") for _c, _p, sent in memory.genesys.writes[1:])


def test_two_changes_at_once_both_count(memory: Memory) -> None:
    """Two changes of one person's choice on two threads each start from the other's result, never from the same
    old choice: keeping one key back and then another keeps both back."""
    _ada(memory)
    memory.engine.sync_now(TEAM, "U0ADA")
    started, threads = threading.Barrier(2), []
    for key in ("slack.pronouns", "slack.custom.Team"):
        def change(before: frozenset[str], key: str = key) -> frozenset[str]:
            time.sleep(0.2)  # both threads are inside at once unless changes take turns
            return before | {key}

        def run(change: Callable[[frozenset[str]], frozenset[str]] = change) -> None:
            started.wait()
            memory.engine.change_privacy(TEAM, "U0ADA", change)

        threads.append(threading.Thread(target=run))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert memory.store.withheld_keys(TEAM, "U0ADA") == {"slack.pronouns", "slack.custom.Team"}


def test_preview_and_status_show_what_is_kept_back(memory: Memory) -> None:
    """preview lists the optional keys and leaves the withheld one out of the attributes; status names it."""
    _ada(memory)
    memory.engine.keep_to_themself(TEAM, "U0ADA", {"slack.pronouns"})
    desired = memory.engine.preview(TEAM, "U0ADA")
    assert desired.optional == ("slack.pronouns",)
    assert desired.withheld == ("slack.pronouns",)
    assert "slack.pronouns" not in desired.report.attributes
    text = SlackText()
    assert "Kept to yourself (never written): `slack.pronouns`" in text.preview(desired, whose="your")
    status = memory.engine.status(TEAM, "U0ADA")
    assert status.withheld == {"slack.pronouns"}
    assert "Kept to yourself (never written): `slack.pronouns`" in text.status(status, whose="your", full=True)


def test_the_engine_tells_who_was_synced(tmp_path: Path) -> None:
    """on_person_synced hears of each refresh that ran and each person written, and its failure changes nothing."""
    clock = FakeClock(1_700_000_000.0)
    store = open_store(f"sqlite:///{tmp_path}/sync.db", clock=clock)
    slack, genesys = MemorySlack(), MemoryGenesys()
    heard: list[tuple[str, str]] = []

    def listener(team_id: str, user_id: str) -> None:
        heard.append((team_id, user_id))
        raise RuntimeError("a listener's bug")

    box: list[SyncEngine] = []
    engine = SyncEngine(store=store, genesys=genesys, slack=slack, rules=AttributeRules(), clock=clock,
                        settings=EngineSettings(worker="memory"), timer=DrainingTimer(box), on_person_synced=listener)
    box.append(engine)
    try:
        memory = Memory(slack, genesys, store, clock, engine)
        _ada(memory)
        genesys.on_call("ada@example.com")
        memory.changed("U0ADA")
        assert heard == [(TEAM, "U0ADA")]
        assert engine.poll_once() == 1
        assert heard == [(TEAM, "U0ADA")] * 2
        assert len(genesys.writes) == 1
    finally:
        store.close()
