"""``rig companion``: the companion and the UI proxy on the Live laptop, until Ctrl-C."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from types import FrameType

from rig.config import Config
from rig.remote.companion import Companion
from rig.remote.connection import relay_url
from rig.remote.proxy import proxy_app
from rig.ui.access import gate
from rig.webserver import WebServer


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run_companion(host_url: str, config: Config) -> int:
    """Relay the host at ``host_url`` to this laptop's device and serve its pages on
    ``ui.port``; returns the exit code (1 when the host refuses the token).

    Raises:
        ValueError: no token, or a URL that is not http(s).
    """
    token = config.ui.token
    if not token:
        raise ValueError(
            "the companion needs the host's token: --token T or RIG_TOKEN (`rig perform --remote` "
            "prints it)"
        )
    relay_url(host_url)  # a bad URL fails here, not in a thread
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per download
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    companion = Companion(host_url, token, config.osc, config.paths.takes, _say).start()
    app = gate(proxy_app(host_url, token), config.ui.host, token)
    pages = WebServer(app, config.ui.host, config.ui.port, "the companion's pages",
                      "ui.port / --ui-port")  # fmt: skip
    try:
        pages.start()
        _say(f"rig companion: relaying {host_url} to the device at {config.osc.host}:"
             f"{config.osc.port} (listening on UDP {companion.port})")  # fmt: skip
        _say(f"  takes downloaded to {companion.take_root}")
        _say(f"  performer page: {pages.url}   stage view: {pages.url}stage")
        _say("  Ctrl-C stops the companion.")
        while not stop.wait(0.2):
            if companion.host.refused:
                return 1
        return 0
    finally:
        pages.close()
        companion.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
