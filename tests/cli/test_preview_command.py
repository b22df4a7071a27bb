"""`python app.py preview`, run as a real process: output, exit status and error messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, REPO, SHARED_SLACK_FIXTURES

USER = str(EXAMPLES / "slack-user.json")
TEAM = str(EXAMPLES / "team-profile.json")


def run_preview(*args: str, stdin: bytes = b"", cwd: Path | None = None,
                settings: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("SYNC_SETTINGS_FILE", "LOG_LEVEL", "SYNC_TARGET", "CUSTOMER_KEY_PREFIX")} | (settings or {})
    completed = subprocess.run(
        [sys.executable, str(REPO / "app.py"), "preview", *args],
        input=stdin, capture_output=True, cwd=cwd or REPO, env=env, timeout=60, check=False,
    )
    return subprocess.CompletedProcess(completed.args, completed.returncode, completed.stdout.decode(),
                                       completed.stderr.decode())


def test_table_shows_the_attributes_with_labels() -> None:
    """The readable table lists each attribute and its value, and exits 0."""
    result = run_preview("--team-profile", TEAM, USER)
    assert result.returncode == 0, result.stderr
    assert "slack.custom.Department    Customer Care" in result.stdout
    assert "slack.title                Senior Support Engineer" in result.stdout
    assert "Voice-safe check: passed" in result.stdout
    assert "profile.email" in result.stdout  # named as left out, not written
    assert "ada@example.com" not in result.stdout


@pytest.mark.parametrize(("settings", "said"), [
    ({}, "Written to: each person's own participant of their live calls (SYNC_TARGET=agent)"),
    ({"SYNC_TARGET": "customer"}, "keys on the customer's participant: slack.agent.custom.Department"),
    ({"SYNC_TARGET": "both", "CUSTOMER_KEY_PREFIX": "agent_"}, "keys on the customer's participant: agent_custom."),
])
def test_the_table_says_where_the_attributes_go(settings: dict[str, str], said: str) -> None:
    """SYNC_TARGET and CUSTOMER_KEY_PREFIX: the preview names the participant and the customer's keys."""
    result = run_preview("--team-profile", TEAM, USER, settings=settings)
    assert result.returncode == 0, result.stderr
    assert said in result.stdout


def test_an_unknown_sync_target_is_named() -> None:
    """SYNC_TARGET=agents is a settings problem naming the setting and its three values; exit 2."""
    result = run_preview(USER, settings={"SYNC_TARGET": "agents"})
    assert result.returncode == 2
    assert "SYNC_TARGET: 'agents' is not one of agent, customer, both" in result.stderr


def test_json_prints_exactly_the_attribute_object() -> None:
    """--json prints the attribute object alone, parseable, equal to what would be written."""
    result = run_preview("--json", "--team-profile", TEAM, USER)
    assert result.returncode == 0
    attributes = json.loads(result.stdout)
    assert attributes["slack.custom.Team"] == "Tier 2 — Billing"
    assert all(isinstance(v, str) for v in attributes.values())
    assert list(attributes) == sorted(attributes)


def test_standard_input_is_read_with_dash() -> None:
    """PATH - reads standard input."""
    fixture = (SHARED_SLACK_FIXTURES / "user_change.slack-docs-example.event.json").read_bytes()
    result = run_preview("--json", "-", stdin=fixture)
    assert result.returncode == 0
    assert json.loads(result.stdout)["slack.user_id"] == "U1234567"


def test_without_labels_the_table_says_how_to_get_them() -> None:
    """Custom fields keyed by id come with a hint to pass --team-profile."""
    result = run_preview(USER)
    assert "slack.custom.Xf0DEPT0001" in result.stdout
    assert "pass --team-profile" in result.stdout


@pytest.mark.parametrize(("voice_safe", "status", "fragments"), [
    ('max_value_chars = 10\nlong_values = "reject"\n', 1,
     ("slack.title", "[value_length]", "nothing would be written")),
    ("max_value_chars = 10\n", 0, ("Truncated: slack.title: value cut from 23 to 10 characters",)),
])
def test_an_over_long_title_is_listed_by_its_policy(tmp_path: Path, voice_safe: str, status: int,
                                                    fragments: tuple[str, ...]) -> None:
    """Rejected, an over-long title exits 1 naming key and rule; truncated, it exits 0 and the cut is listed."""
    config = tmp_path / "sync.toml"
    config.write_text(f"[voice_safe]\n{voice_safe}")
    result = run_preview("--config", str(config), USER)
    assert result.returncode == status
    for fragment in fragments:
        assert fragment in result.stdout


