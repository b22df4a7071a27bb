"""`python app.py check` and `python app.py push`, run as real processes against the local Genesys Cloud."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from localdev.genesys_cloud import FakeGenesysCloud
from tests.conftest import EXAMPLES, REPO

USER = str(EXAMPLES / "slack-user.json")
TEAM = str(EXAMPLES / "team-profile.json")
SECRET = "s3cr3t-client-secret-value"


@pytest.fixture
def genesys() -> Iterator[FakeGenesysCloud]:
    with FakeGenesysCloud(client_id="cli-client", client_secret=SECRET) as fake:
        yield fake


def run_app(fake: FakeGenesysCloud, *args: str, secret: str = SECRET, cwd: Path | None = None,
            **env_overrides: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GENESYS_", "SYNC_", "SLACK_"))}
    env.update({"GENESYS_API_URL": fake.base_url, "GENESYS_LOGIN_URL": fake.base_url,
                "GENESYS_CLIENT_ID": "cli-client", "GENESYS_CLIENT_SECRET": secret, **env_overrides})
    return subprocess.run([sys.executable, str(REPO / "app.py"), *args], capture_output=True, text=True,
                          cwd=cwd or REPO, env=env, timeout=60, check=False)


def test_check_passes_with_every_permission(genesys: FakeGenesysCloud) -> None:
    """With the default role every probe passes and check exits 0."""
    result = run_app(genesys, "check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok   users search [directory:user:view]: permitted" in result.stdout
    assert "All checks passed" in result.stdout


@pytest.mark.parametrize(
    "permission", ["directory:user:view", "analytics:conversationDetail:view", "conversation:communication:view"]
)
def test_check_names_a_missing_permission(genesys: FakeGenesysCloud, permission: str) -> None:
    """A revoked role permission is named in the report and check exits 1."""
    genesys.revoke_permission(permission)
    result = run_app(genesys, "check")
    assert result.returncode == 1
    assert "FAIL" in result.stdout
    assert f"Add {permission}" in result.stdout


def test_check_with_wrong_credentials_fails_without_showing_the_secret(genesys: FakeGenesysCloud) -> None:
    """Bad credentials fail the token probe; the secret appears nowhere."""
    result = run_app(genesys, "check", secret="wrong-secret-value")
    assert result.returncode == 1
    assert "FAIL token" in result.stdout
    assert "wrong-secret-value" not in result.stdout + result.stderr


def test_push_writes_to_every_live_participant(genesys: FakeGenesysCloud) -> None:
    """push writes the validated attributes to each live participant of the user and says where."""
    user_id = genesys.add_user("ada@example.com", name="Ada")
    call = genesys.start_conversation(user_id, media_type="voice")
    chat = genesys.start_conversation(user_id, media_type="message")
    result = run_app(genesys, "push", "--email", "ADA@example.com", "--team-profile", TEAM, USER)
    assert result.returncode == 0, result.stdout + result.stderr
    for leg in (call, chat):
        written = genesys.attributes(leg.conversation_id, leg.participant_id)
        assert written["slack.title"] == "Senior Support Engineer"
        assert written["slack.custom.Department"] == "Customer Care"
        assert f"conversation {leg.conversation_id} participant {leg.participant_id}" in result.stdout
    assert "written (contextId" in result.stdout


def test_push_with_nothing_live_writes_nothing(genesys: FakeGenesysCloud) -> None:
    """A user with no live conversation gets nothing and exit 0."""
    user_id = genesys.add_user("ada@example.com")
    ended = genesys.start_conversation(user_id)
    genesys.end_conversation(ended.conversation_id)
    result = run_app(genesys, "push", "--email", "ada@example.com", USER)
    assert result.returncode == 0
    assert "has no live conversation" in result.stdout
    assert genesys.patches == []


def test_push_to_an_unknown_user_exits_2(genesys: FakeGenesysCloud) -> None:
    """An e-mail Genesys does not know is named, exit 2."""
    result = run_app(genesys, "push", "--email", "nobody@example.com", USER)
    assert result.returncode == 2
    assert "no user with the e-mail nobody@example.com" in result.stderr


def test_push_refuses_invalid_attributes_before_any_request(genesys: FakeGenesysCloud, tmp_path: Path) -> None:
    """Attributes that fail voice-safe validation exit 1 and nothing reaches Genesys."""
    config = tmp_path / "sync.toml"
    config.write_text('[voice_safe]\nmax_value_chars = 5\nlong_values = "reject"\n')
    result = run_app(genesys, "push", "--email", "ada@example.com", "--config", str(config), USER)
    assert result.returncode == 1
    assert "[value_length]" in result.stderr
    assert genesys.requests == []


def test_push_with_unusable_input_exits_2(genesys: FakeGenesysCloud, tmp_path: Path) -> None:
    """Unusable input is reported in one line like preview, and Genesys is not called."""
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    result = run_app(genesys, "push", "--email", "ada@example.com", str(bad))
    assert result.returncode == 2
    assert "expected a JSON object, found a list" in result.stderr
    assert genesys.requests == []


def test_push_when_genesys_is_down_exits_3(genesys: FakeGenesysCloud) -> None:
    """An outage beyond the retry budget exits 3 with the reason, no traceback."""
    genesys.add_user("ada@example.com")
    genesys.fail_next(400, count=1, path_prefix="/api/v2/users/search")
    result = run_app(genesys, "push", "--email", "ada@example.com", USER)
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    assert "users search" in result.stderr


def test_missing_genesys_settings_are_named(genesys: FakeGenesysCloud) -> None:
    """Without credentials push stops before any request, naming the settings."""
    result = run_app(genesys, "push", "--email", "ada@example.com", USER, GENESYS_CLIENT_ID="")
    assert result.returncode == 2
    assert "GENESYS_CLIENT_ID: not set" in result.stderr
