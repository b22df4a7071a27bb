"""The adapter's exception tree: shape, messages and Genesys ErrorBody parsing."""

from __future__ import annotations

import base64
import inspect

import httpx
import pytest

import genesys.errors
from genesys import (
    AttributesRejected,
    AuthenticationFailed,
    ChannelGone,
    ConversationGone,
    GenesysError,
    GenesysSettingsError,
    GenesysTransientError,
    GenesysUnavailable,
    PermissionMissing,
    RateLimited,
    RequestRejected,
)
from genesys.errors import ErrorBody

EXAMPLES: list[GenesysError] = [
    GenesysSettingsError("GENESYS_REGION", "is not set"),
    AuthenticationFailed("the token endpoint answered 401", client_id="abc", status=401, code="invalid_client"),
    PermissionMissing("users search", ("directory:user:view",), code="missing.permissions", context_id="ctx-1"),
    ConversationGone("c-1", "p-1", status=404, code="not.found", context_id="ctx-2"),
    ChannelGone("1a2b3c4d…", "notification subscription", code="not.found"),
    RequestRejected("users search", genesys_message="bad", status=400, code="bad.request"),
    AttributesRejected("c-1", "p-1", genesys_message="too big", status=413, code="request.entity.too.large"),
    RateLimited("attributes write", attempts=5, elapsed_s=12.0, retry_after=7, code="too.many.requests"),
    GenesysUnavailable("analytics conversation query", "503 service.unavailable", attempts=5, elapsed_s=13.0,
                       status=503),
]
EXAMPLE = {type(error): error for error in EXAMPLES}  # one example per type: tests name the one they need


@pytest.mark.parametrize("error", EXAMPLES, ids=lambda e: type(e).__name__)
def test_every_error_is_a_genesys_error_with_status_code_and_context(error: GenesysError) -> None:
    """Callers catch GenesysError once; each carries status, code and context_id attributes."""
    assert isinstance(error, GenesysError)
    for name in ("status", "code", "context_id"):
        assert hasattr(error, name)
    assert type(error).__name__ in repr(error)


@pytest.mark.parametrize("error", EXAMPLES, ids=lambda e: type(e).__name__)
def test_only_the_transient_branch_is_retryable(error: GenesysError) -> None:
    """RateLimited and GenesysUnavailable (and only they) are GenesysTransientError."""
    transient = isinstance(error, RateLimited | GenesysUnavailable)
    assert isinstance(error, GenesysTransientError) is transient
    assert error.retryable is transient


