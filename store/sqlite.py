"""The SQLite backend: one file, WAL journal, one connection shared by the app's threads under a lock.

Durability: `journal_mode=WAL` with `synchronous=NORMAL`. A commit appends the transaction to the WAL file with a
write(2) before `COMMIT` returns, so once a store method returns its effect survives the process being killed
(SIGKILL, OOM killer, a crash) at any later instant: the OS still holds the bytes and the next open replays the WAL.
What NORMAL gives up compared with FULL is the fsync per commit, i.e. only an OS crash or power loss may roll back
the last few commits; every write the engine makes is idempotent (it re-sends the same attributes), so even that
costs at most one repeated write. Set `synchronous=FULL` here if the host's power is a concern.

Concurrency: the engine's few threads share one connection behind a lock (SQLite has one writer at a time anyway,
and a shared connection keeps close() simple). Other processes on the same file — a second worker, the operator's
CLI — are serialised by SQLite's file locks: writing transactions start with BEGIN IMMEDIATE and wait up to the busy
timeout for the lock.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from store.backend import SQLITE, Cursor, Dialect
from store.database_url import SqliteLocation
from store.errors import StoreError

log = logging.getLogger(__name__)


class SqliteDatabase:
    """An open SQLite file, configured for durability on process crash; see the module docstring."""

    dialect: Dialect = SQLITE

    def __init__(self, location: SqliteLocation, *, busy_timeout_s: float = 5.0) -> None:
        self._location = location
        self._busy_timeout_s = busy_timeout_s
        self._lock = threading.RLock()
        self._connection: sqlite3.Connection | None = _connect(location, busy_timeout_s)

    @property
    def path(self) -> Path:
        return self._location.path

    def describe(self) -> str:
        return self._location.describe()

    @contextmanager
    def transaction(self, operation: str) -> Iterator[Cursor]:
        with self._lock:
            connection = self._open_connection(operation)
            try:
                with self._translated(operation):
                    cursor = connection.execute(self.dialect.begin_write)
                    yield cursor
                    connection.execute("COMMIT")
            except BaseException as exc:
                # Whatever went wrong (a StoreError, a bug, KeyboardInterrupt), nothing half-done may stay.
                if connection.in_transaction:
                    try:
                        connection.rollback()
                    except sqlite3.Error as rollback_error:
                        exc.add_note(f"the rollback failed too: {rollback_error}")
                raise

    @contextmanager
    def reading(self, operation: str) -> Iterator[Cursor]:
        with self._lock:
            connection = self._open_connection(operation)
            with self._translated(operation):
                yield connection.cursor()

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def _open_connection(self, operation: str) -> sqlite3.Connection:
        if self._connection is None:
            raise StoreError(
                f"{self.describe()}: {operation} after the store was closed; this is a bug in the caller",
                database=str(self.path),
                operation=operation,
            )
        return self._connection

    @contextmanager
    def _translated(self, operation: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise _store_error(self._location, operation, exc, self._busy_timeout_s) from exc


def _connect(location: SqliteLocation, busy_timeout_s: float) -> sqlite3.Connection:
    path = location.path
    try:
        _make_private_folders(path.parent)
    except OSError as exc:
        raise StoreError(
            f"cannot create the folder {path.parent} for {location.describe()}: {exc.strerror or exc}; create it "
            "writable for this user or point DATABASE_URL at another place",
            database=str(path),
            operation="open",
        ) from exc
    if path.is_dir():
        raise StoreError(
            f"{location.describe()}: {path} is a folder; point DATABASE_URL at a file inside it",
            database=str(path),
            operation="open",
        )
    _make_private_file(location)
    connection: sqlite3.Connection | None = None
    try:
        # isolation_level=None: the store issues BEGIN/COMMIT itself, so the driver never opens a transaction
        # behind its back. check_same_thread=False: threads share the connection under SqliteDatabase's lock.
        connection = sqlite3.connect(str(path), timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
        connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        mode = _enable_wal(connection, busy_timeout_s)
        if str(mode).lower() != "wal":
            raise StoreError(
                f"{location.describe()}: SQLite refused write-ahead logging (journal_mode stayed {mode!r}); keep the"
                " file on a local file system that supports shared memory, not a network share",
                database=str(path),
                operation="open",
            )
        connection.execute("PRAGMA synchronous = NORMAL")
    except sqlite3.Error as exc:
        if connection is not None:
            connection.close()
        raise _store_error(location, "open", exc, busy_timeout_s) from exc
    except StoreError:
        if connection is not None:
            connection.close()
        raise
    return connection


PRIVATE_FILE_MODE = 0o600
"""The database, its -wal and its -shm: they hold bot tokens (OAuth) and people's profiles, so the owner only."""
PRIVATE_FOLDER_MODE = 0o700


