"""Desired state: one Slack user's attributes, flattened, mapped and checked voice-safe."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from genesys import VoiceSafeChecker, VoiceSafeLimits, VoiceSafetyReport
from profiles import AttributeMapper, AttributeMapping, FieldLabels, FlattenLimits, FlattenNote, Mapped, SlackUser


class AttributeRules:
    """Everything that decides which attributes a profile becomes: the settings file's three tables, and the
    mapper and checker built once for them. Not a value: it owns their caches (decisions by source key, keys
    that passed the voice-safe rules), so build one per set of settings and keep it (the app builds one)."""

    __slots__ = ("checker", "flatten_limits", "mapper", "mapping", "voice_safe")

    def __init__(self, mapping: AttributeMapping | None = None, flatten_limits: FlattenLimits | None = None,
                 voice_safe: VoiceSafeLimits | None = None) -> None:
        self.mapping = mapping or AttributeMapping()
        self.flatten_limits = flatten_limits or FlattenLimits()
        self.voice_safe = voice_safe or VoiceSafeLimits()
        self.mapper = AttributeMapper(self.mapping)
        self.checker = VoiceSafeChecker(self.voice_safe)


@dataclass(frozen=True, slots=True)
class DesiredAttributes:
    """The attributes one Slack user should carry, with what was left out and whether they may be sent."""

    user: SlackUser
    mapped: Mapped
    notes: tuple[FlattenNote, ...]
    report: VoiceSafetyReport
    optional: tuple[str, ...] = ()
    """Attribute keys of this profile the person may keep to themself (`person_optional`), withheld ones included."""
    withheld: tuple[str, ...] = ()
    """Of those, the ones the person keeps to themself: left out of `report.attributes`, so never written."""

    @property
    def ok(self) -> bool:
        return self.report.ok


def desired_attributes(user: SlackUser, labels: FieldLabels, rules: AttributeRules, *,
                       withheld: Collection[str] = ()) -> DesiredAttributes:
    """Flatten, map and voice-safe check one user's profile; `withheld`: the optional attribute keys the person
    keeps to themself (their App Home choice), left out here so that every writer (each target) leaves them out.

    A withheld key that is not optional (the operator changed `person_optional` since) is written again."""
    mapped, notes = rules.mapper.map_user(user.user, labels, limits=rules.flatten_limits,
                                          max_key_chars=rules.voice_safe.max_key_chars)
    optional = rules.mapper.person_optional(mapped.attributes)
    kept_back = tuple(key for key in optional if key in withheld)
    attributes = mapped.attributes
    if kept_back:
        attributes = {key: value for key, value in attributes.items() if key not in kept_back}
    report = rules.checker.check(attributes)
    return DesiredAttributes(user, mapped, notes + mapped.notes, report, optional, kept_back)
