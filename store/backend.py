"""What a database backend gives the store: its SQL dialect and transactions.

The store's statements (`queries.py`) and tables (`schema.py`) are written once; a backend differs only in

- the placeholder style: statements are written with `:name`; PostgreSQL drivers want `%(name)s`;
- how a writing transaction starts: SQLite `BEGIN IMMEDIATE` takes the write lock before the first read, so a
  read-then-write transaction can never fail half-way on a lock upgrade; PostgreSQL plain `BEGIN`;
- the row lock on the claim query: nothing on SQLite (one writer at a time already), `FOR UPDATE SKIP LOCKED` on
  PostgreSQL so replicas claiming at once skip each other's rows instead of waiting on them;
- the two-argument minimum: SQLite's scalar `min(a, b)`, PostgreSQL's `LEAST(a, b)`.

Upserts use `INSERT … ON CONFLICT (…) DO UPDATE SET col = excluded.col`, which SQLite (3.24+) and PostgreSQL (9.5+)
spell the same way, so `Dialect.upsert` builds them in one place should a third dialect ever differ.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Literal, Protocol

_NAMED_PARAMETER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@dataclass(frozen=True, slots=True)
class Dialect:
    """The few ways one SQL database differs from another, as far as the store cares."""

    name: str
    param_style: Literal["named", "pyformat"]
    begin_write: str
    claim_lock: str
    least: str

    def sql(self, text: str) -> str:
        """A statement written with `:name` placeholders, in this dialect's placeholder style."""
        text = " ".join(text.split())
        if self.param_style == "named":
            return text
        return _NAMED_PARAMETER.sub(r"%(\1)s", text)

    def upsert(self, table: str, columns: Sequence[str], conflict: Sequence[str], update: str) -> str:
        """INSERT of `columns` (placeholders named like the columns) that runs `update` on a key conflict."""
        values = ", ".join(f":{column}" for column in columns)
        return (
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({values}) "
            f"ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET {update}"
        )


SQLITE = Dialect(name="sqlite", param_style="named", begin_write="BEGIN IMMEDIATE", claim_lock="", least="min")
POSTGRESQL = Dialect(
    name="postgresql", param_style="pyformat", begin_write="BEGIN", claim_lock="FOR UPDATE SKIP LOCKED", least="LEAST"
)


class Cursor(Protocol):
    """The DB-API cursor subset the store uses (sqlite3 and psycopg both provide it)."""

    @property
    def rowcount(self) -> int: ...

    def execute(self, sql: str, parameters: Mapping[str, Any] = ..., /) -> Any: ...

    def executemany(self, sql: str, parameters: Iterable[Mapping[str, Any]], /) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Database(Protocol):
    """An open database: transactions that either commit whole or raise StoreError having rolled back."""

    dialect: Dialect

    def describe(self) -> str:
        """The database as a person should read it in a message (no password)."""
        ...

    def transaction(self, operation: str) -> AbstractContextManager[Cursor]:
        """A writing transaction: committed when the block ends, rolled back if it raises."""
        ...

    def reading(self, operation: str) -> AbstractContextManager[Cursor]:
        """A cursor for reads that need no transaction of their own."""
        ...

    def close(self) -> None: ...
