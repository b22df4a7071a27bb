"""The mapping: what reaches Genesys, under which keys, and how bad settings are refused."""

from __future__ import annotations

from typing import Any

import pytest

from profiles import AttributeMapper, AttributeMapping, Exclusion, FieldLabels, FlattenLimits, MappingSettingsError

PROFILE = {
    "id": "U1",
    "updated": "1732540800",
    "profile.title": "Engineer",
    "profile.email": "ada@example.com",
    "profile.phone": "+44 20 7946 0000",
    "profile.skype": "ada.l",
    "profile.image_72": "https://example.com/a.png",
    "profile.avatar_hash": "g123",
    "profile.status_text": "On a call",
    "profile.status_emoji": ":phone:",
    "profile.huddle_state": "in_a_huddle",
    "custom.Department": "Care",
    "custom.Work email": "ada@work.example",
    "tz": "Europe/London",
}


def mapped(mapping: AttributeMapping) -> dict[str, str]:
    return dict(AttributeMapper(mapping).apply(PROFILE, max_key_chars=128).attributes)


def test_defaults_write_useful_fields_with_the_slack_prefix() -> None:
    """By default the title, timezone, id and custom fields are written under slack.*, renamed and stripped."""
    assert mapped(AttributeMapping()) == {
        "slack.custom.Department": "Care",
        "slack.timezone": "Europe/London",
        "slack.title": "Engineer",
        "slack.user_id": "U1",
    }


def test_defaults_leave_out_sensitive_and_noisy_fields_with_reasons() -> None:
    """E-mail, phone, avatar and status fields are left out, each with the reason and how to opt in."""
    result = AttributeMapper(AttributeMapping()).apply(PROFILE, max_key_chars=128)
    excluded = {e.source_key: e.reason for e in result.excluded}
    assert excluded["profile.email"].startswith("sensitive (email)")
    assert excluded["custom.Work email"].startswith("sensitive (email)")
    assert excluded["profile.phone"].startswith("sensitive (phone)")
    assert excluded["profile.skype"].startswith("sensitive (phone)")
    assert excluded["updated"] == "not in include"
    assert "profile.image_72" in excluded
    assert "profile.status_text" in excluded


@pytest.mark.parametrize(
    ("group", "source_keys"),
    [
        ("email", {"profile.email", "custom.Work email"}),
        ("phone", {"profile.phone", "profile.skype"}),
        ("avatar", {"profile.image_72", "profile.avatar_hash"}),
        ("status", {"profile.status_text", "profile.status_emoji", "profile.huddle_state"}),
    ],
)
def test_sensitive_groups_are_written_once_opted_in_and_included(group: str, source_keys: set[str]) -> None:
    """Opting a group in (with include = ["*"]) writes exactly that group's fields."""
    base = AttributeMapping(include=("*",))
    opted = AttributeMapping(include=("*",), opt_in=frozenset({group}))
    before = {e.source_key for e in AttributeMapper(base).apply(PROFILE, max_key_chars=128).excluded}
    after = {e.source_key for e in AttributeMapper(opted).apply(PROFILE, max_key_chars=128).excluded}
    assert before - after == source_keys


def test_include_star_still_keeps_sensitive_fields_out() -> None:
    """include = ["*"] does not leak e-mail or phone numbers."""
    written = mapped(AttributeMapping(include=("*",)))
    assert "slack.email" not in written
    assert "slack.phone" not in written
    assert written["slack.updated"] == "1732540800"


def test_exclude_patterns_win_over_include() -> None:
    """A field matching exclude is left out even when included."""
    written = mapped(AttributeMapping(exclude=("custom.*",)))
    assert "slack.custom.Department" not in written


def test_renames_prefix_and_strip_prefixes() -> None:
    """Renames apply to source keys, then the prefix; strip_prefixes drops profile."""
    mapping = AttributeMapping(prefix="hr_", rename={"profile.title": "job_title"}, strip_prefixes=())
    assert mapped(mapping) == {
        "hr_custom.Department": "Care", "hr_id": "U1", "hr_job_title": "Engineer", "hr_tz": "Europe/London",
    }


def test_renames_into_an_existing_key_collide_visibly() -> None:
    """Two sources renamed to one key both survive with a note."""
    result = AttributeMapper(AttributeMapping(rename={"tz": "title"})).apply(PROFILE, max_key_chars=128)
    assert result.attributes["slack.title"] == "Engineer"
    assert result.attributes["slack.title~2"] == "Europe/London"
    assert [n.kind for n in result.notes] == ["collision"]


def test_long_attribute_keys_are_cut_to_the_voice_safe_key_limit() -> None:
    """Mapped keys never exceed max_key_chars."""
    result = AttributeMapper(AttributeMapping()).apply({"custom." + "x" * 200: "v"}, max_key_chars=64)
    assert [len(key) for key in result.attributes] == [64]


def test_from_table_reads_every_setting() -> None:
    """A complete [attributes] table is understood; renames merge over the defaults."""
    mapping = AttributeMapping.from_table({
        "prefix": "s.", "include": ["profile.*"], "exclude": ["profile.x"], "strip_prefixes": [],
        "custom_fields": "id", "rename": {"profile.title": "t"}, "opt_in": {"email": True, "phone": False},
    })
    assert mapping.prefix == "s."
    assert mapping.include == ("profile.*",)
    assert mapping.custom_fields == "id"
    assert mapping.rename["profile.title"] == "t"
    assert mapping.rename["tz"] == "timezone"
    assert mapping.opt_in == frozenset({"email"})


