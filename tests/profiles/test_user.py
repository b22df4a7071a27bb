"""Finding the user object in Slack's payloads, and flattening it with its custom fields."""

from __future__ import annotations

from typing import Any

import pytest

from profiles import FieldLabels, NotAUserObject, find_user, flatten_user
from tests.conftest import EXAMPLES, load_json, slack_fixture


@pytest.mark.parametrize(
    ("fixture", "source", "user_id"),
    [
        ("user_change.slack-docs-example.event.json", "user_change event", "U1234567"),
        ("user_profile_changed.docs-slack-dev-example.envelope.json", "user_profile_changed event envelope",
         "U123ABC456"),
        ("users.profile.get.slack-docs-example.response.json", "users.profile.get response", None),
    ],
)
def test_finds_the_user_in_real_slack_payloads(fixture: str, source: str, user_id: str | None) -> None:
    """Each real payload shape yields its user object."""
    user = find_user(slack_fixture(fixture))
    assert user.source == source
    assert user.user_id == user_id


@pytest.mark.parametrize(
    ("document", "source"),
    [
        ({"ok": True, "user": {"id": "U1", "profile": {}}}, "users.info response"),
        ({"type": "team_join", "user": {"id": "U1", "profile": {}}}, "team_join event"),
        ({"id": "U1", "name": "ada", "profile": {"title": "x"}}, "user object"),
        ({"profile": {"title": "x"}}, "user object"),
    ],
)
def test_finds_the_user_in_other_shapes(document: dict[str, Any], source: str) -> None:
    """users.info responses, team_join events and bare user objects are understood."""
    assert find_user(document).source == source


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ([], "found a list"),
        ("U123", "found a string"),
        (None, "found null"),
        ({"ok": False, "error": "user_not_found"}, "'user_not_found'"),
        ({"type": "event_callback", "event": {"type": "message", "text": "hi"}}, "'message' event envelope"),
        ({"type": "event_callback"}, "without an 'event'"),
        ({"type": "user_change"}, "has no 'user' object"),
        ({"hello": "world"}, "no Slack user object found"),
    ],
)
def test_documents_without_a_user_are_refused_with_a_reason(document: object, fragment: str) -> None:
    """Anything that is not a user says what it is instead."""
    with pytest.raises(NotAUserObject) as caught:
        find_user(document)
    assert fragment in str(caught.value)


def test_custom_fields_use_labels_from_team_profile() -> None:
    """With field definitions, custom values are keyed custom.<label>, and a non-empty alt is kept."""
    user = find_user(load_json(EXAMPLES / "slack-user.json"))
    labels = FieldLabels.from_team_profile(load_json(EXAMPLES / "team-profile.json"))
    flat = flatten_user(user.user, labels).attributes
    assert flat["custom.Department"] == "Customer Care"
    assert flat["custom.Team"] == "Tier 2 — Billing"
    assert flat["custom.Manager"] == "U024BE7LJ"
    assert flat["custom.Manager.alt"] == "Grace Hopper"
    assert "custom.Department.alt" not in flat
    assert not any(key.startswith("profile.fields") for key in flat)


def test_custom_fields_fall_back_to_ids_without_definitions() -> None:
    """Without field definitions custom values are keyed by field id, as in the real users.profile.get payload."""
    user = find_user(slack_fixture("users.profile.get.slack-docs-example.response.json"))
    flat = flatten_user(user.user, FieldLabels.empty()).attributes
    assert flat["custom.Xf0111111"] == "Barista"
    assert flat["custom.Xf0222222"] == "2022-04-11"


def test_custom_fields_can_be_keyed_by_id_even_with_labels() -> None:
    """custom_fields = "id" ignores labels."""
    user = find_user(load_json(EXAMPLES / "slack-user.json"))
    labels = FieldLabels.from_team_profile(load_json(EXAMPLES / "team-profile.json"))
    flat = flatten_user(user.user, labels, custom_field_names="id").attributes
    assert flat["custom.Xf0DEPT0001"] == "Customer Care"


def test_unknown_field_ids_are_noted_when_labels_are_given() -> None:
    """A field id missing from the definitions is keyed by id with a note."""
    labels = FieldLabels.from_team_profile(slack_fixture("team.profile.get.slack-docs-example.response.json"))
    user = find_user(slack_fixture("users.profile.get.slack-docs-example.response.json"))
    result = flatten_user(user.user, labels)
    assert result.attributes["custom.Xf0111111"] == "Barista"
    assert {note.kind for note in result.notes} == {"unknown_field"}


@pytest.mark.parametrize("fields", [{}, [], None])
def test_every_empty_shape_of_fields_is_handled(fields: object) -> None:
    """Slack sends profile.fields as {}, [] or null: none of them produces a key."""
    flat = flatten_user({"id": "U1", "profile": {"title": "T", "fields": fields}}, FieldLabels.empty()).attributes
    assert flat == {"id": "U1", "profile.title": "T"}


def test_duplicate_labels_collide_visibly() -> None:
    """Two custom fields with the same label both survive, and the collision is reported."""
    labels = FieldLabels.from_team_profile({"fields": [{"id": "F1", "label": "Team"}, {"id": "F2", "label": "Team "}]})
    result = flatten_user({"profile": {"fields": {"F1": {"value": "a"}, "F2": {"value": "b"}}}}, labels)
    assert result.attributes == {"custom.Team": "a", "custom.Team~2": "b"}
    assert [n.kind for n in result.notes] == ["collision"]


def test_custom_fields_follow_workspace_order() -> None:
    """Custom fields are placed in the workspace's field order, so collisions resolve the same way each time."""
    labels = FieldLabels.from_team_profile({"fields": [{"id": "Z", "label": "Same", "ordering": 0},
                                                       {"id": "A", "label": "Same", "ordering": 1}]})
    result = flatten_user({"profile": {"fields": {"A": {"value": "second"}, "Z": {"value": "first"}}}}, labels)
    assert result.attributes == {"custom.Same": "first", "custom.Same~2": "second"}


def test_odd_field_entries_do_not_crash() -> None:
    """A field entry that is a bare string or a list is tolerated."""
    result = flatten_user({"profile": {"fields": {"F1": "plain", "F2": ["x"], "F3": {"value": None}}}},
                          FieldLabels.empty())
    assert result.attributes == {"custom.F1": "plain"}
