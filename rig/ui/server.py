"""Serve the performer page at ``/`` and the stage view at ``/stage`` (and ``/stage/``) on one port
(uvicorn in a thread), and stop it cleanly.

Clients other than this computer need the token (:mod:`rig.ui.access`). Uploads are limited to
1 MB (the pages take none); Gradio's copies of served files live in a folder of this server's
own, removed when it stops.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time

import gradio as gr
import uvicorn
from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from rig.midi import MidiController
from rig.performance import Performance
from rig.ui.access import TokenGate
from rig.ui.app import build_stage, build_ui
from rig.ui.render import STAGE_CSS

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
    ) -> None:
        self.cache = tempfile.mkdtemp(prefix="rig-ui-")  # before any Blocks is built
        os.environ["GRADIO_TEMP_DIR"] = self.cache
        app = FastAPI()
        app.add_api_route("/stage", lambda: RedirectResponse("/stage/"), include_in_schema=False)
        allowed = [str(perf.config.paths.takes.resolve())]
        limits = {"allowed_paths": allowed, "max_file_size": MAX_UPLOAD}
        app = gr.mount_gradio_app(app, build_stage(perf), path="/stage", css=STAGE_CSS, **limits)
        app = gr.mount_gradio_app(app, build_ui(perf, midi), path="/", **limits)
        served = TokenGate(app, token) if token else app
        config = uvicorn.Config(served, host=host, port=port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.host, self.port = host, port
        self._thread = threading.Thread(target=self.server.run, name="rig-ui", daemon=True)

    @property
    def url(self) -> str:
        """The performer page's URL."""
        return f"http://{self.host}:{self.port}/"

    def start(self, timeout: float = 30.0) -> UiServer:
        """Start serving; returns once the port accepts connections.

        Raises:
            OSError: the server did not start (the port is taken, ...).
        """
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise OSError(
                    f"the web UI could not start on {self.host}:{self.port} "
                    "(is the port taken? set ui.port / RIG_UI_PORT)"
                )
            time.sleep(0.05)
        return self

    def close(self) -> None:
        """Stop serving (open pages and streams are closed within a second) and remove the
        cached files."""
        self.server.should_exit = True
        self.server.force_exit = True  # do not wait for open event streams to end
        # The pages' streams are cancelled, which uvicorn would log as errors: they are not.
        quiet = logging.getLogger("uvicorn.error")
        level, quiet.level = quiet.level, logging.CRITICAL
        self._thread.join(timeout=3)
        quiet.setLevel(level)
        shutil.rmtree(self.cache, ignore_errors=True)
