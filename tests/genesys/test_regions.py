"""Region domains, SDK keys and URL overrides → the API and login hosts."""

from __future__ import annotations

import pytest

from genesys import REGION_DOMAINS, GenesysEndpoints, GenesysError, GenesysSettingsError, endpoints_for

REGIONS = sorted(REGION_DOMAINS.items())


def test_there_are_eighteen_distinct_regions() -> None:
    """The table holds the 18 regions of the official SDKs, with the easy-to-miss ones."""
    assert len(REGION_DOMAINS) == 18
    assert len(set(REGION_DOMAINS.values())) == 18
    for domain in ("mypurecloud.com.au", "mxc1.pure.cloud", "apse1.pure.cloud", "edee1.eusc-pure.cloud"):
        assert domain in REGION_DOMAINS.values()


@pytest.mark.parametrize(("key", "domain"), REGIONS)
def test_domain_gives_api_and_login_hosts(key: str, domain: str) -> None:
    """A region domain maps to https://api.<domain> and https://login.<domain>."""
    assert endpoints_for(domain) == GenesysEndpoints(f"https://api.{domain}", f"https://login.{domain}")


@pytest.mark.parametrize(("key", "domain"), REGIONS)
def test_sdk_key_names_the_same_region(key: str, domain: str) -> None:
    """The SDK key (underscores or hyphens, any case) names the same region as its domain."""
    expected = endpoints_for(domain)
    assert endpoints_for(key) == expected
    assert endpoints_for(key.replace("_", "-").upper()) == expected


@pytest.mark.parametrize(
    "pasted",
    ["  mypurecloud.ie  ", "MyPureCloud.IE", "api.mypurecloud.ie", "login.mypurecloud.ie",
     "https://api.mypurecloud.ie/", "https://login.mypurecloud.ie", "mypurecloud.ie."],
)
def test_pasted_hosts_and_urls_are_accepted(pasted: str) -> None:
    """Operators may paste a host or URL of the region instead of its domain."""
    assert endpoints_for(pasted) == GenesysEndpoints("https://api.mypurecloud.ie", "https://login.mypurecloud.ie")


def test_api_url_override_derives_login_host() -> None:
    """GENESYS_API_URL alone works when its host starts with api."""
    assert endpoints_for(None, "https://api.example.test/", None) == GenesysEndpoints(
        "https://api.example.test", "https://login.example.test"
    )


def test_both_overrides_win_over_region() -> None:
    """GENESYS_API_URL and GENESYS_LOGIN_URL override the region's hosts (e.g. a local fake)."""
    endpoints = endpoints_for("eu_west_1", "http://127.0.0.1:8080", "http://127.0.0.1:8080/")
    assert endpoints == GenesysEndpoints("http://127.0.0.1:8080", "http://127.0.0.1:8080")


def test_login_override_alone_keeps_region_api_host() -> None:
    """GENESYS_LOGIN_URL alone replaces only the login host."""
    endpoints = endpoints_for("usw2.pure.cloud", None, "https://login.proxy.test")
    assert endpoints == GenesysEndpoints("https://api.usw2.pure.cloud", "https://login.proxy.test")


@pytest.mark.parametrize(
    ("args", "setting"),
    [
        ((None, None, None), "GENESYS_REGION"),
        (("", None, None), "GENESYS_REGION"),
        (("   ", "", ""), "GENESYS_REGION"),
        (("eu-west-9", None, None), "GENESYS_REGION"),
        (("mypurecloud.co.uk", None, None), "GENESYS_REGION"),
        (("pure.cloud", None, None), "GENESYS_REGION"),
        (("eu_west_1", "ftp://api.mypurecloud.ie", None), "GENESYS_API_URL"),
        (("eu_west_1", "api.mypurecloud.ie", None), "GENESYS_API_URL"),
        (("eu_west_1", "https://api.mypurecloud.ie?x=1", None), "GENESYS_API_URL"),
        (("eu_west_1", None, "https://"), "GENESYS_LOGIN_URL"),
        ((None, "http://127.0.0.1:8080", None), "GENESYS_LOGIN_URL"),
        (("not-a-region", "https://api.mypurecloud.ie", None), "GENESYS_REGION"),
    ],
)
def test_bad_values_name_the_setting(args: tuple[str | None, str | None, str | None], setting: str) -> None:
    """Missing or invalid values raise GenesysSettingsError naming the environment setting."""
    with pytest.raises(GenesysSettingsError) as caught:
        endpoints_for(*args)
    assert caught.value.setting == setting
    assert str(caught.value).startswith(f"{setting}: ")
    assert isinstance(caught.value, GenesysError)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("api_url", "login_url", "setting", "advice"),
    [
        ("http://api.mypurecloud.ie", None, "GENESYS_API_URL", "must use https://"),
        ("http://api.mypurecloud.ie/api/v2", None, "GENESYS_API_URL", "must use https://"),
        ("https://api.mypurecloud.ie/api/v2", None, "GENESYS_API_URL", "has a path"),
        ("https://api.mypurecloud.ie/#top", None, "GENESYS_API_URL", "has a path, query, fragment"),
        ("https://user:pw@api.mypurecloud.ie", None, "GENESYS_API_URL", "user info"),
        ("http://10.0.0.8:8080", "http://10.0.0.8:8080", "GENESYS_API_URL", "must use https://"),
        ("http://localhost.example.com", "https://login.example.com", "GENESYS_API_URL", "must use https://"),
        (None, "http://login.mypurecloud.ie", "GENESYS_LOGIN_URL", "must use https://"),
        (None, "https://login.mypurecloud.ie/oauth", "GENESYS_LOGIN_URL", "has a path"),
    ],
)
def test_overrides_need_https_and_no_path(api_url: str | None, login_url: str | None, setting: str,
                                          advice: str) -> None:
    """Plain http to a real host, a path, a fragment or user info is refused, naming the setting and the fix."""
    with pytest.raises(GenesysSettingsError) as caught:
        endpoints_for("eu_west_1", api_url, login_url)
    assert caught.value.setting == setting
    assert advice in str(caught.value)
    assert "set it to the scheme and host only" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
        ("http://127.9.8.7:1", "http://127.9.8.7:1"),
        ("http://localhost:9", "http://localhost:9"),
        ("http://[::1]:9", "http://[::1]:9"),
        ("HTTPS://Api.Example.Test:8443/", "https://api.example.test:8443"),
    ],
)
def test_loopback_may_use_plain_http(url: str, expected: str) -> None:
    """http:// is fine for 127.0.0.0/8, localhost and ::1 (a local fake); https URLs are normalised."""
    assert endpoints_for(None, url, url) == GenesysEndpoints(expected, expected)


def test_bad_region_lists_every_valid_region() -> None:
    """The message for an unknown region lists all 18 domains and their SDK keys."""
    with pytest.raises(GenesysSettingsError) as caught:
        endpoints_for("eu-west-9")
    message = str(caught.value)
    assert "'eu-west-9' is not a Genesys Cloud region" in message
    for key, domain in REGION_DOMAINS.items():
        assert f"{domain} ({key})" in message
