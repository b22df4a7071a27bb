"""bench/reliability.py: its counting on hand-made histories (so a counter that always says 0 is caught), and a
--quick run of two scenarios on SQLite, whose table must show nothing lost, stale or repeated."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench.reliability import (
    Observation,
    Version,
    count,
    lost_changes,
    newest_carried,
    observations,
    repeated_writes,
    tracked_state,
)
from localdev.app_process import REPO
from localdev.genesys_cloud import JoinedParticipant, RecordedPatch


def patch(title: str, at: float, participant: str = "p1") -> RecordedPatch:
    return RecordedPatch("c1", participant, {"slack.title": title, "slack.name": "Ada"}, at)


def versions(*steps: tuple[float, str]) -> list[Version]:
    return [Version(at, {"slack.title": title}) for at, title in steps]


def test_a_repeated_map_counts_and_a_return_to_an_earlier_one_does_not() -> None:
    assert repeated_writes([patch("A", 1), patch("A", 2)]) == 1
    assert repeated_writes([patch("A", 1), patch("B", 2), patch("A", 3)]) == 0  # A → B → A: three changes
    assert repeated_writes([patch("A", 1), patch("A", 2, participant="p2")]) == 0  # another participant
    assert repeated_writes([patch("A", 1), patch("A", 2), patch("A", 3)]) == 2


def test_observations_merge_patches_as_genesys_does() -> None:
    seen = observations([RecordedPatch("c1", "p1", {"a": "1", "b": "1"}, 1),
                         RecordedPatch("c1", "p1", {"b": "2"}, 2)], 9, {"a": "1", "b": "2"})
    assert [o.attributes for o in seen] == [{"a": "1", "b": "1"}, {"a": "1", "b": "2"}, {"a": "1", "b": "2"}]
    assert [o.at for o in seen] == [1, 2, 9]


def test_a_change_that_never_reached_the_participant_is_lost() -> None:
    history = versions((0, "A"), (2, "B"), (4, "C"))
    seen = observations([patch("A", 1), patch("B", 3)], 10, {"slack.title": "B"})
    assert newest_carried(history, seen) == 1
    assert lost_changes(history, seen) == 1
    assert lost_changes(history, observations([patch("A", 1)], 10, {"slack.title": "A"})) == 2
    assert lost_changes(history, observations([], 10, {})) == 2  # never written at all


def test_a_superseded_change_is_not_lost() -> None:
    history = versions((0, "A"), (2, "B"), (4, "C"))  # B was read over by C before any write: nothing lost
    assert lost_changes(history, observations([patch("A", 1), patch("C", 5)], 10, {"slack.title": "C"})) == 0


def test_a_write_before_a_change_does_not_count_for_it() -> None:
    history = versions((0, "A"), (2, "B"), (4, "A"))
    # The participant carried A at 1 and at the end, and the end is after the change back to A: nothing lost.
    assert lost_changes(history, observations([patch("A", 1)], 10, {"slack.title": "A"})) == 0
    # Seen only before the change back (the run's end observation is missing): A at 1 is version 0, not 2.
    assert newest_carried(history, [Observation(1, {"slack.title": "A"})]) == 0


def test_a_status_only_change_after_the_last_write_is_not_lost() -> None:
    history = versions((0, "A"), (2, "B"), (4, "B"))  # the last change left the title as it was
    assert lost_changes(history, observations([patch("A", 1), patch("B", 3)], 10, {"slack.title": "B"})) == 0


def test_count_over_people() -> None:
    participants = {"U1": JoinedParticipant("c1", "p1", "g1", "voice"),
                    "U2": JoinedParticipant("c2", "p2", "g2", "voice")}
    people = {"U1": versions((0, "A"), (2, "B")), "U2": versions((0, "X"), (2, "Y"), (3, "Z"))}
    patches = [patch("A", 1), RecordedPatch("c2", "p2", {"slack.title": "X"}, 1), patch("B", 3),
               RecordedPatch("c2", "p2", {"slack.title": "Y"}, 4), RecordedPatch("c2", "p2", {"slack.title": "Y"}, 5)]
    final = {"U1": {"slack.title": "B", "slack.name": "Ada"}, "U2": {"slack.title": "Y"}}
    counts = count(people, participants, patches, final, 10)
    assert (counts.lost, counts.stale, counts.repeated, counts.patches, counts.changes) == (1, 1, 1, 5, 3)


def test_tracked_state_is_the_title_and_the_custom_fields_by_label() -> None:
    user = {"profile": {"title": "Agent", "status_text": "Lunch",
                        "fields": {"Xf01DEPT0001": {"value": "Billing", "alt": ""}, "Xf99OTHER": {"value": "x"}}}}
    assert tracked_state(user) == {"slack.title": "Agent", "slack.custom.Department": "Billing"}


@pytest.mark.long
@pytest.mark.timeout(150)
def test_quick_run_on_sqlite_loses_nothing() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "reliability.py"), "--quick", "--backend", "sqlite", "--json",
         "--scenarios", "sigkill", "slack-cut"],
        capture_output=True, text=True, timeout=140, cwd=REPO, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    outcomes = {o["scenario"]: o for o in json.loads(done.stdout)["outcomes"]}
    assert set(outcomes) == {"sigkill", "slack-cut"}
    for outcome in outcomes.values():
        assert outcome["acknowledged"] == outcome["events"] == 200
        assert (outcome["lost"], outcome["stale"], outcome["repeated"]) == (0, 0, 0), outcome
        assert outcome["converged"]
        assert outcome["changes"] > 0
        assert outcome["patches"] > 60  # the first sync of 60 people, then the changes
    assert sum("SIGKILL" in note for note in outcomes["sigkill"]["notes"]) == 4
