"""Benchmark: Genesys requests per attribute write, steady state (token cached, the user known).

    .venv/bin/python bench/genesys_requests.py [--writes 200]

Runs the real GenesysClient against the local Genesys Cloud (localdev/genesys_cloud.py) over HTTP on
127.0.0.1, with one user on one live voice call, and counts the requests the fake received:
- "targeted write" is what a `/genesys-sync` for one person does: the Genesys user from the store's link (a user
  search when the link is stale: `push` searches once per run), find their live participants (analytics query +
  conversation read), PATCH;
- "write only" is the PATCH alone, as the sync engine does when its org-wide poll already knows the participant.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from genesys import ClientCredentials, GenesysClient, GenesysEndpoints, VoiceSafeLimits, check_attributes
from localdev.genesys_cloud import FakeGenesysCloud


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writes", type=int, default=200)
    arguments = parser.parse_args()
    attributes = check_attributes({"slack.title": "Support Engineer", "slack.timezone": "Europe/Dublin"},
                                  VoiceSafeLimits()).sendable()
    with FakeGenesysCloud(requests_per_minute=100_000) as fake:
        user_id = fake.add_user("agent@example.com")
        fake.start_conversation(user_id, media_type="voice")
        endpoints = GenesysEndpoints(fake.base_url, fake.base_url)
        with GenesysClient(ClientCredentials("fake-client-id", "fake-client-secret"), endpoints,
                           requests_per_minute=100_000) as client:
            user = client.find_user_by_email("agent@example.com")  # warm: the token; the engine stores the link
            assert user is not None
            before = fake.request_count()
            start = time.perf_counter()
            for _ in range(arguments.writes):
                for participant in client.live_participants(user.id):
                    client.write_attributes(participant.conversation_id, participant.participant_id, attributes)
            targeted = (fake.request_count() - before) / arguments.writes
            targeted_ms = (time.perf_counter() - start) * 1000 / arguments.writes
            participant = client.live_participants(user_id)[0]
            before = fake.request_count()
            start = time.perf_counter()
            for _ in range(arguments.writes):
                client.write_attributes(participant.conversation_id, participant.participant_id, attributes)
            write_only = (fake.request_count() - before) / arguments.writes
            write_ms = (time.perf_counter() - start) * 1000 / arguments.writes
    print(f"{arguments.writes} writes, one user, one live voice call, token cached, the user known")
    print(f"targeted write (live participants + PATCH):               "
          f"{targeted:.2f} requests/write, {targeted_ms:.1f} ms")
    print(f"write only (participant known from the org poll):         "
          f"{write_only:.2f} requests/write, {write_ms:.1f} ms")
    print(f"target: at most 3 requests per write -> {'met' if targeted <= 3 else 'NOT met'}")


if __name__ == "__main__":
    main()
