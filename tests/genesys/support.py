"""Shared helpers for the tests of genesys/ (no tests here): a fake clock and client builders."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from genesys import ClientCredentials, GenesysClient, GenesysEndpoints, endpoints_for
from tests.clocks import FakeClock

CLIENT_ID = "fake-client-id"
SECRET = "s3cret-VALUE-never-shown"
CREDENTIALS = ClientCredentials(CLIENT_ID, SECRET)
MOCK_ENDPOINTS = GenesysEndpoints("https://api.mypurecloud.ie", "https://login.mypurecloud.ie")


def fake_client(fake: Any, clock: FakeClock | None = None, *, secret: str = SECRET, **kwargs: Any) -> GenesysClient:
    """A client for a started FakeGenesysCloud, on `clock` (also its sleep) when given."""
    endpoints = endpoints_for(None, fake.base_url, fake.base_url)
    if clock is not None:
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("sleep", clock.sleep)
    return GenesysClient(ClientCredentials(CLIENT_ID, secret), endpoints, **kwargs)


def mock_client(handler: Callable[[httpx.Request], httpx.Response], clock: FakeClock | None = None,
                **kwargs: Any) -> GenesysClient:
    """A client whose requests go to `handler` (an httpx.MockTransport), on a fake clock."""
    clock = clock or FakeClock()
    return GenesysClient(CREDENTIALS, MOCK_ENDPOINTS, transport=httpx.MockTransport(handler), clock=clock,
                         sleep=clock.sleep, **kwargs)


def token_response(token: str = "tok-1", expires_in: int = 86400) -> httpx.Response:
    """A successful client-credentials answer."""
    return httpx.Response(200, json={"access_token": token, "token_type": "bearer", "expires_in": expires_in})
