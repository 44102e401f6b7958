"""Serve the performer page at ``/`` and the stage view at ``/stage`` (and ``/stage/``) on one port
(uvicorn in a thread), and stop it cleanly.

Clients other than this computer need the token (:mod:`rig.ui.access`); with a relay (remote
mode, :mod:`rig.remote.host`) every client does, and the server also carries the take files and
the companions' WebSocket. Uploads are limited to
1 MB (the pages take none); Gradio's copies of served files live in a folder of this server's
own, removed when it stops.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import gradio as gr
from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from rig.midi import MidiController
from rig.performance import Performance
from rig.remote.host import Relay
from rig.ui.access import gate
from rig.ui.app import build_stage, build_ui
from rig.ui.render import STAGE_CSS
from rig.webserver import WebServer

MAX_UPLOAD = "1mb"


class UiServer:
    """The web server of ``rig perform``."""

    def __init__(
        self,
        perf: Performance,
        midi: MidiController | None,
        host: str,
        port: int,
        token: str = "",
        relay: Relay | None = None,
    ) -> None:
        self.cache = tempfile.mkdtemp(prefix="rig-ui-")  # before any Blocks is built
        os.environ["GRADIO_TEMP_DIR"] = self.cache
        app = FastAPI()
        if relay is not None:  # before the page's catch-all mount at "/"
            relay.mount(app)
        app.add_api_route("/stage", lambda: RedirectResponse("/stage/"), include_in_schema=False)
        allowed = [str(perf.config.paths.takes.resolve())]
        limits = {"allowed_paths": allowed, "max_file_size": MAX_UPLOAD}
        app = gr.mount_gradio_app(app, build_stage(perf), path="/stage", css=STAGE_CSS, **limits)
        app = gr.mount_gradio_app(app, build_ui(perf, midi), path="/", **limits)
        served = gate(app, host, token, trust_loopback=relay is None)
        self.web = WebServer(served, host, port, "the web UI", "ui.port / RIG_UI_PORT")

    @property
    def url(self) -> str:
        """The performer page's URL."""
        return self.web.url

    @property
    def port(self) -> int:
        """The TCP port served."""
        return self.web.port

    def start(self, timeout: float = 30.0) -> UiServer:
        """Start serving; returns once the port accepts connections.

        Raises:
            OSError: the server did not start (the port is taken, ...).
        """
        self.web.start(timeout)
        return self

    def close(self) -> None:
        """Stop serving (open pages and streams are closed within a second) and remove the
        cached files."""
        self.web.close()
        shutil.rmtree(self.cache, ignore_errors=True)
