"""Custom field definitions from team.profile.get."""

from __future__ import annotations

import pytest

from profiles import FieldLabels, TeamProfileError
from tests.conftest import slack_fixture


def test_reads_the_real_team_profile_response() -> None:
    """The docs example yields every field with its label and order."""
    labels = FieldLabels.from_team_profile(slack_fixture("team.profile.get.slack-docs-example.response.json"))
    assert labels.label("111111ABC") == "Phone extension"
    assert labels.label("333333ABC") == "House"
    assert labels.by_id["222222ABC"].is_hidden is True
    assert labels.by_id["333333ABC"].field_type == "options_list"
    assert labels.label("nope") is None


@pytest.mark.parametrize(
    "document",
    [
        {"ok": True, "profile": {"fields": [{"id": "F", "label": "L"}]}},
        {"fields": [{"id": "F", "label": "L"}]},
        [{"id": "F", "label": "L"}],
    ],
)
def test_accepts_the_response_the_profile_or_the_list(document: object) -> None:
    """The whole response, its profile object or the bare list all work."""
    assert FieldLabels.from_team_profile(document).label("F") == "L"


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ({"ok": False, "error": "missing_scope"}, "'missing_scope'"),
        ({"profile": {}}, "no 'profile.fields'"),
        ({"fields": "x"}, "not a list"),
        ({"fields": [1]}, "fields[0] is not an object"),
        ({"fields": [{"label": "L"}]}, "no string 'id'"),
        ({"fields": [{"id": "F"}]}, "(F) has no string 'label'"),
    ],
)
def test_bad_shapes_say_which_part(document: object, fragment: str) -> None:
    """A malformed definition list names the offending part."""
    with pytest.raises(TeamProfileError) as caught:
        FieldLabels.from_team_profile(document)
    assert fragment in str(caught.value)