def test_json_mode_reports_problems_on_standard_error(tmp_path: Path) -> None:
    """In --json mode the problems go to standard error and the exit status is 1."""
    config = tmp_path / "sync.toml"
    config.write_text('[voice_safe]\nmax_attributes = 2\n')
    result = run_preview("--json", "--config", str(config), USER)
    assert result.returncode == 1
    assert "[attribute_count]" in result.stderr
    assert json.loads(result.stdout)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "empty"),
        (b"{not json", "not JSON: Expecting property name enclosed in double quotes at line 1, column 2"),
        (b"\xff\xfe\x00", "not UTF-8 text"),
        (b"[1, 2]", "expected a JSON object, found a list"),
        (b'{"ok": false, "error": "user_not_found"}', "Slack error response ('user_not_found')"),
        (b'{"type": "app_mention", "user": "U1"}', "'app_mention' event"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_unusable_input_exits_2_with_one_line(tmp_path: Path, content: bytes, fragment: str) -> None:
    """Unusable input exits 2 with a one-line explanation naming the file, and no traceback."""
    path = tmp_path / "input.json"
    path.write_bytes(content)
    result = run_preview(str(path))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert str(path) in result.stderr
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_file_exits_2(tmp_path: Path) -> None:
    """A path that does not exist is named with the reason."""
    result = run_preview(str(tmp_path / "nope.json"))
    assert result.returncode == 2
    assert "nope.json: cannot be read (No such file or directory)" in result.stderr


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "cannot be read (No such file or directory)"),
        (b"", "empty; expected a team.profile.get response"),
        (b"{not json", "not JSON"),
        (b'{"ok": true}', "not a team.profile.get response"),
    ],
)
def test_a_bad_team_profile_is_named_as_the_team_profile(tmp_path: Path, content: bytes | None, fragment: str
                                                         ) -> None:
    """An unreadable or wrong --team-profile file exits 2 naming it as the team profile file, not as the input."""
    team = tmp_path / "team.json"
    if content is not None:
        team.write_bytes(content)
    result = run_preview("--team-profile", str(team), USER)
    assert result.returncode == 2
    assert result.stderr == f"preview: team profile file {team}: {fragment}" + result.stderr.partition(fragment)[2]
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--team-profile", "-", USER), "preview: team profile on standard input: empty; expected a team.profile.get"),
        (("--team-profile", "-", "-"), "preview: --team-profile - and PATH - both ask for standard input"),
    ],
)
def test_a_team_profile_on_standard_input_is_named_so(args: tuple[str, ...], message: str) -> None:
    """--team-profile - is named as the team profile on standard input, and cannot share it with PATH -."""
    result = run_preview(*args)
    assert result.returncode == 2
    assert result.stderr.startswith(message)


@pytest.mark.parametrize(
    ("toml", "total"),
    [
        ('[attributes]\ninclude = ["profile.title"]\n', 38),
        ('[attributes]\ninclude = ["*"]\nexclude = ["profile.title"]\n', 9),
        ('[attributes]\ninclude = ["*"]\n', 8),
        ('[attributes]\ninclude = ["*"]\n[attributes.opt_in]\nphone = true\n', 6),
    ],
)
def test_left_out_fields_are_named(tmp_path: Path, toml: str, total: int) -> None:
    """The left-out fields are named, at most 8 on one line, then how many more and that --verbose lists all."""
    config = tmp_path / "sync.toml"
    config.write_text(toml)
    result = run_preview("--config", str(config), USER)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    count_line = next(n for n, line in enumerate(lines) if line.startswith("Left out by the mapping:"))
    assert lines[count_line].startswith(f"Left out by the mapping: {total} field(s)")
    listed = lines[count_line + 1]
    names, _, rest = listed.strip().partition(" and ")
    assert len(names.split(", ")) == min(total, 8)
    assert rest == (f"{total - 8} more; --verbose lists all" if total > 8 else "")


