"""`python app.py demo`: the whole product on this machine, with no Slack or Genesys Cloud account.

Starts the local stand-ins of Slack and Genesys Cloud (localdev/) on 127.0.0.1 and runs the real app against them
as `python app.py serve` in a child process, with settings of its own (never the operator's `.env` or environment)
and a temporary working directory for its store. A sample person goes on a voice call; signed `user_change` events
carry her profile, then a new title, and the demo prints what reaches the call and how fast. At the end the app and
the stand-ins stop and the temporary directory goes: nothing is left behind. `--keep` leaves everything running
until Ctrl-C, with a control endpoint that changes the sample person's title.

localdev/ is imported only when the demo runs: the production image leaves localdev/ out, and `serve` must not
need it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from localdev.app_process import Running
    from localdev.genesys_cloud import FakeGenesysCloud, JoinedParticipant
    from localdev.http_server import LocalHttpServer, Request
    from localdev.slack_api import FakeSlack

EXIT_OK, EXIT_FAILED, EXIT_UNAVAILABLE, EXIT_INTERRUPTED = 0, 1, 2, 130
APP = Path(__file__).resolve().parent.parent / "app.py"
LOG_TAIL_LINES = 20
MAX_TITLE_CHARS = 200
"""Well under the 256 characters a Genesys attribute value may have, so a title is never cut and always matches."""
SHOWN_ATTRIBUTES = ("slack.title", "slack.real_name", "slack.custom.Department", "slack.timezone", "slack.user_id")


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """How to run the demo; the defaults are the command's."""

    keep: bool = False
    python: str = sys.executable
    app: Path = APP
    healthy_within_s: float = 30.0
    written_within_s: float = 20.0
    poll_interval_s: int = 1
    """The app's POLL_INTERVAL_SECONDS: its smallest, so the demo is quick."""
    temp_root: Path | None = None
    """Where the temporary working directory is made; None: the system's (TMPDIR)."""


@dataclass(frozen=True, slots=True)
class SamplePerson:
    """The person the demo puts on a call."""

    slack_id: str = "U0ADA"
    handle: str = "ada"
    name: str = "Ada Lovelace"
    email: str = "ada@example.com"
    title: str = "Support Engineer"
    new_title: str = "Team Lead"
    department: str = "Customer Care"


SAMPLE = SamplePerson()
DEPARTMENT_FIELD = "Xf0DEPT0001"


class DemoFailed(Exception):
    """The demo cannot go on; the message is one line that says why."""


class Interrupted(Exception):
    """SIGINT or SIGTERM asked the demo to stop."""


class StopFlag:
    """Set by SIGINT or SIGTERM, read by the demo's waits. A plain attribute rather than a threading.Event: setting
    an Event takes a lock, which the interrupted main thread may be holding inside Event.wait()."""

    def __init__(self) -> None:
        self.signal_name: str | None = None

    def request(self, signal_name: str) -> None:
        self.signal_name = signal_name

    @property
    def requested(self) -> bool:
        return self.signal_name is not None


def run(keep: bool, *, out: IO[str], err: IO[str]) -> int:
    """The `demo` command: `demo` with SIGINT and SIGTERM turned into a clean stop. Main thread only."""
    sys.dont_write_bytecode = True  # localdev/ is imported from here on: no __pycache__ left by the demo
    stop = StopFlag()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.request(signal.Signals(signum).name)

    previous = {number: signal.signal(number, on_signal) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        return demo(DemoOptions(keep=keep), out=out, err=err, stop=stop)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def demo(options: DemoOptions, *, out: IO[str], err: IO[str], stop: StopFlag) -> int:
    """Run the scripted steps (and with `keep`, stay up until `stop`); returns the exit status."""
    try:
        import localdev.app_process  # noqa: F401  (only checks that the local stand-ins are here)
    except ModuleNotFoundError as error:
        if error.name != "localdev":
            raise
        print("demo: needs localdev/ from a clone of the repository (the production image leaves it out)", file=err)
        return EXIT_UNAVAILABLE
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="slack-genesys-sync-demo-", dir=options.temp_root))
    session = _Session(options, workdir, out, stop)
    try:
        failure = _steps(session)
        log_tail = session.log_tail() if failure else []
    finally:  # whatever happened, even a closed stdout: stop everything and remove the directory
        leftovers = session.close()
    if failure:
        print(f"demo: {failure}", file=err)
        if log_tail:
            print("The app's last log lines:", file=err)
            for line in log_tail:
                print(f"  {line}", file=err)
    if leftovers:
        print(f"demo: could not clean up: {'; '.join(leftovers)}", file=err)
    if failure or leftovers:
        return EXIT_FAILED
    if stop.requested and options.keep:
        session.say(f"Stopped ({stop.signal_name}): the app and the local Slack and Genesys Cloud are gone, nothing "
                    "was left behind. Goodbye.")
        return EXIT_OK
    if stop.requested:
        session.say(f"Demo interrupted ({stop.signal_name}): everything stopped, nothing was left behind.")
        return EXIT_INTERRUPTED
    session.say(f"Demo finished in {time.monotonic() - started:.1f} s: nothing was left behind.")
    return EXIT_OK


