"""docker-compose.yml: the app and PostgreSQL, the replica count a setting, the HTTP proxy, checked offline.

There is no Docker engine here; `docker-compose config` (Debian's docker-compose, which validates against the
Compose specification's schema) parses and resolves the file without one, and `haproxy -c` checks the proxy's
configuration. The structure tests need only PyYAML.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from localdev.postgres import PostgresServer
from store import StoreError, open_store
from tests.conftest import REPO

COMPOSE = REPO / "docker-compose.yml"
HAPROXY_CFG = REPO / "deploy" / "haproxy.cfg"
AWKWARD_PASSWORD = "p@ss:w/rd%"
"""Every character that breaks a password pasted into a URL unencoded: `@`, `:`, `/` and `%`."""


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _tool(name: str) -> str:
    tool = shutil.which(name)
    if tool is None:
        if os.environ.get("REQUIRE_CONTAINER") == "1":
            pytest.fail(f"{name} is not installed; scripts/install-test-services.sh installs it")
        pytest.skip(f"{name} is not installed (scripts/install-test-services.sh installs it as root)")
    return tool


def rendered(tmp_path: Path, env: Mapping[str, str], *options: str) -> dict[str, Any]:
    """`docker-compose config` of the file with `env` in the environment and a minimal .env: what compose runs."""
    tool = _tool("docker-compose")
    (tmp_path / ".env").write_text("SLACK_BOT_TOKEN=xoxb-1\n")
    resolved = subprocess.run([tool, "--project-directory", str(tmp_path), "-f", str(COMPOSE), *options, "config"],
                              env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    assert resolved.returncode == 0, resolved.stderr
    config: dict[str, Any] = yaml.safe_load(resolved.stdout)
    return config


def test_app_replicas_are_a_setting_and_share_postgresql(compose: dict[str, Any]) -> None:
    """The app's replica count comes from APP_REPLICAS, and every replica points at the PostgreSQL service."""
    app = compose["services"]["app"]
    assert app["deploy"]["replicas"] == "${APP_REPLICAS:-2}"
    assert app["environment"]["DATABASE_URL"] == "postgresql://sync@postgres:5432/sync"
    assert app["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert app["env_file"] == ".env"
    assert "ports" not in app  # fixed host ports would collide between replicas


def test_the_password_reaches_the_app_outside_the_url(compose: dict[str, Any]) -> None:
    """The password is PGPASSWORD (read by libpq), never interpolated into DATABASE_URL, where `@`, `:`, `/` and
    `%` would break the URL and compose cannot percent-encode."""
    app = compose["services"]["app"]
    assert "POSTGRES_PASSWORD" not in app["environment"]["DATABASE_URL"]
    assert app["environment"]["PGPASSWORD"].startswith("${POSTGRES_PASSWORD:?")


def test_postgresql_keeps_its_data_and_reports_ready(compose: dict[str, Any]) -> None:
    """PostgreSQL has a named volume and a pg_isready health check; its password is required, never defaulted."""
    postgres = compose["services"]["postgres"]
    assert "postgres-data:/var/lib/postgresql/data" in postgres["volumes"]
    assert "pg_isready" in postgres["healthcheck"]["test"]
    assert postgres["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")


def test_the_http_proxy_publishes_one_port_and_balances_over_the_app(compose: dict[str, Any]) -> None:
    """HTTP mode: the proxy (profile `http`) publishes HTTP_PORT and sends every request to the app service's
    replicas, found by name, on the port they listen on."""
    app, proxy = compose["services"]["app"], compose["services"]["proxy"]
    assert proxy["profiles"] == ["http"]
    assert proxy["ports"] == ["${HTTP_PORT:-3000}:3000"]
    assert "./deploy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro" in proxy["volumes"]
    assert "app" in proxy["depends_on"]
    config = HAPROXY_CFG.read_text()
    assert re.search(r"^\s*bind :3000$", config, re.MULTILINE)  # the container port the proxy publishes
    servers = re.findall(r"^\s*server-template \S+ \d+ (\S+):(\d+) .*resolvers docker", config, re.MULTILINE)
    assert servers == [("app", app["environment"]["PORT"])]
    assert app["expose"] == [app["environment"]["PORT"]]


def test_proxy_configuration_is_valid_for_haproxy() -> None:
    """`haproxy -c` accepts deploy/haproxy.cfg (Debian's HAProxy here; the image is the same configuration)."""
    checked = subprocess.run([_tool("haproxy"), "-c", "-f", str(HAPROXY_CFG)], capture_output=True, text=True,
                             timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_compose_file_is_valid_for_docker_compose(tmp_path: Path) -> None:
    """`docker-compose config` accepts the file, resolves three replicas when APP_REPLICAS=3, and publishes the
    proxy on HTTP_PORT with the `http` profile."""
    config = rendered(tmp_path, {"POSTGRES_PASSWORD": "pw", "APP_REPLICAS": "3", "HTTP_PORT": "8080"},
                      "--profile", "http")
    app, proxy = config["services"]["app"], config["services"]["proxy"]
    assert app["deploy"]["replicas"] == 3
    assert app["environment"]["DATABASE_URL"] == "postgresql://sync@postgres:5432/sync"
    assert app["environment"]["SLACK_BOT_TOKEN"] == "xoxb-1"  # .env still reaches the app
    assert proxy["ports"] == [{"published": 8080, "target": 3000}]
    assert "app" in proxy["depends_on"]
    assert proxy["volumes"] == [f"{tmp_path}/deploy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro"]


def test_a_password_that_needs_encoding_reaches_postgres_and_the_app_unchanged(tmp_path: Path) -> None:
    """The rendered file gives PostgreSQL and the app the same password, byte for byte, and the app's URL has none."""
    config = rendered(tmp_path, {"POSTGRES_PASSWORD": AWKWARD_PASSWORD})
    app_env = config["services"]["app"]["environment"]
    assert config["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"] == AWKWARD_PASSWORD
    assert app_env["PGPASSWORD"] == AWKWARD_PASSWORD
    assert "password" not in conninfo_to_dict(app_env["DATABASE_URL"])


def test_the_app_connects_with_the_rendered_settings(tmp_path: Path, postgres_server: PostgresServer,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """End to end on a real PostgreSQL: a role whose password needs encoding, and the app's store opened with the
    rendered DATABASE_URL (its host pointed at the test server) and PGPASSWORD. The password in the URL unencoded,
    as the compose file used to build it, is refused."""
    app_env = rendered(tmp_path, {"POSTGRES_PASSWORD": AWKWARD_PASSWORD})["services"]["app"]["environment"]
    role, database = f"sync_{uuid.uuid4().hex[:8]}", f"test_{uuid.uuid4().hex[:12]}"
    with postgres_server.admin() as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role),
                                                                        sql.Literal(AWKWARD_PASSWORD)))
        admin.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(role)))
    try:
        url = app_env["DATABASE_URL"].replace("sync@postgres:5432/sync",
                                              f"{role}@127.0.0.1:{postgres_server.port}/{database}")
        monkeypatch.delenv("PGPASSWORD", raising=False)
        with pytest.raises(StoreError):  # without PGPASSWORD the server refuses: the password comes from there
            open_store(url).close()
        with pytest.raises(StoreError):
            open_store(url.replace(f"{role}@", f"{role}:{AWKWARD_PASSWORD}@")).close()
        monkeypatch.setenv("PGPASSWORD", app_env["PGPASSWORD"])
        store = open_store(url)
        try:
            assert store.health().ok
        finally:
            store.close()
    finally:
        with postgres_server.admin() as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))

