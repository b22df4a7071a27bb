"""Find the Slack user object in whatever Slack gave us, and flatten it with its custom fields."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from profiles.fields import FieldLabels
from profiles.flatten import (
    CONTAINERS,
    Flattened,
    FlattenLimits,
    JsonValue,
    NoteList,
    Placement,
    text_of,
    walk,
)

CustomFieldNames = Literal["label", "id"]
CUSTOM_FIELDS_KEY = "custom"
_USER_EVENTS = ("user_change", "team_join", "user_profile_changed", "user_status_changed",
                "user_huddle_changed")


class NotAUserObject(ValueError):
    """The document holds no Slack user object; the message says what it is instead."""


@dataclass(frozen=True, slots=True)
class SlackUser:
    """A Slack user object and where it was found (for messages such as "from a user_change event")."""

    user: Mapping[str, Any]
    source: str

    @property
    def user_id(self) -> str | None:
        value = self.user.get("id")
        return value if isinstance(value, str) else None

    @property
    def display(self) -> str:
        profile = self.user.get("profile")
        names = [self.user.get("real_name"), profile.get("real_name") if isinstance(profile, Mapping) else None,
                 self.user.get("name")]
        name = next((n for n in names if isinstance(n, str) and n), None)
        return " ".join(part for part in (self.user_id, f"({name})" if name else None) if part) or "(no id)"


def find_user(document: object) -> SlackUser:
    """The user object in an event envelope, an event, a `users.info` or `users.profile.get` response,
    or a bare user object."""
    if not isinstance(document, Mapping):
        raise NotAUserObject(f"expected a JSON object, found {_json_kind(document)}")
    if document.get("ok") is False:
        raise NotAUserObject(f"it is a Slack error response ({document.get('error', 'no error code')!r})")
    if document.get("type") == "event_callback":
        event = document.get("event")
        if not isinstance(event, Mapping):
            raise NotAUserObject("it is an event envelope without an 'event' object")
        return _from_event(event, "event envelope")
    if document.get("type") in _USER_EVENTS or (isinstance(document.get("type"), str) and "user" in document):
        return _from_event(document, "event")
    if isinstance(document.get("user"), Mapping):
        return SlackUser(document["user"], "users.info response")
    if "id" not in document and isinstance(document.get("profile"), Mapping) and "ok" in document:
        return SlackUser({"profile": document["profile"]}, "users.profile.get response")
    if isinstance(document.get("id"), str) and ("profile" in document or "name" in document):
        return SlackUser(document, "user object")
    if isinstance(document.get("profile"), Mapping):
        return SlackUser(document, "user object")
    raise NotAUserObject(
        "no Slack user object found (expected an event envelope, a user_change/team_join event, a users.info"
        " or users.profile.get response, or a user object with 'id' and 'profile')"
    )


def _from_event(event: Mapping[str, Any], where: str) -> SlackUser:
    kind = event.get("type")
    if kind not in _USER_EVENTS:
        raise NotAUserObject(f"it is a {kind!r} {where}, which carries no user profile")
    user = event.get("user")
    if not isinstance(user, Mapping):
        raise NotAUserObject(f"the {kind} {where} has no 'user' object")
    return SlackUser(user, f"{kind} {where}")


def flatten_user(user: Mapping[str, JsonValue], labels: FieldLabels, *,
                 custom_field_names: CustomFieldNames = "label", limits: FlattenLimits | None = None) -> Flattened:
    """Flatten a user object; custom fields (`profile.fields`) become `custom.<label>` (or `custom.<id>`).

    Slack sends `profile.fields` as `{id: {"value", "alt"}}`, `[]` or `null`; all three are handled. An `alt`
    text (a link's title, a user field's name) becomes `custom.<label>.alt` when it is not empty.
    """
    limits = limits or FlattenLimits()
    notes = NoteList()
    placement = Placement(notes, max_key_chars=limits.max_key_chars, max_value_chars=limits.max_value_chars)
    flatten_user_into(user, labels, custom_field_names, limits, placement, notes)
    return Flattened(placement.in_key_order(), notes.freeze())


def flatten_user_into(user: Mapping[str, JsonValue], labels: FieldLabels, custom_field_names: CustomFieldNames,
                      limits: FlattenLimits, placement: Placement, notes: NoteList) -> None:
    """`flatten_user` into a given placement (a mapper's placement maps while it flattens)."""
    profile = user.get("profile")
    custom = profile.get("fields") if isinstance(profile, dict) else None
    walk(user if isinstance(user, dict) else dict(user), placement, limits, notes, skip="profile.fields")
    if isinstance(custom, dict):
        _place_custom_fields(custom, labels, custom_field_names, limits, placement, notes)


def _place_custom_fields(custom: dict[str, JsonValue], labels: FieldLabels, naming: CustomFieldNames,
                         limits: FlattenLimits, placement: Placement, notes: NoteList) -> None:
    """Each field's value and alt text, in the workspace's field order, so collisions resolve the same way."""
    unknown_noted = naming == "label" and bool(labels.by_id)
    known = placement.decided_below(CUSTOM_FIELDS_KEY)
    for field_id in sorted(custom, key=labels.ordering):
        if len(placement.placed) >= limits.max_keys:
            notes.add("keys", "", f"stopped at {limits.max_keys:,} keys; later custom fields were ignored")
            return
        if unknown_noted and field_id not in labels.by_id:
            notes.add("unknown_field", field_id, "no definition for this custom field id; keyed by id")
        definition = labels.by_id.get(field_id) if naming == "label" else None
        name = field_id if definition is None else definition.label
        decision = known.get(name) or placement.decide_below(CUSTOM_FIELDS_KEY, name, known)
        entry = custom[field_id]
        # Slack sends {"value", "alt"}; a bare scalar is taken as the value. Nested containers are not text.
        value, alt = (entry.get("value"), entry.get("alt")) if isinstance(entry, dict) else (entry, None)
        if value is not None and not isinstance(value, CONTAINERS):
            placement.put(decision, value if type(value) is str else text_of(value), "profile.fields." + field_id)
        alt_text = None if alt is None or alt == "" or isinstance(alt, CONTAINERS) else text_of(alt)
        if alt_text:
            known_alt = placement.decided_below(decision.key)
            alt_decision = known_alt.get("alt") or placement.decide_below(decision.key, "alt", known_alt)
            placement.put(alt_decision, alt_text, "profile.fields." + field_id + ".alt")


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return f"a {type(value).__name__}"
