"""DATABASE_URL parsing and masking: accepted forms, and errors that name the setting and the accepted forms."""

from __future__ import annotations

from pathlib import Path

import pytest

from store import StoreError, masked, open_store
from store.database_url import (
    DEFAULT_DATABASE_URL,
    PostgresLocation,
    mask_passwords,
    parse_database_url,
    url_secrets,
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///data/sync.db", "/work/dir/data/sync.db"),
        ("sqlite:///sync.db", "/work/dir/sync.db"),
        ("sqlite:////var/lib/sync/state.db", "/var/lib/sync/state.db"),
        ("  sqlite:///data/sync.db\n", "/work/dir/data/sync.db"),
        ("SQLITE:///data/sync.db", "/work/dir/data/sync.db"),
    ],
)
def test_sqlite_urls_resolve_to_absolute_paths(url: str, expected: str) -> None:
    """Three slashes are relative to the working directory, four are absolute."""
    assert parse_database_url(url, working_dir=Path("/work/dir")).path == Path(expected)


def test_default_url_is_data_sync_db_under_the_working_directory(tmp_path: Path) -> None:
    """The default names data/sync.db relative to the working directory."""
    assert parse_database_url(DEFAULT_DATABASE_URL, working_dir=tmp_path).path == tmp_path / "data" / "sync.db"


def test_default_url_creates_its_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """open_store with the default URL creates ./data and the file in it."""
    monkeypatch.chdir(tmp_path)
    store = open_store()
    try:
        assert store.health().ok
    finally:
        store.close()
    assert (tmp_path / "data" / "sync.db").is_file()


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("", "is empty"),
        ("data/sync.db", "is neither a sqlite:/// nor a postgresql:// URL"),
        ("mysql://sync:hunter2@db/sync", "is neither a sqlite:/// nor a postgresql:// URL"),
        ("sqlite://data/sync.db", "three slashes"),
        ("sqlite://:memory:", "three slashes"),
        ("sqlite:///:memory:", "in-memory"),
        ("sqlite:///file:sync.db", "in-memory or URI"),
        ("sqlite:///", "names a folder"),
        ("sqlite:////", "names a folder"),
        ("sqlite:///data/", "names a folder"),
        ("sqlite:///data/sync.db?mode=ro", "no ?query"),
    ],
)
def test_malformed_urls_raise_store_error_naming_database_url(url: str, problem: str) -> None:
    """A malformed DATABASE_URL raises StoreError naming DATABASE_URL, the problem and the accepted forms."""
    with pytest.raises(StoreError) as raised:
        open_store(url)
    message = str(raised.value)
    assert message.startswith("DATABASE_URL=")
    assert problem in message
    assert "sqlite:///relative/path.db" in message
    assert "sqlite:////absolute/path.db" in message
    assert "postgresql://user:password@host:5432/database" in message
    assert "hunter2" not in message


@pytest.mark.parametrize(
    ("url", "libpq_url", "shown"),
    [
        ("postgresql://sync:hunter2@db:5432/sync", "postgresql://sync:hunter2@db:5432/sync",
         "postgresql://sync:***@db:5432/sync"),
        ("postgres://sync:hunter2@db/sync", "postgresql://sync:hunter2@db/sync", "postgresql://sync:***@db/sync"),
        ("  POSTGRESQL+psycopg://db/sync?sslmode=require\n", "postgresql://db/sync?sslmode=require",
         "postgresql://db/sync?sslmode=require"),
        ("postgresql:///sync?host=/run/postgresql&password=hunter2", "postgresql:///sync?host=/run/postgresql&password=hunter2",
         "postgresql:///sync?host=/run/postgresql&password=***"),
    ],
)
def test_postgresql_urls_keep_the_url_for_libpq_and_show_it_masked(url: str, libpq_url: str, shown: str) -> None:
    """postgresql://, postgres:// and SQLAlchemy's postgresql+psycopg:// become one libpq URL, shown masked."""
    location = parse_database_url(url)
    assert isinstance(location, PostgresLocation)
    assert (location.url, location.shown) == (libpq_url, shown)
    assert location.describe() == f"PostgreSQL database {shown}"
    assert "hunter2" not in repr(location)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://sync:hunter2@db:5432/sync", "postgresql://sync:***@db:5432/sync"),
        ("postgresql://sync:p@ss/w:rd@db/sync", "postgresql://sync:***@db/sync"),
        ("postgresql://sync@db/sync", "postgresql://sync@db/sync"),
        ("postgresql://db/sync", "postgresql://db/sync"),
        ("postgresql://db/sync?sslmode=require&password=hunter2", "postgresql://db/sync?sslmode=require&password=***"),
        ("postgresql://db/sync?PASSWORD=hunter2&sslmode=require", "postgresql://db/sync?PASSWORD=***&sslmode=require"),
        ("sqlite:///data/sync.db", "sqlite:///data/sync.db"),
        ("not a url", "not a url"),
    ],
)
def test_masked_hides_passwords_only(url: str, expected: str) -> None:
    """masked() replaces the password (even one holding @, / or :) and keeps everything else."""
    assert masked(url) == expected


LIBPQ_REFUSED = ('connection to server at "127.0.0.1", port 5432 failed: FATAL:  password authentication failed for'
                 ' user "postgres"')


