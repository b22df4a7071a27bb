"""Genesys Cloud regions: which API and login hosts to talk to.

The 18 regions are those of the official SDKs (`purecloud_region_hosts.py`); the API host is
`https://api.<domain>` and the login host `https://login.<domain>`. Operators may name a region by its domain
(`mypurecloud.ie`), by its SDK key (`eu_west_1` or `eu-west-1`), or paste a host or URL (`api.mypurecloud.ie`).

GENESYS_API_URL / GENESYS_LOGIN_URL override the hosts: `https://<host>[:port]` with no path, query, fragment or
user info (the client appends `/api/v2/...` and `/oauth/token` itself; a path would turn every call into a 404).
Plain `http://` is accepted only for a loopback host (127.0.0.0/8, localhost, ::1: a local fake or tunnel), since
the token request carries the client secret and every API call the bearer token.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import urlsplit

from genesys.errors import GenesysSettingsError

REGION_DOMAINS: Mapping[str, str] = MappingProxyType({
    "us_east_1": "mypurecloud.com",
    "eu_west_1": "mypurecloud.ie",
    "ap_southeast_2": "mypurecloud.com.au",
    "ap_northeast_1": "mypurecloud.jp",
    "eu_central_1": "mypurecloud.de",
    "us_west_2": "usw2.pure.cloud",
    "ca_central_1": "cac1.pure.cloud",
    "ap_northeast_2": "apne2.pure.cloud",
    "eu_west_2": "euw2.pure.cloud",
    "ap_south_1": "aps1.pure.cloud",
    "us_east_2": "use2.us-gov-pure.cloud",
    "sa_east_1": "sae1.pure.cloud",
    "me_central_1": "mec1.pure.cloud",
    "ap_northeast_3": "apne3.pure.cloud",
    "eu_central_2": "euc2.pure.cloud",
    "mx_central_1": "mxc1.pure.cloud",
    "ap_southeast_1": "apse1.pure.cloud",
    "eusc_de_east_1": "edee1.eusc-pure.cloud",
})
"""SDK region key → region domain."""

_DOMAINS = frozenset(REGION_DOMAINS.values())

STATUS_PAGE = "https://status.mypurecloud.com"
"""Genesys Cloud's status page, the one Genesys' help names for every region
(help.mypurecloud.com/articles/contact-genesys-cloud-care/); no per-region status address is documented. Named only
when the host that failed is a real Genesys host (`region_of_host`), never for an override such as a local
stand-in, a tunnel or a proxy, whose trouble that page cannot show."""


@dataclass(frozen=True, slots=True)
class GenesysEndpoints:
    """Where to send API calls and where to obtain tokens (no trailing slash)."""

    api_url: str
    login_url: str


def endpoints_for(region: str | None, api_url: str | None = None, login_url: str | None = None) -> GenesysEndpoints:
    """Endpoints for GENESYS_REGION, with GENESYS_API_URL / GENESYS_LOGIN_URL overriding either host."""
    domain = region_domain(region) if region is not None and region.strip() else None
    api = _url("GENESYS_API_URL", api_url) if api_url is not None and api_url.strip() else None
    login = _url("GENESYS_LOGIN_URL", login_url) if login_url is not None and login_url.strip() else None
    if api is None:
        if domain is None:
            raise GenesysSettingsError("GENESYS_REGION", f"is not set; set it to the org's region, {_valid()}")
        api = f"https://api.{domain}"
    if login is None:
        if domain is not None:
            login = f"https://login.{domain}"
        else:
            parts = urlsplit(api)
            if not (parts.hostname or "").startswith("api."):
                raise GenesysSettingsError(
                    "GENESYS_LOGIN_URL",
                    f"is not set and cannot be derived from GENESYS_API_URL {api!r} (its host does not start with"
                    " 'api.'); set GENESYS_LOGIN_URL or GENESYS_REGION",
                )
            login = api.replace("://api.", "://login.", 1)
    return GenesysEndpoints(api_url=api, login_url=login)


def region_of_host(host: str) -> str | None:
    """The SDK region key when `host` (`host[:port]`, port 443 or none) is a Genesys API or login host, else None."""
    name, _, port = host.lower().partition(":")
    if port not in ("", "443"):
        return None
    for key, domain in REGION_DOMAINS.items():
        if name.rstrip(".") in (f"api.{domain}", f"login.{domain}"):
            return key
    return None


def region_domain(region: str) -> str:
    """The region domain for a domain, SDK key, host or URL; GenesysSettingsError names GENESYS_REGION."""
    text = region.strip().lower()
    if "://" in text:
        text = urlsplit(text).hostname or ""
    text = text.strip("/").rstrip(".")
    for prefix in ("api.", "login."):
        if text.startswith(prefix) and text[len(prefix):] in _DOMAINS:
            text = text[len(prefix):]
    if text in _DOMAINS:
        return text
    key = text.replace("-", "_")
    if key in REGION_DOMAINS:
        return REGION_DOMAINS[key]
    raise GenesysSettingsError("GENESYS_REGION", f"{region.strip()!r} is not a Genesys Cloud region; {_valid()}")


def _url(setting: str, value: str) -> str:
    text = value.strip()
    example = "https://api.mypurecloud.ie" if setting == "GENESYS_API_URL" else "https://login.mypurecloud.ie"
    try:
        parts = urlsplit(text)
        host, port = parts.hostname, parts.port
    except ValueError:  # e.g. a port that is not a number
        host = port = None
    if not host:
        raise GenesysSettingsError(setting, f"{text!r} is not a URL; set it to the scheme and host only, like"
                                            f" {example}")
    scheme = parts.scheme.lower()
    if scheme != "https" and not (scheme == "http" and _is_loopback(host)):
        raise GenesysSettingsError(
            setting,
            f"{text!r} must use https:// (plain http:// is allowed only for a loopback host, 127.x.x.x, localhost"
            " or ::1, because requests carry the client secret and tokens); set it to the scheme and host only,"
            f" like {example}",
        )
    if parts.path not in ("", "/") or "?" in text or "#" in text or "@" in parts.netloc:
        raise GenesysSettingsError(
            setting,
            f"{text!r} has a path, query, fragment or user info; set it to the scheme and host only, like"
            f" {example} (the client adds /api/v2/... and /oauth/token itself)",
        )
    netloc = f"[{host}]" if ":" in host else host
    return f"{scheme}://{netloc}" + (f":{port}" if port is not None else "")


def _is_loopback(host: str) -> bool:
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _valid() -> str:
    return "one of: " + ", ".join(f"{domain} ({key})" for key, domain in REGION_DOMAINS.items())
