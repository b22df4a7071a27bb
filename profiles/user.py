"""Find the Slack user object in whatever Slack gave us, and flatten it with its custom fields."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from profiles.fields import FieldLabels
from profiles.flatten import (
    Flattened,
    FlattenLimits,
    KeyPlacer,
    NoteList,
    clean_key_segment,
    clip_value,
    scalar_text,
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


def flatten_user(user: Mapping[str, Any], labels: FieldLabels, *, custom_field_names: CustomFieldNames = "label",
                 limits: FlattenLimits | None = None) -> Flattened:
    """Flatten a user object; custom fields (`profile.fields`) become `custom.<label>` (or `custom.<id>`).

    Slack sends `profile.fields` as `{id: {"value", "alt"}}`, `[]` or `null`; all three are handled. An `alt`
    text (a link's title, a user field's name) becomes `custom.<label>.alt` when it is not empty.
    """
    limits = limits or FlattenLimits()
    notes = NoteList()
    placer = KeyPlacer(limits.max_key_chars, notes)
    profile = user.get("profile")
    custom = profile.get("fields") if isinstance(profile, Mapping) else None
    if isinstance(profile, Mapping) and "fields" in profile:
        user = {**user, "profile": {k: v for k, v in profile.items() if k != "fields"}}
    walk(user, "", 0, limits, placer, notes)
    if isinstance(custom, Mapping):
        _place_custom_fields(custom, labels, custom_field_names, limits, placer, notes)
    return Flattened(dict(sorted(placer.placed.items())), notes.freeze())


def _place_custom_fields(custom: Mapping[Any, Any], labels: FieldLabels, naming: CustomFieldNames,
                         limits: FlattenLimits, placer: KeyPlacer, notes: NoteList) -> None:
    field_ids = sorted((str(field_id) for field_id in custom), key=labels.ordering)
    by_text = {str(field_id): entry for field_id, entry in custom.items()}
    for field_id in field_ids:
        if len(placer.placed) >= limits.max_keys:
            notes.add("keys", "", f"stopped at {limits.max_keys:,} keys; later custom fields were ignored")
            return
        entry = by_text[field_id]
        label = labels.label(field_id) if naming == "label" else None
        if naming == "label" and label is None and labels.by_id:
            notes.add("unknown_field", field_id, "no definition for this custom field id; keyed by id")
        name = clean_key_segment(label if label is not None else field_id)
        key = f"{CUSTOM_FIELDS_KEY}.{name}"
        origin = f"profile.fields.{field_id}"
        if isinstance(entry, Mapping):
            value, alt = scalar_text(entry.get("value")), scalar_text(entry.get("alt"))
        else:
            value, alt = scalar_text(entry) if not isinstance(entry, list) else None, None
        if value is not None:
            placer.place(key, clip_value(value, key, limits, notes), origin)
        if alt:
            placer.place(f"{key}.alt", clip_value(alt, f"{key}.alt", limits, notes), origin + ".alt")


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
