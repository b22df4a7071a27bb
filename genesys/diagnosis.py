"""One line per failure for `check`: the real cause, the host, and what the operator should change.

`str()` of an error is written for the service's log ("the work is retried later"). A one-shot command needs
other words: the operator is waiting, nothing is retried later, and the advice must fit the cause (a network
failure is not a missing permission). `explain` builds that line from the error's fields, never from a request,
so no secret or token can reach it; the Genesys status page is named only for a real Genesys host.
"""

from __future__ import annotations

import httpx

from genesys.errors import (
    AuthenticationFailed,
    GenesysError,
    GenesysUnavailable,
    GenesysUnreachable,
    PermissionMissing,
)
from genesys.network import NetworkCause, host_name, host_of
from genesys.regions import STATUS_PAGE, GenesysEndpoints, region_of_host


def explain(error: GenesysError, endpoints: GenesysEndpoints) -> str:
    """The cause of `error` in one line naming the host, with a next step that fits it."""
    if isinstance(error, GenesysUnreachable):
        return _unreachable(error, endpoints)
    if isinstance(error, AuthenticationFailed):
        return _authentication(error, endpoints)
    if isinstance(error, PermissionMissing):
        code = f" {error.code}" if error.code else ""
        return f"Genesys refused the {error.operation} (403{code}): the OAuth client's role lacks {error.needs}"
    if isinstance(error, GenesysUnavailable) and error.host:
        what = f"HTTP {error.status}" if error.status is not None else error.reason
        if error.code:
            what += f" {error.code}"
        status = f"; Genesys Cloud status: {STATUS_PAGE}" if region_of_host(error.host) else ""
        return f"{error.host} did not complete the {error.operation} ({what}); {_tries(error)}{status}"
    return str(error)


def _unreachable(error: GenesysUnreachable, endpoints: GenesysEndpoints) -> str:
    host, failure = error.host, error.failure
    setting = _setting(host, endpoints)
    match failure.cause:
        case NetworkCause.DNS:
            advice = (f"check the host name in {setting} for a typo, and that this machine can resolve names (its"
                      " DNS server, or a proxy it must use)")
        case NetworkCause.REFUSED:
            advice = f"check the host and port in {setting}, and that a firewall lets this machine reach them"
        case NetworkCause.TLS:
            advice = (f"check the scheme and port in {setting} (https:// only where the host speaks TLS; http:// is"
                      " for a loopback stand-in), and that the host's certificate is valid for its name and trusted")
        case NetworkCause.TIMEOUT:
            advice = (f"check {setting} and the network path to {host_name(host)} (firewall, proxy); a slow link"
                      " may need a longer --timeout")
        case _:
            advice = f"check any proxy or firewall between this machine and {host_name(host)}"
    # The status page shows Genesys outages; a name that does not resolve or a failed handshake is on this side.
    status = f"; Genesys Cloud status: {STATUS_PAGE}" if region_of_host(host) and failure.temporary else ""
    return f"{failure.sentence(host)}: {advice}; {_tries(error)}{status}"


def _authentication(error: AuthenticationFailed, endpoints: GenesysEndpoints) -> str:
    host = error.host or host_of(httpx.URL(endpoints.login_url))
    status = f"{error.status} {error.code}".strip() if error.status is not None else (error.code or "refused")
    if error.refused_token:
        return (f"the API host {host} refused a token the login host {host_of(httpx.URL(endpoints.login_url))} had"
                f" just issued ({status}): the two hosts belong to different regions or orgs; check"
                f" {_setting(host, endpoints)} and {_setting(host_of(httpx.URL(endpoints.login_url)), endpoints)}")
    region = region_of_host(host)
    where = f"the login host {host} (region {region})" if region else f"the login host {host} (GENESYS_LOGIN_URL)"
    if error.status == 401 or error.code == "invalid_client":
        other = "GENESYS_REGION" if region else "GENESYS_LOGIN_URL"
        return (f"{where} refused OAuth client {error.client_id!r} ({status}): the client id or secret is wrong, or"
                f" the client belongs to an org in another region; check GENESYS_CLIENT_ID, GENESYS_CLIENT_SECRET"
                f" and {other}")
    if error.status in (404, 405):
        return f"{where} has no token endpoint ({status}): the login URL is wrong; check {_setting(host, endpoints)}"
    return (f"{where} refused OAuth client {error.client_id!r} ({status}): check that the client uses the Client"
            " Credentials grant and still exists")


def _setting(host: str, endpoints: GenesysEndpoints) -> str:
    """The setting that chose `host`: the region for a real Genesys host, else the URL override."""
    if region_of_host(host):
        return "GENESYS_REGION"
    login, api = host_of(httpx.URL(endpoints.login_url)), host_of(httpx.URL(endpoints.api_url))
    if host == login and host == api:
        return "GENESYS_API_URL and GENESYS_LOGIN_URL"
    if host == login:
        return "GENESYS_LOGIN_URL (derived from GENESYS_API_URL when unset)"
    return "GENESYS_API_URL"


def _tries(error: GenesysUnavailable) -> str:
    if isinstance(error, GenesysUnreachable) and error.attempts == 1 and not error.failure.temporary:
        return f"failed in {error.elapsed_s:.1f} s and not retried, since retrying cannot fix this"
    attempts = f"{error.attempts} attempt{'' if error.attempts == 1 else 's'}"
    return f"gave up after {attempts} over {error.elapsed_s:.1f} s"
