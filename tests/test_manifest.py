"""manifest.yml against Slack's published app-manifest JSON schema, offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from referencing import Registry, Resource

from handlers.app import BOT_SCOPES
from handlers.events import SUBSCRIBED_EVENTS
from tests.conftest import REPO

SCHEMAS = REPO.parent / "shared" / "reference" / "slack-manifest-schema"
PUBLIC = "https://raw.githubusercontent.com/slackapi/manifest-schema/v0.5.0/schemas/"


def load_schema(path: Path) -> Any:
    if not path.is_file():
        pytest.fail(f"{path} is missing: clone the repository with ../shared beside it")
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return yaml.safe_load((REPO / "manifest.yml").read_text())


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    """Slack's top-level schema, its versioned files mapped from their public URLs to the local copies."""
    registry = Registry().with_resources(
        (PUBLIC + name, Resource.from_contents(load_schema(SCHEMAS / "schemas" / name)))
        for name in ("manifest.schema.1.0.0.json", "manifest.schema.2.0.0.json")
    )
    return jsonschema.Draft7Validator(load_schema(SCHEMAS / "manifest.schema.json"), registry=registry)


def test_manifest_is_valid_against_slacks_schema(manifest: dict[str, Any],
                                                 validator: jsonschema.Draft7Validator) -> None:
    """The manifest validates against the schema Slack publishes."""
    errors = sorted(validator.iter_errors(manifest), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_the_schema_check_catches_a_broken_manifest(manifest: dict[str, Any],
                                                   validator: jsonschema.Draft7Validator) -> None:
    """The same check refuses a manifest with an over-long command name, so the test above can fail."""
    broken = {**manifest, "features": {**manifest["features"],
                                       "slash_commands": [{"command": "/" + "x" * 40, "description": "d"}]}}
    assert list(validator.iter_errors(broken))


def test_scopes_are_exactly_what_the_app_uses(manifest: dict[str, Any]) -> None:
    """Bot scopes: commands, users:read, users:read.email, users.profile:read, nothing unused; OAuth asks the same."""
    assert manifest["oauth_config"]["scopes"]["bot"] == [
        "commands", "users:read", "users:read.email", "users.profile:read",
    ]
    assert list(BOT_SCOPES) == manifest["oauth_config"]["scopes"]["bot"]


def test_events_and_command(manifest: dict[str, Any]) -> None:
    """user_change, team_join, the uninstall events and app_home_opened are subscribed, each with a listener (Bolt
    answers 404 to an event without one); /genesys-sync has a usage hint; Socket Mode is on."""
    assert manifest["settings"]["event_subscriptions"]["bot_events"] == [
        "user_change", "team_join", "app_uninstalled", "tokens_revoked", "app_home_opened"]
    assert tuple(manifest["settings"]["event_subscriptions"]["bot_events"]) == SUBSCRIBED_EVENTS
    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == "/genesys-sync"
    assert command["usage_hint"]
    assert command["should_escape"] is True
    assert manifest["settings"]["socket_mode_enabled"] is True


def test_the_home_tab_and_interactivity_are_on(manifest: dict[str, Any]) -> None:
    """The App Home's Home tab is enabled and interactivity is on, for its buttons and checkboxes."""
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
