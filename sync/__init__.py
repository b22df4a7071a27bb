"""The sync engine: from a Slack user to the attributes its live Genesys participants should carry."""

from sync.desired import AttributeRules, DesiredAttributes, desired_attributes

__all__ = ["AttributeRules", "DesiredAttributes", "desired_attributes"]
