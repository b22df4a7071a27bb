"""The app-process launcher (`localdev/app_process.py`) that the process tests, `bench/` and the demo start the app
with."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from localdev import app_process
from localdev.app_process import healthy, launch, stop_process
from localdev.genesys_cloud import FakeGenesysCloud
from localdev.slack_api import FakeSlack


def test_launch_starts_the_app_again_on_another_port_when_its_port_was_taken(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A port that another process binds between `free_port()` and the app's own bind (tests running in parallel):
    the app exits with its PORT line, and `launch` starts it again on another port."""
    real_free_port = app_process.free_port
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        handed_out = [taken]
        monkeypatch.setattr(app_process, "free_port", lambda: handed_out.pop() if handed_out else real_free_port())
        with FakeSlack() as slack, FakeGenesysCloud() as genesys:
            app = launch(slack, genesys, tmp_path)
            try:
                assert handed_out == []
                assert app.url != f"http://127.0.0.1:{taken}"
                assert healthy(app)
            finally:
                assert stop_process(app.process)
