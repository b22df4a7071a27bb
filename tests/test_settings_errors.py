"""Every package's settings error is caught once, at the edge, through its (setting, problem) shape."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.settings import build_rules, genesys_endpoints
from config import ConfigError, GenesysSettings, SettingProblem, SettingsTables
from genesys import GenesysSettingsError, VoiceSafeSettingsError
from profiles import FlattenSettingsError, MappingSettingsError, ProfileSettingsError


@pytest.mark.parametrize("error", [
    MappingSettingsError("include", "must not be empty"),
    FlattenSettingsError("max_depth", "must be a whole number"),
    VoiceSafeSettingsError("max_value_chars", "must be a whole number"),
    GenesysSettingsError("GENESYS_REGION", "is not set"),
])
def test_each_package_error_has_the_one_shape(error: ValueError) -> None:
    """Each package's settings error is a ValueError with `setting` and `problem`, shown as "setting: problem"."""
    assert isinstance(error, SettingProblem)
    assert str(error) == f"{error.setting}: {error.problem}"


def test_the_profile_errors_are_one_class() -> None:
    """[attributes] and [flatten] raise the profile layer's one settings error under their own names."""
    assert issubclass(MappingSettingsError, ProfileSettingsError)
    assert issubclass(FlattenSettingsError, ProfileSettingsError)


@pytest.mark.parametrize(("table", "values", "line"), [
    ("attributes", {"custom_fields": "name"}, "sync.toml: [attributes] custom_fields: "),
    ("flatten", {"max_depth": 0}, "sync.toml: [flatten] max_depth: "),
    ("voice_safe", {"long_values": "drop"}, "sync.toml: [voice_safe] long_values: "),
    ("voice_safe", {"colour": 1}, "sync.toml: [voice_safe] colour: is not a voice_safe setting"),
])
def test_a_table_error_names_the_file_and_the_table(table: str, values: dict[str, object], line: str) -> None:
    """A bad setting in any table becomes one ConfigError line naming file, table and setting."""
    with pytest.raises(ConfigError) as caught:
        build_rules(SettingsTables(Path("sync.toml"), {table: values}))
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(line)


def test_a_genesys_setting_error_names_the_environment_setting() -> None:
    """GENESYS_REGION's error becomes the ConfigError line its message already is."""
    with pytest.raises(ConfigError) as caught:
        genesys_endpoints(GenesysSettings("nowhere.example", None, None, "id", "secret"))
    assert caught.value.problems[0].startswith("GENESYS_REGION: 'nowhere.example' is not a Genesys Cloud region")
