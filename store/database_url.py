"""DATABASE_URL: which database the store uses, parsed at the edge into a value.

Accepted today::

    sqlite:///data/sync.db        relative to the working directory (the default)
    sqlite:////var/lib/sync.db    absolute (four slashes)

`postgresql://` is recognised so its error can say "not yet" instead of "malformed". Passwords never reach a
message: `masked()` shows `user:***@host`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from store.errors import StoreError

DEFAULT_DATABASE_URL = "sqlite:///data/sync.db"
ACCEPTED_FORMS = "sqlite:///relative/path.db (under the working directory) or sqlite:////absolute/path.db"
_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")


def masked(url: str) -> str:
    """The URL with any password replaced by ***, safe for messages and logs."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    # The last "@" ends the user info; a password may hold ":" or "/" unencoded, so everything before it is masked
    # except the user name. Over-masking a path that contains "@" is the safe side.
    userinfo, at, hostpart = rest.rpartition("@")
    if not at:
        return url
    user, colon, _password = userinfo.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{hostpart}"


@dataclass(frozen=True, slots=True)
class SqliteLocation:
    """A SQLite database file; `path` is absolute (a relative URL is resolved against the working directory)."""

    path: Path

    def describe(self) -> str:
        return f"SQLite database {self.path}"


def parse_database_url(url: str, *, working_dir: Path | None = None) -> SqliteLocation:
    """The location a DATABASE_URL names; StoreError (naming DATABASE_URL and the accepted forms) if malformed."""
    shown = masked(url)

    def malformed(problem: str) -> StoreError:
        return StoreError(f"DATABASE_URL={shown!r}: {problem}; use {ACCEPTED_FORMS}", database=shown, operation="parse")

    text = url.strip()
    scheme = text.partition("://")[0].lower() if "://" in text else ""
    if scheme in _POSTGRES_SCHEMES:
        raise StoreError(
            f"DATABASE_URL={shown!r}: PostgreSQL is not supported by this version yet; use {ACCEPTED_FORMS}",
            database=shown,
            operation="parse",
        )
    if not text:
        raise malformed("is empty")
    if scheme != "sqlite":
        raise malformed("is not a sqlite:/// URL")
    after_scheme = text.partition("://")[2]
    if not after_scheme.startswith("/"):
        raise malformed("needs three slashes before a relative path, four before an absolute one")
    raw_path = after_scheme[1:]
    if "?" in raw_path or "#" in raw_path:
        raise malformed("takes no ?query or #fragment")
    if raw_path in ("", "/") or raw_path.endswith("/"):
        raise malformed("names a folder, not a database file")
    if raw_path == ":memory:" or raw_path.startswith("file:"):
        # An in-memory database would lose everything at exit, which defeats the store's one purpose.
        raise malformed("names an in-memory or URI database; the store needs a file")
    path = Path(raw_path)
    if not path.is_absolute():
        path = (working_dir or Path.cwd()) / path
    return SqliteLocation(path=path)
