"""Shared fixtures: the real Slack payloads in ../shared/fixtures/slack, the repository's examples, a throwaway
PostgreSQL server (`postgres_url`: a fresh database per test), the app launched against the local fakes
(`running`), and a SQLite store on a fake clock (`store`, `clock`; a module may define its own instead)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localdev.app_process import Running, launch
from localdev.genesys_cloud import FakeGenesysCloud
from localdev.postgres import REQUIRE_VARIABLE, PostgresServer, PostgresUnavailable, remove_server, start_server
from localdev.slack_api import FakeSlack
from store import Store, open_store
from tests.clocks import FakeClock

REPO = Path(__file__).resolve().parent.parent
SHARED_SLACK_FIXTURES = REPO.parent / "shared" / "fixtures" / "slack"
EXAMPLES = REPO / "examples"


def load_json(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)


def slack_fixture(name: str) -> Any:
    """A payload from ../shared/fixtures/slack; these tests need the shared folder beside the repository."""
    path = SHARED_SLACK_FIXTURES / name
    if not path.is_file():
        pytest.fail(f"{path} is missing: clone the repository with ../shared beside it")
    return load_json(path)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest tests first (the image, then those marked `long`): ./test.sh runs the suite on several processes,
    which take the tests in this order, so the run does not end with one of them alone in a minute-long test."""
    items.sort(key=lambda item: (item.get_closest_marker("container") is None, item.get_closest_marker("long") is None))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL server for the session; skips without PostgreSQL unless REQUIRE_POSTGRES=1."""
    try:
        server = start_server()
    except PostgresUnavailable as missing:
        if os.environ.get(REQUIRE_VARIABLE) == "1":
            pytest.fail(f"{missing}. {REQUIRE_VARIABLE}=1 is set, so this is an error, not a skip")
        pytest.skip(f"{missing}; set {REQUIRE_VARIABLE}=1 to make this an error")
    yield server
    remove_server(server)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The DATABASE_URL of a new, empty database on the session's PostgreSQL server, dropped after the test."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    yield postgres_server.create_database(name)
    postgres_server.drop_database(name)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    """The app as a process (`python app.py serve`, polling every second) against a fresh local Slack and Genesys."""
    with FakeSlack() as slack, FakeGenesysCloud() as genesys:
        app = launch(slack, genesys, tmp_path)
        try:
            yield app
        finally:
            if app.process.poll() is None:
                app.process.kill()
            app.process.wait(timeout=10)


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock at a fixed instant."""
    return FakeClock(1_700_000_000.0)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[Store]:
    """A SQLite store in the test's folder, on `clock`."""
    opened = open_store(f"sqlite:///{tmp_path}/sync.db", clock=clock)
    yield opened
    opened.close()
