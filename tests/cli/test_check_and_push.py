"""`python app.py check` and `python app.py push`, run as real processes against the local Genesys Cloud."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
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


@dataclass(frozen=True)
class CheckCase:
    """One way `check` can end: where its hosts point, what it must print and how it must exit."""

    api: str
    """A key of the `hosts` fixture, or a literal URL."""
    login: str | None
    """Same; None leaves GENESYS_LOGIN_URL unset (derived from the API URL)."""
    exit_code: int
    says: tuple[str, ...]
    summary: str
    secret: str = SECRET
    args: tuple[str, ...] = ()


CHECK_CASES = {
    "refused": CheckCase("refused", "refused", 1, ("FAIL token: 127.0.0.1:{refused_port} refused the connection",
                                                   "gave up after 4 attempts over"),
                         "0 checks passed, 1 failed, 4 could not be verified"),
    "timeout": CheckCase("silent", "silent", 1, ("FAIL token: 127.0.0.1:{silent_port} accepted the connection but sent"
                                                 " no answer within 0.3 s (read timeout)",
                                                 "gave up after 4 attempts over"),
                         "0 checks passed, 1 failed, 4 could not be verified", args=("--timeout", "0.3")),
    "tls": CheckCase("tls", "tls", 1, ("FAIL token: the TLS handshake with 127.0.0.1:{fake_port} failed",
                                       "not retried, since retrying cannot fix this"),
                     "0 checks passed, 1 failed, 4 could not be verified"),
    "dns": CheckCase("https://api.genesys.invalid", None, 1,
                     ("FAIL token: the host name login.genesys.invalid does not resolve (DNS lookup failed",
                      "not retried, since retrying cannot fix this"),
                     "0 checks passed, 1 failed, 4 could not be verified"),
    "wrong secret": CheckCase("fake", "fake", 1, ("FAIL token: the login host 127.0.0.1:{fake_port} (GENESYS_LOGIN_URL)"
                                                  " refused OAuth client 'cli-client' (401 invalid_client): the client"
                                                  " id or secret is wrong",),
                              "0 checks passed, 1 failed, 4 could not be verified", secret="wrong-secret-value"),
    "API host refused": CheckCase("refused", "fake", 1, ("ok   token: obtained from",
                                                         "FAIL users search [directory:user:view]: 127.0.0.1:"
                                                         "{refused_port} refused the connection",
                                                         "could not be verified: the users search failed first"),
                                  "1 check passed, 1 failed, 3 could not be verified"),
}


@pytest.fixture
def hosts(genesys: FakeGenesysCloud) -> Iterator[dict[str, str]]:
    """URLs for each case: the fake, https:// to the (plain HTTP) fake, a port nobody listens on, and a socket
    that accepts connections but never answers."""
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        refused_port = free.getsockname()[1]
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # the kernel completes the handshake; nothing ever reads or answers
        silent_port = silent.getsockname()[1]
        yield {
            "fake": genesys.base_url, "tls": genesys.base_url.replace("http://", "https://"),
            "refused": f"http://127.0.0.1:{refused_port}", "silent": f"http://127.0.0.1:{silent_port}",
            "fake_port": genesys.base_url.rsplit(":", 1)[1], "refused_port": str(refused_port),
            "silent_port": str(silent_port),
        }


def run_check(tmp_path: Path, api: str, login: str | None, *args: str,
              secret: str = SECRET) -> subprocess.CompletedProcess[str]:
    """`python app.py check` as an operator runs it: its own directory (no .env), no outer SLACK_/GENESYS_ settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GENESYS_", "SYNC_", "SLACK_"))}
    env.update({"GENESYS_API_URL": api, "GENESYS_CLIENT_ID": "cli-client", "GENESYS_CLIENT_SECRET": secret})
    if login is not None:
        env["GENESYS_LOGIN_URL"] = login
    return subprocess.run([sys.executable, str(REPO / "app.py"), "check", *args], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=60, check=False)


