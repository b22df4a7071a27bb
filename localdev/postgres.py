"""A throwaway PostgreSQL server for the tests: initdb into a temporary folder, listen on 127.0.0.1, stop at the end.

The server binaries come from the distribution (`/usr/lib/postgresql/*/bin` on Debian, else PATH);
`scripts/install-test-services.sh` installs them. PostgreSQL refuses to run as root, so as root initdb and pg_ctl
run as the `postgres` system user, in a folder that user owns. Durability is switched off (fsync, full page writes):
the data is thrown away, and the tests only need what a client sees.

The fixtures in tests/conftest.py use this: `postgres_server` (one per session) and `postgres_url` (a new, empty
database per test).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from localdev.app_process import free_port

SUPERUSER = "postgres"
# The tests connect with a password, so they can check that no message ever shows it.
PASSWORD = "pg-test-Secret-7"
REQUIRE_VARIABLE = "REQUIRE_POSTGRES"


class PostgresUnavailable(Exception):
    """No PostgreSQL server binaries on this machine (not an error unless REQUIRE_POSTGRES=1)."""


def find_bin_dir() -> Path:
    """The folder with initdb and pg_ctl: the newest /usr/lib/postgresql/N/bin, else the one on PATH."""
    debian = sorted(
        (Path(found).parent for found in glob.glob("/usr/lib/postgresql/*/bin/initdb")),
        key=lambda folder: int(folder.parent.name) if folder.parent.name.isdigit() else 0,
    )
    if debian:
        return debian[-1]
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).parent
    raise PostgresUnavailable(
        "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb and no initdb on PATH); run"
        " scripts/install-test-services.sh as root (./test.sh does) to install it"
    )


@dataclass(frozen=True, slots=True)
class PostgresServer:
    """A running throwaway server; `url(database)` is a DATABASE_URL for one of its databases."""

    bin_dir: Path
    folder: Path
    port: int
    run_as: str | None
    """The system user the server runs as when we are root; None: as ourselves."""

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def admin(self) -> psycopg.Connection[tuple[Any, ...]]:
        """A superuser connection in autocommit mode, for CREATE and DROP DATABASE."""
        return psycopg.connect(self.url(), autocommit=True)

    def create_database(self, name: str) -> str:
        """A new empty database; returns its URL."""
        with self.admin() as admin:
            # FILE_COPY (PostgreSQL 15+) copies the tiny template in a third of the time of the default WAL_LOG.
            strategy = " STRATEGY FILE_COPY" if admin.info.server_version >= 150000 else ""
            admin.execute(f'CREATE DATABASE "{name}"{strategy}')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        with self.admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run(self, [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), *args], check=check)

    def start(self) -> None:
        options = " ".join(
            [
                "-c listen_addresses=127.0.0.1",
                f"-p {self.port}",
                f"-k {self.folder}",  # its own Unix socket folder, not /var/run/postgresql
                "-c fsync=off -c full_page_writes=off -c synchronous_commit=off",
                "-c max_connections=200",
            ]
        )
        self.pg_ctl("-l", str(self.folder / "server.log"), "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "immediate") -> None:
        """Stop; "immediate" by default (the data is thrown away), "fast" to end clients' sessions as a restart does."""
        self.pg_ctl("-m", mode, "-w", "stop", check=False)

    def log_tail(self, lines: int = 20) -> str:
        log = self.folder / "server.log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else "(no log)"


def _run(server: PostgresServer, command: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    if server.run_as is not None:
        command = ["runuser", "-u", server.run_as, "--", *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr or done.stdout}")
    return done


def start_server() -> PostgresServer:
    """initdb and start a new server on a free port; raises PostgresUnavailable if there are no binaries."""
    bin_dir = find_bin_dir()
    run_as = None
    folder = Path(tempfile.mkdtemp(prefix="sgs-postgres-"))
    if os.geteuid() == 0:
        run_as = SUPERUSER
        user = pwd.getpwnam(run_as)  # the Debian package creates it
        os.chown(folder, user.pw_uid, user.pw_gid)
    server = PostgresServer(bin_dir=bin_dir, folder=folder, port=free_port(), run_as=run_as)
    password_file = folder / "password"
    password_file.write_text(PASSWORD + "\n")
    if run_as is not None:
        os.chown(password_file, user.pw_uid, user.pw_gid)
    _run(
        server,
        [
            str(bin_dir / "initdb"),
            "-D",
            str(server.data_dir),
            "-U",
            SUPERUSER,
            f"--pwfile={password_file}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        ],
    )
    for _ in range(2):
        try:
            server.start()
            return server
        except RuntimeError:
            # Another process may have taken the port between free_port() and the start: try another one.
            server = PostgresServer(bin_dir=bin_dir, folder=folder, port=free_port(), run_as=run_as)
    server.start()
    return server


def remove_server(server: PostgresServer) -> None:
    server.stop()
    shutil.rmtree(server.folder, ignore_errors=True)
