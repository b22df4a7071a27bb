"""The PostgreSQL backend: one database shared by every replica, a few connections per process.

Connections: each process keeps up to `MAX_CONNECTIONS` (the app has about ten threads), one handed out per
transaction or read and put back after. The pool is written here rather than taken from psycopg_pool for one
behaviour the app needs: while the server is down a call fails at once with StoreError (the engine retries its tick
later, /healthz answers 503 now) instead of waiting in a pool for a connection that cannot be made.

Connection loss: a server restart, a failover or a network cut breaks every connection at once, so

- before an idle connection is handed out its socket is looked at, without a round trip: an idle connection has
  nothing to read, so a readable socket means the server closed it or said goodbye, and it is thrown away;
- a call that finds its connection broken all the same fails with StoreError, and that connection and every idle
  one are closed.

The next call connects afresh: the app resumes by itself as soon as the database is back.

Transactions: autocommit connections with explicit BEGIN and COMMIT, as in the SQLite backend, at READ COMMITTED.
The statements are written for that: upserts whose WHERE decides in one statement, and claims whose rows are locked
with FOR UPDATE SKIP LOCKED. A COMMIT that returned is on the server's disk (synchronous_commit is on by default).

Stuck peers: the server ends a session that sits inside a transaction for 60 s without a statement (a frozen or cut
off replica), which frees its row locks for the others; TCP keepalives let a client notice a server that vanished
without closing the connection. Settings in DATABASE_URL (`?keepalives_idle=…`, `?application_name=…`) win.
"""

from __future__ import annotations

import math
import select
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import pq
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from store.backend import POSTGRESQL, Cursor, Dialect
from store.database_url import ACCEPTED_FORMS, PostgresLocation, mask_passwords, url_secrets
from store.errors import StoreError

MAX_CONNECTIONS = 10
# Used unless DATABASE_URL sets them: a name operators see in pg_stat_activity, and keepalives that notice a dead
# server within about a minute instead of the kernel's two hours.
_DEFAULT_PARAMETERS = {
    "application_name": "slack-genesys-sync",
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
}
_SESSION_SETTINGS = "SET idle_in_transaction_session_timeout = '60s'"
_Connection = psycopg.Connection[Any]


class PostgresDatabase:
    """An open PostgreSQL database with a small connection pool; see the module docstring."""

    dialect: Dialect = POSTGRESQL

    def __init__(
        self, location: PostgresLocation, *, busy_timeout_s: float = 5.0, max_connections: int = MAX_CONNECTIONS
    ) -> None:
        self._location = location
        self._secrets = _secrets(location)
        self._conninfo = self._parameters(busy_timeout_s)
        self._wait_s = busy_timeout_s
        self._max_connections = max_connections
        self._lock = threading.Condition()
        self._idle: list[_Connection] = []
        self._in_use = 0
        """Connections handed out or being made; with the idle ones, never more than max_connections."""
        self._closed = False
        # Connect now, so a wrong password or an unreachable server is reported by open_store with its reason.
        self._check_in(self._check_out("open"))

    def describe(self) -> str:
        return self._location.describe()

    @contextmanager
    def transaction(self, operation: str) -> Iterator[Cursor]:
        connection = self._check_out(operation)
        try:
            with self._translated(operation), connection.cursor() as cursor:
                cursor.execute(self.dialect.begin_write)
                try:
                    yield cursor
                    cursor.execute("COMMIT")
                except BaseException as exc:
                    # Whatever went wrong (a StoreError, a bug, KeyboardInterrupt), nothing half-done may stay.
                    _roll_back(connection, exc)
                    raise
        finally:
            self._check_in(connection)

    @contextmanager
    def reading(self, operation: str) -> Iterator[Cursor]:
        connection = self._check_out(operation)
        try:
            with self._translated(operation), connection.cursor() as cursor:
                yield cursor
        finally:
            self._check_in(connection)

    def close(self) -> None:
        """Close the idle connections now and the ones in use as they come back; later calls raise StoreError."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            self._lock.notify_all()
        for connection in idle:
            connection.close()

    # --- The pool ----------------------------------------------------------------------------------------------

    def _check_out(self, operation: str) -> _Connection:
        deadline = time.monotonic() + self._wait_s
        with self._lock:
            while True:
                if self._closed:
                    raise StoreError(
                        f"{self.describe()}: {operation} after the store was closed; this is a bug in the caller",
                        database=self._location.shown,
                        operation=operation,
                    )
                while self._idle:
                    connection = self._idle.pop()
                    if _still_open(connection):
                        self._in_use += 1
                        return connection
                    connection.close()
                if self._in_use < self._max_connections:
                    self._in_use += 1
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise StoreError(
                        f"{self.describe()}: {operation} waited {self._wait_s:g} s for one of this process's"
                        f" {self._max_connections} connections, all busy; a statement is hanging (check"
                        " pg_stat_activity for locks) or the app runs more threads than connections",
                        database=self._location.shown,
                        operation=operation,
                    )
                self._lock.wait(remaining)
        try:
            return self._connect(operation)
        except BaseException:
            with self._lock:
                self._in_use -= 1
                self._lock.notify()
            raise

    def _check_in(self, connection: _Connection) -> None:
        reusable = (
            not connection.closed
            and not connection.broken
            and connection.info.transaction_status == pq.TransactionStatus.IDLE
        )
        to_close: list[_Connection] = []
        with self._lock:
            self._in_use -= 1
            if reusable and not self._closed:
                self._idle.append(connection)
            else:
                to_close.append(connection)
                if connection.broken:
                    # What broke this one (a restart, a failover, a cut network) most likely broke the idle ones too.
                    to_close.extend(self._idle)
                    self._idle = []
            self._lock.notify()
        for stale in to_close:
            stale.close()

    def _connect(self, operation: str) -> _Connection:
        with self._translated(operation):
            connection = psycopg.connect(self._conninfo, autocommit=True)
            try:
                connection.execute(_SESSION_SETTINGS)
            except BaseException:
                connection.close()
                raise
        return connection

    # --- Errors ------------------------------------------------------------------------------------------------

    def _parameters(self, busy_timeout_s: float) -> str:
        """The connection string: libpq's reading of DATABASE_URL over our defaults; StoreError if it cannot."""
        try:
            given = conninfo_to_dict(self._location.url)
        except psycopg.Error as exc:
            # libpq quotes the part it cannot read, which may be the password or the whole URL: scrubbed, not chained.
            raise StoreError(
                f"DATABASE_URL={self._location.shown!r}: libpq cannot read it: {self._scrub(str(exc))}; use"
                f" {ACCEPTED_FORMS}, with reserved characters in the user name and password percent-encoded",
                database=self._location.shown,
                operation="parse",
            ) from None
        connect_timeout = str(max(2, math.ceil(busy_timeout_s)))  # libpq's minimum is 2 s
        return make_conninfo("", **{**_DEFAULT_PARAMETERS, "connect_timeout": connect_timeout, **given})

    @contextmanager
    def _translated(self, operation: str) -> Iterator[None]:
        try:
            yield
        except psycopg.Error as exc:
            text = self._scrub(" ".join(str(exc).split()))
            raise StoreError(
                f"{self.describe()}: {operation} failed: {text}; {_advice(exc)}",
                database=self._location.shown,
                operation=operation,
            ) from exc

    def _scrub(self, text: str) -> str:
        # Only where the password stands as one: replacing every occurrence of a short password would shred the text.
        return mask_passwords(text.replace(self._location.url, self._location.shown), self._secrets)


