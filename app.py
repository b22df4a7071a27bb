"""slack-genesys-sync: the composition root. Reads settings once, builds everything, runs a command."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from dotenv import load_dotenv

from cli.check import check
from cli.preview import EXIT_UNUSABLE, PreviewRequest, preview, stdin_bytes
from cli.push import PushRequest, push
from config import (
    ConfigError,
    GenesysSettings,
    SettingsTables,
    configure_logging,
    environment,
    read_genesys_settings,
    read_settings,
    read_settings_file,
)
from genesys import (
    ClientCredentials,
    GenesysClient,
    GenesysEndpoints,
    GenesysSettingsError,
    VoiceSafeLimits,
    VoiceSafeSettingsError,
    endpoints_for,
)
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


def genesys_endpoints(settings: GenesysSettings) -> GenesysEndpoints:
    try:
        return endpoints_for(settings.region, settings.api_url, settings.login_url)
    except GenesysSettingsError as error:
        raise ConfigError(str(error)) from None


def build_genesys_client(settings: GenesysSettings, endpoints: GenesysEndpoints) -> GenesysClient:
    """The process's one Genesys client."""
    credentials = ClientCredentials(settings.client_id, settings.client_secret)
    return GenesysClient(credentials, endpoints, requests_per_minute=settings.requests_per_minute)


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
    write = commands.add_parser(
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
    write.add_argument("--email", required=True, metavar="ADDRESS", help="the Genesys user's e-mail address")
    commands.add_parser(
        "check", help="check the Genesys credentials and role permissions against the configured org",
        description="Obtain a token and try each call the app needs. Exit 0: all permitted; 1: something missing.",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    load_dotenv(Path.cwd() / ".env")  # the working directory's .env; real environment variables win
    try:
        settings = read_settings(environment())
        configure_logging(settings.log_level)
        if arguments.command == "check":
            genesys = read_genesys_settings(environment())
            endpoints = genesys_endpoints(genesys)
            with build_genesys_client(genesys, endpoints) as client:
                return check(client, endpoints, out=sys.stdout)
        settings_path = Path(arguments.config) if arguments.config is not None else settings.settings_file
        rules = build_rules(read_settings_file(settings_path))
        if arguments.command == "preview":
            request = PreviewRequest(arguments.path, arguments.team_profile, arguments.json)
            return preview(request, rules, stdin=stdin_bytes(), out=sys.stdout, err=sys.stderr)
        genesys = read_genesys_settings(environment())
        endpoints = genesys_endpoints(genesys)
        with build_genesys_client(genesys, endpoints) as client:
            return push(PushRequest(arguments.path, arguments.email, arguments.team_profile), rules, client,
                        stdin=stdin_bytes(), out=sys.stdout, err=sys.stderr)
    except ConfigError as error:
        print(f"{arguments.command}: configuration: {error}", file=sys.stderr)
        return EXIT_UNUSABLE


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # output piped into `head` and friends: not an error worth a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
