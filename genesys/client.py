"""`GenesysClient`: the calls the app makes to Genesys Cloud, over one `httpx.Client` per process.

Every request goes: token (cached, `auth.py`) → rate limiter (`rate_limit.py`) → the one retry layer
(`retries.py`) → httpx. A 401 invalidates the token, fetches a new one and repeats the request once. One deadline
(`RetryPolicy.max_total_s`) covers a whole call: both sends and the token fetch between them; a paged analytics
query also has one deadline for all its pages (`RetryPolicy.max_paged_query_s`). Answers are parsed here or in
`users.py`/`participants.py` and leave as frozen dataclasses; failures leave as the `errors.py` tree.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Self
from urllib.parse import quote

import httpx

from genesys.auth import AccessToken, ClientCredentials, TokenProvider
from genesys.channels import (
    NotificationChannel,
    TopicSubscription,
    conversations_topic,
    parse_channel,
    parse_subscriptions,
    short_id,
)
from genesys.diagnosis import explain
from genesys.errors import (
    AttributesRejected,
    AuthenticationFailed,
    ChannelGone,
    ConversationGone,
    ErrorBody,
    GenesysError,
    GenesysTransientError,
    GenesysUnavailable,
    PermissionMissing,
    RequestRejected,
)
from genesys.network import host_of
from genesys.observer import NO_OBSERVER, RequestObserver
from genesys.participants import (
    CUSTOMER_PURPOSES,
    LiveParticipant,
    live_conversations_query,
    live_in_analytics,
    live_in_conversation,
    participant_attributes_in,
    probe_query,
)
from genesys.permissions import Outcome, PermissionCheck, PermissionReport
from genesys.rate_limit import RateLimiter, SharedBudget, Sleep
from genesys.regions import GenesysEndpoints
from genesys.retries import Reachability, RetryingSender, RetryPolicy
from genesys.users import GenesysUser, pick_user, user_search_body
from genesys.voice_safe import VoiceSafeAttributes

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=15.0, write=15.0, pool=5.0)
DEFAULT_LIMITS = httpx.Limits(max_connections=20, max_keepalive_connections=10, keepalive_expiry=30.0)

USERS_SEARCH = "/api/v2/users/search"
DETAILS_QUERY = "/api/v2/analytics/conversations/details/query"
NOTIFICATION_CHANNELS = "/api/v2/notifications/channels"

PERMISSIONS_USERS_SEARCH = ("directory:user:view",)
PERMISSIONS_ANALYTICS = ("analytics:conversationDetail:view", "analytics:agentConversationDetail:view")
PERMISSIONS_CONVERSATION = ("conversation:communication:view",)

USER_PAGE_SIZE = 25
ORG_PAGE_SIZE = 100
MAX_ANALYTICS_PAGES = 100
"""10,000 live conversations at 100 per page; beyond that the query stops with a warning."""

_SEARCH_CHECK = "users search"
_ANALYTICS_CHECK = "analytics conversation query"
_LOOKUP_CHECK = "conversation lookup"
_PUSH_CHECK = "conversation notifications"
_CUSTOMER_CHECK = "the customer's participant"
PERMISSIONS_PUSH = ("conversation:communication:view",)
"""What a `v2.users.{id}.conversations` topic is assumed to need (undocumented; a rejected topic names its own)."""
_PROBES = ((_SEARCH_CHECK, PERMISSIONS_USERS_SEARCH), (_ANALYTICS_CHECK, PERMISSIONS_ANALYTICS),
           (_LOOKUP_CHECK, PERMISSIONS_CONVERSATION), (_PUSH_CHECK, PERMISSIONS_PUSH))

_GONE_CODE_HINTS = ("not.found", "no.active", "not.active", "not.conversation.participant", "ended")


@dataclass(frozen=True, slots=True)
class WriteResult:
    """Genesys accepted a participant attributes PATCH (a refusal raises instead)."""

    conversation_id: str
    participant_id: str
    status: int
    context_id: str | None
    """Genesys' `ININ-Correlation-Id` for the request, to quote to Genesys support."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


