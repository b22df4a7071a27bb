"""The command line: `python app.py [COMMAND] …`, one subcommand per module of cli/ plus `serve`, and `help`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from cli import check as check_command
from cli import dead_letters as dead_letters_command


def parse_arguments(argv: Sequence[str]) -> argparse.Namespace:
    """The parsed command line; argparse itself answers --help and usage errors (exit 0 and 2)."""
    parser = argparse.ArgumentParser(
        prog="python app.py", description="Keep Slack profiles on Genesys Cloud participant attributes."
    )
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND")
    show = subcommands.add_parser(
        "preview", help="show the attributes a Slack user object would become (writes nothing)",
        description="Read a Slack user object, event envelope, users.info or users.profile.get response and print "
        "the participant attributes it would become. Exit 0: valid; 1: validation problems; 2: unusable input.",
    )
    write = subcommands.add_parser(
        "push", help="write a Slack user object's attributes to a Genesys user's live participants now",
        description="Flatten and validate the Slack user object at PATH (as preview does) and write it to the live "
        "participants of the Genesys user with that e-mail. Exit 0: written or nothing live; 1: not voice-safe or "
        "rejected by Genesys; 2: unusable input or no such user; 3: Genesys unusable (credentials, permissions, "
        "outage).",
    )
    for command in (show, write):
        command.add_argument("path", metavar="PATH", help="JSON file, or - for standard input")
        command.add_argument(
            "--team-profile", metavar="FILE", help="a team.profile.get response, to key custom fields by label"
        )
        command.add_argument("--config", metavar="FILE",
                             help="settings file (default: $SYNC_SETTINGS_FILE, else ./sync.toml)")
    show.add_argument("--json", action="store_true", help="print exactly the JSON attribute object")
    show.add_argument("--verbose", action="store_true", help="list every field the mapping left out, and why")
    write.add_argument("--email", required=True, metavar="ADDRESS", help="the Genesys user's e-mail address")
    subcommands.add_parser(
        "serve", help="run the Slack app and the sync engine (the default)",
        description="Receive Slack events and /genesys-sync (Socket Mode when SLACK_APP_TOKEN is set, else HTTP on "
        "PORT) and keep every live Genesys participant's attributes up to date.",
    )
    probe = subcommands.add_parser(
        "check", help="check the Genesys credentials and role permissions against the configured org",
        description=check_command.DESCRIPTION,
    )
    probe.add_argument("--timeout", type=check_command.seconds, default=check_command.DEFAULT_TIMEOUT_S,
                       metavar="SECONDS", help="how long each request may take to connect (at most 5 s) and answer"
                       f" (default {check_command.DEFAULT_TIMEOUT_S:g})")
    demo_command = subcommands.add_parser(
        "demo", help="run the whole product locally, against local stand-ins of Slack and Genesys Cloud",
        description="Start local stand-ins of Slack and Genesys Cloud on 127.0.0.1 and the real app against them "
        "(`serve`, as a child process with its own settings: no account, .env or SLACK_/GENESYS_ settings needed or "
        "read), put a sample person on a voice call, change her Slack title and show it reach the call. Everything "
        "is removed at the end. Exit 0: it worked; 1: a step failed (the reason and the app's last log lines).",
    )
    demo_command.add_argument("--keep", action="store_true",
                              help="keep it running afterwards (until Ctrl-C), with the URLs and a command that "
                              "changes the sample person's title")
    dead = subcommands.add_parser(
        "dead-letters", help="list the work the sync engine gave up on, or requeue it (retry ID…|--all)",
        description=dead_letters_command.DESCRIPTION,
    )
    dead.add_argument("--limit", type=_positive, default=dead_letters_command.DEFAULT_LIMIT, metavar="N",
                      help=f"list the newest N (default {dead_letters_command.DEFAULT_LIMIT})")
    dead_actions = dead.add_subparsers(dest="action", metavar="ACTION")
    requeue = dead_actions.add_parser(
        "retry", help="put dead letters back on the work queue, due now with a fresh retry budget",
        description="Requeue the dead letters with these ids (as `dead-letters` lists them), or every one with "
        "--all; the running app works on them on its next turn. Exit 0: requeued; 1: an ID is no dead letter (the "
        "others were requeued); 2: no ID and no --all; 3: the database failed.",
    )
    requeue.add_argument("ids", type=_positive, nargs="*", metavar="ID", help="a dead letter's id")
    requeue.add_argument("--all", action="store_true", help="every dead letter")
    subcommands.add_parser("help", help="show this help, or one command's (help COMMAND)")
    arguments = parser.parse_args(_help_as_flag(argv))
    if getattr(arguments, "action", None) == "retry" and bool(arguments.ids) == arguments.all:
        requeue.error("name the dead letters to requeue by ID, or --all for every one (not both)")
    return arguments


def _positive(text: str) -> int:
    """A whole number from 1 (a dead letter's id, a limit); argparse names the argument when this refuses."""
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1")
    return int(text)


def _help_as_flag(argv: Sequence[str]) -> list[str]:
    """`help` and `help COMMAND` become `--help` and `COMMAND --help`, so argparse prints the very same text."""
    if list(argv[:1]) == ["help"]:
        return [*argv[1:2], "--help"]
    return list(argv)
