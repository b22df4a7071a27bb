"""`python app.py check`: can this OAuth client do everything the app needs in the configured org?

Prints one line per probe, each failure with its real cause (DNS, refused connection, TLS, timeout, refused
credentials, or the permission Genesys refused), then a summary line counting passed, failed and unverified checks.
Exit 0: every check passed; 1: something failed (a permission refused, or Genesys unreachable or refusing the
credentials); 3: nothing failed, but something could not be verified (e.g. no conversation to read).
Configuration errors exit 2 in `cli/main.py`, before any request.
"""

from __future__ import annotations

import argparse
from typing import IO

import httpx

from genesys import GenesysClient, GenesysEndpoints, RetryPolicy
from genesys.permissions import Outcome

EXIT_OK, EXIT_MISSING, EXIT_UNVERIFIED = 0, 1, 3
DEFAULT_TIMEOUT_S = 15.0

RETRY_POLICY = RetryPolicy(max_attempts=4, max_total_s=30.0, retry_unfixable=False)
"""Someone is waiting for the answer: fewer and shorter retries than the service, and none for a host name that does
not exist or a failed TLS handshake, which fail the same way every time."""

DESCRIPTION = (
    "Obtain a token and try each call the app needs. Each failure names its cause: a host name that does not "
    "resolve, a refused connection, a TLS failure, a timeout, refused credentials, or the permission Genesys refused. "
    f"Exit {EXIT_OK}: all permitted; {EXIT_MISSING}: something missing or failed; 2: a setting is missing or invalid "
    f"(nothing sent); {EXIT_UNVERIFIED}: nothing failed, but something could not be verified (run again while a "
    "conversation is live)."
)


def timeout(seconds: float) -> httpx.Timeout:
    """Per-request timeouts for `--timeout`: connecting is given at most 5 s of it."""
    return httpx.Timeout(seconds, connect=min(5.0, seconds))


def seconds(text: str) -> float:
    """argparse type of `--timeout`: a positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 300:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds from 0 to 300")
    return value


def check(client: GenesysClient, endpoints: GenesysEndpoints, *, out: IO[str], customer: bool = False) -> int:
    """Run the probes and print the report; returns the exit status. `customer` (SYNC_TARGET customer or both) also
    checks that the customer's participant of a live conversation can be read."""
    print(f"Genesys Cloud API {endpoints.api_url} (tokens from {endpoints.login_url})", file=out)
    report = client.check_permissions(customer=customer)
    print(str(report), file=out)
    summary = report.summary()
    if report.ok:
        print(f"{summary}: the app can find users, see live conversations and write attributes.", file=out)
        return EXIT_OK
    if report.missing:
        # Only what Genesys refused with a 403: a check that failed for another cause, or never ran, says nothing
        # about permissions.
        print(f"Not ready ({summary}). Add {', '.join(report.missing)} to the OAuth client's role (Admin >"
              " Roles/Permissions), then run check again. The README lists each permission and why the app needs"
              " it.", file=out)
        return EXIT_MISSING
    if report.count(Outcome.FAILED):
        print(f"Not ready ({summary}). Fix the cause named above, then run check again.", file=out)
        return EXIT_MISSING
    print(f"Not fully verified ({summary}). Nothing was refused; see above for what to do.", file=out)
    return EXIT_UNVERIFIED
