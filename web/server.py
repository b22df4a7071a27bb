"""The HTTP server (waitress): listening on PORT, run until SIGTERM or SIGINT, with limits taken from the app's own,
so a hostile client cannot make it read a large body, hold Slack out with idle connections, or forge a log line.
What each limit answers: docs/reliability.md.

waitress's defaults are for a general web server: a 1 GiB body is read before the app sees it, 100 connections
in all, an idle one kept for 120 s (checked every 30 s). Slack delivers over a few connections, waits 3 s for an
answer and sends a few KB, so the limits below are set from that.
"""

from __future__ import annotations

import logging
import resource
import signal
import threading
from dataclasses import dataclass
from typing import Any, Final

from waitress.server import create_server

from config import ConfigError, describe_cause
from genesys import CONTROL_CHARACTERS
from web.wsgi import MAX_BODY_BYTES, WsgiApp

log = logging.getLogger(__name__)
# The start-up and shutdown lines keep the name of the module they were first logged from (operators' filters).
app_log = logging.getLogger("app")

CONNECTION_LIMIT: Final = 2000
"""Open connections at once: far above any idle flood one client can sustain within CHANNEL_TIMEOUT_S, so Slack's
deliveries still get a connection; each costs one file descriptor and a few KB, no thread."""
CHANNEL_TIMEOUT_S: Final = 10
"""An idle connection is closed after this: Slack answers in under 3 s, so 10 s idle is a client that sends nothing."""
CLEANUP_INTERVAL_S: Final = 2
"""How often idle connections are looked for (waitress: 30 s), so one lives at most CHANNEL_TIMEOUT_S + 2 s."""
MAX_HEADER_BYTES: Final = 64 * 1024
"""Slack's headers (and a proxy's additions) are well under 8 KB; waitress's 256 KiB per connection is wasted."""
FILE_DESCRIPTOR_RESERVE: Final = 200
"""Descriptors kept for everything else: the database, Slack and Genesys connections, logs, temporary files."""


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """The waitress settings the app runs with."""

    connection_limit: int = CONNECTION_LIMIT
    channel_timeout_s: int = CHANNEL_TIMEOUT_S
    cleanup_interval_s: int = CLEANUP_INTERVAL_S
    max_body_bytes: int = MAX_BODY_BYTES
    max_header_bytes: int = MAX_HEADER_BYTES

    def waitress_options(self) -> dict[str, Any]:
        return {
            "connection_limit": self.connection_limit,
            "channel_timeout": self.channel_timeout_s,
            "cleanup_interval": self.cleanup_interval_s,
            # waitress refuses a body of max_request_body_size bytes or more (a Content-Length at once, after the
            # headers; a chunked body as soon as it grows that large) with its own 413, so +1 lets MAX_BODY_BYTES in.
            "max_request_body_size": self.max_body_bytes + 1,
            "max_request_header_size": self.max_header_bytes,
            # select() cannot watch descriptors numbered 1024 or above, which a connection limit over ~1000 reaches.
            "asyncore_use_poll": True,
        }


def limits_for_open_files(wanted: ServerLimits = ServerLimits()) -> ServerLimits:
    """`wanted`, with the soft open-file limit raised (up to the hard one) to fit its connection limit; if it cannot
    be, the connection limit that fits, logged once. Past the open-file limit accept() fails on every turn of the
    server's loop; at the connection limit waitress stops accepting and new connections wait in the listen backlog
    until an idle one is closed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = wanted.connection_limit + FILE_DESCRIPTOR_RESERVE
    if soft != resource.RLIM_INFINITY and soft < needed:
        raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (ValueError, OSError) as error:
            log.warning("could not raise the open-file limit from %d to %d: %s", soft, raised, error)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return wanted
    fitting = max(soft - FILE_DESCRIPTOR_RESERVE, 1)
    log.warning("the open-file limit (%d, hard %d) allows %d HTTP connections at once, not %d; raise it (ulimit -n,"
                " docker run --ulimit nofile=…) for more", soft, hard, fitting, wanted.connection_limit)
    return ServerLimits(fitting, wanted.channel_timeout_s, wanted.cleanup_interval_s, wanted.max_body_bytes,
                        wanted.max_header_bytes)


def create(app: WsgiApp, *, port: int, threads: int, ident: str, host: str = "0.0.0.0") -> Any:
    """A waitress server for `app` on `port` with the app's limits; raises OSError when it cannot listen."""
    limits = limits_for_open_files()
    logging.getLogger("waitress").addFilter(_quote_control_characters)
    return create_server(app, host=host, port=port, threads=threads, ident=ident, **limits.waitress_options())


def listen(app: WsgiApp, port: int) -> Any:
    """The app's server on `port`, listening; one that cannot listen is a settings problem naming PORT."""
    try:
        # 8 threads: on 2 cores more threads only contend for the GIL (measured: p99 worse at 16 in a burst).
        return create(app, port=port, threads=8, ident="slack-genesys-sync")
    except OSError as error:
        raise ConfigError(f"PORT: cannot listen on port {port} ({describe_cause(error)})") from None


def stop_on_signals(server: Any, stopping: threading.Event) -> None:
    """On SIGTERM or SIGINT: set `stopping` (the engine and the Genesys client's waits end) and stop `server`."""

    def shut_down(signum: int, _frame: object) -> None:
        app_log.info("received %s; stopping", signal.Signals(signum).name)
        stopping.set()
        stop(server)

    signal.signal(signal.SIGTERM, shut_down)
    signal.signal(signal.SIGINT, shut_down)


def run(server: Any, stopping: threading.Event) -> None:
    """Serve until `server` is stopped; the error a closed listener may raise once `stopping` is set is the stop."""
    try:
        server.run()
    except OSError:
        if not stopping.is_set():
            raise


def stop(server: Any) -> None:
    """Stop `server` (from a signal handler, on the thread that runs it): close it and every connection it holds.
    With poll() a closed server does not end the loop while connections stay open (select() raised on the closed
    descriptor, poll() reports it and goes on), so an idle keep-alive would hold SIGTERM off; waitress has no public
    way to reach its connections, hence its `_map`."""
    server.close()
    for connection in list(server._map.values()):
        connection.close()


def _quote_control_characters(record: logging.LogRecord) -> bool:
    """waitress puts the request's decoded path into some lines ("Client disconnected while serving /a\\nb")
    unquoted; a newline there would start a forged line, so control characters are written escaped."""
    message = record.getMessage()
    if CONTROL_CHARACTERS.search(message):
        record.msg, record.args = CONTROL_CHARACTERS.sub(lambda match: repr(match.group())[1:-1], message), None
    return True
