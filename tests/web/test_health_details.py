"""/healthz, as anyone who reaches the port reads it: no secret ever, and where the database is and the OAuth client
ids only when the operator sets HEALTH_DETAILS=1. The app runs as a real process on a real PostgreSQL database whose
URL carries a password and an sslpassword.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from localdev.app_process import Running, launch, wait_for
from localdev.genesys_cloud import FakeGenesysCloud
from localdev.postgres import PASSWORD, SUPERUSER
from localdev.slack_api import FakeSlack
from localdev.slack_workspaces import FakeSlackWorkspaces

GENESYS_CLIENT_ID = "genesys-client-id-7f3e"
SSL_PASSWORD = "ssl-key-passphrase-5d2"


@pytest.fixture
def fakes() -> Iterator[tuple[FakeSlack, FakeSlackWorkspaces, FakeGenesysCloud]]:
    with (FakeSlack() as slack, FakeSlackWorkspaces(slack, client_id="slack-client-id-3c9a") as workspaces,
          FakeGenesysCloud(client_id=GENESYS_CLIENT_ID) as genesys):
        yield slack, workspaces, genesys


def start(fakes: tuple[FakeSlack, FakeSlackWorkspaces, FakeGenesysCloud], tmp_path: Path, database_url: str,
          **settings: str) -> Running:
    """The app in OAuth mode (so a Slack client id is configured) on `database_url`."""
    slack, workspaces, genesys = fakes
    return launch(slack, genesys, tmp_path, database_url=database_url, env_changes={
        "SLACK_BOT_TOKEN": None, "SLACK_CLIENT_ID": workspaces.client_id,
        "SLACK_CLIENT_SECRET": workspaces.client_secret, "SLACK_API_URL": workspaces.api_url,
        "GENESYS_CLIENT_ID": GENESYS_CLIENT_ID, "SLACK_ALLOWED_TEAMS": "*", **settings,
    })


def refuse_genesys_client(app: Running) -> str:
    """Genesys stops accepting the client (a rotated secret): /healthz turns 503 naming why; its raw text."""
    app.genesys.client_secret = "rotated-elsewhere"
    app.genesys.expire_tokens()
    wait_for(lambda: httpx.get(f"{app.url}/healthz", timeout=5).status_code == 503, 20, "/healthz to say 503")
    return httpx.get(f"{app.url}/healthz", timeout=5).text


@pytest.mark.parametrize("details", [None, "0"])
def test_healthz_names_no_database_location_and_no_client_id_by_default(
        fakes: tuple[FakeSlack, FakeSlackWorkspaces, FakeGenesysCloud], tmp_path: Path, postgres_url: str,
        details: str | None) -> None:
    """Without HEALTH_DETAILS=1 the answer says the database works but not its user, host or port, and a Genesys
    failure without the client id; no password, sslpassword or client id reaches /healthz or the log."""
    database_url = f"{postgres_url}?sslpassword={SSL_PASSWORD}&sslmode=disable"
    app = start(fakes, tmp_path, database_url, **({"HEALTH_DETAILS": details} if details is not None else {}))
    try:
        healthy = httpx.get(f"{app.url}/healthz", timeout=5)
        assert healthy.json()["database"]["detail"].startswith("PostgreSQL answers (schema version ")
        failing = refuse_genesys_client(app)
        assert "OAuth client '***'" in failing
        port = str(urlsplit(postgres_url).port)
        for body in (healthy.text, failing):
            for hidden in (SUPERUSER, "127.0.0.1", port, PASSWORD, SSL_PASSWORD, GENESYS_CLIENT_ID,
                           app.genesys.client_secret, "slack-client-id-3c9a"):
                assert hidden not in body, f"{hidden!r} in /healthz: {body}"
    finally:
        app.process.terminate()
        app.process.wait(timeout=10)
    assert PASSWORD not in app.log()
    assert SSL_PASSWORD not in app.log()


def test_health_details_name_the_database_and_client_but_no_secret(
        fakes: tuple[FakeSlack, FakeSlackWorkspaces, FakeGenesysCloud], tmp_path: Path, postgres_url: str) -> None:
    """HEALTH_DETAILS=1 shows the database URL with user and host and the refused client id; its password and
    sslpassword stay masked."""
    database_url = f"{postgres_url}?sslpassword={SSL_PASSWORD}&sslmode=disable"
    app = start(fakes, tmp_path, database_url, HEALTH_DETAILS="1")
    try:
        detail = httpx.get(f"{app.url}/healthz", timeout=5).json()["database"]["detail"]
        assert f"postgresql://{SUPERUSER}:***@127.0.0.1:" in detail
        assert "sslpassword=***" in detail
        failing = refuse_genesys_client(app)
        assert f"OAuth client '{GENESYS_CLIENT_ID}'" in failing
        for body in (detail, failing):
            assert PASSWORD not in body
            assert SSL_PASSWORD not in body
    finally:
        app.process.terminate()
        app.process.wait(timeout=10)


def test_sqlite_health_names_no_path_by_default(fakes: tuple[FakeSlack, FakeSlackWorkspaces, FakeGenesysCloud],
                                                tmp_path: Path) -> None:
    """On SQLite the default answer does not name the file's path either."""
    app = start(fakes, tmp_path, f"sqlite:///{tmp_path}/state/sync.db")
    try:
        body = httpx.get(f"{app.url}/healthz", timeout=5).text
        assert "SQLite answers (schema version " in body
        assert str(tmp_path) not in body
    finally:
        app.process.terminate()
        app.process.wait(timeout=10)


@pytest.mark.parametrize(("raw", "problem"), [("2", "'2' is neither 1 nor 0"), ("maybe", "'maybe' is neither")])
def test_a_bad_health_details_is_named_with_the_other_problems(
        fakes: tuple[FakeSlack, FakeSlackWorkspaces, FakeGenesysCloud], tmp_path: Path, raw: str,
        problem: str) -> None:
    """HEALTH_DETAILS other than an on/off value stops the start, named in the one answer."""
    with pytest.raises(AssertionError, match=rf"exited with 2:[\s\S]*HEALTH_DETAILS: {problem}"):
        start(fakes, tmp_path, f"sqlite:///{tmp_path}/sync.db", HEALTH_DETAILS=raw)
