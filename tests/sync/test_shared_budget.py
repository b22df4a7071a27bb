"""The Genesys budget shared through the store: replicas on one database draw from one budget."""

from __future__ import annotations

import pytest

from store import Store
from sync.shared_budget import WINDOW_S, StoreBudget
from tests.clocks import FakeClock


def test_two_replicas_get_one_window_between_them(store: Store, clock: FakeClock) -> None:
    """300/min is 50 per 10-second window, for both replicas together; the window's end is reported."""
    first, second = (StoreBudget(store, 300, clock=clock) for _ in range(2))
    granted = 0
    for _ in range(20):
        for budget in (first, second):
            taken, left_s = budget.take(5)
            granted += taken
            assert 0 < left_s <= WINDOW_S
    assert granted == 50
    clock.advance(WINDOW_S)
    assert first.take(5)[0] == 5


def test_an_unreachable_database_grants_nothing_until_the_window_ends(store: Store, clock: FakeClock) -> None:
    """Without the database the budget cannot be shared, so it grants nothing and says how long to wait."""
    budget = StoreBudget(store, 300, clock=clock)
    store.close()
    granted, left_s = budget.take(5)
    assert granted == 0
    assert left_s == pytest.approx(WINDOW_S - clock() % WINDOW_S)


def test_use_reads_the_current_window_of_every_replica(store: Store, clock: FakeClock) -> None:
    """use() counts what every replica asked in the current window, and nothing once it has passed."""
    first, second = (StoreBudget(store, 300, clock=clock) for _ in range(2))
    assert first.use().asked == 0
    first.take(5)
    second.take(7)
    use = first.use()
    assert (use.asked, use.per_window, use.window_s, use.requests_per_minute) == (12, 50, WINDOW_S, 300)
    clock.advance(WINDOW_S)
    assert second.use().asked == 0
