"""`python app.py dead-letters [retry ID…|--all]`, run as real processes on a real SQLite file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from store import Store, open_store
from tests.conftest import REPO


def run_app(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GENESYS_", "SYNC_", "SLACK_", "DATABASE_"))}
    env["DATABASE_URL"] = database_url
    return subprocess.run([sys.executable, str(REPO / "app.py"), "dead-letters", *args], capture_output=True,
                          text=True, cwd=REPO, env=env, timeout=60, check=False)


def bury(store: Store, user_id: str, reason: str) -> int:
    """A refresh of `user_id` the engine gave up on; returns its dead letter's id."""
    store.enqueue("refresh", f"T0ACME:{user_id}", {"team_id": "T0ACME", "user_id": user_id})
    [item] = store.claim(worker="test", limit=1)
    store.dead_letter(item, reason=reason)
    return store.dead_letters(limit=1)[0].id


@pytest.fixture
def database(tmp_path: Path) -> tuple[str, list[int]]:
    """A SQLite file with two dead letters; their ids, oldest first."""
    url = f"sqlite:///{tmp_path}/sync.db"
    store = open_store(url)
    try:
        ids = [bury(store, "U0ADA", "Slack users.info failed: user_not_found; the user no longer exists"),
               bury(store, "U0BOB", "unexpected error:\nIncompleteRead(8 bytes read)")]
    finally:
        store.close()
    return url, ids


def test_listing_shows_each_dead_letter_newest_first(database: tuple[str, list[int]]) -> None:
    """The table has id, kind, key, attempts, time and the last error on one line each, newest first; exit 0."""
    url, (ada, bob) = database
    listed = run_app(url)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0] == "2 dead letters, newest first:"
    assert lines[1].split() == ["ID", "KIND", "KEY", "ATTEMPTS", "WHEN", "(UTC)", "LAST", "ERROR"]
    assert lines[2].split()[:4] == [str(bob), "refresh", "T0ACME:U0BOB", "1"]
    assert lines[2].endswith("unexpected error: IncompleteRead(8 bytes read)")
    assert lines[3].split()[:4] == [str(ada), "refresh", "T0ACME:U0ADA", "1"]
    assert "retry --all" in lines[-1]
    limited = run_app(url, "--limit", "1")
    assert "… and 1 older (--limit 2 lists them all)" in limited.stdout


def test_retrying_one_then_all_requeues_them(database: tuple[str, list[int]]) -> None:
    """`retry ID` requeues that one (work due now), `retry --all` the rest; then the list is empty."""
    url, (ada, bob) = database
    one = run_app(url, "retry", str(ada))
    assert one.returncode == 0, one.stderr
    assert f"requeued #{ada} refresh T0ACME:U0ADA" in one.stdout
    store = open_store(url)
    try:
        assert ([dead.id for dead in store.dead_letters()], store.pending_count()) == ([bob], 1)
    finally:
        store.close()
    rest = run_app(url, "retry", "--all")
    assert rest.returncode == 0, rest.stderr
    assert f"requeued #{bob} refresh T0ACME:U0BOB" in rest.stdout
    assert run_app(url).stdout == "No dead letters: the engine has given up on nothing.\n"
    assert run_app(url, "retry", "--all").stdout == "No dead letters to requeue.\n"


def test_an_unknown_id_is_named_and_exits_1(database: tuple[str, list[int]]) -> None:
    """An id that is no dead letter is named on standard error (exit 1); the others named are requeued."""
    url, (ada, bob) = database
    result = run_app(url, "retry", str(ada), "999")
    assert result.returncode == 1
    assert f"requeued #{ada}" in result.stdout
    assert "no dead letter has the id 999" in result.stderr
    assert f"#{bob}" not in result.stdout


@pytest.mark.parametrize(("args", "says"), [(("retry",), "name the dead letters to requeue by ID, or --all"),
                                            (("retry", "1", "--all"), "(not both)"),
                                            (("retry", "x1"), "'x1' is not a whole number from 1")])
def test_unusable_arguments_exit_2(database: tuple[str, list[int]], args: tuple[str, ...], says: str) -> None:
    """No id and no --all, both, or an id that is not a number: argparse's usage error (exit 2), nothing requeued."""
    url, _ids = database
    result = run_app(url, *args)
    assert result.returncode == 2
    assert says in result.stderr
    assert run_app(url).stdout.startswith("2 dead letters")


def test_a_database_that_cannot_be_opened_is_a_settings_error(tmp_path: Path) -> None:
    """A DATABASE_URL that cannot be opened is named (exit 2), as `serve` names it."""
    (tmp_path / "not-a-db").write_text("plain text")
    result = run_app(f"sqlite:///{tmp_path}/not-a-db")
    assert result.returncode == 2
    assert "DATABASE_URL:" in result.stderr
