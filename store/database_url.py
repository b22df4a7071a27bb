"""DATABASE_URL: which database the store uses, parsed at the edge into a value.

Accepted::

    sqlite:///data/sync.db                         relative to the working directory (the default)
    sqlite:////var/lib/sync.db                     absolute (four slashes)
    postgresql://user:password@host:5432/dbname    PostgreSQL (also postgres://); libpq's URI form, so
                                                   ?sslmode=require and the other libpq parameters work

Only the scheme of a PostgreSQL URL is checked here; libpq itself parses the rest when the store connects (see
`postgres.py`), so every form libpq accepts works and its own message explains any that it refuses. Passwords
never reach a message: `masked()` shows `user:***@host`, and `mask_passwords()` hides them in a message (libpq's)
where they stand as passwords, leaving every other word of it alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from store.errors import StoreError

DEFAULT_DATABASE_URL = "sqlite:///data/sync.db"
ACCEPTED_FORMS = (
    "sqlite:///relative/path.db (under the working directory), sqlite:////absolute/path.db, or"
    " postgresql://user:password@host:5432/database"
)
# postgresql+psycopg:// is how SQLAlchemy spells it; accepted so a URL copied from such a tool works.
_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
SECRET_PARAMETERS = frozenset({"password", "sslpassword", "oauth_client_secret"})
"""libpq's connection parameters whose values are secrets (`passfile` and `sslkey` are paths: shown)."""
# In a message: a URL's user info up to the last "@" before any space or quote, and a conninfo `password=` setting
# (libpq's quoted form with '' and \' escapes, or a bare word).
_USERINFO_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"/?#@:]*:)[^\s'\"]*(?=@)")
_PASSWORD_SETTING = re.compile(r"(\b(?:password|sslpassword|oauth_client_secret)\s*=\s*)"
                               r"(?:'(?:[^'\\]|\\.|'')*'|[^\s&#'\"]+)", re.IGNORECASE)
# A known password counts only as a whole token: between quotes, spaces, "=" or ":" before and "@", "&" after (how
# libpq quotes the part of a URL it cannot read). A short password is thus never cut out of the words around it.
_TOKEN_BEFORE = r"(?<![^\s'\"=:])"
_TOKEN_AFTER = r"(?![^\s'\"@&])"


def masked(url: str) -> str:
    """The URL with every secret (the user info's password, ?password=, ?sslpassword=, ?oauth_client_secret=)
    replaced by ***, for messages."""
    url = _mask_secret_parameters(url)
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


def _mask_secret_parameters(url: str) -> str:
    """`url` with the values of its secret query parameters masked; a name is compared as libpq reads it
    (percent-decoded, any case), so ?ssl%70assword= is masked too."""
    head, question, rest = url.partition("?")
    if not question:
        return url
    query, hash_sign, fragment = rest.partition("#")
    parts = []
    for part in query.split("&"):
        name, equals, _value = part.partition("=")
        parts.append(f"{name}=***" if equals and unquote(name).lower() in SECRET_PARAMETERS else part)
    return f"{head}?{'&'.join(parts)}{hash_sign}{fragment}"


def url_secrets(url: str) -> tuple[str, ...]:
    """The secrets written in a URL (the user info's password and each secret parameter's value), as written and
    percent-decoded, longest first: what `mask_passwords` and the log must hide wherever they appear."""
    found: set[str] = set()
    rest = url.partition("://")[2]
    userinfo, at, _ = rest.rpartition("@")  # as masked() reads it: the last "@" ends the user info
    if at and ":" in userinfo:
        found.add(userinfo.partition(":")[2])
    for part in url.partition("?")[2].partition("#")[0].split("&"):
        name, _, value = part.partition("=")
        if unquote(name).lower() in SECRET_PARAMETERS:
            found.add(value)
    found |= {unquote(secret) for secret in found}
    return tuple(sorted((secret for secret in found if secret), key=len, reverse=True))


def mask_passwords(text: str, passwords: Iterable[str] = ()) -> str:
    """`text` (an error message) with passwords replaced by *** where they stand as passwords: in a URL's user info,
    in a `password=` setting, and any of `passwords` standing as a whole token. Never an arbitrary substring, so a
    password of one letter leaves the message readable."""
    text = _USERINFO_PASSWORD.sub(r"\1***", text)
    text = _PASSWORD_SETTING.sub(r"\1***", text)
    for password in sorted({p for p in passwords if p}, key=len, reverse=True):
        text = re.sub(_TOKEN_BEFORE + re.escape(password) + _TOKEN_AFTER, "***", text)
    return text


@dataclass(frozen=True, slots=True)
class SqliteLocation:
    """A SQLite database file; `path` is absolute (a relative URL is resolved against the working directory)."""

    path: Path

    def describe(self) -> str:
        return f"SQLite database {self.path}"


@dataclass(frozen=True, slots=True)
class PostgresLocation:
    """A PostgreSQL database: `url` is what libpq connects with (it holds the password, so it is not in the repr)."""

    url: str = field(repr=False)
    shown: str
    """The URL with its password masked."""

    def describe(self) -> str:
        return f"PostgreSQL database {self.shown}"


DatabaseLocation = SqliteLocation | PostgresLocation


def parse_database_url(url: str, *, working_dir: Path | None = None) -> DatabaseLocation:
    """The location a DATABASE_URL names; StoreError (naming DATABASE_URL and the accepted forms) if malformed."""
    shown = masked(url)

    def malformed(problem: str) -> StoreError:
        return StoreError(f"DATABASE_URL={shown!r}: {problem}; use {ACCEPTED_FORMS}", database=shown, operation="parse")

    text = url.strip()
    if not text:
        raise malformed("is empty")
    scheme, sep, after_scheme = text.partition("://")
    scheme = scheme.lower() if sep else ""
    if scheme in _POSTGRES_SCHEMES:
        normalized = f"postgresql://{after_scheme}"
        return PostgresLocation(url=normalized, shown=masked(normalized))
    if scheme != "sqlite":
        raise malformed("is neither a sqlite:/// nor a postgresql:// URL")
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