def _steps(session: _Session) -> str | None:
    """The scripted steps, then (`keep`) staying up; returns why the demo failed, or None."""
    try:
        _scripted_steps(session)
        if session.options.keep:
            _stay_up(session)
    except Interrupted:
        return None
    except DemoFailed as error:
        # A terminal's Ctrl-C reaches the app too: a step that failed because the app stopped is no failure then.
        return None if session.stop.requested else str(error)
    return None


def _scripted_steps(session: _Session) -> None:
    session.start_stand_ins()
    session.say("Local Slack and Genesys Cloud started on 127.0.0.1 (no account needed)")
    healthy_s = session.start_app()
    session.say(f"App started (python app.py serve), healthy in {healthy_s:.1f} s")
    participant = session.put_on_call()
    session.say(f"{SAMPLE.name} ({SAMPLE.email}) is on a voice call: "
                f"conversation {_short(participant.conversation_id)}, participant {_short(participant.participant_id)}")
    written_ms = session.send_profile()
    session.say(f"Slack sent a signed user_change; attributes written to that participant in {written_ms} ms:")
    for line in attribute_lines(session.attributes()):
        session.say(f"  {line}")
    session.change_title(SAMPLE.new_title)
    new_call_ms = session.next_call()
    session.say(f"{SAMPLE.name}'s next call (a new conversation) carried her attributes in {new_call_ms} ms: Genesys "
                "notified the app, no poll")


def _stay_up(session: _Session) -> None:
    control = session.start_control()
    settings, participant = session.settings, session.participant
    app_url, genesys = session.app_url, settings["GENESYS_API_URL"]
    session.say(
        "\nStill running (--keep). Ctrl-C stops everything.\n"
        f"  App health:          {app_url}/healthz\n"
        f"  Local Slack API:     {settings['SLACK_API_URL']} (bot token {settings['SLACK_BOT_TOKEN']}, signing "
        f"secret {settings['SLACK_SIGNING_SECRET']})\n"
        f"  Local Genesys API:   {genesys} (client {settings['GENESYS_CLIENT_ID']}, secret "
        f"{settings['GENESYS_CLIENT_SECRET']})\n"
        f"  The live call:       conversation {participant.conversation_id}, participant {participant.participant_id}\n"
        f"  Its attributes now:  curl -sS {control}/demo/attributes\n"
        f"Change {SAMPLE.name}'s title in the local Slack (the app gets a signed user_change):\n"
        f"  curl -sS --data-urlencode 'value=Head of Support' {control}/demo/title\n"
        "Push a profile by hand, as an operator would (from the repository):\n"
        f"  GENESYS_API_URL={genesys} GENESYS_LOGIN_URL={settings['GENESYS_LOGIN_URL']} "
        f"GENESYS_CLIENT_ID={settings['GENESYS_CLIENT_ID']} GENESYS_CLIENT_SECRET={settings['GENESYS_CLIENT_SECRET']} "
        f"python app.py push examples/slack-user.json --email {SAMPLE.email}"
    )
    session.wait_for_stop()


