"""The store's one exception.

`StoreError` is raised when the database cannot be opened or used: a malformed DATABASE_URL, a file or folder that
cannot be created or written, a file that is not a SQLite database, a PostgreSQL server that is down or refuses the
credentials, a schema newer than this code, or a statement that failed (disk full, a lock held past the busy
timeout, a lost connection). The message names the database (never a password), says what failed and what to do.
Callers catch it once; the engine treats it as "retry the whole tick later".
"""

from __future__ import annotations


class StoreError(Exception):
    """The durable state is unavailable or refused an operation; `str()` says which database and what to do."""

    def __init__(self, message: str, *, database: str = "", operation: str = "") -> None:
        super().__init__(message)
        self.database = database
        """The database as shown to people: a path, or a URL with its password masked."""
        self.operation = operation
        """What the store was doing: "open", "enqueue", "claim", ..."""
