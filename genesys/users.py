"""Finding a Genesys Cloud user by e-mail: the search body, picking the match, and a TTL cache.

`POST /api/v2/users/search` with an EXACT criterion on `email` plus the state criterion of Genesys' own example
(reference §7). Whether EXACT is case-sensitive is undocumented, so a mixed-case address is searched both as given
and lower-cased in one request, and results are compared case-insensitively.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

USER_STATES = ("active", "inactive", "deleted")
_STATE_PREFERENCE = {state: rank for rank, state in enumerate(USER_STATES)}


@dataclass(frozen=True, slots=True)
class GenesysUser:
    """A Genesys Cloud user found by e-mail."""

    id: str
    email: str
    name: str
    state: str


def normalize_email(email: str) -> str:
    """The cache key and comparison form of an address: trimmed and lower-cased."""
    if not isinstance(email, str) or "@" not in email.strip():
        raise ValueError(f"not an e-mail address: {email!r}")
    return email.strip().lower()


def user_search_body(email: str, *, page_size: int = 25) -> dict[str, Any]:
    """The users search request for one address (as given and lower-cased when those differ)."""
    given = email.strip()
    normalized = given.lower()
    email_criterion: dict[str, Any] = {"type": "EXACT", "fields": ["email"]}
    if given == normalized:
        email_criterion["value"] = normalized
    else:
        email_criterion["values"] = [given, normalized]
    return {
        "query": [email_criterion, {"type": "EXACT", "fields": ["state"], "values": list(USER_STATES)}],
        "sortOrder": "ASC",
        "pageSize": page_size,
        "pageNumber": 1,
    }


def pick_user(payload: Mapping[str, Any], email: str) -> GenesysUser | None:
    """The result whose e-mail equals `email` ignoring case; an active user wins over inactive over deleted."""
    wanted = normalize_email(email)
    results = payload.get("results") if isinstance(payload, Mapping) else None
    matches: list[GenesysUser] = []
    for item in results if isinstance(results, list) else []:
        if not isinstance(item, Mapping):
            continue
        user_id, address = item.get("id"), item.get("email")
        if not isinstance(user_id, str) or not isinstance(address, str) or address.strip().lower() != wanted:
            continue
        matches.append(GenesysUser(
            id=user_id, email=address, name=str(item.get("name") or ""), state=str(item.get("state") or "active"),
        ))
    if not matches:
        return None
    return min(matches, key=lambda user: _STATE_PREFERENCE.get(user.state, len(USER_STATES)))


class UserCache:
    """E-mail → user (or "no such user") with separate time-to-live for each; thread-safe."""

    def __init__(self, *, clock: Callable[[], float], found_ttl_s: float = 600.0, missing_ttl_s: float = 60.0,
                 max_entries: int = 50_000) -> None:
        self._clock = clock
        self._found_ttl_s = found_ttl_s
        self._missing_ttl_s = missing_ttl_s
        self._max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, GenesysUser | None]] = {}

    def get(self, key: str) -> tuple[bool, GenesysUser | None]:
        """(True, user-or-None) when cached and fresh, else (False, None)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return False, None
            if self._clock() >= entry[0]:
                del self._entries[key]
                return False, None
            return True, entry[1]

    def put(self, key: str, user: GenesysUser | None) -> None:
        """Remember a search result: a user for `found_ttl_s`, "no such user" for `missing_ttl_s`."""
        now = self._clock()
        ttl = self._found_ttl_s if user is not None else self._missing_ttl_s
        with self._lock:
            if len(self._entries) >= self._max_entries:
                self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
                while len(self._entries) >= self._max_entries:
                    del self._entries[next(iter(self._entries))]
            self._entries[key] = (now + ttl, user)

    def clear(self) -> None:
        """Forget everything (e.g. after an operator changed users in Genesys)."""
        with self._lock:
            self._entries.clear()
