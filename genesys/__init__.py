"""The Genesys Cloud boundary: regions, OAuth, the API client, its errors and voice-safe validation."""

from genesys.auth import ClientCredentials
from genesys.client import GenesysClient, WriteResult
from genesys.errors import (
    AttributesRejected,
    AuthenticationFailed,
    ConversationGone,
    GenesysError,
    GenesysSettingsError,
    GenesysTransientError,
    GenesysUnavailable,
    GenesysUnreachable,
    PermissionMissing,
    RateLimited,
    RequestRejected,
    Stopping,
)
from genesys.network import NetworkCause, NetworkFailure
from genesys.participants import LiveParticipant
from genesys.permissions import Outcome, PermissionCheck, PermissionReport
from genesys.rate_limit import SharedBudget
from genesys.regions import REGION_DOMAINS, GenesysEndpoints, endpoints_for
from genesys.retries import RetryPolicy
from genesys.users import GenesysUser, normalize_email
from genesys.voice_safe import (
    CONTROL_CHARACTERS,
    VoiceSafeAttributes,
    VoiceSafeChecker,
    VoiceSafeLimits,
    VoiceSafeSettingsError,
    VoiceSafetyProblem,
    VoiceSafetyReport,
    check_attributes,
)

__all__ = [
    "CONTROL_CHARACTERS",
    "REGION_DOMAINS",
    "AttributesRejected",
    "AuthenticationFailed",
    "ClientCredentials",
    "ConversationGone",
    "GenesysClient",
    "GenesysEndpoints",
    "GenesysError",
    "GenesysSettingsError",
    "GenesysTransientError",
    "GenesysUnavailable",
    "GenesysUnreachable",
    "GenesysUser",
    "LiveParticipant",
    "NetworkCause",
    "NetworkFailure",
    "Outcome",
    "PermissionCheck",
    "PermissionMissing",
    "PermissionReport",
    "RateLimited",
    "RequestRejected",
    "RetryPolicy",
    "SharedBudget",
    "Stopping",
    "VoiceSafeAttributes",
    "VoiceSafeChecker",
    "VoiceSafeLimits",
    "VoiceSafeSettingsError",
    "VoiceSafetyProblem",
    "VoiceSafetyReport",
    "WriteResult",
    "check_attributes",
    "endpoints_for",
    "normalize_email",
]
