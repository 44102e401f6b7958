"""An ASGI app served by uvicorn on a thread of its own, started and stopped cleanly (the web UI
of ``rig perform`` and the companion's UI proxy). Needs the ``ui`` extra (uvicorn)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import uvicorn


class WebServer:
    """``app`` on ``host``:``port``; ``what`` names it in errors ("the web UI")."""

    def __init__(self, app: Any, host: str, port: int, what: str, port_setting: str) -> None:
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.host, self.port, self.what, self.port_setting = host, port, what, port_setting
        self._thread = threading.Thread(target=self.server.run, name="rig-web", daemon=True)

    @property
    def url(self) -> str:
        """The server's root URL."""
        return f"http://{self.host}:{self.port}/"

    def start(self, timeout: float = 30.0) -> WebServer:
        """Start serving; returns once the port accepts connections.

        Raises:
            OSError: the server did not start (the port is taken, ...).
        """
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise OSError(
                    f"{self.what} could not start on {self.host}:{self.port} "
                    f"(is the port taken? set {self.port_setting})"
                )
            time.sleep(0.05)
        return self

    def close(self) -> None:
        """Stop serving (open streams are closed within a second)."""
        if self._thread.ident is None:  # never started
            return
        self.server.should_exit = True
        self.server.force_exit = True  # do not wait for open event streams to end
        # The pages' streams are cancelled, which uvicorn would log as errors: they are not.
        quiet = logging.getLogger("uvicorn.error")
        level, quiet.level = quiet.level, logging.CRITICAL
        self._thread.join(timeout=3)
        quiet.setLevel(level)
