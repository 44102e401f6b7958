"""A remote host without the pages, for the companion's tests and ``rig bench companion``: the
link of ``rig perform --remote`` (:func:`rig.show.start_link`: relay outlet, slots restored from
before a restart) and the relay's routes behind the token gate, served by uvicorn on loopback."""

from __future__ import annotations

from fastapi import FastAPI

from rig.config import Config
from rig.link import Link
from rig.remote.host import Relay
from rig.show import start_link
from rig.ui.access import gate
from rig.webserver import WebServer


class RemoteHost:
    """``config`` must have ``remote.enabled``, a ``ui.token`` and a free ``ui.port``."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.link: Link | None = None
        self.relay: Relay | None = None
        self.web: WebServer | None = None

    @property
    def url(self) -> str:
        """The host's address (what ``rig companion`` is given)."""
        return f"http://127.0.0.1:{self.config.ui.port}"

    def start(self) -> RemoteHost:
        self.link, relay = start_link(self.config)
        if relay is None:
            raise ValueError("a remote host needs remote.enabled")
        self.relay = relay
        app = FastAPI()
        relay.mount(app)
        served = gate(app, "127.0.0.1", self.config.ui.token, trust_loopback=False)
        self.web = WebServer(served, "127.0.0.1", self.config.ui.port, "the host", "ui.port")
        self.web.start()
        return self

    def close(self) -> None:
        for part in (self.web, self.link, self.relay):
            if part is not None:
                part.close()

    def __enter__(self) -> RemoteHost:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