def test_verbose_lists_every_left_out_field_with_its_reason() -> None:
    """--verbose lists each left-out field on its own line with why, sensitive ones with how to opt in."""
    result = run_preview("--verbose", "--team-profile", TEAM, USER)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    count_line = next(n for n, line in enumerate(lines) if line.startswith("Left out by the mapping:"))
    total = int(lines[count_line].split(": ")[1].split()[0])
    listed = lines[count_line + 1:count_line + 1 + total]
    assert total > 8
    assert all(line.startswith("  ") and ("not in include" in line or "sensitive" in line) for line in listed)
    assert any(line.split()[0] == "profile.email" and "[attributes.opt_in] email = true" in line for line in listed)
    assert "--verbose lists all" not in result.stdout
    assert "ada@example.com" not in result.stdout


@pytest.mark.parametrize(
    ("toml", "fragment"),
    [
        ("[attributes]\ninclude = 'x'\n", "[attributes] include: must be a list of non-empty strings"),
        ("[attributes]\nprefixx = 'a'\n", "[attributes] prefixx: is not an attributes setting"),
        ("[voice_safe]\nmax_value_chars = 0\n", "[voice_safe] max_value_chars: must be a whole number"),
        ("[voice_safe]\nmax_value_chars = 5000\n", "is above [flatten] max_value_chars"),
        ("[flatten]\nmax_depth = -1\n", "[flatten] max_depth: must be a whole number"),
        ("[mapping]\n", "[mapping] is not a settings table"),
        ("attributes = 3\n", "attributes must be a table"),
        ("[attributes\n", "not valid TOML"),
    ],
)
def test_a_bad_settings_file_names_file_setting_and_problem(tmp_path: Path, toml: str, fragment: str) -> None:
    """An invalid settings file stops the command with the file, the setting and what is wrong."""
    config = tmp_path / "bad.toml"
    config.write_text(toml)
    result = run_preview("--config", str(config), USER)
    assert result.returncode == 2
    assert str(config) in result.stderr
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("toml", "listed"), [
    ("", "slack.custom.Department, slack.custom.Location, slack.custom.Manager, slack.custom.Manager.alt, "
         "slack.custom.Team, slack.pronouns"),
    ('[attributes]\nperson_optional = ["profile.title"]\n', "slack.title"),
])
def test_the_keys_each_person_may_keep_to_themself_are_named(tmp_path: Path, toml: str, listed: str) -> None:
    """The preview names the attribute keys `person_optional` makes optional (default: pronouns, custom fields)."""
    config = tmp_path / "sync.toml"
    config.write_text(toml)
    result = run_preview("--config", str(config), "--team-profile", TEAM, USER)
    assert result.returncode == 0, result.stderr
    assert f"Each person may keep these to themself on the app's Home tab (person_optional): {listed}\n" \
        in result.stdout


def test_the_example_settings_file_equals_the_defaults() -> None:
    """sync.example.toml documents exactly the built-in defaults."""
    with_example = run_preview("--json", "--config", str(REPO / "sync.example.toml"), "--team-profile", TEAM, USER)
    with_defaults = run_preview("--json", "--team-profile", TEAM, USER)
    assert with_example.returncode == with_defaults.returncode == 0
    assert with_example.stdout == with_defaults.stdout


def test_settings_file_from_the_environment_must_exist(tmp_path: Path) -> None:
    """SYNC_SETTINGS_FILE naming a missing file is refused with the setting's name."""
    completed = subprocess.run(
        [sys.executable, str(REPO / "app.py"), "preview", USER], capture_output=True, text=True, cwd=tmp_path,
        env={**os.environ, "SYNC_SETTINGS_FILE": "missing.toml"}, timeout=60, check=False,
    )
    assert completed.returncode == 2
    assert "SYNC_SETTINGS_FILE: 'missing.toml' is not a readable file" in completed.stderr


def test_dotenv_in_the_working_directory_is_read(tmp_path: Path) -> None:
    """A .env file in the working directory supplies settings."""
    (tmp_path / "custom.toml").write_text('[attributes]\nprefix = "sl_"\n')
    (tmp_path / ".env").write_text("SYNC_SETTINGS_FILE=custom.toml\n")
    result = run_preview("--json", USER, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "sl_title" in json.loads(result.stdout)
