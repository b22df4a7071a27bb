"""Custom profile field definitions (`team.profile.get`), so custom values can be keyed by label."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class TeamProfileError(ValueError):
    """The field definitions are not in a shape `team.profile.get` returns; the message says which part."""


@dataclass(frozen=True, slots=True)
class FieldDefinition:
    """One custom profile field as the workspace defines it."""

    field_id: str
    label: str
    ordering: int
    field_type: str = "text"
    is_hidden: bool = False


@dataclass(frozen=True, slots=True)
class FieldLabels:
    """The workspace's custom field definitions, by field id."""

    by_id: Mapping[str, FieldDefinition]

    @classmethod
    def empty(cls) -> FieldLabels:
        return cls({})

    @classmethod
    def from_team_profile(cls, document: object) -> FieldLabels:
        """Read a `team.profile.get` response (or its `profile` object, or its `fields` list)."""
        fields = _fields_list(document)
        definitions: dict[str, FieldDefinition] = {}
        for index, entry in enumerate(fields):
            if not isinstance(entry, Mapping):
                raise TeamProfileError(f"profile.fields[{index}] is not an object")
            field_id, label = entry.get("id"), entry.get("label")
            if not isinstance(field_id, str) or not field_id:
                raise TeamProfileError(f"profile.fields[{index}] has no string 'id'")
            if not isinstance(label, str):
                raise TeamProfileError(f"profile.fields[{index}] ({field_id}) has no string 'label'")
            ordering = entry.get("ordering")
            definitions[field_id] = FieldDefinition(
                field_id=field_id,
                label=label,
                ordering=ordering if isinstance(ordering, int) and not isinstance(ordering, bool) else index,
                field_type=str(entry.get("type") or "text"),
                is_hidden=entry.get("is_hidden") is True,
            )
        return cls(definitions)

    def label(self, field_id: str) -> str | None:
        definition = self.by_id.get(field_id)
        return definition.label if definition else None

    def ordering(self, field_id: str) -> tuple[int, str]:
        """Sort key: the workspace's own order, then unknown fields by id."""
        definition = self.by_id.get(field_id)
        return (definition.ordering, field_id) if definition else (1 << 30, field_id)


def _fields_list(document: object) -> list[Any]:
    if isinstance(document, Mapping):
        if document.get("ok") is False:
            raise TeamProfileError(f"it is a Slack error response ({document.get('error', 'no error code')!r})")
        if "profile" in document:
            document = document["profile"]
        if isinstance(document, Mapping):
            if "fields" not in document:
                raise TeamProfileError("there is no 'profile.fields' list (expected a team.profile.get response)")
            document = document["fields"]
    if document is None:
        return []
    if not isinstance(document, list):
        raise TeamProfileError("'profile.fields' is not a list (expected a team.profile.get response)")
    return document