class GenesysClient:
    """The Genesys Cloud adapter; thread-safe, one per process, closes the `httpx.Client` it built."""

    def __init__(
        self,
        credentials: ClientCredentials,
        endpoints: GenesysEndpoints,
        *,
        http: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = time.sleep,
        utcnow: Callable[[], datetime] = _utcnow,
        rng: random.Random | None = None,
        requests_per_minute: int = 300,
        shared_budget: SharedBudget | None = None,
        retry_policy: RetryPolicy | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        observer: RequestObserver = NO_OBSERVER,
    ) -> None:
        """`observer` is told of every HTTP attempt (API and token requests, retries included), for metrics."""
        if http is not None and (transport is not None or timeout is not DEFAULT_TIMEOUT):
            raise ValueError("pass either http, or transport and timeout for the client built here, not both")
        self._owns_http = http is None
        self._http = http if http is not None else httpx.Client(
            transport=transport,
            timeout=timeout,
            limits=DEFAULT_LIMITS,
            headers={"Accept": "application/json", "User-Agent": "slack-genesys-sync"},
        )
        self._credentials = credentials
        self._endpoints = endpoints
        self._utcnow = utcnow
        policy = retry_policy or RetryPolicy()
        self._policy = policy
        self._clock = clock
        rng = rng or random.Random()
        self._limiter = RateLimiter(requests_per_minute, clock=clock, sleep=sleep, shared=shared_budget)
        # One outage state for the API and the login host: a whole outage is one warning and one recovery line.
        reachability = Reachability(clock)
        self._api = RetryingSender(self._http, policy, clock=clock, sleep=sleep, rng=rng, limiter=self._limiter,
                                   reachability=reachability, observer=observer)
        login = RetryingSender(self._http, policy, clock=clock, sleep=sleep, rng=rng, reachability=reachability,
                               observer=observer)
        self._tokens = TokenProvider(credentials, endpoints.login_url, login, clock=clock)

    def __repr__(self) -> str:
        return f"GenesysClient(api_url={self._endpoints.api_url!r}, client_id={self._credentials.client_id!r})"

    # ----------------------------------------------------------------- users

    def find_user_by_email(self, email: str) -> GenesysUser | None:
        """The Genesys user with this e-mail (ignoring case), or None; one search per call.

        Not cached: the sync engine keeps the answer as the Slack user's link in its store, shared by its replicas
        and trusted for a while (`sync.engine.EngineSettings.link_trust_s`), and the CLI asks once per run."""
        operation = "users search"
        response = self._call("POST", USERS_SEARCH, operation=operation, body=user_search_body(email))
        if response.status_code != 200:
            raise self._error(response, operation, PERMISSIONS_USERS_SEARCH)
        return pick_user(self._json(response, operation), email)

    # ---------------------------------------------------------- live participants

    def live_participants(self, user_id: str) -> tuple[LiveParticipant, ...]:
        """Every live participant of `user_id`: analytics finds candidates, a conversation GET confirms each."""
        _require_id("user_id", user_id)
        live: list[LiveParticipant] = []
        for conversation_id in self._live_conversation_ids(user_id):
            operation = "conversation lookup"
            response = self._call("GET", _conversation_path(conversation_id), operation=operation)
            if response.status_code in (404, 410):
                continue  # ended and gone between the query and the lookup
            if response.status_code != 200:
                raise self._error(response, operation, PERMISSIONS_CONVERSATION)
            live.extend(live_in_conversation(self._json(response, operation), user_id))
        return tuple(live)

    def org_live_participants(self) -> tuple[LiveParticipant, ...]:
        """Every live user participant in the org, from one paged analytics query (no per-conversation GETs)."""
        return tuple(live_in_analytics(self._live_conversations(None, ORG_PAGE_SIZE)))

    def _live_conversation_ids(self, user_id: str) -> list[str]:
        ids: list[str] = []
        for conversation in self._live_conversations(user_id, USER_PAGE_SIZE):
            conversation_id = conversation.get("conversationId")
            if isinstance(conversation_id, str) and conversation_id and conversation_id not in ids \
                    and not conversation.get("conversationEnd"):
                ids.append(conversation_id)
        return ids

    def _live_conversations(self, user_id: str | None, page_size: int) -> list[Mapping[str, Any]]:
        """Every page of the live-conversation query, within one deadline for the whole query.

        Offset paging over a set that changes while it is read: a conversation starting or ending between two
        pages shifts the later ones, so one may be read twice (callers de-duplicate) or skipped. A change of
        `totalHits` between pages is logged; the next poll catches anything skipped.
        """
        operation = "analytics conversation query"
        now = self._utcnow()
        started = self._clock()
        deadline = started + self._policy.max_paged_query_s
        conversations: list[Mapping[str, Any]] = []
        first_total: object = None
        page = 1
        while True:
            if page > 1 and self._clock() >= deadline:
                raise GenesysUnavailable(
                    operation, f"the paged query did not finish within {self._policy.max_paged_query_s:g} s; stopped"
                    f" before page {page}", attempts=page - 1, elapsed_s=self._clock() - started,
                )
            body = live_conversations_query(now, user_id=user_id, page_size=page_size, page_number=page)
            response = self._call("POST", DETAILS_QUERY, operation=operation, body=body, deadline=deadline)
            if response.status_code != 200:
                raise self._error(response, operation, PERMISSIONS_ANALYTICS)
            payload = self._json(response, operation)
            batch = payload.get("conversations")
            batch = [c for c in batch if isinstance(c, Mapping)] if isinstance(batch, list) else []
            conversations.extend(batch)
            total = payload.get("totalHits")
            if page == 1:
                first_total = total
            elif total != first_total:
                log.warning(
                    "Genesys analytics query: totalHits changed from %s to %s while reading page %d (conversations"
                    " started or ended meanwhile); a conversation may have been skipped, the next poll catches it",
                    first_total, total, page,
                )
                first_total = total
            covered = page * page_size >= total if isinstance(total, int) else len(batch) < page_size
            if not batch or covered:
                return conversations
            if page >= MAX_ANALYTICS_PAGES:
                log.warning("Genesys analytics query: stopped after %d pages of %d (totalHits %s)",
                            page, page_size, total)
                return conversations
            page += 1

    # ---------------------------------------------------------------- write

    def participant_attributes(self, conversation_id: str, participant_id: str) -> dict[str, str] | None:
        """The participant's current attributes (one conversation read); None when it is not on the conversation.

        The engine reads them only to learn whether a write sent just before a crash landed.
        """
        _require_id("conversation_id", conversation_id)
        operation = "conversation lookup"
        response = self._call("GET", _conversation_path(conversation_id), operation=operation)
        if response.status_code != 200:
            raise self._error(response, operation, PERMISSIONS_CONVERSATION, conversation_id=conversation_id,
                              participant_id=participant_id)
        return participant_attributes_in(self._json(response, operation), participant_id)

    def write_attributes(self, conversation_id: str, participant_id: str,
                         attributes: VoiceSafeAttributes) -> WriteResult:
        """PATCH the participant's attributes; only a `VoiceSafeAttributes` (from `check_attributes`) is sent."""
        if not isinstance(attributes, VoiceSafeAttributes):
            raise TypeError(
                f"write_attributes sends only VoiceSafeAttributes (from check_attributes), not "
                f"{type(attributes).__name__}"
            )
        _require_id("conversation_id", conversation_id)
        _require_id("participant_id", participant_id)
        operation = "attributes write"
        path = f"{_conversation_path(conversation_id)}/participants/{quote(participant_id, safe='')}/attributes"
        response = self._call("PATCH", path, operation=operation, body=attributes.body())
        if not 200 <= response.status_code < 300:
            raise self._error(response, operation, (), conversation_id=conversation_id,
                              participant_id=participant_id, write=True)
        result = WriteResult(
            conversation_id=conversation_id, participant_id=participant_id,
            status=response.status_code, context_id=response.headers.get("inin-correlation-id"),
        )
        log.debug("Genesys attributes written: conversation %s participant %s (%d keys, contextId %s)",
                  conversation_id, participant_id, len(attributes.attributes), result.context_id)
        return result

    # --------------------------------------------------------- notifications

    def create_notification_channel(self) -> NotificationChannel:
        """Create a notification channel (reference §6.4); it lives 24 h unless its topics are set again."""
        operation = "notification channel creation"
        response = self._call("POST", NOTIFICATION_CHANNELS, operation=operation)
        if response.status_code != 200:
            raise self._error(response, operation, ())
        channel = parse_channel(self._json(response, operation), self._utcnow())
        if channel is None:
            raise GenesysUnavailable(operation, "the answer has no channel id or connectUri",
                                     status=response.status_code)
        return channel

    def set_channel_topics(self, channel_id: str, topics: Collection[str]) -> tuple[TopicSubscription, ...]:
        """Replace the channel's topics with `topics` (PUT; an empty list drops them all), which also extends the
        channel's life by 24 h. One answer per topic sent, in order; a 404 raises `ChannelGone`."""
        return self._subscribe("PUT", channel_id, topics)

    def add_channel_topics(self, channel_id: str, topics: Collection[str]) -> tuple[TopicSubscription, ...]:
        """Add `topics` to the channel's (POST), keeping the others; otherwise as `set_channel_topics`."""
        return self._subscribe("POST", channel_id, topics)

    def _subscribe(self, method: str, channel_id: str, topics: Collection[str]) -> tuple[TopicSubscription, ...]:
        _require_id("channel_id", channel_id)
        sent = tuple(dict.fromkeys(topics))
        operation = "notification subscription"
        # ignoreErrors: a topic lacking a permission is answered Rejected instead of failing the whole call.
        path = f"{NOTIFICATION_CHANNELS}/{quote(channel_id, safe='')}/subscriptions?ignoreErrors=true"
        response = self._call(method, path, operation=operation, body=[{"id": topic} for topic in sent])
        if response.status_code == 404:
            body = ErrorBody.from_response(response, hide=(*self._tokens.hidden_values(), channel_id))
            raise ChannelGone(short_id(channel_id), operation, code=body.code, context_id=body.context_id)
        if response.status_code != 200:
            raise self._error(response, operation, ())
        return parse_subscriptions(self._json(response, operation), sent)

    # ---------------------------------------------------------------- check

    def check_permissions(self, *, customer: bool = False) -> PermissionReport:
        """Obtain a token, then exercise each call the app needs harmlessly; one check per permission.

        `customer` (SYNC_TARGET customer or both) adds a check that the customer's participant of a live
        conversation can be read: the same GET and permission as the lookup. Writing it is the same attributes
        PATCH as a person's own participant, for which Genesys declares no permission, so nothing more is probed.

        Each failure is explained by its real cause (`diagnosis.explain`): DNS, a refused connection, TLS, a timeout,
        refused credentials, or a 403 naming the permission Genesys refused. A check that an earlier failure kept
        from running (no token; Genesys unreachable, rate-limiting or refusing the token) is UNVERIFIED, not failed:
        nothing was refused. A 403 does not stop the others; each permission is independent.

        The conversation lookup reads a conversation the analytics probe found (200 proves the permission, 403
        disproves it). With no conversation to read it asks for a random id: 403 still disproves the permission, but
        a 404 proves nothing (whether Genesys checks permission before existence is undocumented), so that check is
        UNVERIFIED, with a message saying to run the check again while a conversation is live.
        """
        try:
            self._tokens.token()
        except GenesysError as exc:
            failed = PermissionCheck("token", "", Outcome.FAILED, explain(exc, self._endpoints))
            blocked = "could not be verified without a token (see the token line)"
            probes = (*_PROBES, (_CUSTOMER_CHECK, PERMISSIONS_CONVERSATION)) if customer else _PROBES
            return PermissionReport((failed, *(PermissionCheck(name, permissions[0], Outcome.UNVERIFIED, blocked)
                                               for name, permissions in probes)))
        checks = [PermissionCheck("token", "", Outcome.PASSED, f"obtained from {self._endpoints.login_url}")]
        nobody = f"permission-check-{uuid.uuid4().hex}@example.invalid"
        search, _, blocked = self._probe(_SEARCH_CHECK, PERMISSIONS_USERS_SEARCH, "POST", USERS_SEARCH,
                                         user_search_body(nobody))
        checks.append(search)
        answer = None
        if blocked:
            checks.append(self._blocked(_ANALYTICS_CHECK, PERMISSIONS_ANALYTICS, _SEARCH_CHECK))
        else:
            analytics, answer, blocked = self._probe(_ANALYTICS_CHECK, PERMISSIONS_ANALYTICS, "POST", DETAILS_QUERY,
                                                     probe_query(self._utcnow()))
            checks.append(analytics)
        if blocked:
            earlier = _SEARCH_CHECK if checks[-1].outcome is Outcome.UNVERIFIED else _ANALYTICS_CHECK
            checks.append(self._blocked(_LOOKUP_CHECK, PERMISSIONS_CONVERSATION, earlier))
            checks.append(self._blocked(_PUSH_CHECK, PERMISSIONS_PUSH, earlier))
            if customer:
                checks.append(self._blocked(_CUSTOMER_CHECK, PERMISSIONS_CONVERSATION, earlier))
        else:
            sample = _first_conversation_id(answer)
            lookup, body = self._lookup(sample)
            checks.append(lookup)
            checks.append(self._push_check())
            if customer:
                checks.append(_customer_check(lookup, sample, body))
        return PermissionReport(tuple(checks))

    def _push_check(self) -> PermissionCheck:
        """Subscribe a test topic on a new channel, then empty it: Permitted, or the permissions Genesys names.

        The channel stays (empty) until Genesys drops it after 24 h; it counts towards the client's 20 channels, so
        an app that needs all 20 may lose its oldest to a check (the app then recreates it)."""
        topic = conversations_topic(str(uuid.uuid4()))
        try:
            channel = self.create_notification_channel()
            try:
                [answer] = self.set_channel_topics(channel.id, [topic])
            finally:
                with contextlib.suppress(GenesysError):
                    self.set_channel_topics(channel.id, [])
        except GenesysError as exc:
            refused = exc.needs if isinstance(exc, PermissionMissing) else ""
            return PermissionCheck(_PUSH_CHECK, PERMISSIONS_PUSH[0], Outcome.FAILED, explain(exc, self._endpoints),
                                   refused)
        if answer.permitted:
            return PermissionCheck(_PUSH_CHECK, PERMISSIONS_PUSH[0], Outcome.PASSED,
                                   "permitted (a test topic subscribed, then removed)")
        missing = ", ".join(answer.missing_permissions) or PERMISSIONS_PUSH[0]
        return PermissionCheck(
            _PUSH_CHECK, PERMISSIONS_PUSH[0], Outcome.FAILED,
            f"Genesys rejected the topic of users' conversations ({answer.reason or 'no reason given'}): the OAuth "
            f"client's role lacks {missing}; without it the app polls every POLL_INTERVAL_SECONDS instead",
            missing)

    def _lookup(self, sample: str | None) -> tuple[PermissionCheck, Any]:
        """The lookup's check, and the conversation it read (None unless it read `sample`)."""
        target = sample or str(uuid.uuid4())
        lookup, found, _ = self._probe(_LOOKUP_CHECK, PERMISSIONS_CONVERSATION, "GET", _conversation_path(target),
                                       ok_statuses=(200, 404, 410))
        if found is None or not lookup.ok:
            return lookup, None
        if found.status_code == 200 and sample:
            body = _json_or_none(found)
            return PermissionCheck(_LOOKUP_CHECK, PERMISSIONS_CONVERSATION[0], Outcome.PASSED,
                                   f"permitted (read conversation {sample})"), body
        about = (f"conversation {sample} from the analytics query answered {found.status_code} (gone meanwhile)"
                 if sample else
                 f"the analytics query found none in the last hour, and a random id answered {found.status_code}")
        return PermissionCheck(
            _LOOKUP_CHECK, PERMISSIONS_CONVERSATION[0], Outcome.UNVERIFIED,
            f"could not be verified against a real conversation: {about}, which does not show whether the"
            " permission is granted (a 403 would have shown it is missing); run the check again while a"
            " conversation is live",
        ), None

    @staticmethod
    def _blocked(name: str, permissions: tuple[str, ...], earlier: str) -> PermissionCheck:
        return PermissionCheck(name, permissions[0], Outcome.UNVERIFIED,
                               f"could not be verified: the {earlier} failed first, for a reason that is not a"
                               " permission and would stop this one too (see above)")

    def _probe(self, name: str, permissions: tuple[str, ...], method: str, path: str, body: Any = None, *,
               ok_statuses: tuple[int, ...] = (200,)) -> tuple[PermissionCheck, httpx.Response | None, bool]:
        """One harmless call: a passed check (and the answer) if its status is in ok_statuses, else why it failed.

        The bool is True when the failure says nothing about permissions and would repeat for the next probe
        (Genesys unreachable, unavailable or rate-limiting, or refusing the token): the later probes are skipped
        rather than each waiting through the same retries.
        """
        try:
            response = self._call(method, path, operation=name, body=body)
            error = None if response.status_code in ok_statuses else self._error(response, name, permissions)
        except GenesysError as exc:
            response, error = None, exc
        if error is None:
            return PermissionCheck(name, permissions[0], Outcome.PASSED, "permitted"), response, False
        refused = error.needs if isinstance(error, PermissionMissing) else ""
        check = PermissionCheck(name, permissions[0], Outcome.FAILED, explain(error, self._endpoints), refused)
        return check, None, isinstance(error, GenesysTransientError | AuthenticationFailed)

    # ------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the `httpx.Client` if this client built it."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -------------------------------------------------------------- private

    def _call(self, method: str, path: str, *, operation: str, body: Any = None,
              deadline: float | None = None) -> httpx.Response:
        """Send one API request; one deadline (max_total_s, or the earlier `deadline`) covers all of it."""
        own = self._clock() + self._policy.max_total_s
        deadline = own if deadline is None else min(own, deadline)
        url = f"{self._endpoints.api_url}{path}"
        token = self._tokens.token(deadline=deadline)
        response = self._api.send(self._request(method, url, token, body), operation=operation, deadline=deadline)
        if response.status_code != 401:
            return response
        log.info("Genesys refused the token for the %s (401); obtaining a new token and repeating once", operation)
        self._tokens.invalidate(token)
        token = self._tokens.token(deadline=deadline)
        response = self._api.send(self._request(method, url, token, body), operation=operation, deadline=deadline)
        if response.status_code == 401:
            error = ErrorBody.from_response(response, hide=self._tokens.hidden_values())
            raise AuthenticationFailed(
                f"the API refused a token obtained moments before ({operation} answered 401)",
                client_id=self._credentials.client_id, status=401, code=error.code, context_id=error.context_id,
                host=host_of(response.request.url), refused_token=True,
            )
        return response

    def _request(self, method: str, url: str, token: AccessToken, body: Any) -> httpx.Request:
        headers = {"Authorization": token.authorization, "Accept": "application/json"}
        if body is None:
            return self._http.build_request(method, url, headers=headers)
        return self._http.build_request(method, url, headers=headers, json=body)

    @staticmethod
    def _json(response: httpx.Response, operation: str) -> Mapping[str, Any]:
        try:
            payload = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            payload = None
        if not isinstance(payload, Mapping):
            body = ErrorBody.from_response(response)  # only its contextId is used
            raise GenesysUnavailable(operation, "the answer was not a JSON object", status=response.status_code,
                                     context_id=body.context_id)
        return payload

    def _error(self, response: httpx.Response, operation: str, permissions: tuple[str, ...], *,
               conversation_id: str | None = None, participant_id: str | None = None,
               write: bool = False) -> GenesysError:
        body = ErrorBody.from_response(response, hide=self._tokens.hidden_values())
        message = body.message
        status = response.status_code
        where = {"status": status, "code": body.code, "context_id": body.context_id}
        if conversation_id is not None and (status in (404, 410) or _means_gone(body.code)):
            return ConversationGone(conversation_id, participant_id, genesys_message=message, **where)
        if status == 403:
            return PermissionMissing(operation, body.permissions() or permissions, genesys_message=message, **where)
        # 429, 502, 503 and 504 never get here: the retry layer raises RateLimited/GenesysUnavailable for them.
        if status >= 500 or status == 408:
            return GenesysUnavailable(operation, f"HTTP {status}", **where)
        if write and status in (400, 413, 422):
            return AttributesRejected(conversation_id or "", participant_id or "", genesys_message=message,
                                      message_params=body.message_params, **where)
        return RequestRejected(operation, genesys_message=message, message_params=body.message_params, **where)