@pytest.mark.parametrize("case", CHECK_CASES.values(), ids=CHECK_CASES.keys())
def test_check_names_the_real_cause(case: CheckCase, hosts: dict[str, str], tmp_path: Path) -> None:
    """Each failure is named (refused, timeout, TLS, DNS, 401) with its host, counted, and never advises adding
    permissions, the status page of a local host, a retry later, or shows the secret."""
    result = run_check(tmp_path, hosts.get(case.api, case.api),
                       None if case.login is None else hosts.get(case.login, case.login),
                       *case.args, secret=case.secret)
    output = result.stdout + result.stderr
    assert result.returncode == case.exit_code, output
    for phrase in case.says:
        assert phrase.format(**hosts) in result.stdout, output
    assert f"Not ready ({case.summary}). Fix the cause named above" in result.stdout, output
    assert "All checks passed" not in output
    assert "Add " not in result.stdout
    assert "role lacks" not in result.stdout
    assert "status.mypurecloud.com" not in output
    assert "retried later" not in result.stdout
    assert "Traceback" not in output
    assert case.secret not in output


@pytest.mark.parametrize(
    "permission", ["directory:user:view", "analytics:conversationDetail:view", "conversation:communication:view"]
)
def test_check_names_a_refused_permission(genesys: FakeGenesysCloud, tmp_path: Path, permission: str) -> None:
    """A revoked role permission fails the checks that need it (the lookup and the notifications share one) and is
    the only permission advised; check exits 1."""
    genesys.start_conversation(genesys.add_user("agent@example.com"))
    genesys.revoke_permission(permission)
    result = run_check(tmp_path, genesys.base_url, genesys.base_url)
    assert result.returncode == 1, result.stdout + result.stderr
    failed, *notifications = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert f"(403 missing.any.permissions): the OAuth client's role lacks {permission}" in failed \
        or f"(403 missing.permissions): the OAuth client's role lacks {permission}" in failed
    if permission == "conversation:communication:view":
        (rejected,) = notifications
        assert rejected.startswith("FAIL conversation notifications")
        assert f"the OAuth client's role lacks {permission}" in rejected
    else:
        assert notifications == []
    (advice,) = [line for line in result.stdout.splitlines() if line.startswith("Not ready")]
    assert f"Add {permission}" in advice
    others = {"directory:user:view", "conversation:communication:view"} - {permission}
    assert not any(other in advice for other in others)
    assert "status.mypurecloud.com" not in result.stdout
    assert SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize(("on_a_call", "status", "present", "absent"), [
    (True, 0, ("ok   users search [directory:user:view]: permitted", "5 checks passed: the app can find users"),
     ("FAIL", "????")),
    (False, 3, ("???? conversation lookup [conversation:communication:view]: could not be verified",
                "Not fully verified (4 checks passed, 1 could not be verified)."), ("All checks passed", "Add ")),
])
def test_check_passes_only_what_it_could_verify(genesys: FakeGenesysCloud, tmp_path: Path, on_a_call: bool,
                                               status: int, present: tuple[str, ...], absent: tuple[str, ...]) -> None:
    """Every permission and a live conversation: all pass, exit 0; nothing to read: unverified, exit 3."""
    if on_a_call:
        genesys.start_conversation(genesys.add_user("agent@example.com"))
    result = run_check(tmp_path, genesys.base_url, genesys.base_url)
    assert result.returncode == status, result.stdout + result.stderr
    assert all(line in result.stdout for line in present), result.stdout
    assert not any(line in result.stdout for line in absent), result.stdout
    assert SECRET not in result.stdout + result.stderr


def test_push_writes_to_every_live_participant(genesys: FakeGenesysCloud) -> None:
    """push writes the validated attributes to each live participant of the user and says where."""
    user_id = genesys.add_user("ada@example.com", name="Ada")
    call = genesys.start_conversation(user_id, media_type="voice")
    chat = genesys.start_conversation(user_id, media_type="message")
    result = run_app(genesys, "push", "--email", "ADA@example.com", "--team-profile", TEAM, USER)
    assert result.returncode == 0, result.stdout + result.stderr
    for participant in (call, chat):
        written = genesys.attributes(participant.conversation_id, participant.participant_id)
        assert written["slack.title"] == "Senior Support Engineer"
        assert written["slack.custom.Department"] == "Customer Care"
        assert f"conversation {participant.conversation_id} participant {participant.participant_id}" in result.stdout
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
