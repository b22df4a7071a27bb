"""Properties over any JSON-like input: text attributes, voice-safe, deterministic."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from genesys import VoiceSafeLimits, check_attributes
from profiles import (
    DEFAULT_INCLUDE,
    AttributeMapper,
    AttributeMapping,
    FieldLabels,
    FlattenLimits,
    flatten,
    flatten_user,
)
from profiles.user import SlackUser
from sync import AttributeRules, desired_attributes

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=300)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=20), children, max_size=6),
    max_leaves=40,
)
user_objects = st.fixed_dictionaries(
    {"id": st.text(max_size=12), "profile": st.dictionaries(st.text(max_size=20), json_values, max_size=8)},
    optional={
        "tz": st.text(max_size=40),
        "extra": json_values,
        "fields": st.one_of(st.none(), st.just([]), st.dictionaries(
            st.text(max_size=10), st.fixed_dictionaries({"value": json_scalars, "alt": st.text(max_size=20)}),
            max_size=5,
        )),
    },
)
# Map everything, and bound the key count so the count and body limits (reported problems, never silent drops)
# hold by construction: 100 keys of at most 128 + 256 characters stay under 512,000 bytes.
everything = AttributeRules(
    mapping=AttributeMapping(include=("*",)),
    flatten_limits=FlattenLimits(max_keys=100),
    voice_safe=VoiceSafeLimits(max_attributes=100, max_body_bytes=512_000),
)


def _as_user(document: dict[str, Any]) -> dict[str, Any]:
    if "fields" in document:
        document = {**document, "profile": {**document["profile"], "fields": document.pop("fields")}}
    return document


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_flatten_gives_text_to_text_for_any_json(value: Any) -> None:
    """For any JSON value the output maps strings to strings and passes voice-safe validation."""
    result = flatten(value)
    assert all(type(k) is str and type(v) is str for k, v in result.attributes.items())
    assert check_attributes(result.attributes, VoiceSafeLimits(max_key_chars=256, max_attributes=1_000,
                                                               max_body_bytes=512_000)).ok


@settings(max_examples=200, deadline=None)
@given(user_objects)
def test_the_whole_layer_is_voice_safe_for_any_user(document: dict[str, Any]) -> None:
    """Flatten, map everything and validate: any user object yields a sendable map."""
    desired = desired_attributes(SlackUser(_as_user(document), "user object"), FieldLabels.empty(), everything)
    assert desired.ok, desired.report.problems
    assert all(type(k) is str and type(v) is str for k, v in desired.report.sendable().attributes.items())


@settings(max_examples=200, deadline=None)
@given(user_objects)
def test_the_layer_is_deterministic(document: dict[str, Any]) -> None:
    """The same input (even re-parsed from JSON) gives the same keys in the same order."""
    user = _as_user(document)
    first = flatten_user(user, FieldLabels.empty()).attributes
    again = flatten_user(json.loads(json.dumps(user)), FieldLabels.empty()).attributes
    assert list(first.items()) == list(again.items())
    assert list(first) == sorted(first)


@settings(max_examples=200, deadline=None)
@given(json_values, json_values)
def test_no_value_is_silently_overwritten(a: Any, b: Any) -> None:
    """Every scalar placed is kept: the number of keys equals the values seen, collisions included."""
    result = flatten({"a": a, "a ": b})
    single = len(flatten({"a": a}).attributes) + len(flatten({"a": b}).attributes)
    assert len(result.attributes) == single


INCLUDE_CHOICES = [("*",), DEFAULT_INCLUDE, ("profile.*",), ("custom.*", "tz"), ("enterprise_user.teams", "id"),
                   ("extra.*", "profile.?itle")]


@settings(max_examples=200, deadline=None)
@given(user_objects, st.sampled_from(INCLUDE_CHOICES))
def test_one_walk_mapping_equals_flatten_then_apply(document: dict[str, Any], include: tuple[str, ...]) -> None:
    """Mapping while flattening (with its caches and skipped containers) writes what flatten-then-map writes."""
    user = _as_user(document)
    flat = flatten_user(user, FieldLabels.empty())
    assume(not any(note.kind == "collision" for note in flat.notes))
    mapping = AttributeMapping(include=include)
    expected = AttributeMapper(mapping).apply(flat.attributes, max_key_chars=128).attributes
    mapper = AttributeMapper(mapping)
    for _ in range(2):  # cold, then with warm caches
        mapped, _notes = mapper.map_user(user, FieldLabels.empty(), limits=FlattenLimits(), max_key_chars=128)
        assert mapped.attributes == expected
