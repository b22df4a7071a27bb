"""Store fixtures: a real SQLite file in tmp_path and a clock the test moves by hand."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from store import Store, open_store
from tests.clocks import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_700_000_000.0)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "sync.db"


@pytest.fixture
def database_url(db_path: Path) -> str:
    return f"sqlite:///{db_path}"


@pytest.fixture
def store(database_url: str, clock: FakeClock) -> Iterator[Store]:
    opened = open_store(database_url, clock=clock)
    yield opened
    opened.close()
