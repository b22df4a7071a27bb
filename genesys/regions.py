"""Genesys Cloud regions: which API and login hosts to talk to.

The 18 regions are those of the official SDKs (`purecloud_region_hosts.py`); the API host is
`https://api.<domain>` and the login host `https://login.<domain>`. Operators may name a region by its domain
(`mypurecloud.ie`), by its SDK key (`eu_west_1` or `eu-west-1`), or paste a host or URL (`api.mypurecloud.ie`).
"""

from __future__ import annotations

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
    text = value.strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment:
        raise GenesysSettingsError(
            setting, f"{value.strip()!r} is not an http(s) URL like https://api.mypurecloud.ie (no query or fragment)"
        )
    return text


def _valid() -> str:
    return "one of: " + ", ".join(f"{domain} ({key})" for key, domain in REGION_DOMAINS.items())
