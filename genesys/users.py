"""Finding a Genesys Cloud user by e-mail: the search body and picking the match.

Not cached here: the sync engine keeps each e-mail's answer in its store, shared by every replica (`sync.engine`).

`POST /api/v2/users/search` with an EXACT criterion on `email` plus the state criterion of Genesys' own example
(reference §7). Whether EXACT is case-sensitive is undocumented, so a mixed-case address is searched both as given
and lower-cased in one request, and results are compared case-insensitively.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    """The comparison form of an address: trimmed and lower-cased."""
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