def attribute_lines(attributes: dict[str, str]) -> list[str]:
    """A few telling `key = value` lines, then how many more there are."""
    shown = [key for key in SHOWN_ATTRIBUTES if key in attributes]
    lines = [f"{key} = {attributes[key]}" for key in shown]
    if len(attributes) > len(shown):
        lines.append(f"… and {len(attributes) - len(shown)} more ({len(attributes)} attributes in all)")
    return lines


def _short(identifier: str) -> str:
    return f"{identifier[:8]}…"


def child_environment(settings: dict[str, str], workdir: Path) -> dict[str, str]:
    """The app's whole environment: the stand-ins' settings and PATH, nothing of the operator's (no SLACK_*,
    GENESYS_*, LOG_LEVEL, SYNC_SETTINGS_FILE…), and no byte-code files written."""
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",  # the log file is complete when a failure shows its last lines
        "LOG_LEVEL": "INFO",
        **settings,
        "DATABASE_URL": f"sqlite:///{workdir / 'sync.db'}",
    }


class _Session:
    """The stand-ins, the app process and the sample call; `close()` undoes all of it."""

    def __init__(self, options: DemoOptions, workdir: Path, out: IO[str], stop: StopFlag) -> None:
        self.options = options
        self.workdir = workdir
        self.stop = stop
        self._out = out
        self._out_lock = threading.Lock()  # the control endpoint's thread prints too
        self._change_lock = threading.Lock()  # one title change at a time, so events and waits pair up
        self._closing = threading.Event()
        self._slack: FakeSlack | None = None
        self._genesys: FakeGenesysCloud | None = None
        self._app: Running | None = None
        self._control: LocalHttpServer | None = None
        self._participant: JoinedParticipant | None = None
        self._settings: dict[str, str] = {}
        self._log_path = workdir / "app.log"

    # -- output ---------------------------------------------------------------------------------------------

    def say(self, line: str) -> None:
        with self._out_lock:
            print(line, file=self._out, flush=True)

    # -- the parts ------------------------------------------------------------------------------------------

    def start_stand_ins(self) -> None:
        from localdev.genesys_cloud import FakeGenesysCloud
        from localdev.slack_api import FakeSlack

        try:
            self._slack = FakeSlack().start()
            self._genesys = FakeGenesysCloud().start()
        except OSError as error:
            raise DemoFailed(f"cannot start the local Slack and Genesys Cloud on 127.0.0.1: {error}") from None
        # Defined before the app starts, as in a real workspace: the app reads field labels when it needs them.
        self._slack.define_field(DEPARTMENT_FIELD, "Department")

    def start_app(self) -> float:
        """Start `python app.py serve` and wait for /healthz; returns the seconds it took."""
        from localdev.app_process import Running, app_settings, free_port

        slack, genesys = self._stand_ins()
        settings = app_settings(slack, genesys, free_port())
        settings["POLL_INTERVAL_SECONDS"] = str(self.options.poll_interval_s)
        settings["GENESYS_PUSH"] = "on"  # as shipped: new calls arrive over the local Genesys' notifications
        self._settings = settings
        started = time.monotonic()
        try:
            with self._log_path.open("wb") as log_file:
                process = subprocess.Popen(
                    [self.options.python, str(self.options.app), "serve"], cwd=self.workdir,
                    env=child_environment(settings, self.workdir), stdin=subprocess.DEVNULL, stdout=log_file,
                    stderr=subprocess.STDOUT,
                )
        except OSError as error:
            raise DemoFailed(f"cannot start {self.options.python} {self.options.app} serve: {error}") from None
        self._app = Running(process, f"http://127.0.0.1:{settings['PORT']}", slack, genesys, self._log_path)
        self._wait(self._healthy, self.options.healthy_within_s, "the app's /healthz to answer 200", every_s=0.05)
        return time.monotonic() - started

    def put_on_call(self) -> JoinedParticipant:
        slack, genesys = self._stand_ins()
        slack.add_user(SAMPLE.slack_id, name=SAMPLE.handle, real_name=SAMPLE.name, email=SAMPLE.email,
                       title=SAMPLE.title, tz="Europe/London")
        slack.set_custom_field(SAMPLE.slack_id, DEPARTMENT_FIELD, SAMPLE.department)
        self._participant = genesys.start_conversation(genesys.add_user(SAMPLE.email, name=SAMPLE.name),
                                                       media_type="voice")
        return self._participant

    def send_profile(self) -> int:
        """Send the sample person's profile as Slack's user_change; returns the ms until it reached the call."""
        slack, _ = self._stand_ins()
        return self._send_and_wait(slack.user(SAMPLE.slack_id), SAMPLE.title)

    def change_title(self, title: str) -> str:
        """Change the title in the local Slack, send the user_change, wait for the call; prints and returns a line."""
        slack, _ = self._stand_ins()
        with self._change_lock:
            before = slack.user(SAMPLE.slack_id)["profile"]["title"]
            changed = slack.update_profile(SAMPLE.slack_id, title=title)
            self.say(f"Title changed in Slack: {before} → {title}")
            written_ms = self._send_and_wait(changed, title)
        line = f"Change written to the live call in {written_ms} ms: slack.title = {title}"
        self.say(line)
        return line

    def attributes(self) -> dict[str, str]:
        _, genesys = self._stand_ins()
        return genesys.attributes(self.participant.conversation_id, self.participant.participant_id)

    def next_call(self) -> int:
        """End the sample call and start another once the app follows the person's conversations (push); returns
        the ms until the new participant carried the attributes. The new call is the one `--keep` shows."""
        _, genesys = self._stand_ins()
        previous = self.participant
        topic = f"v2.users.{previous.user_id}.conversations"
        self._wait(lambda: topic in genesys.subscribed_topics(), self.options.written_within_s,
                   "the app to follow the sample person's conversations", every_s=0.01)
        genesys.end_conversation(previous.conversation_id)
        started = time.monotonic()
        self._participant = participant = genesys.start_conversation(previous.user_id, media_type="voice")
        self._wait(lambda: genesys.attributes(participant.conversation_id, participant.participant_id).get(
            "slack.title") == SAMPLE.new_title, self.options.written_within_s,
                   "the attributes to reach the new call", every_s=0.002)
        return round((time.monotonic() - started) * 1000)

    def start_control(self) -> str:
        """Serve /demo/title and /demo/attributes on 127.0.0.1; returns its base URL."""
        control = _control_server(self)
        try:
            control.start()
        except OSError as error:
            raise DemoFailed(f"cannot start the demo's control endpoint on 127.0.0.1: {error}") from None
        self._control = control
        return control.base_url

    @property
    def app_url(self) -> str:
        return self._running().url

    @property
    def settings(self) -> dict[str, str]:
        """The app's settings (the stand-ins' URLs and made-up credentials), as given to it."""
        return dict(self._settings)

    @property
    def participant(self) -> JoinedParticipant:
        if self._participant is None:
            raise RuntimeError("put_on_call() first")
        return self._participant

    def wait_for_stop(self) -> None:
        """Block until SIGINT or SIGTERM; DemoFailed if the app exits meanwhile."""
        process = self._running().process
        while not self.stop.requested:
            if process.poll() is not None:
                # A terminal's Ctrl-C reaches the app too, and it may be quicker to exit than our handler to run.
                time.sleep(0.3)
                if not self.stop.requested:
                    raise DemoFailed(f"the app exited on its own with status {process.returncode}")
            time.sleep(0.1)
        raise Interrupted

    # -- ending ---------------------------------------------------------------------------------------------

    def log_tail(self) -> list[str]:
        try:
            text = self._log_path.read_text(errors="replace")
        except OSError:
            return []  # the app never started: nothing logged
        return text.splitlines()[-LOG_TAIL_LINES:]

    def close(self) -> list[str]:
        """Stop the control endpoint, the app (SIGTERM, SIGKILL if it lingers) and the stand-ins; remove the
        working directory. Returns what could not be cleaned up."""
        problems: list[str] = []
        self._closing.set()
        if self._control is not None:
            self._control.stop()
        if self._app is not None:
            from localdev.app_process import stop_process  # localdev/ is the demo's, imported only when it runs

            if not stop_process(self._app.process):
                problems.append("the app did not stop within 10 s of SIGTERM, so it was killed")
        for server in (self._slack, self._genesys):
            if server is not None:
                server.stop()
        try:
            shutil.rmtree(self.workdir)
        except OSError as error:
            problems.append(f"could not remove {self.workdir}: {error.strerror or error}")
        return problems

    # -- helpers ----------------------------------------------------------------------------------------------

    def _send_and_wait(self, user: dict[str, object], title: str) -> int:
        import httpx

        app = self._running()
        _, genesys = self._stand_ins()
        participant = self.participant
        sent = time.monotonic()
        try:
            response = app.event({"type": "user_change", "user": user})
        except httpx.HTTPError as error:
            raise DemoFailed(f"could not send the user_change to the app: {type(error).__name__}: {error}") from None
        if response.status_code != 200:
            raise DemoFailed(f"the app answered the user_change with HTTP {response.status_code}: "
                             f"{response.text[:200]}")
        self._wait(lambda: genesys.attributes(participant.conversation_id,
                                              participant.participant_id).get("slack.title") == title,
                   self.options.written_within_s, f"slack.title = {title} to reach the participant", every_s=0.002)
        return round((time.monotonic() - sent) * 1000)

    def _wait(self, condition: Callable[[], bool], within_s: float, what: str, *, every_s: float) -> None:
        process = self._running().process
        deadline = time.monotonic() + within_s
        while not condition():
            if self.stop.requested or self._closing.is_set():
                raise Interrupted
            if process.poll() is not None:
                raise DemoFailed(f"the app exited with status {process.returncode} while waiting for {what}")
            if time.monotonic() > deadline:
                raise DemoFailed(f"timed out after {within_s:g} s waiting for {what}")
            time.sleep(every_s)

    def _healthy(self) -> bool:
        import httpx

        try:
            return httpx.get(f"{self._running().url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False  # not listening yet

    def _stand_ins(self) -> tuple[FakeSlack, FakeGenesysCloud]:
        if self._slack is None or self._genesys is None:
            raise RuntimeError("start_stand_ins() first")
        return self._slack, self._genesys

    def _running(self) -> Running:
        if self._app is None:
            raise RuntimeError("start_app() first")
        return self._app


# -- the control endpoint (--keep) ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    text: str

    @property
    def body(self) -> bytes:
        return self.text.encode()

    @property
    def headers(self) -> Iterable[tuple[str, str]]:
        return (("Content-Type", "text/plain; charset=utf-8"),)


def _control_server(session: _Session) -> LocalHttpServer:
    """A tiny HTTP server in the demo's own process, on the stand-ins' plumbing. It, not a second command, changes
    the title: only this process holds the local Slack's state and the signing secret, so one `curl` does it."""
    from localdev.http_server import LocalHttpServer, RequestHandler

    class Handler(RequestHandler):
        def framing_error(self) -> _Answer:
            return _Answer(400, "cannot read the request body\n")

        def answer(self, request: Request) -> _Answer:
            return control_answer(session, request)

    return LocalHttpServer(handler=Handler, thread_name="demo-control")


def control_answer(session: _Session, request: Request) -> _Answer:
    """POST /demo/title (value=… in the form body or the query string); GET /demo/attributes."""
    if request.path == "/demo/attributes":
        if request.method != "GET":
            return _Answer(405, "GET it\n")
        return _Answer(200, "".join(f"{key} = {value}\n" for key, value in sorted(session.attributes().items())))
    if request.path != "/demo/title":
        return _Answer(404, "not here: POST /demo/title (value=…) or GET /demo/attributes\n")
    if request.method != "POST":
        return _Answer(405, f"POST the new title: curl --data-urlencode 'value={quote('Head of Support')}' …\n")
    from localdev.http_server import form_fields

    # The body's value wins over the query's; an empty one counts as not given.
    form = form_fields(request.body.decode("utf-8", errors="replace"))
    title = (form.get("value") or request.query.get("value") or "").strip()
    if not title or len(title) > MAX_TITLE_CHARS:
        return _Answer(400, f"give the new title as value=… (1 to {MAX_TITLE_CHARS} characters)\n")
    try:
        return _Answer(200, session.change_title(title) + "\n")
    except Interrupted:
        return _Answer(503, "the demo is stopping\n")
    except DemoFailed as error:
        session.say(f"demo: {error}")
        return _Answer(503, f"{error}\n")
