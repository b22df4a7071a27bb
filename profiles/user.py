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
    SelectingPlacer,
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
    flatten_user_into(user, labels, custom_field_names, limits, placer, notes)
    return Flattened(dict(sorted(placer.placed.items())), notes.freeze())


def flatten_user_into(user: Mapping[str, Any], labels: FieldLabels, custom_field_names: CustomFieldNames,
                      limits: FlattenLimits, placer: KeyPlacer, notes: NoteList) -> None:
    """`flatten_user` into a given placer (a mapping's `SelectingPlacer` maps while it flattens)."""
    profile = user.get("profile")
    custom = profile.get("fields") if isinstance(profile, Mapping) else None
    walk(user, "", 0, limits, placer, notes, skip="profile.fields")
    if isinstance(custom, Mapping):
        _place_custom_fields(custom, labels, custom_field_names, limits, placer, notes)


def _place_custom_fields(custom: Mapping[Any, Any], labels: FieldLabels, naming: CustomFieldNames,
                         limits: FlattenLimits, placer: KeyPlacer, notes: NoteList) -> None:
    field_ids = tuple(custom)
    if set(map(type, field_ids)) != {str}:
        custom = {str(field_id): entry for field_id, entry in custom.items()}
        field_ids = tuple(custom)
    selecting = placer if isinstance(placer, SelectingPlacer) else None
    if selecting is None:
        plan = _custom_plan(field_ids, labels, naming, None)
    else:  # profiles of one workspace repeat one set of field ids: plan once per set (and labels object)
        labels_seen, plan = selecting.key_cache.plan(
            ("custom fields", field_ids, naming, id(labels)),
            lambda: (labels, _custom_plan(field_ids, labels, naming, selecting)),
        )
        if labels_seen is not labels:  # an id() reused by a newer labels object
            selecting.key_cache.plans.clear()
            plan = _custom_plan(field_ids, labels, naming, selecting)
    for field_id in plan.unknown:
        notes.add("unknown_field", field_id, "no definition for this custom field id; keyed by id")
    placed, max_key_chars, max_value_chars = placer.placed, placer.max_key_chars, limits.max_value_chars
    for field_id, part, key, origin, target, why in plan.steps:
        if len(placed) >= limits.max_keys:
            notes.add("keys", "", f"stopped at {limits.max_keys:,} keys; later custom fields were ignored")
            return
        entry = custom[field_id]
        if type(entry) is dict or isinstance(entry, Mapping):
            text = entry.get(part)
        else:  # a bare value where Slack sends {"value", "alt"}
            text = None if part == "alt" or isinstance(entry, list) else entry
        if type(text) is not str:
            text = scalar_text(text)
        if text is None or (part == "alt" and not text):
            continue
        if target is None:
            selecting.left_out.append(why)  # type: ignore[union-attr]
            continue
        if len(text) > max_value_chars:
            text = clip_value(text, key, limits, notes)
        if len(target) <= max_key_chars and target not in placed:
            placed[target] = text
        else:
            placer.place_at(target, text, origin)


@dataclass(frozen=True, slots=True)
class _CustomPlan:
    """Where one set of custom fields goes: per value and alt text, in the workspace's field order, its
    flattened key, its origin and the mapping's decision; and the field ids the definitions lack."""

    steps: tuple[tuple[str, str, str, str, str | None, Any], ...]
    unknown: tuple[str, ...]


def _custom_plan(field_ids: tuple[str, ...], labels: FieldLabels, naming: CustomFieldNames,
                 selecting: SelectingPlacer | None) -> _CustomPlan:
    fields = sorted((labels.keys_for(field_id, naming, _custom_key(field_id, labels, naming)), field_id)
                    for field_id in field_ids)
    steps = []
    for keys, field_id in fields:
        for part, key, origin in (("value", keys.key, keys.origin), ("alt", keys.alt_key, keys.alt_origin)):
            target, why = selecting.decide(key) if selecting is not None else (key, None)
            steps.append((field_id, part, key, origin, target, why))
    unknown = tuple(f for f in field_ids if f not in labels.by_id) if naming == "label" and labels.by_id else ()
    return _CustomPlan(tuple(steps), unknown)


def _custom_key(field_id: str, labels: FieldLabels, naming: CustomFieldNames) -> str:
    label = labels.label(field_id) if naming == "label" else None
    return f"{CUSTOM_FIELDS_KEY}.{clean_key_segment(field_id if label is None else label)}"


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
