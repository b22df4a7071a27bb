"""docker-compose.yml: the app and PostgreSQL, the replica count a setting, checked offline.

There is no Docker engine here; `docker-compose config` (Debian's docker-compose, which validates against the
Compose specification's schema) parses and resolves the file without one. The structure tests need only PyYAML.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.conftest import REPO

COMPOSE = REPO / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def test_app_replicas_are_a_setting_and_share_postgresql(compose: dict[str, Any]) -> None:
    """The app's replica count comes from APP_REPLICAS, and every replica points at the PostgreSQL service."""
    app = compose["services"]["app"]
    assert app["deploy"]["replicas"] == "${APP_REPLICAS:-2}"
    assert app["environment"]["DATABASE_URL"].startswith("postgresql://sync:${POSTGRES_PASSWORD:?")
    assert app["environment"]["DATABASE_URL"].endswith("@postgres:5432/sync")
    assert app["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert app["env_file"] == ".env"
    assert "ports" not in app  # fixed host ports would collide between replicas


def test_postgresql_keeps_its_data_and_reports_ready(compose: dict[str, Any]) -> None:
    """PostgreSQL has a named volume and a pg_isready health check; its password is required, never defaulted."""
    postgres = compose["services"]["postgres"]
    assert "postgres-data:/var/lib/postgresql/data" in postgres["volumes"]
    assert "pg_isready" in postgres["healthcheck"]["test"]
    assert postgres["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")


def test_compose_file_is_valid_for_docker_compose(tmp_path: Any) -> None:
    """`docker-compose config` accepts the file and resolves three replicas when APP_REPLICAS=3."""
    tool = shutil.which("docker-compose")
    if tool is None:
        if os.environ.get("REQUIRE_CONTAINER") == "1":
            pytest.fail("docker-compose is not installed; scripts/install-test-services.sh installs it")
        pytest.skip("docker-compose is not installed (scripts/install-test-services.sh installs it as root)")
    (tmp_path / ".env").write_text("SLACK_BOT_TOKEN=xoxb-1\n")
    env = {**os.environ, "POSTGRES_PASSWORD": "pw", "APP_REPLICAS": "3"}
    resolved = subprocess.run([tool, "--project-directory", str(tmp_path), "-f", str(COMPOSE), "config"],
                              env=env, capture_output=True, text=True, timeout=60)
    assert resolved.returncode == 0, resolved.stderr
    config = yaml.safe_load(resolved.stdout)
    assert config["services"]["app"]["deploy"]["replicas"] == 3
    assert config["services"]["app"]["environment"]["DATABASE_URL"] == "postgresql://sync:pw@postgres:5432/sync"
