"""What only the PostgreSQL backend has: connection failures that say what to do (never the password), a restart
or an outage that the store rides out by itself, and a bounded set of connections per process."""

from __future__ import annotations

import threading
import time
import traceback
from urllib.parse import unquote

import psycopg
import pytest

from localdev.postgres import PASSWORD, SUPERUSER, PostgresServer, free_port
from store import Store, StoreError, open_store
from store.database_url import PostgresLocation, parse_database_url
from store.postgres import PostgresDatabase


def assert_no_password(error: BaseException, *passwords: str) -> None:
    shown = "".join(traceback.format_exception(error))
    for password in (PASSWORD, *passwords):
        assert password not in shown


def postgres_location(url: str) -> PostgresLocation:
    location = parse_database_url(url)
    assert isinstance(location, PostgresLocation)
    return location


@pytest.mark.parametrize("wrong", ["not-the-Password-9", "p", "s", "p%40ss"])
def test_wrong_password_names_the_database_and_what_to_check(postgres_url: str, wrong: str) -> None:
    """A refused password fails open_store with the masked URL and advice, and shows neither password; a short
    one leaves the rest of libpq's message readable."""
    url = postgres_url.replace(f":{PASSWORD}@", f":{wrong}@")
    with pytest.raises(StoreError, match="password authentication failed for user") as raised:
        open_store(url)
    message = str(raised.value)
    assert message.startswith(f"PostgreSQL database postgresql://{SUPERUSER}:***@127.0.0.1:")
    assert "check the user name and password in DATABASE_URL" in message
    # A one-letter password is in every message as a letter; that it shows nowhere as the password is the point.
    assert_no_password(raised.value, *((wrong, unquote(wrong)) if len(wrong) > 1 else ()))


def test_missing_database_says_to_create_it(postgres_server: PostgresServer) -> None:
    """A database that does not exist is named, with the command that creates it."""
    with pytest.raises(StoreError, match="does not exist") as raised:
        open_store(postgres_server.url("no_such_database"))
    assert "createdb" in str(raised.value)
    assert_no_password(raised.value)


def test_no_server_fails_at_once_with_advice() -> None:
    """Nothing listening at the URL's port: StoreError within a moment, saying to check the server and the port."""
    started = time.monotonic()
    with pytest.raises(StoreError, match="check that PostgreSQL is running and reachable") as raised:
        open_store(f"postgresql://{SUPERUSER}:{PASSWORD}@127.0.0.1:{free_port()}/sync")
    assert time.monotonic() - started < 3
    assert_no_password(raised.value)


@pytest.mark.parametrize("password", ["ab%zzcd", "pa ss word"])
def test_url_libpq_cannot_read_hides_the_password_it_quotes(password: str) -> None:
    """libpq quotes the part of a URL it cannot read; the StoreError masks it and does not chain libpq's error."""
    with pytest.raises(StoreError, match="libpq cannot read it") as raised:
        open_store(f"postgresql://sync:{password}@db.invalid/sync")
    assert "percent-encoded" in str(raised.value)
    assert_no_password(raised.value, password)


def test_restart_between_calls_costs_no_failed_call(postgres_server: PostgresServer, postgres_url: str) -> None:
    """After the server restarted while the store sat idle, the very next calls work (dead connections are dropped)."""
    store = open_store(postgres_url)
    try:
        with ThreadsUsingTheStore(store, threads=4):  # several idle connections, all killed by the restart
            pass
        postgres_server.stop("fast")
        postgres_server.start()
        store.enqueue("refresh", "after", {})
        assert store.pending_count() == 4 * 5 + 1
        assert store.health().ok
    finally:
        store.close()


def test_outage_fails_fast_and_the_store_resumes_by_itself(postgres_server: PostgresServer, postgres_url: str) -> None:
    """While the server is down calls fail at once with advice; once it is back the same store works again."""
    store = open_store(postgres_url)
    try:
        store.enqueue("refresh", "before", {})
        postgres_server.stop("fast")
        try:
            started = time.monotonic()
            health = store.health()
            with pytest.raises(StoreError, match="check that PostgreSQL is running") as raised:
                store.enqueue("refresh", "during", {})
            assert time.monotonic() - started < 3
        finally:
            postgres_server.start()
        assert not health.ok
        assert "check that PostgreSQL is running" in health.detail
        assert PASSWORD not in health.detail
        assert_no_password(raised.value)
        store.enqueue("refresh", "after", {})
        assert store.pending_count() == 2
        assert store.health().ok
    finally:
        store.close()


def test_more_threads_than_connections_share_the_pool(postgres_url: str) -> None:
    """Twenty threads working at once all succeed over at most ten server connections."""
    store = open_store(postgres_url)
    try:
        with ThreadsUsingTheStore(store, threads=20) as workers:
            pass
        assert workers.errors == []
        assert store.pending_count() == 20 * 5
        database = postgres_url.rpartition("/")[2]
        sessions = _count_sessions(postgres_url, database)
        assert 1 <= sessions <= 10
    finally:
        store.close()


def test_a_busy_pool_fails_after_the_wait_with_advice(postgres_url: str) -> None:
    """When every connection stays busy past the wait, the next call fails naming the cause instead of hanging."""
    database = PostgresDatabase(postgres_location(postgres_url), busy_timeout_s=0.3, max_connections=1)
    try:
        with (
            database.reading("hold the only connection"),
            pytest.raises(StoreError, match="all busy") as raised,
            database.reading("wait for a connection"),
        ):
            pass
        assert "pg_stat_activity" in str(raised.value)
        with database.reading("use it again") as cursor:  # given back: usable again
            cursor.execute("SELECT 1")
            assert cursor.fetchone() == (1,)
    finally:
        database.close()


def test_a_failed_transaction_leaves_its_connection_usable(postgres_url: str) -> None:
    """A statement error rolls the transaction back and the pooled connection serves the next call."""
    database = PostgresDatabase(postgres_location(postgres_url), max_connections=1)

    def create_then_fail() -> None:
        with database.transaction("break") as cursor:
            cursor.execute("CREATE TABLE kept_out (x INTEGER)")
            cursor.execute("SELECT * FROM no_such_table")

    try:
        with pytest.raises(StoreError, match="no_such_table"):
            create_then_fail()
        with database.reading("look") as cursor:
            cursor.execute("SELECT to_regclass('kept_out') IS NULL")
            assert cursor.fetchone() == (True,)
    finally:
        database.close()


class ThreadsUsingTheStore:
    """Threads that each enqueue five items through one store at the same moment; errors are collected."""

    def __init__(self, store: Store, *, threads: int) -> None:
        self.store = store
        self.errors: list[BaseException] = []
        self._start = threading.Barrier(threads)
        self._threads = [threading.Thread(target=self._work, args=(index,)) for index in range(threads)]

    def __enter__(self) -> ThreadsUsingTheStore:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for thread in self._threads:
            thread.join(timeout=60)

    def _work(self, index: int) -> None:
        self._start.wait()
        try:
            for item in range(5):
                self.store.enqueue("refresh", f"t{index}-{item}", {})
        except StoreError as exc:
            self.errors.append(exc)


def _count_sessions(url: str, database: str) -> int:
    with psycopg.connect(url, autocommit=True) as connection:
        row = connection.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name = 'slack-genesys-sync'",
            (database,),
        ).fetchone()
    assert row is not None
    return int(row[0])
