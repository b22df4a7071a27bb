"""The flattening rules: keys, values, limits and determinism."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import json
import tracemalloc
import uuid
from typing import Any

import pytest

from profiles import FlattenLimits, FlattenSettingsError, flatten, scalar_text
from profiles.flatten import JsonValue


class Colour(enum.Enum):
    RED = "red"


def test_nested_objects_become_dot_keys() -> None:
    """Nested objects become dot-joined keys, sorted."""
    result = flatten({"profile": {"title": "Engineer", "team": {"name": "Care"}}, "id": "U1"})
    assert list(result.attributes.items()) == [
        ("id", "U1"), ("profile.team.name", "Care"), ("profile.title", "Engineer"),
    ]
    assert result.notes == ()


def test_scalar_lists_become_one_string() -> None:
    """A list of scalars is one joined value, so a shrinking list leaves no stale indexed keys."""
    before = flatten({"teams": ["T1", "T2", "T3"]}).attributes
    after = flatten({"teams": ["T1"]}).attributes
    assert before == {"teams": "T1, T2, T3"}
    assert after == {"teams": "T1"}
    assert set(before) == set(after)


def test_lists_of_objects_get_indexed_keys_up_to_a_cap() -> None:
    """Lists holding objects get key.0, key.1, … and the cap is reported."""
    items = [{"name": f"n{i}"} for i in range(5)]
    result = flatten({"list": items}, FlattenLimits(max_list_items=3))
    assert result.attributes == {"list.0.name": "n0", "list.1.name": "n1", "list.2.name": "n2"}
    assert [(n.kind, n.key) for n in result.notes] == [("list_items", "list")]


def test_mixed_lists_index_their_scalars_too() -> None:
    """A list mixing objects and scalars indexes every item."""
    assert flatten({"x": [{"a": 1}, "b", None]}).attributes == {"x.0.a": "1", "x.1": "b"}


def test_empty_containers_and_none_are_dropped_but_empty_strings_kept() -> None:
    """{} [] and null disappear; "" stays, because writing "" clears an earlier value."""
    result = flatten({"a": {}, "b": [], "c": None, "d": "", "e": [None], "f": {"g": {}}})
    assert result.attributes == {"d": ""}


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (-42, "-42"),
        (1648596421, "1648596421"),
        (0.1 + 0.2, "0.3"),
        (1.5, "1.5"),
        (1.0, "1"),
        (-0.0, "0"),
        (1e20, "100000000000000000000"),
        (2.0**60, "1152921504606850000"),  # above 2**53 a float is only 15 digits sure
        (123.456, "123.456"),
        (1e-5, "0.00001"),
        (1e-9, "1E-9"),
        (1e300, "1E+300"),
        (float("nan"), "NaN"),
        (float("inf"), "Infinity"),
        (float("-inf"), "-Infinity"),
        ("text", "text"),
    ],
)
def test_scalars_have_canonical_text(value: object, text: str) -> None:
    """Each JSON scalar has one canonical text, with no float noise and no exponent for ordinary integers."""
    assert scalar_text(value) == text
    assert flatten({"v": value}).attributes == {"v": text}


def test_huge_integers_do_not_crash() -> None:
    """An integer beyond Python's int-to-text digit limit becomes hex instead of raising."""
    text = scalar_text(10**5000)
    assert text is not None
    assert text.startswith("0x")


@pytest.mark.parametrize(
    "value",
    [
        decimal.Decimal("1.5"),
        dt.date(2024, 2, 29),
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        b"\x00\xff",
        memoryview(b"x"),
        Colour.RED,
        3 + 4j,
        (1, 2),
        {1, 2},
        object(),
    ],
)
def test_values_json_cannot_hold_are_refused(value: Any) -> None:
    """The input is what json.loads returns: any other type is a TypeError, not a guessed text."""
    with pytest.raises(TypeError, match="not a JSON scalar"):
        flatten({"v": value})


@pytest.mark.parametrize("key", [1, None, 2.5, True])
def test_keys_json_cannot_hold_are_refused(key: Any) -> None:
    """JSON object keys are strings: any other key is a TypeError."""
    with pytest.raises(TypeError, match="JSON object keys are strings"):
        flatten({"p": {key: "v"}})


@pytest.mark.parametrize(
    ("key", "clean"),
    [
        ("  title ", "title"),
        ("ti\x00tle", "title"),
        ("line\nbreak", "linebreak"),
        ("\u2028sep", "sep"),
        ("\x07\x1b", "_"),
        ("", "_"),
        ("Dept. code", "Dept. code"),
        ("Équipe", "Équipe"),
    ],
)
def test_key_segments_are_sanitized(key: str, clean: str) -> None:
    """Control characters and surrounding white space leave keys; nothing-left becomes "_"."""
    assert flatten({"p": {key: "v"}}).attributes == {f"p.{clean}": "v"}


def test_long_keys_are_cut_and_reported() -> None:
    """Keys over max_key_chars are cut to the cap with a note."""
    result = flatten({"k" * 300: "v"}, FlattenLimits(max_key_chars=32))
    assert list(result.attributes) == ["k" * 32]
    assert result.notes[0].kind == "key_cut"


