"""The Genesys Cloud boundary: regions, OAuth, the API client, its errors and voice-safe validation."""

from genesys.auth import ClientCredentials
from genesys.channels import NotificationChannel, TopicSubscription
from genesys.client import GenesysClient, WriteResult
from genesys.errors import (
    AttributesRejected,
    AuthenticationFailed,
    ChannelGone,
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
from genesys.notifications import ConversationSeen, NotificationApi, NotificationPool, PushSettings, PushState
from genesys.observer import NO_OBSERVER, RequestObserver
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
    "NO_OBSERVER",
    "REGION_DOMAINS",
    "AttributesRejected",
    "AuthenticationFailed",
    "ChannelGone",
    "ClientCredentials",
    "ConversationGone",
    "ConversationSeen",
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
    "NotificationApi",
    "NotificationChannel",
    "NotificationPool",
    "Outcome",
    "PermissionCheck",
    "PermissionMissing",
    "PermissionReport",
    "PushSettings",
    "PushState",
    "RateLimited",
    "RequestObserver",
    "RequestRejected",
    "RetryPolicy",
    "SharedBudget",
    "Stopping",
    "TopicSubscription",
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
