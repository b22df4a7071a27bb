"""The Genesys Cloud boundary: voice-safe validation of participant attributes, and the API client."""

from genesys.voice_safe import (
    VoiceSafeAttributes,
    VoiceSafeLimits,
    VoiceSafeSettingsError,
    VoiceSafetyProblem,
    VoiceSafetyReport,
    check_attributes,
)

__all__ = [
    "VoiceSafeAttributes",
    "VoiceSafeLimits",
    "VoiceSafeSettingsError",
    "VoiceSafetyProblem",
    "VoiceSafetyReport",
    "check_attributes",
]
