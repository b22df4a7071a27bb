"""The SQLite file holds bot tokens (OAuth) and people's profiles: it, its -wal and -shm, and the folders the app
creates for it are the owner's only, whatever the umask; a file others could read is tightened when opened."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from localdev.app_process import agent_on_a_call, launch, wait_for
from localdev.genesys_cloud import FakeGenesysCloud
from localdev.slack_api import FakeSlack
from store import open_store


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def sqlite_files(database: Path) -> list[Path]:
    return [database, database.with_name(f"{database.name}-wal"), database.with_name(f"{database.name}-shm")]


@pytest.fixture(params=[0o022, 0o002, 0o000], ids=["umask-022", "umask-002", "umask-000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def test_a_new_database_and_its_folders_are_the_owners_only(tmp_path: Path, umask: int) -> None:
    """After a write, the database, -wal and -shm are 0600 and each folder the store created 0700; the folder that
    was there keeps its mode."""
    tmp_path.chmod(0o755)
    database = tmp_path / "state" / "deeper" / "sync.db"
    store = open_store(f"sqlite:///{database}")
    try:
        assert store.remember_event("Ev1")
        assert {file.name: oct(mode(file)) for file in sqlite_files(database)} == {
            "sync.db": "0o600", "sync.db-wal": "0o600", "sync.db-shm": "0o600"}
    finally:
        store.close()
    assert (oct(mode(tmp_path / "state")), oct(mode(tmp_path / "state" / "deeper"))) == ("0o700", "0o700")
    assert mode(tmp_path) == 0o755


@pytest.mark.parametrize(("before", "after"), [(0o644, 0o600), (0o666, 0o600), (0o640, 0o600), (0o604, 0o600),
                                               (0o700, 0o700)])
def test_an_existing_database_others_can_read_is_tightened_once(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                                before: int, after: int) -> None:
    """A file readable by group or others loses those bits at open, with one warning naming the old mode; the
    owner's bits stay; the -wal and -shm SQLite creates then follow it."""
    database = tmp_path / "sync.db"
    open_store(f"sqlite:///{database}").close()
    database.chmod(before)
    with caplog.at_level(logging.WARNING, logger="store.sqlite"):
        store = open_store(f"sqlite:///{database}")
    try:
        assert store.remember_event("Ev1")
        assert {mode(file) for file in sqlite_files(database)} == {after}
    finally:
        store.close()
    warnings = [record.getMessage() for record in caplog.records if record.name == "store.sqlite"]
    if before & 0o077:
        assert len(warnings) == 1
        assert f"made readable by its owner only (was sync.db {before:04o})" in warnings[0]
    else:
        assert warnings == []


def test_an_open_wal_left_wide_is_tightened_too(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """-wal and -shm files left readable by others (another process has the database open) are tightened too."""
    database = tmp_path / "sync.db"
    holder = open_store(f"sqlite:///{database}")
    try:
        assert holder.remember_event("Ev1")
        for file in sqlite_files(database):
            file.chmod(0o644)
        with caplog.at_level(logging.WARNING, logger="store.sqlite"):
            open_store(f"sqlite:///{database}").close()
        assert {mode(file) for file in sqlite_files(database)} == {0o600}
        assert "sync.db 0644, sync.db-wal 0644, sync.db-shm 0644" in caplog.text
    finally:
        holder.close()


def test_the_running_app_keeps_its_database_private(tmp_path: Path) -> None:
    """The app as a real process, after writing a profile change: its database, -wal, -shm are 0600 and the folder
    it created 0700."""
    database = tmp_path / "state" / "sync.db"
    with FakeSlack() as slack, FakeGenesysCloud() as genesys:
        app = launch(slack, genesys, tmp_path, database_url=f"sqlite:///{database}")
        try:
            user, _participant = agent_on_a_call(app)
            assert app.event({"type": "user_change", "user": user}).status_code == 200
            wait_for(lambda: bool(genesys.patches), 15, "the write to Genesys")
            assert {file.name: oct(mode(file)) for file in sqlite_files(database)} == {
                "sync.db": "0o600", "sync.db-wal": "0o600", "sync.db-shm": "0o600"}
            assert mode(database.parent) == 0o700
        finally:
            app.process.terminate()
            app.process.wait(timeout=10)
