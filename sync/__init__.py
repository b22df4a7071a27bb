"""The sync engine: from a Slack user to the attributes its live Genesys participants should carry."""

from sync.desired import AttributeRules, DesiredAttributes, desired_attributes
from sync.target import SyncTarget

__all__ = ["AttributeRules", "DesiredAttributes", "SyncTarget", "desired_attributes"]
