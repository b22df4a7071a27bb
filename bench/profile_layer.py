"""Benchmark: the whole profile layer (flatten + mapping + voice-safe check) against flatten_json and flatten-dict.

    .venv/bin/pip install -r bench/requirements.txt
    .venv/bin/python bench/profile_layer.py [--profiles 2000] [--repeats 7]

All four run over the same realistic Slack user objects (the shapes of the real payloads in
../shared/fixtures/slack, with 8 custom fields each) in one process; the figure is the median of the
repeats, the passes interleaved (the machine may be shared: a median shrugs off passes that other work slowed).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import flatten_dict
import flatten_json

from profiles import SENSITIVE_GROUPS, AttributeMapping, FieldLabels, SlackUser
from sync import AttributeRules, desired_attributes

TITLES = ["Support Engineer", "Team Lead — Billing", "Agent", "Supervisor", "Workforce Analyst", "QA Specialist"]
DEPARTMENTS = ["Customer Care", "Billing", "Technical Support", "Sales", "Retention"]
FIELD_IDS = [f"Xf0{n:08d}" for n in range(8)]
FIELD_LABELS = ["Department", "Location", "Team", "Manager", "Skills", "Languages", "Start date", "Desk"]


def realistic_user(rng: random.Random, index: int) -> dict[str, Any]:
    """A user_change-shaped user object with a populated profile and custom fields."""
    name = f"agent{index}"
    fields = {
        field_id: {"value": rng.choice(DEPARTMENTS) if n != 3 else f"U{rng.randrange(10**8):08d}",
                   "alt": "Grace Hopper" if n == 3 else ""}
        for n, field_id in enumerate(FIELD_IDS)
    }
    image = f"https://avatars.slack-edge.com/2024-01-01/{rng.randrange(10**12)}_{name}"
    return {
        "id": f"U{index:08d}", "team_id": "T024BE7LD", "name": name, "deleted": False, "color": "4bbe2e",
        "real_name": f"Agent {index}", "tz": "Europe/Dublin", "tz_label": "Greenwich Mean Time", "tz_offset": 0,
        "profile": {
            "title": rng.choice(TITLES), "phone": "+353 1 555 0100", "skype": "", "real_name": f"Agent {index}",
            "real_name_normalized": f"Agent {index}", "display_name": name, "display_name_normalized": name,
            "fields": fields, "status_text": "On a call", "status_emoji": ":telephone_receiver:",
            "status_emoji_display_info": [{"emoji_name": "telephone_receiver", "display_alias": "phone",
                                           "display_url": "https://a.slack-edge.com/x.png"}],
            "status_expiration": 0, "avatar_hash": "g12345678910", "email": f"{name}@example.com",
            "pronouns": "they/them", "first_name": "Agent", "last_name": str(index),
            **{f"image_{size}": f"{image}_{size}.png" for size in (24, 32, 48, 72, 192, 512)},
            "status_text_canonical": "", "team": "T024BE7LD", "huddle_state": "default_unset",
            "huddle_state_expiration_ts": 0,
        },
        "is_admin": False, "is_owner": False, "is_primary_owner": False, "is_restricted": False,
        "is_ultra_restricted": False, "is_bot": False, "is_app_user": False, "updated": 1732540800 + index,
        "is_email_confirmed": True, "who_can_share_contact_card": "EVERYONE", "locale": "en-IE",
        "enterprise_user": {"id": f"W{index:08d}", "enterprise_id": "E0001", "enterprise_name": "Example",
                            "is_admin": False, "is_owner": False, "teams": ["T024BE7LD", "T024BE7LE"]},
    }


def measure(contenders: dict[str, Callable[[dict[str, Any]], object]], users: list[dict[str, Any]],
            repeats: int) -> dict[str, float]:
    """Median seconds per pass over all users for each contender; passes are interleaved so that load from
    elsewhere on the machine hits every contender alike."""
    times: dict[str, list[float]] = {label: [] for label in contenders}
    for _ in range(repeats):
        for label, work in contenders.items():
            start = time.perf_counter()
            for user in users:
                work(user)
            times[label].append(time.perf_counter() - start)
    medians = {label: statistics.median(samples) for label, samples in times.items()}
    for label, median in medians.items():
        print(f"{label:<44} {median * 1e6 / len(users):8.1f} µs/profile   {len(users) / median:9,.0f} profiles/s")
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=7)
    arguments = parser.parse_args()
    rng = random.Random(20261125)
    users = [json.loads(json.dumps(realistic_user(rng, i))) for i in range(arguments.profiles)]
    definitions = [{"id": field_id, "label": label, "ordering": n}
                   for n, (field_id, label) in enumerate(zip(FIELD_IDS, FIELD_LABELS, strict=True))]
    labels = FieldLabels.from_team_profile({"fields": definitions})
    rules = AttributeRules()
    # Every source key written: the layer's worst case, since nothing is skipped before it is converted.
    every_key = AttributeRules(mapping=AttributeMapping(include=("*",), opt_in=frozenset(SENSITIVE_GROUPS)))
    sample = desired_attributes(SlackUser(users[0], "user object"), labels, rules)
    assert sample.ok, sample.report.problems
    sample_all = desired_attributes(SlackUser(users[0], "user object"), labels, every_key)
    assert sample_all.ok, sample_all.report.problems
    print(f"Python {platform.python_version()} on {platform.machine()}; {len(users):,} profiles, "
          f"{len(json.dumps(users[0])):,} bytes each as JSON; {len(sample.report.attributes)} attributes written "
          f"each by default, {len(sample_all.report.attributes)} with every key included; median of "
          f"{arguments.repeats} interleaved passes")

    def whole_layer(user: dict[str, Any]) -> object:
        return desired_attributes(SlackUser(user, "user object"), labels, rules).report.sendable()

    def whole_layer_every_key(user: dict[str, Any]) -> object:
        return desired_attributes(SlackUser(user, "user object"), labels, every_key).report.sendable()

    ours, all_keys = "profile layer (flatten + map + voice-safe)", "profile layer, every source key included"
    reference, other = "flatten_json.flatten (flatten only)", "flatten_dict.flatten (flatten only)"
    medians = measure({
        ours: whole_layer,
        all_keys: whole_layer_every_key,
        reference: lambda user: flatten_json.flatten(user, "."),
        other: lambda user: flatten_dict.flatten(user, reducer="dot"),
    }, users, arguments.repeats)
    print(f"\nwhole layer vs flatten_json alone: {medians[reference] / medians[ours]:.2f}x as fast"
          f" (target: >= 1.00x); vs flatten-dict alone: {medians[other] / medians[ours]:.2f}x")
    print(f"every source key included vs flatten_json alone: {medians[reference] / medians[all_keys]:.2f}x as fast")


if __name__ == "__main__":
    main()