def test_collisions_are_resolved_and_reported_never_overwritten() -> None:
    """Two source fields that become one key both survive: the later gets a suffix and a note."""
    result = flatten({"a": {"b": "nested"}, "a.b": "dotted", " a.b ": "spaced"})
    assert result.attributes == {"a.b": "nested", "a.b~2": "dotted", "a.b~3": "spaced"}
    assert [n.kind for n in result.notes] == ["collision", "collision"]
    assert "a.b~2" in result.notes[0].message


def test_collision_suffix_respects_the_key_cap() -> None:
    """A suffixed key still fits max_key_chars."""
    limits = FlattenLimits(max_key_chars=16)
    result = flatten({"x" * 20: "1", "x" * 21: "2"}, limits)
    assert all(len(key) <= 16 for key in result.attributes)
    assert sorted(result.attributes.values()) == ["1", "2"]


def test_ten_thousand_levels_deep_is_bounded() -> None:
    """Nesting 10,000 levels deep does not overflow the stack; the cut is reported."""
    deep: dict[str, object] = {"leaf": "top"}
    node = deep
    for _ in range(10_000):
        child: dict[str, object] = {}
        node["a"] = child
        node = child
    node["leaf"] = "bottom"
    result = flatten(deep, FlattenLimits(max_depth=16))
    assert result.attributes == {"leaf": "top"}
    assert [n.kind for n in result.notes] == ["depth"]


def test_deep_lists_are_bounded_too() -> None:
    """Deeply nested lists are cut at max_depth like objects."""
    deep: list[object] = ["x"]
    for _ in range(10_000):
        deep = [deep, {"k": 1}]
    result = flatten({"l": deep}, FlattenLimits(max_depth=8))
    assert any(n.kind == "depth" for n in result.notes)
    assert all(key.count(".") <= 8 for key in result.attributes)


def test_a_ten_megabyte_document_is_bounded_in_keys_and_memory() -> None:
    """A 10 MB document stops at the key budget with a note and small extra memory."""
    document = json.loads(json.dumps({f"k{i}": ["v" * 90, {"a": i}] for i in range(100_000)}))
    assert len(json.dumps(document)) > 10_000_000
    tracemalloc.start()
    try:
        result = flatten(document)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(result.attributes) == FlattenLimits().max_keys
    assert [n.kind for n in result.notes] == ["keys"]
    assert peak < 5_000_000


def test_huge_values_are_clipped_and_reported() -> None:
    """A 10 MB string is clipped to max_value_chars with a note."""
    result = flatten({"big": "x" * 10_000_000}, FlattenLimits(max_value_chars=100))
    assert result.attributes["big"] == "x" * 100
    assert result.notes[0].kind == "value_clipped"


def test_huge_scalar_lists_stop_at_the_value_budget() -> None:
    """A list of a million strings is joined only up to max_value_chars."""
    result = flatten({"l": ["abc"] * 1_000_000}, FlattenLimits(max_value_chars=50))
    assert len(result.attributes["l"]) == 50


def test_value_budget_stops_the_walk() -> None:
    """max_values bounds the work on a wide document and says so."""
    result = flatten({f"k{i}": {"x": i} for i in range(1000)}, FlattenLimits(max_values=100))
    assert 0 < len(result.attributes) < 100
    assert result.notes[-1].kind == "values"


def test_notes_are_capped() -> None:
    """Hostile input cannot make the report itself unbounded."""
    result = flatten({f"k{i}": "x" * 50 for i in range(500)}, FlattenLimits(max_value_chars=10))
    assert len(result.notes) == 51
    assert "450 more note(s)" in result.notes[-1].message


@pytest.mark.parametrize(
    ("value", "attributes"),
    [
        (42, {"value": "42"}),
        ("text", {"value": "text"}),
        (None, {}),
        ([1, 2], {"value": "1, 2"}),
        ([{"a": 1}], {"0.a": "1"}),
        ({}, {}),
    ],
)
def test_non_object_roots(value: JsonValue, attributes: dict[str, str]) -> None:
    """A root that is not an object is placed under "value", or indexed when it is a list of objects."""
    result = flatten(value)
    assert result.attributes == attributes
    assert result.notes == ()


def test_output_is_deterministic() -> None:
    """The same input gives the same keys in the same order."""
    document: JsonValue = {"b": [3, {"z": 1}], "a": {"y": 2.5, "x": True}, "s": ["q", "p"]}
    first, second = flatten(document), flatten(json.loads(json.dumps(document)))
    assert list(first.attributes.items()) == list(flatten(document).attributes.items())
    assert list(first.attributes) == sorted(first.attributes)
    assert first.attributes == second.attributes


@pytest.mark.parametrize(
    ("table", "setting"),
    [
        ({"max_depth": 0}, "max_depth"),
        ({"max_keys": "many"}, "max_keys"),
        ({"max_key_chars": 8}, "max_key_chars"),
        ({"max_list_items": True}, "max_list_items"),
        ({"depth": 3}, "depth"),
    ],
)
def test_bad_limits_name_the_setting(table: dict[str, object], setting: str) -> None:
    """Invalid [flatten] settings are refused with the setting's name."""
    with pytest.raises(FlattenSettingsError) as caught:
        FlattenLimits.from_table(table)
    assert caught.value.setting == setting
