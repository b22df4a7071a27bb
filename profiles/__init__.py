"""The profile layer: pure functions from a Slack user object to flat, mapped attribute text.

No I/O and no Slack or Genesys clients here; voice-safe validation belongs to `genesys`.
"""

from profiles.fields import FieldDefinition, FieldLabels, TeamProfileError
from profiles.flatten import (
    Exclusion,
    Flattened,
    FlattenLimits,
    FlattenNote,
    FlattenSettingsError,
    JsonValue,
    ProfileSettingsError,
    flatten,
    scalar_text,
)
from profiles.mapping import (
    DEFAULT_INCLUDE,
    DEFAULT_PERSON_OPTIONAL,
    SENSITIVE_GROUPS,
    AttributeMapper,
    AttributeMapping,
    Mapped,
    MappingSettingsError,
)
from profiles.user import NotAUserObject, SlackUser, find_user, flatten_user

__all__ = [
    "DEFAULT_INCLUDE",
    "DEFAULT_PERSON_OPTIONAL",
    "SENSITIVE_GROUPS",
    "AttributeMapper",
    "AttributeMapping",
    "Exclusion",
    "FieldDefinition",
    "FieldLabels",
    "FlattenLimits",
    "FlattenNote",
    "FlattenSettingsError",
    "Flattened",
    "JsonValue",
    "Mapped",
    "MappingSettingsError",
    "NotAUserObject",
    "ProfileSettingsError",
    "SlackUser",
    "TeamProfileError",
    "find_user",
    "flatten",
    "flatten_user",
    "scalar_text",
]
