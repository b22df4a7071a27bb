"""slack-genesys-sync: the composition root. Reads settings once, builds everything, runs a command."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from dotenv import load_dotenv

from cli.preview import EXIT_UNUSABLE, PreviewRequest, preview, stdin_bytes
from config import ConfigError, SettingsTables, configure_logging, environment, read_settings, read_settings_file
from genesys import VoiceSafeLimits, VoiceSafeSettingsError
from profiles import AttributeMapping, FlattenLimits, FlattenSettingsError, MappingSettingsError
from sync import AttributeRules


def build_rules(settings_file: SettingsTables) -> AttributeRules:
    """The attribute rules from the settings file's [attributes], [flatten] and [voice_safe] tables."""
    try:
        mapping = AttributeMapping.from_table(settings_file.table("attributes"))
    except MappingSettingsError as error:
        raise ConfigError(f"{settings_file.where('attributes', error.setting)}: {error.problem}") from None
    try:
        flatten_limits = FlattenLimits.from_table(settings_file.table("flatten"))
    except FlattenSettingsError as error:
        raise ConfigError(f"{settings_file.where('flatten', error.setting)}: {error.problem}") from None
    except TypeError as error:
        raise ConfigError(f"{settings_file.where('flatten', '?')}: {error}") from None
    try:
        voice_safe = VoiceSafeLimits.from_table(settings_file.table("voice_safe"))
    except VoiceSafeSettingsError as error:
        raise ConfigError(f"{settings_file.where('voice_safe', error.setting)}: {error.problem}") from None
    if voice_safe.max_value_chars > flatten_limits.max_value_chars:
        raise ConfigError(
            f"{settings_file.where('voice_safe', 'max_value_chars')}: {voice_safe.max_value_chars:,} is above"
            f" [flatten] max_value_chars ({flatten_limits.max_value_chars:,}); raise that one too"
        )
    return AttributeRules(mapping, flatten_limits, voice_safe)


def parse_arguments(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python app.py", description="Keep Slack profiles on Genesys Cloud participant attributes."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    show = commands.add_parser(
        "preview", help="show the attributes a Slack user object would become (writes nothing)",
        description="Read a Slack user object, event envelope, users.info or users.profile.get response and print "
        "the participant attributes it would become. Exit 0: valid; 1: validation problems; 2: unusable input.",
    )
    show.add_argument("path", metavar="PATH", help="JSON file, or - for standard input")
    show.add_argument(
        "--team-profile", metavar="FILE", help="a team.profile.get response, to key custom fields by label"
    )
    show.add_argument("--config", metavar="FILE", help="settings file (default: $SYNC_SETTINGS_FILE, else ./sync.toml)")
    show.add_argument("--json", action="store_true", help="print exactly the JSON attribute object")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    load_dotenv(Path.cwd() / ".env")  # the working directory's .env; real environment variables win
    try:
        settings = read_settings(environment())
        configure_logging(settings.log_level)
        settings_path = settings.settings_file
        if arguments.config is not None:
            settings_path = Path(arguments.config)
        rules = build_rules(read_settings_file(settings_path))
    except ConfigError as error:
        print(f"{arguments.command}: configuration: {error}", file=sys.stderr)
        return EXIT_UNUSABLE
    request = PreviewRequest(arguments.path, arguments.team_profile, arguments.json)
    return preview(request, rules, stdin=stdin_bytes(), out=sys.stdout, err=sys.stderr)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # output piped into `head` and friends: not an error worth a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
