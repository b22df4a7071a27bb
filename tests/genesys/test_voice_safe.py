"""Voice-safe validation of participant attribute maps."""

from __future__ import annotations

import httpx
import pytest

from genesys import (
    CONTROL_CHARACTERS,
    VoiceSafeAttributes,
    VoiceSafeChecker,
    VoiceSafeLimits,
    VoiceSafeSettingsError,
    check_attributes,
)
from genesys.voice_safe import body_size
from profiles.flatten import _UNSAFE_KEY_CHARACTERS


def test_a_flat_string_map_passes_and_becomes_the_request_body() -> None:
    """A valid map passes with no problems and gives the ParticipantAttributes body."""
    report = check_attributes({"slack.title": "Engineer", "slack.tz": "Europe/Dublin"}, VoiceSafeLimits())
    assert report.ok
    assert report.sendable().body() == {"attributes": {"slack.title": "Engineer", "slack.tz": "Europe/Dublin"}}


@pytest.mark.parametrize(
    ("attributes", "rule"),
    [
        ({"k": 5}, "value_type"),
        ({"k": True}, "value_type"),
        ({"k": None}, "value_type"),
        ({"k": {"nested": "x"}}, "value_type"),
        ({"k": ["a"]}, "value_type"),
        ({5: "v"}, "key_type"),
        ({"": "v"}, "key_empty"),
        ({"   ": "v"}, "key_empty"),
        ({"k" * 129: "v"}, "key_length"),
        ({"a\nb": "v"}, "key_characters"),
        ({"a\x00b": "v"}, "key_characters"),
        ({" k": "v"}, "key_characters"),
        ({"k": "broken \ud800 unicode"}, "value_encoding"),
        ({"k\udfff": "v"}, "key_encoding"),
    ],
)
def test_each_rule_is_enforced(attributes: dict[object, object], rule: str) -> None:
    """Each rule on keys and values produces a problem naming it, and nothing is sendable."""
    report = check_attributes(attributes, VoiceSafeLimits())
    assert [problem.rule for problem in report.problems] == [rule]
    with pytest.raises(ValueError, match="not voice-safe"):
        report.sendable()


@pytest.mark.parametrize("value", [None, "text", ["a"], 3])
def test_a_map_that_is_not_an_object_is_refused(value: object) -> None:
    """A null map or a non-object is refused as a whole."""
    assert [p.rule for p in check_attributes(value, VoiceSafeLimits()).problems] == ["not_a_map"]


def test_every_problem_is_reported_not_just_the_first() -> None:
    """Validation lists every problem with key, rule and a short preview of the value."""
    report = check_attributes({"a": 1, "b": None, "": "x", "ok": "fine"}, VoiceSafeLimits())
    assert [(p.key, p.rule) for p in report.problems] == [("a", "value_type"), ("b", "value_type"), ("''", "key_empty")]
    assert report.problems[0].value_preview == "int 1"
    assert report.problems[1].value_preview == "null"


def test_long_values_are_truncated_and_reported_by_default() -> None:
    """Over-long values are cut to max_value_chars and the cut is reported."""
    report = check_attributes({"k": "x" * 300}, VoiceSafeLimits())
    assert report.ok
    assert report.attributes["k"] == "x" * 256
    assert [(t.key, t.original_chars, t.kept_chars) for t in report.truncations] == [("k", 300, 256)]


def test_long_values_are_rejected_when_configured() -> None:
    """With long_values = "reject" an over-long value is a problem with a preview."""
    report = check_attributes({"k": "x" * 300}, VoiceSafeLimits(long_values="reject"))
    assert [p.rule for p in report.problems] == ["value_length"]
    assert "(300 chars)" in report.problems[0].value_preview


def test_attribute_count_is_limited() -> None:
    """More attributes than max_attributes is a problem."""
    report = check_attributes({f"k{i}": "v" for i in range(11)}, VoiceSafeLimits(max_attributes=10))
    assert [p.rule for p in report.problems] == ["attribute_count"]


