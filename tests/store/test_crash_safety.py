"""Crash safety: a child process using the store is killed with SIGKILL at an arbitrary instant; nothing it was told
was committed is lost, nothing it completed comes back, and its leases hold until they expire, then hand each item
out exactly once."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from store import open_store
from tests.store.conftest import RawSql

REPO = Path(__file__).resolve().parents[2]

# Prints a line only after the store call returned, i.e. after its transaction committed. The kill can land between
# a commit and its line, so the parent allows one unreported operation.
_CHILD = """
import sys
import store

s = store.open_store(sys.argv[1])
print("READY", flush=True)
i = 0
while True:
    s.enqueue("refresh", f"k{i}", {"i": i})
    print(f"E k{i}", flush=True)
    s.record_write(store.WriteRecord(f"c{i}", "p", "g", "T", "U", f"h{i}", ("a",), "written", None, "", 0.0))
    print(f"W c{i}", flush=True)
    if i % 2 == 0:
        for item in s.claim(worker="child", lease_s=30, limit=1):
            print(f"C {item.key}", flush=True)
            if item.payload["i"] % 3 == 0:
                s.complete(item)
                print(f"D {item.key}", flush=True)
    i += 1
"""


def run_child_until_killed(database_url: str, lines_before_kill: int) -> list[tuple[str, str]]:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, database_url],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    reported: list[tuple[str, str]] = []
    try:
        assert child.stdout.readline() == "READY\n", child.stderr.read() if child.stderr else ""
        while len(reported) < lines_before_kill:
            line = child.stdout.readline()
            assert line, child.stderr.read() if child.stderr else "child ended early"
            op, key = line.split()
            reported.append((op, key))
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        # Lines written before the kill but not yet read are reports too; a torn last line is not.
        for line in child.stdout.read().splitlines(keepends=True):
            if line.endswith("\n"):
                op, key = line.split()
                reported.append((op, key))
        child.stdout.close()
        if child.stderr is not None:
            child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    return reported


@pytest.mark.parametrize("lines_before_kill", [7, 150, 600])
def test_sigkill_loses_nothing_committed_and_claims_each_item_once(
    database_url: str, backend: str, raw_sql: RawSql, lines_before_kill: int
) -> None:
    """After SIGKILL mid-run the database opens cleanly, every reported write is there, leases hold, expire once."""
    reported = run_child_until_killed(database_url, lines_before_kill)
    enqueued = {key for op, key in reported if op == "E"}
    written = {key for op, key in reported if op == "W"}
    claimed = {key for op, key in reported if op == "C"}
    completed = {key for op, key in reported if op == "D"}

    if backend == "sqlite":
        assert raw_sql("PRAGMA integrity_check") == [("ok",)]
    pending = {key for (key,) in raw_sql("SELECT key FROM work")}
    hashed = {conversation for (conversation,) in raw_sql("SELECT conversation_id FROM last_written")}
    audited = {conversation for (conversation,) in raw_sql("SELECT conversation_id FROM audit")}

    store = open_store(database_url)
    try:
        # Committed and reported: present. The kill may land after a commit but before its line: one extra.
        assert len(pending - enqueued) <= 1
        assert not pending & completed
        lost = (enqueued - completed) - pending
        assert len(lost) <= 1  # at most a complete() that committed without its line
        assert lost <= claimed
        assert hashed == audited  # record_write's hash and audit row commit together or not at all
        assert len(hashed - written) <= 1
        assert all(store.last_written(conversation_id, "p") == f"h{conversation_id[1:]}" for conversation_id in written)

        now = time.time()
        before_expiry = [item.key for item in store.claim(worker="parent", now=now, lease_s=600, limit=10_000)]
        after_expiry = [item.key for item in store.claim(worker="parent", now=now + 31, lease_s=600, limit=10_000)]
        leased_by_child = claimed - completed - lost
        assert not set(before_expiry) & claimed  # the dead child's leases still hold
        assert leased_by_child <= set(after_expiry)
        assert len(set(after_expiry) - leased_by_child) <= 1  # a claim that committed without its line
        assert sorted(before_expiry + after_expiry) == sorted(pending)  # each pending item handed out exactly once
    finally:
        store.close()
