"""Privacy choices, requeued dead letters and the App Home's counts, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from store import PRIVACY, DesiredRow, PrivacyChoice, Store, WriteRecord, open_store
from tests.clocks import FakeClock


def choice(*withheld: str, user_id: str = "U1", at: float = 1_700_000_000.0) -> PrivacyChoice:
    return PrivacyChoice("T1", user_id, frozenset(withheld), at, detail=f"kept to themself: {', '.join(withheld)}")


def test_no_choice_withholds_nothing(store: Store) -> None:
    """A person who never chose shares every optional key."""
    assert store.withheld_keys("T1", "U1") == frozenset()


def test_a_choice_is_kept_replaced_and_audited(store: Store) -> None:
    """The latest choice is the one in force, per person, and each choice is an audit row of its own."""
    store.choose_privacy(choice("slack.pronouns", "slack.custom.Team"))
    store.choose_privacy(choice("slack.pronouns", at=1_700_000_060.0))
    store.choose_privacy(choice("slack.custom.Team", user_id="U2"))
    assert store.withheld_keys("T1", "U1") == {"slack.pronouns"}
    assert store.withheld_keys("T1", "U2") == {"slack.custom.Team"}
    audit = store.audit(user_id="U1")
    assert [(entry.result, entry.keys, entry.conversation_id) for entry in audit] == [
        (PRIVACY, ("slack.pronouns",), ""), (PRIVACY, ("slack.custom.Team", "slack.pronouns"), "")]
    assert audit[0].detail == "kept to themself: slack.pronouns"


def test_a_choice_survives_reopening(database_url: str, clock: FakeClock) -> None:
    """A choice is in the database, not the process: a restart (or another replica) reads it."""
    first = open_store(database_url, clock=clock)
    first.choose_privacy(choice("slack.pronouns"))
    first.close()
    second = open_store(database_url, clock=clock)
    try:
        assert second.withheld_keys("T1", "U1") == {"slack.pronouns"}
    finally:
        second.close()


def _bury(store: Store, key: str) -> None:
    store.enqueue("refresh", key, {"team_id": "T1", "user_id": key})
    [item] = store.claim(worker="w", lease_s=10)
    store.dead_letter(item, reason="Slack said user_not_found")


@pytest.mark.parametrize(("which", "requeued", "left"), [
    ("first", 1, ["U2", "U3"]), ("all", 3, []), ("unknown", 0, ["U1", "U2", "U3"])])
def test_retry_dead_letters_requeues_them(store: Store, which: str, requeued: int, left: list[str]) -> None:
    """Retry moves the chosen dead letters (or all) back to the work queue, due now with fresh attempts."""
    for key in ("U1", "U2", "U3"):
        _bury(store, key)
    ids = {"first": [min(d.id for d in store.dead_letters())], "all": None, "unknown": [999_999]}[which]
    assert len(store.requeue_dead_letters(ids)) == requeued
    assert sorted(d.key for d in store.dead_letters()) == left
    claimed = store.claim(worker="w2", lease_s=10)
    assert len(claimed) == requeued
    assert all(item.attempts == 0 and item.payload["team_id"] == "T1" for item in claimed)


def test_home_counts(store: Store, clock: FakeClock) -> None:
    """People synced count profiles with a linked Genesys user; writes since count accepted writes only."""
    for user_id, genesys_user_id in (("U1", "g1"), ("U2", None), ("U3", "g3")):
        store.save_desired(DesiredRow("T1", user_id, f"{user_id}@example.com", user_id == "U3",
                                      {"slack.title": "x"}, "h", 1, clock()))
        store.link_user("T1", user_id, f"{user_id}@example.com", genesys_user_id, resolved_at=clock())
    assert store.synced_people_count() == 1
    for result, at in (("written", clock() - 10), ("written", clock() + 1), ("failed", clock() + 2)):
        store.record_write(WriteRecord("c", "p", "g1", "T1", "U1", "h", ("slack.title",), result,  # type: ignore[arg-type]
                                       None, "", at))
    assert store.writes_since(clock()) == 1
