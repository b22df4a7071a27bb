"""Opening the store: migrations applied once (also by several openers at once), a newer schema refused, and on
SQLite the file's settings and clear StoreErrors when the file is unusable."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from store import LATEST_VERSION, StoreError, open_store
from store.database_url import parse_database_url
from tests.clocks import FakeClock
from tests.store.conftest import RawSql, run_raw_sql, run_together

REPO = Path(__file__).resolve().parents[2]


def schema_rows(raw_sql: RawSql) -> list[tuple[int, float]]:
    return [(int(version), float(at)) for version, at in raw_sql("SELECT version, applied_at FROM schema_version"
                                                                 " ORDER BY version")]


def test_new_database_gets_every_migration(database_url: str, raw_sql: RawSql, clock: FakeClock) -> None:
    """A new database is brought to the latest schema version, each migration recorded with its time."""
    open_store(database_url, clock=clock).close()
    assert schema_rows(raw_sql) == [(version, clock.now) for version in range(1, LATEST_VERSION + 1)]


def test_new_file_gets_its_folder_and_wal(db_path: Path, sqlite_url: str) -> None:
    """A new SQLite file is created with its folder, in WAL mode."""
    open_store(sqlite_url).close()
    assert db_path.is_file()
    with sqlite3.connect(db_path) as raw:
        (mode,) = raw.execute("PRAGMA journal_mode").fetchone()
    raw.close()
    assert mode == "wal"


def test_reopen_keeps_data_and_applies_migrations_once(database_url: str, raw_sql: RawSql, clock: FakeClock) -> None:
    """Opening an existing database keeps its rows and does not re-run migrations."""
    first = open_store(database_url, clock=clock)
    first.enqueue("refresh", "k", {"v": 1})
    first.close()
    applied = schema_rows(raw_sql)
    clock.advance(3600)
    for _ in range(2):
        again = open_store(database_url, clock=clock)
        assert again.pending_count() == 1
        again.close()
    assert schema_rows(raw_sql) == applied


def test_simultaneous_first_opens_migrate_once(database_url: str, raw_sql: RawSql) -> None:
    """Eight threads opening a brand-new database at once all succeed and each migration is applied once."""
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def open_and_close() -> None:
        start.wait()
        try:
            open_store(database_url).close()
        except StoreError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_and_close) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert [version for version, _ in schema_rows(raw_sql)] == list(range(1, LATEST_VERSION + 1))


_OPEN_ON_GO = """
import sys
import store
print("ready", flush=True)
sys.stdin.readline()
store.open_store(sys.argv[1]).close()
print("opened", flush=True)
"""


def test_replicas_starting_together_migrate_once(postgres_url: str) -> None:
    """Four processes (replicas) opening a new PostgreSQL database at one moment all start; migrations apply once."""
    outcomes = run_together(_OPEN_ON_GO, [[postgres_url]] * 4)
    assert [(code, out) for code, out, _ in outcomes] == [(0, "opened\n")] * 4, [err for _, _, err in outcomes]
    applied = schema_rows(lambda statement: run_raw_sql(postgres_url, statement))
    assert [version for version, _ in applied] == list(range(1, LATEST_VERSION + 1))


def test_newer_schema_is_refused_untouched(database_url: str, raw_sql: RawSql) -> None:
    """A database migrated by newer code raises StoreError naming it and both versions, and is left as it was."""
    open_store(database_url).close()
    raw_sql("INSERT INTO schema_version VALUES (99, 'from the future', 0)")
    with pytest.raises(StoreError, match=rf"schema version 99, newer than this code knows \({LATEST_VERSION}\)") as e:
        open_store(database_url)
    assert parse_database_url(database_url).describe() in str(e.value)
    assert max(version for version, _ in schema_rows(raw_sql)) == 99


def test_file_that_is_not_a_database(db_path: Path, sqlite_url: str) -> None:
    """A file that is not SQLite raises StoreError naming the file and what to do."""
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"this is a text file, not a database\n" * 100)
    with pytest.raises(StoreError, match="not a SQLite database") as raised:
        open_store(sqlite_url)
    assert str(db_path) in str(raised.value)


def test_folder_that_cannot_be_created(tmp_path: Path) -> None:
    """A database whose folder cannot be created (a file is in the way) raises StoreError naming the folder."""
    (tmp_path / "blocker").write_text("a file, not a folder")
    folder = tmp_path / "blocker" / "data"
    with pytest.raises(StoreError, match="cannot create the folder") as raised:
        open_store(f"sqlite:///{folder}/sync.db")
    assert str(folder) in str(raised.value)
    assert "DATABASE_URL" in str(raised.value)


def test_path_that_is_a_folder(tmp_path: Path) -> None:
    """A DATABASE_URL naming an existing folder raises StoreError saying so."""
    (tmp_path / "sync.db").mkdir()
    with pytest.raises(StoreError, match="is a folder"):
        open_store(f"sqlite:///{tmp_path}/sync.db")


_OPEN_AS_NOBODY = """
import os, sys
import store
os.setgid(65534)
os.setuid(65534)  # after the imports: the interpreter's own files may not be readable by nobody
try:
    store.open_store(sys.argv[1]).close()
except store.StoreError as exc:
    print(exc)
"""


def test_unwritable_folder(tmp_path: Path) -> None:
    """A folder this user cannot write raises StoreError naming the database path (root drops to nobody first)."""
    folder = tmp_path / "readonly"
    folder.mkdir()
    folder.chmod(0o555)
    url = f"sqlite:///{folder}/sync.db"
    try:
        if os.geteuid() == 0:
            # Root ignores permission bits, so the attempt runs in a child that has become `nobody`.
            child = subprocess.run(
                [sys.executable, "-c", _OPEN_AS_NOBODY, url], cwd=REPO, capture_output=True, text=True, timeout=30
            )
            message = child.stdout
            assert child.returncode == 0, child.stderr
        else:
            with pytest.raises(StoreError) as raised:
                open_store(url)
            message = str(raised.value)
    finally:
        folder.chmod(0o700)
    assert str(folder) in message
    assert "writable" in message


def test_relative_url_opens_under_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sqlite:///nested/dir/x.db creates nested/dir under the working directory."""
    monkeypatch.chdir(tmp_path)
    open_store("sqlite:///nested/dir/x.db").close()
    assert (tmp_path / "nested" / "dir" / "x.db").is_file()