@pytest.mark.parametrize(
    ("error", "advice"),
    [
        (EXAMPLE[AuthenticationFailed], "Check GENESYS_CLIENT_ID and GENESYS_CLIENT_SECRET"),
        (EXAMPLE[PermissionMissing], "Add it to a role granted to the OAuth client"),
        (EXAMPLE[ConversationGone], "nothing to do"),
        (EXAMPLE[ChannelGone], "a new channel is created"),
        (EXAMPLE[RequestRejected], "report it with the contextId"),
        (EXAMPLE[AttributesRejected], "adjust the field mapping"),
        (EXAMPLE[RateLimited], "Lower the configured requests per minute"),
        (EXAMPLE[GenesysUnavailable], "status.mypurecloud.com"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else "",
)
def test_messages_say_what_failed_and_what_to_do(error: GenesysError, advice: str) -> None:
    """str() names the failed operation or object and gives the operator a next step."""
    assert advice in str(error)


def test_details_are_appended_to_the_message() -> None:
    """HTTP status, Genesys code and contextId follow the message so support can find the request."""
    text = str(EXAMPLE[ConversationGone])
    assert text.endswith("[HTTP 404, code not.found, contextId ctx-2]")


def test_permission_names_are_joined_by_meaning() -> None:
    """missing.permissions needs all listed permissions; missing.any.permissions needs one of them."""
    both = ("a:b:view", "c:d:edit")
    assert "needs a:b:view and c:d:edit" in str(PermissionMissing("x", both, code="missing.permissions"))
    assert "needs a:b:view or c:d:edit" in str(PermissionMissing("x", both, code="missing.any.permissions"))


def test_error_body_parses_genesys_shape() -> None:
    """code, message, messageParams and contextId come from a Genesys ErrorBody."""
    response = httpx.Response(403, json={
        "message": "You must have at least one of the following permissions assigned: [a:b:view, c:dE:view]",
        "code": "missing.any.permissions", "status": 403,
        "messageParams": {"permissions": "[a:b:view, c:dE:view]"}, "contextId": "ctx-9",
    })
    body = ErrorBody.from_response(response)
    assert (body.status, body.code, body.context_id) == (403, "missing.any.permissions", "ctx-9")
    assert body.message_params == {"permissions": "[a:b:view, c:dE:view]"}
    assert body.permissions() == ("a:b:view", "c:dE:view")


def test_error_body_reads_permissions_from_the_message_alone() -> None:
    """Without messageParams the permission names are taken from the message."""
    response = httpx.Response(403, json={"message": "missing the following permission(s): directory:user:view"})
    assert ErrorBody.from_response(response).permissions() == ("directory:user:view",)


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(502, text="<html>Bad gateway</html>", headers={"ININ-Correlation-Id": "hdr-1"}),
        httpx.Response(500, json=["not", "an", "object"], headers={"ININ-Correlation-Id": "hdr-1"}),
        httpx.Response(503, content=b"\xff\xfe", headers={"ININ-Correlation-Id": "hdr-1"}),
    ],
)
def test_error_body_tolerates_non_genesys_bodies(response: httpx.Response) -> None:
    """HTML, lists and undecodable bytes parse to an empty body; the correlation header still counts."""
    body = ErrorBody.from_response(response)
    assert (body.code, body.message, body.context_id) == (None, "", "hdr-1")


def test_error_body_reads_oauth_errors() -> None:
    """The token endpoint's {error, error_description} shape gives code and message."""
    response = httpx.Response(401, json={"error": "invalid_client", "error_description": "authentication failed"})
    body = ErrorBody.from_response(response)
    assert (body.code, body.message) == ("invalid_client", "authentication failed")


def test_long_genesys_messages_are_shortened() -> None:
    """A huge Genesys message is cut so log lines stay readable."""
    response = httpx.Response(400, json={"message": "x" * 5000})
    assert len(ErrorBody.from_response(response).message) <= 301


def test_the_docstring_tree_matches_the_code() -> None:
    """The module docstring names every error class, says AttributesRejected covers 400/413/422 as the client
    does, and points to VoiceSafeSettingsError as the one settings error outside the tree."""
    doc = genesys.errors.__doc__ or ""
    classes = [c for _, c in inspect.getmembers(genesys.errors, inspect.isclass)
               if issubclass(c, GenesysError) and c.__module__ == "genesys.errors"]
    assert len(classes) == 13
    for cls in classes:
        assert cls.__name__ in doc
    assert "AttributesRejected      400/413/422" in doc
    assert "VoiceSafeSettingsError" in doc
    assert "GENESYS_LOGIN_URL" in doc


@pytest.mark.parametrize(
    ("authorization", "secrets"),
    [
        ("Bearer tok-SECRET-1", ("tok-SECRET-1",)),
        ("Basic " + base64.b64encode(b"client-id:s3cret-XYZ").decode(),
         (base64.b64encode(b"client-id:s3cret-XYZ").decode(), "s3cret-XYZ")),
    ],
    ids=["bearer", "basic"],
)
def test_error_body_hides_the_credentials_its_request_carried(authorization: str, secrets: tuple[str, ...]) -> None:
    """Whatever Genesys echoes from the Authorization header is <hidden> in code, message and messageParams."""
    request = httpx.Request("POST", "https://api.mypurecloud.ie/x", headers={"Authorization": authorization})
    echo = f"{authorization} / {secrets[-1]}"
    response = httpx.Response(400, request=request, json={
        "code": f"bad.{secrets[0]}", "message": echo, "messageParams": {"header": echo, secrets[0]: "x"},
    })
    body = ErrorBody.from_response(response)
    shown = repr(body)
    assert "<hidden>" in body.message
    for secret in secrets:
        assert secret not in shown
