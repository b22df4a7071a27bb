"""LOG_FORMAT: `text` (the default) or `json`, one JSON object per line with the text line's content, redacted alike."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest

from config import ConfigError, JsonLogLines, LogRedaction, TextLogLines, configure_logging, read_settings
from sync.failures import logged_failure

SECRET = "genesys-client-secret-44b2"


@pytest.mark.parametrize(("raw", "chosen"), [(None, "text"), ("", "text"), ("text", "text"), ("json", "json"),
                                             (" JSON ", "json")])
def test_log_format_is_read(raw: str | None, chosen: str) -> None:
    """LOG_FORMAT is text or json (any case, trimmed); unset or empty is text."""
    environ = {} if raw is None else {"LOG_FORMAT": raw}
    assert read_settings(environ).log_format == chosen


def test_an_unknown_log_format_is_named_with_the_choices() -> None:
    """LOG_FORMAT=xml is a settings error naming the setting and both choices; a bad LOG_LEVEL is named beside it."""
    with pytest.raises(ConfigError) as refused:
        read_settings({"LOG_FORMAT": "xml", "LOG_LEVEL": "LOUD"})
    assert [problem.split(":")[0] for problem in refused.value.problems] == ["LOG_LEVEL", "LOG_FORMAT"]
    assert "'xml' is not one of text, json" in str(refused.value)
    assert "json (one JSON object per line" in str(refused.value)


@pytest.fixture
def app_log() -> Iterator[tuple[logging.Logger, io.StringIO, logging.Handler]]:
    """A logger writing through a handler set up as configure_logging sets up the app's (redaction, formatter)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(TextLogLines())
    handler.addFilter(LogRedaction([SECRET]))
    logger = logging.getLogger("tests.log_format")
    logger.propagate, logger.level = False, logging.DEBUG
    logger.addHandler(handler)
    try:
        yield logger, stream, handler
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


def json_lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_json_line_has_time_level_logger_message_and_structured_fields(app_log: tuple[logging.Logger, io.StringIO,
                                                                                   logging.Handler]) -> None:
    """A failure's line is one JSON object: UTC time, level, logger, the text line's message and its error id."""
    logger, stream, handler = app_log
    handler.setFormatter(JsonLogLines())
    error_id = logged_failure(logger, "writing Slack user U1 failed", ValueError("boom"))
    [line] = json_lines(stream)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(line.pop("time")))
    assert line == {"level": "WARNING", "logger": "tests.log_format", "error_id": error_id,
                    "message": f"writing Slack user U1 failed [error id {error_id}]: ValueError: boom"}


def test_json_and_text_lines_carry_the_same_redacted_message(app_log: tuple[logging.Logger, io.StringIO,
                                                                            logging.Handler]) -> None:
    """The same call logged in both formats: the text line ends with the JSON line's message, secrets, tokens and
    e-mail addresses cut out of both, also from a structured field and a traceback."""
    logger, stream, handler = app_log
    leaky = f"token xoxb-123-456 secret {SECRET} for ada@example.com"

    def log_both() -> None:
        try:
            raise RuntimeError(leaky)
        except RuntimeError:
            logger.exception("failed: %s", leaky, extra={"detail": leaky, "body": {"token": "abc-123"}, "count": 2})

    log_both()
    text = stream.getvalue()
    stream.truncate(0)
    stream.seek(0)
    handler.setFormatter(JsonLogLines())
    log_both()
    [line] = json_lines(stream)
    redacted = "token xoxb-*** secret *** for ***@***"
    assert line["message"] == f"failed: {redacted}"
    assert line["detail"] == redacted
    assert line["body"] == "{'token': ***}"
    assert line["count"] == 2
    assert "Traceback" in str(line["exception"])
    assert redacted in str(line["exception"])
    assert text.splitlines()[0].endswith(f"ERROR tests.log_format: failed: {redacted}")
    for written in (text, stream.getvalue()):
        assert SECRET not in written
        assert "xoxb-123" not in written
        assert "ada@example.com" not in written


@pytest.mark.parametrize(("log_format", "formatter"), [("json", JsonLogLines), ("text", TextLogLines)])
def test_configure_logging_sets_the_format_of_the_apps_handler_only(log_format: str,
                                                                    formatter: type[logging.Formatter]) -> None:
    """configure_logging gives the app's own handler the chosen format, and leaves a test runner's handler alone."""
    root = logging.getLogger()
    app_handler = logging.StreamHandler(io.StringIO())
    app_handler.setFormatter(TextLogLines())
    other = logging.StreamHandler(io.StringIO())
    other_formatter = logging.Formatter("%(message)s")
    other.setFormatter(other_formatter)
    root.addHandler(app_handler)
    root.addHandler(other)
    try:
        configure_logging("INFO", log_format=log_format)
        assert type(app_handler.formatter) is formatter
        assert other.formatter is other_formatter
        assert any(isinstance(f, LogRedaction) for f in app_handler.filters)
    finally:
        root.removeHandler(app_handler)
        root.removeHandler(other)
