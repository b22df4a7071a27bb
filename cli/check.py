"""`python app.py check`: can this OAuth client do everything the app needs in the configured org?

Prints one line per probe and exits 0 when every call is permitted, 1 when something is missing.
"""

from __future__ import annotations

from typing import IO

from genesys import GenesysClient, GenesysEndpoints

EXIT_OK, EXIT_MISSING = 0, 1


def check(client: GenesysClient, endpoints: GenesysEndpoints, *, out: IO[str]) -> int:
    """Run the probes and print the report; returns the exit status."""
    print(f"Genesys Cloud API {endpoints.api_url} (tokens from {endpoints.login_url})", file=out)
    report = client.check_permissions()
    print(str(report), file=out)
    if report.ok:
        print("All checks passed: the app can find users, see live conversations and write attributes.", file=out)
        return EXIT_OK
    missing = ", ".join(report.missing)
    advice = (f"Add {missing} to the OAuth client's role (Admin > Roles/Permissions), then run check again."
              if missing else "Fix the credentials or region in .env, then run check again.")
    print(f"Not ready: {advice} The README lists each permission and why the app needs it.", file=out)
    return EXIT_MISSING
