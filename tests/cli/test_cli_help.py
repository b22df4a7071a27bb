"""`python app.py help [COMMAND]`, run as a real process: the same text as `--help`, exit 0."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO


def run_app(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REPO / "app.py"), *args], capture_output=True, text=True, cwd=REPO,
                          timeout=60, check=False)


@pytest.mark.parametrize(
    ("asked", "flagged"),
    [
        (("help",), ("--help",)),
        (("help", "preview"), ("preview", "--help")),
        (("help", "push"), ("push", "--help")),
        (("help", "serve"), ("serve", "--help")),
        (("help", "check"), ("check", "--help")),
        (("help", "dead-letters"), ("dead-letters", "--help")),
    ],
)
def test_help_prints_what_the_help_flag_prints(asked: tuple[str, ...], flagged: tuple[str, ...]) -> None:
    """`help [COMMAND]` prints exactly the `--help` text of the app or of that command and exits 0."""
    via_word, via_flag = run_app(*asked), run_app(*flagged)
    assert via_word.returncode == via_flag.returncode == 0, via_word.stderr
    assert via_word.stdout == via_flag.stdout
    assert via_word.stdout.startswith("usage: python app.py")


def test_help_lists_itself_among_the_commands() -> None:
    """The command list names `help`, so the word is discoverable from --help."""
    assert "help COMMAND" in run_app("--help").stdout


def test_help_for_an_unknown_command_is_refused() -> None:
    """`help nonsense` is argparse's usage error (exit 2), naming the valid commands."""
    result = run_app("help", "nonsense")
    assert result.returncode == 2
    assert "invalid choice: 'nonsense'" in result.stderr
