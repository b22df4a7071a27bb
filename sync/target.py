"""Where a person's attributes are written: their own participant, the customer's participant of their calls, or both.

Architect flows, scripts and screen pops read participant data from the customer's (external) participant of the
interaction; conversation details, exports and analytics show each person's own participant. `SYNC_TARGET` chooses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TargetName = Literal["agent", "customer", "both"]
TARGET_NAMES: tuple[TargetName, ...] = ("agent", "customer", "both")
DEFAULT_CUSTOMER_PREFIX = "slack.agent."


@dataclass(frozen=True, slots=True)
class SyncTarget:
    """Which participants carry a person's attributes, and the key prefix on the customer's participant."""

    name: TargetName = "agent"
    customer_prefix: str = DEFAULT_CUSTOMER_PREFIX
    """Put before each key on the customer's participant, so flows tell the person's data from the customer's."""

    def __post_init__(self) -> None:
        if self.name not in TARGET_NAMES:
            raise ValueError(f"sync target must be one of {', '.join(TARGET_NAMES)}, not {self.name!r}")
        if self.customer and not self.customer_prefix:
            raise ValueError("the customer's participant needs a key prefix")

    def customer_key(self, key: str, mapping_prefix: str) -> str:
        """The key on the customer's participant: the prefix replaces the mapping's (`slack.title` becomes
        `slack.agent.title`), or goes before a key that lacks it."""
        bare = key[len(mapping_prefix):] if mapping_prefix and key.startswith(mapping_prefix) else key
        return self.customer_prefix + bare

    def where(self) -> str:
        """Where attributes go, in words (status, preview, the start-up line)."""
        customer = f"the customer's participant of their calls (keys {self.customer_prefix}…)"
        if self.name == "agent":
            return "each person's own participant of their live calls"
        if self.name == "customer":
            return customer
        return f"each person's own participant of their live calls and {customer}"

    @property
    def agent(self) -> bool:
        """Whether the person's own participant is written."""
        return self.name in ("agent", "both")

    @property
    def customer(self) -> bool:
        """Whether the customer's participant of the person's conversations is written."""
        return self.name in ("customer", "both")
