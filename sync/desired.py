"""Desired state: one Slack user's attributes, flattened, mapped and checked voice-safe."""

from __future__ import annotations

from dataclasses import dataclass, field

from genesys import VoiceSafeLimits, VoiceSafetyReport, check_attributes
from profiles import AttributeMapping, FieldLabels, FlattenLimits, FlattenNote, Mapped, SlackUser


@dataclass(frozen=True, slots=True)
class AttributeRules:
    """Everything that decides which attributes a profile becomes: the settings file's three tables."""

    mapping: AttributeMapping = field(default_factory=AttributeMapping)
    flatten_limits: FlattenLimits = field(default_factory=FlattenLimits)
    voice_safe: VoiceSafeLimits = field(default_factory=VoiceSafeLimits)


@dataclass(frozen=True, slots=True)
class DesiredAttributes:
    """The attributes one Slack user should carry, with what was left out and whether they may be sent."""

    user: SlackUser
    mapped: Mapped
    notes: tuple[FlattenNote, ...]
    report: VoiceSafetyReport

    @property
    def ok(self) -> bool:
        return self.report.ok


def desired_attributes(user: SlackUser, labels: FieldLabels, rules: AttributeRules) -> DesiredAttributes:
    """Flatten, map and voice-safe check one user's profile."""
    mapped, notes = rules.mapping.map_user(user.user, labels, limits=rules.flatten_limits,
                                           max_key_chars=rules.voice_safe.max_key_chars)
    report = check_attributes(mapped.attributes, rules.voice_safe)
    return DesiredAttributes(user, mapped, notes + mapped.notes, report)
