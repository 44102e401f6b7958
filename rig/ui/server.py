"""Serve the performer page at ``/`` and the stage view at ``/stage`` on one port (uvicorn in a
thread), and stop it cleanly."""

from __future__ import annotations

import threading
import time

import gradio as gr
import uvicorn
from fastapi import FastAPI

from rig.midi import MidiController
from rig.performance import Performance
from rig.ui.app import build_stage, build_ui
from rig.ui.render import STAGE_CSS


class UiServer:
    """The web server of ``rig perform``."""

    def __init__(self, perf: Performance, midi: MidiController | None, host: str, port: int):
        app = FastAPI()
        allowed = [str(perf.config.paths.takes.resolve())]
        app = gr.mount_gradio_app(
            app, build_stage(perf), path="/stage", allowed_paths=allowed, css=STAGE_CSS
        )
        app = gr.mount_gradio_app(app, build_ui(perf, midi), path="/", allowed_paths=allowed)
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
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
        """Stop serving and wait for the server thread."""
        self.server.should_exit = True
        self._thread.join(timeout=10)