def _still_open(connection: _Connection) -> bool:
    """Whether an idle connection looks alive: not marked broken, and its socket has nothing unasked-for to read."""
    if connection.closed or connection.broken:
        return False
    poller = select.poll()
    poller.register(connection.fileno(), select.POLLIN)
    # Readable, hung up or in error: the server sent a goodbye (a shutdown notice) or closed the socket.
    return not poller.poll(0)


def _roll_back(connection: _Connection, exc: BaseException) -> None:
    if connection.broken or connection.info.transaction_status not in (
        pq.TransactionStatus.INTRANS,
        pq.TransactionStatus.INERROR,
    ):
        return  # nothing to undo here: the server rolls back a transaction whose connection is gone
    try:
        connection.execute("ROLLBACK")
    except psycopg.Error as rollback_error:
        exc.add_note(f"the rollback failed too: {rollback_error}")


def _secrets(location: PostgresLocation) -> tuple[str, ...]:
    """The URL's secrets (its password, sslpassword, …), as written and decoded, longest first."""
    return url_secrets(location.url)


def _advice(exc: psycopg.Error) -> str:
    """What to do about a failure, from its SQLSTATE or, for connection failures (which have none), its text."""
    state = exc.sqlstate or ""
    text = str(exc).lower()
    if state in ("28P01", "28000") or "password authentication failed" in text or "pg_hba.conf" in text:
        return "check the user name and password in DATABASE_URL, and that the server's pg_hba.conf lets this host in"
    if state == "3D000" or ("database" in text and "does not exist" in text):
        return "create the database (createdb NAME) or correct its name in DATABASE_URL"
    if state == "42501":
        return (
            "give the DATABASE_URL user the privileges the store needs: CREATE on the database's schema (it creates"
            " its tables at start) and reading and writing them"
        )
    if state == "53300" or "too many clients" in text or "remaining connection slots" in text:
        return (
            f"the server has no connection to spare: raise its max_connections or run fewer replicas (each keeps up"
            f" to {MAX_CONNECTIONS})"
        )
    if state.startswith("53"):
        return "the server is out of disk space or memory; free some, the work is retried on the next attempt"
    if state in ("40001", "40P01", "55P03", "57014"):
        return "another replica's transaction was in the way; the work is retried on the next attempt"
    if isinstance(exc, psycopg.OperationalError):
        return (
            "check that PostgreSQL is running and reachable at the host and port in DATABASE_URL; the store"
            " reconnects on its next call"
        )
    return "the work is retried on the next attempt"