def _customer_check(lookup: PermissionCheck, sample: str | None, conversation: Any) -> PermissionCheck:
    """SYNC_TARGET customer/both: the customer's participant is read with the lookup's GET and permission, and
    written with the attributes PATCH, which declares no permission; so this check stands or falls with the lookup."""
    permission = PERMISSIONS_CONVERSATION[0]
    if lookup.outcome is Outcome.FAILED:
        return PermissionCheck(_CUSTOMER_CHECK, permission, Outcome.FAILED,
                               "cannot be read without the conversation lookup's permission (see that line)",
                               lookup.refused)
    participants = conversation.get("participants") if isinstance(conversation, Mapping) else None
    purposes = {p.get("purpose") for p in participants if isinstance(p, Mapping)} if isinstance(participants, list) \
        else set()
    if lookup.ok and purposes & CUSTOMER_PURPOSES:
        return PermissionCheck(_CUSTOMER_CHECK, permission, Outcome.PASSED,
                               f"permitted (read conversation {sample}'s customer participant; writing it is the "
                               "attributes PATCH, which needs no further permission)")
    about = f"conversation {sample} has no customer or external participant" if lookup.ok \
        else "no conversation could be read (see the conversation lookup)"
    return PermissionCheck(_CUSTOMER_CHECK, permission, Outcome.UNVERIFIED,
                           f"could not be verified: {about}; run the check again while a call with a customer is "
                           "live")


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _first_conversation_id(response: httpx.Response | None) -> str | None:
    """The first conversationId in an analytics answer, if any."""
    if response is None:
        return None
    try:
        payload = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    conversations = payload.get("conversations") if isinstance(payload, Mapping) else None
    for conversation in conversations if isinstance(conversations, list) else []:
        conversation_id = conversation.get("conversationId") if isinstance(conversation, Mapping) else None
        if isinstance(conversation_id, str) and conversation_id.strip():
            return conversation_id
    return None


def _means_gone(code: str | None) -> bool:
    return bool(code) and code.startswith("conversation.") and any(hint in code for hint in _GONE_CODE_HINTS)


def _conversation_path(conversation_id: str) -> str:
    return f"/api/v2/conversations/{quote(conversation_id, safe='')}"


def _require_id(name: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, not {value!r}")
