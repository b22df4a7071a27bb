"""/healthz's `push` part: what it says for each state of Genesys' notifications, and that it never fails health."""

from __future__ import annotations

import pytest

from genesys import PushState
from web.health import PushPart, push_part


def _state(fallback: str | None, missing: tuple[str, ...] = ()) -> PushState:
    return PushState(connected=fallback is None, channels=2, topics=1500, rejected=len(missing), uncovered=0,
                     pending=0, since_last_message_s=3.04, fallback_reason=fallback, missing_permissions=missing)


@pytest.mark.parametrize(("part", "json"), [
    (PushPart(False, True, None), {"state": "off", "detail": "GENESYS_PUSH is off: new calls are found by the poll"}),
    (PushPart(True, False, None), {"state": "another replica"}),
    (PushPart(True, True, None), {"state": "starting"}),
    (PushPart(True, True, _state(None)),
     {"state": "connected", "channels": 2, "topics": 1500, "last_message_s_ago": 3.0}),
    (PushPart(True, True, _state("2 topics rejected", ("conversation:communication:view",))),
     {"state": "fallback", "channels": 2, "topics": 1500, "last_message_s_ago": 3.0,
      "detail": "2 topics rejected; new calls are found by the fast poll meanwhile",
      "missing_permissions": ["conversation:communication:view"]}),
])
def test_the_push_part_names_its_state(part: PushPart, json: dict[str, object]) -> None:
    """Off, another replica's, starting, connected (with its channels and topics), or falling back and why."""
    assert part.json() == json
    assert "ok" not in part.json()  # the fast poll covers what push misses: never a reason to answer 503


def test_the_push_reason_masks_the_oauth_client_id() -> None:
    """A refused subscription call names the OAuth client in its reason; /healthz shows *** in its place unless
    HEALTH_DETAILS asks for it (as the genesys part does)."""

    class Engine:
        push_enabled = polling = True

        def push_state(self) -> PushState:
            return _state("1 user(s) not subscribed yet; last error: Genesys Cloud authentication failed for OAuth "
                          "client 'client-0123456789'")

    masked = push_part(Engine(), client_ids=("client-0123456789",)).json()  # type: ignore[arg-type]
    assert "client-0123456789" not in str(masked)
    assert "OAuth client '***'" in str(masked["detail"])
