"""The one way a failure reaches a Slack user: a short message with an error id, never the error's own text.

An exception's text can carry what the person asking must not see (host names, another person's e-mail, a
database URL, Genesys' request ids) and means nothing to them anyway. They get an error id instead; the one log
line for that failure carries the same id next to the full cause, so an operator finds it with `grep`.
"""

from __future__ import annotations

import logging
import secrets

__all__ = ["logged_failure"]


def logged_failure(logger: logging.Logger, what: str, error: BaseException, *, traceback: bool = False,
                   level: int = logging.WARNING) -> str:
    """Log `what` failed, with its cause, in one line tagged `[error id …]`; returns the id (8 hex digits) to show
    in the cause's place. `traceback` logs it at ERROR with the exception's traceback (for what is a bug)."""
    error_id = secrets.token_hex(4)
    # The class name too: `KeyError('user')` prints as just 'user'.
    cause = f"{type(error).__name__}: {error}"
    fields = {"error_id": error_id}  # LOG_FORMAT=json carries it as a field of its own too
    if traceback:
        logger.error("%s [error id %s]: %s", what, error_id, cause, exc_info=error, stacklevel=2, extra=fields)
    else:
        logger.log(level, "%s [error id %s]: %s", what, error_id, cause, stacklevel=2, extra=fields)
    return error_id
