"""Fixtures of the engine tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from store import open_store
from sync import AttributeRules
from sync.engine import EngineSettings, SyncEngine
from tests.clocks import FakeClock
from tests.sync.memory import DrainingTimer, Memory, MemoryGenesys, MemorySlack


@pytest.fixture
def memory(tmp_path: Path) -> Iterator[Memory]:
    clock = FakeClock(1_700_000_000.0)
    store = open_store(f"sqlite:///{tmp_path}/sync.db", clock=clock)
    slack, genesys = MemorySlack(), MemoryGenesys()
    engine_box: list[SyncEngine] = []
    engine = SyncEngine(store=store, genesys=genesys, slack=slack, rules=AttributeRules(), clock=clock,
                        settings=EngineSettings(worker="memory", max_attempts=3), timer=DrainingTimer(engine_box))
    engine_box.append(engine)
    yield Memory(slack, genesys, store, clock, engine)
    store.close()