def test_body_size_is_limited() -> None:
    """A body over max_body_bytes is a problem."""
    report = check_attributes({f"k{i}": "é" * 200 for i in range(20)}, VoiceSafeLimits(max_body_bytes=4_000))
    assert [p.rule for p in report.problems] == ["body_size"]


@pytest.mark.parametrize(
    "attributes",
    [
        {},
        {"slack.title": "Engineer"},
        {"slack.title": "Engineer", "slack.team": "Care", "slack.empty": ""},
        {"slack.name": "Zoë — “quotes” 日本", "slack.x": "a\"b\\c"},
        {"slack.quote": 'say "hi"'},
        {"slack.lines": "one\ntwo\ttab\x00"},
        {"slack.emoji": "🎧 on a call"},
    ],
)
def test_body_size_matches_what_httpx_sends(attributes: dict[str, str]) -> None:
    """The counted size is exactly the request body httpx encodes, escapes and non-ASCII included."""
    request = httpx.Request("PATCH", "http://127.0.0.1/x", json={"attributes": attributes})
    assert body_size(attributes) == len(request.content)


@pytest.mark.parametrize(
    ("table", "setting"),
    [
        ({"max_value_chars": 0}, "max_value_chars"),
        ({"max_body_bytes": 600_000}, "max_body_bytes"),
        ({"max_attributes": "100"}, "max_attributes"),
        ({"long_values": "drop"}, "long_values"),
        ({"max_values": 3}, "max_values"),
    ],
)
def test_bad_limits_name_the_setting(table: dict[str, object], setting: str) -> None:
    """Invalid [voice_safe] settings are refused with the setting's name."""
    with pytest.raises(VoiceSafeSettingsError) as caught:
        VoiceSafeLimits.from_table(table)
    assert caught.value.setting == setting


def test_what_was_checked_is_what_is_sent() -> None:
    """The checked map cannot be changed afterwards, through the report or the sendable value."""
    original = {"slack.title": "Engineer"}
    report = check_attributes(original, VoiceSafeLimits())
    original["slack.title"] = "changed"
    with pytest.raises(TypeError):
        report.attributes["slack.title"] = 5  # type: ignore[index]
    with pytest.raises(TypeError):
        report.sendable().attributes["slack.title"] = 5  # type: ignore[index]
    assert report.sendable().body() == {"attributes": {"slack.title": "Engineer"}}


def test_only_check_attributes_makes_sendable_attributes() -> None:
    """VoiceSafeAttributes cannot be built around the check."""
    with pytest.raises(TypeError, match="only by check_attributes"):
        VoiceSafeAttributes({"slack.n": 5}, 0)  # type: ignore[dict-item]


@pytest.mark.parametrize(
    "attributes",
    [
        {"slack.title": "Engineer", "slack.tz": "Europe/Dublin"},
        {"slack.title": 5},
        {"slack.title": "x" * 300},
        {" slack.title": "v"},
        {"k" * 129: "v"},
        {"a\nb": "v"},
        {"k\udfff": "v"},
        {f"k{i}": "v" for i in range(101)},
    ],
)
def test_the_checker_finds_what_check_attributes_finds(attributes: dict[object, object]) -> None:
    """A VoiceSafeChecker, with the keys seen before or not, reports exactly what check_attributes reports."""
    limits = VoiceSafeLimits()
    expected = check_attributes(attributes, limits)
    checker = VoiceSafeChecker(limits)
    checker.check({key: "seen" for key in attributes})  # remembers the keys that pass
    for _ in range(2):
        report = checker.check(attributes)
        assert (report.problems, report.truncations, dict(report.attributes), report.body_bytes) == (
            expected.problems, expected.truncations, dict(expected.attributes), expected.body_bytes
        )


def test_the_pure_layer_strips_the_same_control_characters_the_gate_refuses() -> None:
    """profiles/ may import only the standard library, so it keeps a copy of the pattern: the same one."""
    assert _UNSAFE_KEY_CHARACTERS.pattern == CONTROL_CHARACTERS.pattern
