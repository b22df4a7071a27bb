"""Store fixtures: every test of the store runs on a SQLite file in tmp_path and on a fresh PostgreSQL database.

`database_url` is parametrized over both backends (the PostgreSQL server is started only when a test asks for it);
tests about SQLite files themselves (paths, WAL) use `sqlite_url`. `raw_sql` reads or changes the test's database
behind the store's back, with a connection of its own.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest

from store import Store, open_store
from store.database_url import SqliteLocation, parse_database_url
from tests.clocks import FakeClock

RawSql = Callable[[str], list[tuple[Any, ...]]]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_700_000_000.0)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "sync.db"


@pytest.fixture
def sqlite_url(db_path: Path) -> str:
    return f"sqlite:///{db_path}"


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def store(database_url: str, clock: FakeClock) -> Iterator[Store]:
    opened = open_store(database_url, clock=clock)
    yield opened
    opened.close()


def run_raw_sql(database_url: str, statement: str) -> list[tuple[Any, ...]]:
    """Run one statement on the database with a connection of its own, committed; returns its rows, if any."""
    location = parse_database_url(database_url)
    if isinstance(location, SqliteLocation):
        with sqlite3.connect(location.path) as raw:
            cursor = raw.execute(statement)
            rows = cursor.fetchall() if cursor.description else []
        raw.close()
        return rows
    with psycopg.connect(location.url, autocommit=True) as connection:
        pg_cursor = connection.execute(statement)
        return pg_cursor.fetchall() if pg_cursor.description else []


@pytest.fixture
def raw_sql(database_url: str) -> RawSql:
    return lambda statement: run_raw_sql(database_url, statement)


def run_together(script: str, arguments: Sequence[Sequence[str]]) -> list[tuple[int, str, str]]:
    """Run `python -c script` once per argument list, as replicas: each imports, prints "ready", then waits for a
    line on standard input; all get it at once. Returns (exit status, output after "ready", errors) of each."""
    children = [
        subprocess.Popen([sys.executable, "-c", script, *argv], cwd=REPO, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for argv in arguments
    ]
    for child in children:
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n", child.stderr.read() if child.stderr else ""
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    finished = [(child, *child.communicate(timeout=90)) for child in children]
    return [(child.returncode, out, err) for child, out, err in finished]
