"""OAuth client credentials: obtain, cache and refresh the Genesys Cloud access token.

`POST {login_url}/oauth/token` with HTTP Basic client id/secret and `grant_type=client_credentials`. There is no
refresh token for this grant, so "refresh" means asking again. The token is reused until shortly before
`expires_in` (60 s or 10 % of the lifetime, whichever is less); one thread fetches while the others wait and then
reuse the fresh token. If that fetch fails, the threads that waited through it raise the same error instead of each
starting a retry cycle of its own (a generation counter tells them a fetch finished while they waited). Neither the
secret, the Basic value nor a token ever reaches a message, a log line or a repr.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from genesys.errors import AuthenticationFailed, ErrorBody, GenesysError, GenesysSettingsError, GenesysUnavailable
from genesys.network import host_of
from genesys.retries import RetryingSender

log = logging.getLogger(__name__)

REFRESH_MARGIN_MAX_S = 60.0
REFRESH_MARGIN_FRACTION = 0.1
_OPERATION = "token request"


@dataclass(frozen=True, slots=True, repr=False)
class ClientCredentials:
    """The OAuth client's id and secret; the repr shows the id only."""

    client_id: str
    client_secret: str

    def __post_init__(self) -> None:
        for setting, value in (("GENESYS_CLIENT_ID", self.client_id), ("GENESYS_CLIENT_SECRET", self.client_secret)):
            if not isinstance(value, str) or not value.strip():
                raise GenesysSettingsError(setting, "is not set; copy it from the OAuth client in Genesys Cloud Admin")

    def __repr__(self) -> str:
        return f"ClientCredentials(client_id={self.client_id!r}, client_secret='<hidden>')"

    __str__ = __repr__

    def basic_authorization(self) -> str:
        """The `Authorization` header value for the token request."""
        return "Basic " + self.basic_value()

    def basic_value(self) -> str:
        """The base64 `id:secret` of the Basic header: as secret as the secret itself."""
        return base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode("ascii")


@dataclass(frozen=True, slots=True, repr=False)
class AccessToken:
    """A bearer token and when to stop using it (on the provider's monotonic clock)."""

    value: str
    expires_in_s: float
    obtained_at: float
    refresh_at: float

    def __repr__(self) -> str:
        return f"AccessToken(value='<hidden>', expires_in_s={self.expires_in_s:g})"

    __str__ = __repr__

    @property
    def authorization(self) -> str:
        """The `Authorization` header value for API calls."""
        return f"Bearer {self.value}"


class TokenProvider:
    """Caches one access token per process and refreshes it before it expires, one refresh at a time."""

    def __init__(
        self,
        credentials: ClientCredentials,
        login_url: str,
        sender: RetryingSender,
        *,
        clock: Callable[[], float],
    ) -> None:
        self._credentials = credentials
        self._token_url = f"{login_url.rstrip('/')}/oauth/token"
        self._sender = sender
        self._clock = clock
        self._lock = threading.Lock()
        self._token: AccessToken | None = None
        self._generation = 0
        """Fetches finished (successfully or not); a waiter that sees it change knows a fetch ended meanwhile."""
        self._failure: GenesysError | None = None
        """How the last fetch failed (None after a success); raised again to the threads that waited through it."""

    def token(self, *, deadline: float | None = None) -> AccessToken:
        """A usable token: the cached one, or a fresh one if it is missing or near expiry.

        `deadline` (on the provider's clock) bounds the fetch's retries: the caller's time budget. A thread that
        waited while another fetch failed raises that fetch's error rather than fetching again.
        """
        current = self._token
        if current is not None and self._clock() < current.refresh_at:
            return current
        generation = self._generation
        with self._lock:
            current = self._token
            if current is not None and self._clock() < current.refresh_at:
                return current
            if self._generation != generation and self._failure is not None:
                raise _copy(self._failure) from None
            try:
                self._token = self._fetch(deadline)
            except GenesysError as error:
                self._failure = _copy(error)
                raise
            else:
                self._failure = None
            finally:
                self._generation += 1
            return self._token

    def hidden_values(self) -> tuple[str, ...]:
        """Strings no error text may show: the secret, the Basic value and the current token."""
        token = self._token
        return (self._credentials.client_secret, self._credentials.basic_value(),
                *((token.value,) if token is not None else ()))

    def invalidate(self, stale: AccessToken) -> None:
        """Forget `stale` after the API refused it (401); a newer token obtained meanwhile is kept."""
        with self._lock:
            if self._token is stale:
                self._token = None

    def _fetch(self, deadline: float | None) -> AccessToken:
        request = self._sender.build_request(
            "POST",
            self._token_url,
            data={"grant_type": "client_credentials"},
            headers={"Authorization": self._credentials.basic_authorization(), "Accept": "application/json"},
        )
        response = self._sender.send(request, operation=_OPERATION, deadline=deadline)
        client_id = self._credentials.client_id
        if response.status_code != 200:
            body = ErrorBody.from_response(response, hide=self.hidden_values())
            if response.status_code in (400, 401, 403):
                reason = f"the token endpoint answered {response.status_code}"
                if body.message or body.code:
                    reason += f" ({body.message or body.code})"
            elif response.status_code in (404, 405):
                reason = (f"the token endpoint {self._token_url} answered {response.status_code}, so the login"
                          " URL is wrong: check GENESYS_LOGIN_URL (or unset it to use GENESYS_REGION's login host)")
            else:
                raise GenesysUnavailable(_OPERATION, f"HTTP {response.status_code}", status=response.status_code,
                                         code=body.code, context_id=body.context_id, host=host_of(request.url))
            raise AuthenticationFailed(reason, client_id=client_id, status=response.status_code, code=body.code,
                                       context_id=body.context_id, host=host_of(request.url))
        try:
            payload = response.json()
            value = payload["access_token"]
            expires_in = float(payload.get("expires_in", 0))
            if not isinstance(value, str) or not value or expires_in <= 0:
                raise ValueError("no usable access_token or expires_in")
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError, AttributeError):
            raise GenesysUnavailable(_OPERATION, "the token endpoint's answer had no usable access_token",
                                     status=200) from None
        now = self._clock()
        margin = min(REFRESH_MARGIN_MAX_S, expires_in * REFRESH_MARGIN_FRACTION)
        token = AccessToken(value=value, expires_in_s=expires_in, obtained_at=now, refresh_at=now + expires_in - margin)
        log.info(
            "Genesys token obtained for OAuth client %s; valid %.0f s, renewed after %.0f s",
            client_id, expires_in, expires_in - margin,
        )
        return token


def _copy(error: GenesysError) -> GenesysError:
    """`error` as a new object with no traceback or chain, to raise again in another thread."""
    again = type(error).__new__(type(error), *error.args)
    again.__dict__.update(error.__dict__)
    return again
