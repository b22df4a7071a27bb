"""`python app.py dead-letters`: list the work the engine gave up on; `dead-letters retry ID…|--all` requeues it.

Reads and changes the store at DATABASE_URL, nothing else: no Slack or Genesys settings are needed, and the running
app (any replica on that database) picks requeued work up on its next turn.

Exit status: 0 listed, or every named dead letter requeued; 1 an id named is no dead letter (the others named were
requeued); 2 unusable settings or arguments (DATABASE_URL that cannot be opened, no ID and no --all); 3 the database
failed during the command.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import IO

from store import DeadLetter, StoreError
from sync.dead_letters import DeadLetterStore, retry_dead_letters

EXIT_OK, EXIT_UNKNOWN_ID, EXIT_DATABASE = 0, 1, 3
DEFAULT_LIMIT = 100

DESCRIPTION = (
    "List the work the sync engine gave up on (dead letters): id, kind, key, attempts, when and the last error. "
    "`dead-letters retry ID…` or `retry --all` puts them back on the work queue, due now with a fresh retry budget; "
    "the running app picks them up on its next turn. Reads DATABASE_URL only. Exit 0: listed or requeued; 1: an ID is "
    "no dead letter; 2: unusable settings or arguments; 3: the database failed."
)


def list_dead_letters(store: DeadLetterStore, *, limit: int, out: IO[str], err: IO[str]) -> int:
    """Print the newest `limit` dead letters as a table, and how many more there are."""
    try:
        letters, total = store.dead_letters(limit=limit), store.dead_letter_count()
    except StoreError as error:
        print(f"dead-letters: {error}", file=err)
        return EXIT_DATABASE
    if not letters:
        print("No dead letters: the engine has given up on nothing.", file=out)
        return EXIT_OK
    print(f"{total} dead letter{'s' if total != 1 else ''}, newest first:", file=out)
    print(_table(letters), file=out)
    if total > len(letters):
        print(f"… and {total - len(letters)} older (--limit {total} lists them all)", file=out)
    print("Requeue one with `dead-letters retry ID`, or all with `dead-letters retry --all`.", file=out)
    return EXIT_OK


def retry(store: DeadLetterStore, ids: Sequence[int] | None, *, out: IO[str], err: IO[str]) -> int:
    """Requeue the dead letters `ids` (None: all) and say which; an id that is none is named on `err`."""
    try:
        retried = retry_dead_letters(store, ids, by="the dead-letters command")
    except StoreError as error:
        print(f"dead-letters retry: {error}; nothing was requeued", file=err)
        return EXIT_DATABASE
    for dead in retried.requeued:
        print(f"requeued #{dead.id} {dead.kind} {dead.key}", file=out)
    if ids is None and not retried.requeued:
        print("No dead letters to requeue.", file=out)
    elif retried.requeued:
        print(f"{len(retried.requeued)} dead letter(s) back on the work queue, due now; the running app works on "
              "them on its next turn.", file=out)
    if retried.unknown:
        print(f"dead-letters retry: no dead letter has the id {', '.join(map(str, retried.unknown))} (see "
              "`dead-letters` for the ids; one requeued already is no longer listed)", file=err)
        return EXIT_UNKNOWN_ID
    return EXIT_OK


def _table(letters: Sequence[DeadLetter]) -> str:
    rows = [("ID", "KIND", "KEY", "ATTEMPTS", "WHEN (UTC)", "LAST ERROR")]
    rows += [(str(dead.id), dead.kind, dead.key, str(dead.attempts),
              time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(dead.at)), _one_line(dead.reason)) for dead in letters]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    return "\n".join("  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1]])
                     for row in rows)


def _one_line(text: str) -> str:
    """An error as one line of the table (an error text may hold newlines)."""
    return " ".join(text.split())