@pytest.mark.parametrize(
    ("text", "passwords", "expected"),
    [
        (LIBPQ_REFUSED, ("p",), LIBPQ_REFUSED),
        (LIBPQ_REFUSED, ("s",), LIBPQ_REFUSED),
        ("could not translate host name \"db.invalid\" to address: Name or service not known", ("a", "e"),
         "could not translate host name \"db.invalid\" to address: Name or service not known"),
        ('missing "=" after "postgresql://sync:p@db/sync" in connection info string', ("p",),
         'missing "=" after "postgresql://sync:***@db/sync" in connection info string'),
        ("DATABASE_URL=postgresql://sync:p%40ss%2Fw@db:5432/sync failed", ("p%40ss%2Fw", "p@ss/w"),
         "DATABASE_URL=postgresql://sync:***@db:5432/sync failed"),
        ("URL postgresql://sync:p@ss/w@db/sync refused", (), "URL postgresql://sync:***@db/sync refused"),
        ('invalid percent-encoded token: "p%zzss"', ("p%zzss", "p%zzss"), 'invalid percent-encoded token: "***"'),
        ('unexpected spaces found in "pa ss", use percent-encoded spaces (%20) instead', ("pa ss",),
         'unexpected spaces found in "***", use percent-encoded spaces (%20) instead'),
        ('invalid connection option "passwd" in "host=db password=p port=5432"', ("p",),
         'invalid connection option "passwd" in "host=db password=*** port=5432"'),
        ("host=db password='it''s p' sslmode=require", (), "host=db password=*** sslmode=require"),
        ("postgresql:///sync?host=/run/pg&PASSWORD=p&sslmode=require", ("p",),
         "postgresql:///sync?host=/run/pg&PASSWORD=***&sslmode=require"),
        ("no password here, just a p and a q", (), "no password here, just a p and a q"),
    ],
)
def test_mask_passwords_hides_the_password_where_it_stands_as_one(text: str, passwords: tuple[str, ...],
                                                                  expected: str) -> None:
    """Passwords are masked in user info, password= settings and as whole quoted tokens; other text stays intact."""
    assert mask_passwords(text, passwords) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://sync@db/sync?sslmode=verify-full&sslpassword=keypass&sslkey=/k.pem",
         "postgresql://sync@db/sync?sslmode=verify-full&sslpassword=***&sslkey=/k.pem"),
        ("postgresql://sync@db/sync?SSLPassword=keypass", "postgresql://sync@db/sync?SSLPassword=***"),
        ("postgresql://sync@db/sync?ssl%70assword=keypass", "postgresql://sync@db/sync?ssl%70assword=***"),
        ("postgresql://db/sync?password=hunter2&sslpassword=keypass#x", "postgresql://db/sync?password=***&sslpassword=***#x"),
        ("postgresql://sync:hunter2@db/sync?password=other", "postgresql://sync:***@db/sync?password=***"),
        ("postgresql://db/sync?oauth_client_secret=s3cret&oauth_client_id=sync",
         "postgresql://db/sync?oauth_client_secret=***&oauth_client_id=sync"),
        ("postgresql://sync@db/sync?passfile=/run/secrets/pgpass", "postgresql://sync@db/sync?passfile=/run/secrets/pgpass"),
        ("postgresql://sync@db/sync?sslpassword=", "postgresql://sync@db/sync?sslpassword=***"),
    ],
)
def test_masked_hides_every_libpq_secret_and_shows_paths(url: str, expected: str) -> None:
    """password and sslpassword (any case, even percent-encoded names) and oauth_client_secret are masked; a passfile
    or sslkey path is shown, since it says where the secret is, not what it is."""
    assert masked(url) == expected


@pytest.mark.parametrize(
    ("url", "secrets"),
    [
        ("postgresql://sync:hunter2@db/sync", ("hunter2",)),
        ("postgresql://sync@db/sync?sslpassword=key%20pass", ("key%20pass", "key pass")),
        ("postgresql://sync:pw@db/sync?PASSWORD=other&sslmode=require", ("other", "pw")),
        ("postgresql://sync@db/sync?passfile=/run/secrets/pgpass", ()),
        ("sqlite:///data/sync.db", ()),
    ],
)
def test_url_secrets_are_what_the_url_holds(url: str, secrets: tuple[str, ...]) -> None:
    """url_secrets() lists every secret of the URL, as written and decoded, longest first; paths are not secrets."""
    assert url_secrets(url) == secrets


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('invalid sslpassword=keypass in "host=db sslpassword=keypass"',
         'invalid sslpassword=*** in "host=db sslpassword=***"'),
        ("host=db oauth_client_secret='s 3' user=sync", "host=db oauth_client_secret=*** user=sync"),
    ],
)
def test_mask_passwords_hides_other_libpq_secret_settings(text: str, expected: str) -> None:
    """A libpq message quoting sslpassword= or oauth_client_secret= settings shows them masked."""
    assert mask_passwords(text) == expected


def test_a_libpq_error_for_a_url_with_an_sslpassword_does_not_show_it() -> None:
    """The StoreError for a URL libpq cannot use (and its description) never holds the sslpassword."""
    url = "postgresql://sync@127.0.0.1:1/sync?sslpassword=keypass-4411&connect_timeout=1&sslmode=disable"
    with pytest.raises(StoreError) as raised:
        open_store(url)
    assert "keypass-4411" not in str(raised.value)
    assert "sslpassword=***" in str(raised.value)