def _make_private_folders(folder: Path) -> None:
    """Create `folder` and any missing parents for the owner only; folders that exist are left as they are (the
    working directory, a volume: the operator chose them)."""
    missing = [folder, *folder.parents]
    missing = [candidate for candidate in missing if not candidate.exists()]
    for candidate in reversed(missing):
        try:
            candidate.mkdir(mode=PRIVATE_FOLDER_MODE)
        except FileExistsError:  # another process made it meanwhile; it chose the same mode
            continue
        candidate.chmod(PRIVATE_FOLDER_MODE)  # mkdir's mode is cut by the umask, never widened: make it exact


def _make_private_file(location: SqliteLocation) -> None:
    """Create the database file for its owner only before SQLite opens it: SQLite gives the -wal and -shm files
    it creates the database file's mode. A file that others may read (from an older version, a copied backup) is
    tightened to the owner's bits, with one log line; SQLite's own files follow it."""
    path = location.path
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))
        return
    except FileExistsError:
        pass
    except OSError:
        return  # SQLite's own open reports the reason with the store's advice
    tightened = []
    for file in (path, path.with_name(f"{path.name}-wal"), path.with_name(f"{path.name}-shm")):
        try:
            mode = stat.S_IMODE(file.stat().st_mode)
            if mode & 0o077:
                file.chmod(mode & 0o700)
                tightened.append(f"{file.name} {mode:04o}")
        except FileNotFoundError:
            continue
        except OSError as exc:  # not the owner: say so once, and go on (the file works, it is just too open)
            log.warning("%s: %s can be read by other users and could not be made private (%s); it holds bot tokens "
                        "and profiles: chmod 600 it", location.describe(), file.name, exc.strerror or exc)
    if tightened:
        log.warning("%s: made readable by its owner only (was %s): it holds bot tokens and profiles",
                    location.describe(), ", ".join(tightened))


def _enable_wal(connection: sqlite3.Connection, busy_timeout_s: float) -> str:
    """Switch the file to WAL (a no-op when it already is), waiting out other connections doing the same.

    Switching the journal mode needs the file to itself, and SQLite answers "database is locked" at once, without
    its busy handler, when several processes or threads open a brand-new file together. So wait here instead.
    """
    deadline = time.monotonic() + busy_timeout_s
    while True:
        try:
            (mode,) = connection.execute("PRAGMA journal_mode = WAL").fetchone()
            return str(mode)
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc).lower() or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def _store_error(location: SqliteLocation, operation: str, exc: sqlite3.Error, busy_timeout_s: float) -> StoreError:
    text = str(exc)
    lowered = text.lower()
    if "locked" in lowered or "busy" in lowered:
        advice = (
            f"another process held the database lock for more than the busy timeout ({busy_timeout_s:g} s); check "
            "that no stuck process (a second copy of the app, a sqlite3 shell) keeps the file open"
        )
    elif "readonly" in lowered or "unable to open" in lowered or "permission" in lowered:
        advice = f"check that {location.path} and its folder exist and are writable by this user"
    elif "not a database" in lowered or "malformed" in lowered:
        advice = "the file is not a SQLite database or is damaged; restore a backup or point DATABASE_URL elsewhere"
    elif "disk" in lowered or "full" in lowered:
        advice = f"check free space and health of the disk holding {location.path}"
    else:
        advice = "check the file and its folder; the work is retried on the next attempt"
    return StoreError(
        f"{location.describe()}: {operation} failed: {text}; {advice}", database=str(location.path), operation=operation
    )