@pytest.mark.parametrize(
    ("table", "setting", "fragment"),
    [
        ({"includes": ["x"]}, "includes", "is not an attributes setting"),
        ({"include": "profile.*"}, "include", "must be a list of non-empty strings"),
        ({"include": [""]}, "include", "must be a list of non-empty strings"),
        ({"prefix": 5}, "prefix", "must be a string, not the number 5"),
        ({"prefix": "slack.\n"}, "prefix", "control characters"),
        ({"custom_fields": "name"}, "custom_fields", 'must be "label" or "id"'),
        ({"rename": ["a"]}, "rename", "must be a table"),
        ({"rename": {"tz": ""}}, "rename.'tz'", "must not be empty"),
        ({"opt_in": {"emails": True}}, "opt_in.emails", "is not a sensitive group"),
        ({"opt_in": {"email": "yes"}}, "opt_in.email", "must be true or false"),
        ({"opt_in": True}, "opt_in", "must be a table"),
    ],
)
def test_bad_settings_name_the_setting_and_the_problem(table: dict[str, Any], setting: str, fragment: str) -> None:
    """Each invalid [attributes] setting is refused with its name and what is wrong."""
    with pytest.raises(MappingSettingsError) as caught:
        AttributeMapping.from_table(table)
    assert caught.value.setting == setting
    assert fragment in caught.value.problem


def test_decisions_are_cached_and_stable() -> None:
    """Deciding the same key twice gives the same answer (the second from the cache)."""
    mapper = AttributeMapper(AttributeMapping())
    assert mapper.decide("profile.title") == mapper.decide("profile.title")
    assert mapper.decide("profile.title").target == "slack.title"
    assert mapper.decide("profile.email").target == Exclusion("profile.email", "sensitive (email); opt in with"
                                                               " [attributes.opt_in] email = true")


def test_containers_nothing_can_match_are_skipped_as_one_exclusion() -> None:
    """A container no include pattern can reach is left out whole, named once."""
    user = {"id": "U1", "profile": {"title": "T", "status_emoji_display_info": [{"emoji_name": "x"}]},
            "enterprise_user": {"teams": ["T1", "T2"], "enterprise_name": "E"}}
    mapper = AttributeMapper(AttributeMapping())
    mapped, _ = mapper.map_user(user, FieldLabels.empty(), limits=FlattenLimits(), max_key_chars=128)
    excluded = {e.source_key: e.reason for e in mapped.excluded}
    assert excluded["profile.status_emoji_display_info"] == "not in include (nor anything below it)"
    assert excluded["enterprise_user.teams"] == "not in include (nor anything below it)"
    assert mapped.attributes == {"slack.enterprise_user.enterprise_name": "E", "slack.title": "T",
                                 "slack.user_id": "U1"}


@pytest.mark.parametrize(
    ("include", "container", "walked"),
    [
        (("*",), "anything", True),
        (("enterprise_user.teams",), "enterprise_user.teams", True),
        (("enterprise_user.teams",), "enterprise_user", True),
        (("enterprise_user.teams",), "enterprise_user.team", False),
        (("profile.?itle",), "profile", True),
        (("custom.*",), "customer", False),
        (("p*",), "profile.x", True),
    ],
)
def test_prune_is_conservative(include: tuple[str, ...], container: str, walked: bool) -> None:
    """A container is skipped only when no include pattern could match it or anything below it."""
    assert (AttributeMapper(AttributeMapping(include=include)).decide(container).skipped is None) is walked


@pytest.mark.parametrize(("parents", "children"), [(1, 300), (300, 2)])
def test_a_full_decision_cache_changes_nothing(parents: int, children: int) -> None:
    """Past the cache's bounds (per parent key, and parent keys) the mapper writes what a fresh one writes."""
    user = {f"p{p}": {f"c{c}": f"{p}.{c}" for c in range(children)} for p in range(parents)}
    limits = FlattenLimits(max_keys=1_000)
    mapper = AttributeMapper(AttributeMapping(include=("*",)))
    results = [mapper.map_user(user, FieldLabels.empty(), limits=limits, max_key_chars=128)[0] for _ in range(3)]
    assert len(results[0].attributes) == parents * children
    assert results[0] == results[1] == results[2]


@pytest.mark.parametrize(("table", "optional"), [
    ({}, ("slack.custom.Department",)),  # the default: pronouns (none here) and every custom field kept by the mapping
    ({"person_optional": ["profile.title", "tz"]}, ("slack.timezone", "slack.title")),
    ({"person_optional": ["profile.title"], "rename": {"profile.title": "role"}}, ("slack.role",)),
    ({"person_optional": []}, ()),
])
def test_person_optional_names_attribute_keys(table: dict[str, Any], optional: tuple[str, ...]) -> None:
    """person_optional patterns match source keys; the mapper names the attribute keys they became (renamed,
    prefixed), of the keys it placed only."""
    mapper = AttributeMapper(AttributeMapping.from_table(table))
    attributes = mapper.apply(PROFILE, max_key_chars=128).attributes
    assert mapper.person_optional(attributes) == optional


@pytest.mark.parametrize("value", ["profile.pronouns", [""], [1]])
def test_a_bad_person_optional_is_refused(value: object) -> None:
    """person_optional must be a list of non-empty strings, like include."""
    with pytest.raises(MappingSettingsError, match="person_optional"):
        AttributeMapping.from_table({"person_optional": value})
