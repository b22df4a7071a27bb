"""The Genesys request budget kept in the store, so that every replica draws on one budget instead of one each."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from store import Store, StoreError

log = logging.getLogger(__name__)

WINDOW_S = 10.0
"""Short shared windows (a sixth of the per-minute budget each): a fixed window lets up to two windows' worth
through around its boundary, and with 10-second windows that is 1/6 over the budget at worst, not double."""


@dataclass(frozen=True, slots=True)
class BudgetUse:
    """The shared Genesys request budget's current window, as every replica counts it (the admin Home shows it)."""

    asked: int
    """Requests asked for in this window by every replica, granted or not."""
    per_window: int
    window_s: float
    requests_per_minute: int


@dataclass(frozen=True, slots=True)
class StoreBudget:
    """`genesys.SharedBudget` over `Store.take_budget`: `requests_per_minute` shared by every replica."""

    store: Store
    requests_per_minute: int
    name: str = "genesys"
    clock: Callable[[], float] = field(default=time.time)

    @property
    def per_window(self) -> int:
        return max(1, math.floor(self.requests_per_minute * WINDOW_S / 60.0))

    def use(self) -> BudgetUse:
        """How much of the current window is used (one read of the store)."""
        window = self.store.budget_window(self.name)
        current = math.floor(self.clock() / WINDOW_S) * WINDOW_S
        asked = window[1] if window is not None and window[0] >= current else 0
        return BudgetUse(asked, self.per_window, WINDOW_S, self.requests_per_minute)

    def take(self, want: int) -> tuple[int, float]:
        per_window = self.per_window
        left_s = WINDOW_S - self.clock() % WINDOW_S
        try:
            granted = self.store.take_budget(self.name, want, per_window, WINDOW_S)
        except StoreError as error:
            # Without the database no replica can coordinate; waiting keeps the shared budget honest, and the
            # engine (which needs the database for everything) is paused meanwhile anyway.
            log.warning("could not take from the shared Genesys request budget, waiting %.1f s: %s", left_s, error)
            return 0, left_s
        return granted, left_s
