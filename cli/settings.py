"""The settings each command reads, read and checked together so that one answer names every problem: the
environment's, the Genesys region's and the settings file's tables, each turned into the value its package takes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from config import (
    ConfigError,
    GenesysSettings,
    ServiceSettings,
    SettingProblem,
    Settings,
    SettingsProblems,
    SettingsTables,
    read_database_url,
    read_genesys_settings,
    read_service_settings,
    read_settings,
    read_settings_file,
)
from genesys import GenesysEndpoints, VoiceSafeLimits, endpoints_for
from profiles import AttributeMapping, FlattenLimits
from sync import AttributeRules, SyncTarget

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CommandSettings:
    """Everything a command may need, read and checked together so one answer names every problem."""

    settings: Settings
    service: ServiceSettings | None = None
    genesys: GenesysSettings | None = None
    endpoints: GenesysEndpoints | None = None
    rules: AttributeRules | None = None
    target: SyncTarget = field(default_factory=SyncTarget)
    """Where attributes go (SYNC_TARGET, CUSTOMER_KEY_PREFIX)."""
    database_url: str | None = None
    """DATABASE_URL for a command that reads only the store (`serve` has it in `service`)."""


def read_command_settings(environ: Mapping[str, str], *, service: bool = False, genesys: bool = False,
                          rules_file: Path | None = None, rules: bool = False,
                          database: bool = False) -> CommandSettings:
    """Read the settings a command needs; every missing or invalid one is named in a single ConfigError."""
    problems = SettingsProblems()
    settings = problems.attempt(read_settings, environ)
    service_settings = problems.attempt(read_service_settings, environ) if service else None
    genesys_settings = problems.attempt(read_genesys_settings, environ) if genesys else None
    endpoints = problems.attempt(genesys_endpoints, genesys_settings) if genesys_settings else None
    attribute_rules = None
    if rules and settings is not None:
        tables = problems.attempt(read_settings_file, rules_file or settings.settings_file)
        attribute_rules = problems.attempt(build_rules, tables) if tables is not None else None
    problems.raise_if_any()
    settings = asked_for(settings)
    target = SyncTarget(settings.sync_target, settings.customer_key_prefix)  # type: ignore[arg-type]  # checked
    return CommandSettings(settings, service_settings, genesys_settings, endpoints, attribute_rules, target,
                           read_database_url(environ) if database else None)


def asked_for(value: T | None) -> T:
    """A setting the command asked `read_command_settings` for: present once it returned."""
    if value is None:
        raise AssertionError("read_command_settings was not asked for this setting")
    return value


def genesys_endpoints(settings: GenesysSettings) -> GenesysEndpoints:
    return _checked(lambda: endpoints_for(settings.region, settings.api_url, settings.login_url))


def build_rules(settings_file: SettingsTables) -> AttributeRules:
    """The attribute rules from the settings file's [attributes], [flatten] and [voice_safe] tables."""
    mapping = _from_table(settings_file, "attributes", AttributeMapping.from_table)
    flatten_limits = _from_table(settings_file, "flatten", FlattenLimits.from_table)
    voice_safe = _from_table(settings_file, "voice_safe", VoiceSafeLimits.from_table)
    if voice_safe.max_value_chars > flatten_limits.max_value_chars:
        raise ConfigError(
            f"{settings_file.where('voice_safe', 'max_value_chars')}: {voice_safe.max_value_chars:,} is above"
            f" [flatten] max_value_chars ({flatten_limits.max_value_chars:,}); raise that one too"
        )
    return AttributeRules(mapping, flatten_limits, voice_safe)


def _from_table(settings_file: SettingsTables, name: str, build: Callable[[Mapping[str, Any]], T]) -> T:
    """Build one table's value; its setting errors name the file and the table."""
    return _checked(lambda: build(settings_file.table(name)), lambda setting: settings_file.where(name, setting))


def _checked(build: Callable[[], T], where: Callable[[str], str] = str) -> T:
    """`build()`, where a package's settings error (a ValueError shaped as `SettingProblem`) becomes a ConfigError:
    the one place the packages' settings errors are caught. Any other ValueError is a bug and goes on up."""
    try:
        return build()
    except ValueError as error:
        if not isinstance(error, SettingProblem):
            raise
        raise ConfigError.of(error, where) from None
