"""Mapping: which flattened Slack fields reach Genesys, under which attribute keys.

The `[attributes]` table of the settings file (see `sync.example.toml`) configures it. A source key is
written when it matches an `include` pattern, matches no `exclude` pattern and belongs to no sensitive group
the operator has not opted in to. Its attribute key is `prefix` + (its `rename`, or the source key without
the first matching `strip_prefixes` entry).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from profiles.fields import FieldLabels
from profiles.flatten import (
    Decision,
    Exclusion,
    FlattenLimits,
    FlattenNote,
    JsonValue,
    NoteList,
    Placement,
    ProfileSettingsError,
    clean_key_segment,
)
from profiles.user import CustomFieldNames, flatten_user_into

# Fields worth seeing next to a conversation; anything else needs an explicit include.
DEFAULT_INCLUDE: tuple[str, ...] = (
    "id", "team_id", "name", "deleted",
    "tz", "tz_label", "locale",
    "is_admin", "is_owner", "is_restricted", "is_ultra_restricted",
    "profile.title", "profile.real_name", "profile.display_name", "profile.first_name", "profile.last_name",
    "profile.pronouns", "profile.start_date",
    "profile.email", "profile.phone", "profile.skype",
    "enterprise_user.enterprise_name",
    "custom.*",
)
# Personal or noisy data: left out, whatever `include` says, unless the operator opts in by group.
SENSITIVE_GROUPS: dict[str, tuple[str, ...]] = {
    "email": ("*email*",),
    "phone": ("*phone*", "profile.skype"),
    "avatar": ("profile.image_*", "profile.avatar_hash", "profile.is_custom_image"),
    "status": ("profile.status_*", "profile.huddle_*", "presence", "profile.always_active"),
}
DEFAULT_RENAME: dict[str, str] = {"id": "user_id", "tz": "timezone", "tz_label": "timezone_label"}
# Fields each person may keep to themself (the App Home's checkboxes): pronouns and every custom field.
DEFAULT_PERSON_OPTIONAL: tuple[str, ...] = ("profile.pronouns", "custom.*")
# Bounds on the decisions kept: a Slack user object has under 30 containers and 100 keys.
_PARENTS_KEPT = 256
_DECISIONS_KEPT_PER_PARENT = 128


class MappingSettingsError(ProfileSettingsError):
    """An `[attributes]` setting is invalid."""


@dataclass(frozen=True, slots=True)
class Mapped:
    """Attributes ready for voice-safe validation, plus what was left out and what was renamed."""

    attributes: Mapping[str, str]
    excluded: tuple[Exclusion, ...]
    notes: tuple[FlattenNote, ...]


@dataclass(frozen=True, slots=True)
class AttributeMapping:
    """What reaches Genesys and under which keys."""

    prefix: str = "slack."
    include: tuple[str, ...] = DEFAULT_INCLUDE
    exclude: tuple[str, ...] = ()
    strip_prefixes: tuple[str, ...] = ("profile.",)
    rename: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_RENAME))
    opt_in: frozenset[str] = frozenset()
    custom_fields: CustomFieldNames = "label"
    person_optional: tuple[str, ...] = DEFAULT_PERSON_OPTIONAL
    """Source keys (glob patterns, like `include`) whose attributes each person may keep to themself."""

    def __post_init__(self) -> None:
        _check_key_text("prefix", self.prefix, allow_empty=True)
        for name in ("include", "exclude", "strip_prefixes", "person_optional"):
            for index, pattern in enumerate(getattr(self, name)):
                if not isinstance(pattern, str) or not pattern:
                    raise MappingSettingsError(f"{name}[{index}]", "must be a non-empty string")
        for source, target in self.rename.items():
            _check_key_text(f"rename.{source!r}", target, allow_empty=False)
        unknown = set(self.opt_in) - set(SENSITIVE_GROUPS)
        if unknown:
            raise MappingSettingsError(
                "opt_in", f"unknown group(s) {sorted(unknown)}; known: {', '.join(SENSITIVE_GROUPS)}"
            )
        if self.custom_fields not in ("label", "id"):
            raise MappingSettingsError("custom_fields", f'must be "label" or "id", not {self.custom_fields!r}')

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> AttributeMapping:
        """Build a mapping from an `[attributes]` settings table; unknown keys and wrong types are refused."""
        known = {f.name for f in fields(cls)}
        for key in table:
            if key not in known:
                raise MappingSettingsError(
                    str(key), f"is not an attributes setting (known: {', '.join(sorted(known))})"
                )
        values: dict[str, Any] = {}
        for name in ("include", "exclude", "strip_prefixes", "person_optional"):
            if name in table:
                values[name] = tuple(_string_list(name, table[name]))
        for name in ("prefix", "custom_fields"):
            if name in table:
                if not isinstance(table[name], str):
                    raise MappingSettingsError(name, f"must be a string, not {_toml_kind(table[name])}")
                values[name] = table[name]
        if "rename" in table:
            rename = table["rename"]
            if not isinstance(rename, Mapping) or not all(isinstance(v, str) for v in rename.values()):
                raise MappingSettingsError("rename", 'must be a table of "source.key" = "attribute key" strings')
            values["rename"] = {**DEFAULT_RENAME, **rename}
        if "opt_in" in table:
            opt_in = table["opt_in"]
            if not isinstance(opt_in, Mapping):
                raise MappingSettingsError("opt_in", "must be a table such as { email = true }")
            for group, enabled in opt_in.items():
                if group not in SENSITIVE_GROUPS:
                    raise MappingSettingsError(
                        f"opt_in.{group}", f"is not a sensitive group (known: {', '.join(SENSITIVE_GROUPS)})"
                    )
                if not isinstance(enabled, bool):
                    raise MappingSettingsError(f"opt_in.{group}", f"must be true or false, not {enabled!r}")
            values["opt_in"] = frozenset(group for group, enabled in opt_in.items() if enabled)
        return cls(**values)


class AttributeMapper:
    """An `AttributeMapping` compiled for use, with the one cache the profile layer keeps.

    The cache holds the decision for each key seen, by parent key and raw segment: profiles repeat the same
    keys, and one dictionary lookup then replaces cleaning and joining the key and matching it against the
    include, exclude and sensitive patterns (docs/performance.md says what it buys). Whoever maps many
    profiles keeps one mapper (`sync.AttributeRules` does). Bounded, so hostile key names cost time, not memory.
    """

    __slots__ = ("_decided", "_exclude", "_include", "_include_literals", "_optional", "_optional_targets",
                 "_sensitive", "mapping")

    def __init__(self, mapping: AttributeMapping) -> None:
        self.mapping = mapping
        # Compiled once: per key, one regex search instead of a loop over fnmatch patterns.
        self._include = _compile(mapping.include)
        self._exclude = _compile(mapping.exclude)
        self._sensitive = tuple(
            (group, _compile(patterns, ignore_case=True))
            for group, patterns in SENSITIVE_GROUPS.items() if group not in mapping.opt_in
        )
        # Every key a glob matches starts with the glob's literal prefix (the text before its first wildcard).
        self._include_literals = tuple(re.split(r"[*?\[]", pattern, maxsplit=1)[0] for pattern in mapping.include)
        self._decided: dict[str, dict[str, Decision]] = {}
        self._optional = _compile(mapping.person_optional)
        # The attribute keys of the source keys `person_optional` matched, as decided: an attribute key says
        # nothing of its source key once renamed, and decisions are made once per key, so they are noted then.
        self._optional_targets: set[str] = set()

    def person_optional(self, attribute_keys: Iterable[str]) -> tuple[str, ...]:
        """Those of `attribute_keys` (of profiles this mapper mapped) that a person may keep to themself."""
        return tuple(key for key in attribute_keys if key in self._optional_targets)

    def decide(self, source_key: str) -> Decision:
        """Where a value under this key is written (or why not), and whether a container there is walked."""
        return Decision(source_key, self._target(source_key), self._skipped(source_key))

    def decided_below(self, parent_key: str) -> dict[str, Decision]:
        """The decisions kept for the segments below a key, for the walk to read and add to."""
        known = self._decided.get(parent_key)
        if known is None:
            if len(self._decided) >= _PARENTS_KEPT:
                self._decided.clear()
            known = self._decided[parent_key] = {}
        return known if len(known) < _DECISIONS_KEPT_PER_PARENT else {}  # full: decide afresh, keep nothing

    def map_user(self, user: Mapping[str, JsonValue], labels: FieldLabels, *, limits: FlattenLimits,
                 max_key_chars: int) -> tuple[Mapped, tuple[FlattenNote, ...]]:
        """Flatten and map a user object in one walk: each leaf is decided before it is converted.

        Gives what `apply(flatten_user(...))` gives, except that containers nothing is wanted from are left
        out whole (one exclusion, not one per value below). Returns the mapped attributes and the flattening
        notes.
        """
        flatten_notes, mapping_notes = NoteList(), NoteList()
        placement = Placement(flatten_notes, max_key_chars=max_key_chars, max_value_chars=limits.max_value_chars,
                              selection=self, key_notes=mapping_notes)
        flatten_user_into(user, labels, self.mapping.custom_fields, limits, placement, flatten_notes)
        return _mapped(placement, mapping_notes), flatten_notes.freeze()

    def apply(self, flat: Mapping[str, str], *, max_key_chars: int) -> Mapped:
        """Select and rename flattened attributes; collisions after renaming get a suffix and a note."""
        notes = NoteList()
        placement = Placement(notes, max_key_chars=max_key_chars, selection=self)
        for source_key, value in flat.items():
            placement.put(self.decide(source_key), value)
        return _mapped(placement, notes)

    def _skipped(self, container_key: str) -> Exclusion | None:
        """None when an include pattern could match this key or a key below it; else why to skip it all."""
        for literal in self._include_literals:
            if container_key.startswith(literal) or literal.startswith(container_key + ".") or literal == container_key:
                return None
        return Exclusion(container_key, "not in include (nor anything below it)")

    def _target(self, source_key: str) -> str | Exclusion:
        if self._include is None or not self._include.match(source_key):
            return Exclusion(source_key, "not in include")
        if self._exclude is not None and self._exclude.match(source_key):
            return Exclusion(source_key, "matches exclude")
        for group, matcher in self._sensitive:
            if matcher is not None and matcher.match(source_key):
                return Exclusion(source_key, f"sensitive ({group}); opt in with [attributes.opt_in] {group} = true")
        target = self.mapping.rename.get(source_key)
        if target is None:
            target = source_key
            for strip in self.mapping.strip_prefixes:
                if target.startswith(strip) and len(target) > len(strip):
                    target = target[len(strip):]
                    break
        target = self.mapping.prefix + target
        if self._optional is not None and self._optional.match(source_key):
            # Never forgotten, unlike the decisions: a key dropped from here while a profile is mapped (on this thread
            # or another) would be written although its person keeps it back. It holds one entry per optional key the
            # profiles produce (their custom fields and pronouns), which the workspaces' field definitions bound.
            self._optional_targets.add(target)
        return target


def _mapped(placement: Placement, notes: NoteList) -> Mapped:
    return Mapped(placement.in_key_order(), tuple(placement.left_out), notes.freeze())


def _compile(patterns: tuple[str, ...], *, ignore_case: bool = False) -> re.Pattern[str] | None:
    if not patterns:
        return None
    combined = "|".join(f"(?:{fnmatch.translate(p)})" for p in patterns)
    return re.compile(combined, re.IGNORECASE if ignore_case else 0)


def _check_key_text(setting: str, text: object, *, allow_empty: bool) -> None:
    if not isinstance(text, str):
        raise MappingSettingsError(setting, f"must be a string, not {_toml_kind(text)}")
    if not text and not allow_empty:
        raise MappingSettingsError(setting, "must not be empty")
    if text and clean_key_segment(text) != text:
        raise MappingSettingsError(
            setting, f"{text!r} has control characters or surrounding white space; attribute keys cannot"
        )
    if len(text) > 64 and setting == "prefix":
        raise MappingSettingsError(setting, "must be at most 64 characters")


def _string_list(setting: str, value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise MappingSettingsError(setting, f'must be a list of non-empty strings such as ["profile.title"], not'
                                   f" {_toml_kind(value)}")
    return list(value)


def _toml_kind(value: object) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return "a list" if all(isinstance(v, str) for v in value) else "a list with a non-string item"
    if isinstance(value, Mapping):
        return "a table"
    return type(value).__name__
