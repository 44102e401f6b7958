"""Network helpers of the tests: free TCP ports, and a TCP proxy that cuts one download."""

from __future__ import annotations

import contextlib
import socket
import threading
import time


def free_tcp_port() -> int:
    """A TCP port that is free right now on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class CuttingProxy:
    """Forwards 127.0.0.1:``port`` to ``upstream`` byte for byte, except that the first
    connection whose request starts with ``prefix`` is held ``delay_s`` and cut after
    ``cut_after`` bytes of its answer (a slow link, a connection dropped mid-download)."""

    def __init__(
        self, upstream: int, prefix: bytes, cut_after: int | None, delay_s: float = 0.0
    ) -> None:
        self.upstream, self.prefix, self.cut_after = upstream, prefix, cut_after
        self.delay_s = delay_s
        self.cuts = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def close(self) -> None:
        self._stop.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            server = socket.create_connection(("127.0.0.1", self.upstream))
            threading.Thread(target=self._serve, args=(client, server), daemon=True).start()

    def _serve(self, client: socket.socket, server: socket.socket) -> None:
        first = client.recv(65536)
        with self._lock:
            cut = self.cuts == 0 and first.startswith(self.prefix)
            self.cuts += cut
        if cut:
            time.sleep(self.delay_s)
        server.sendall(first)
        threading.Thread(target=_pump, args=(client, server, None), daemon=True).start()
        _pump(server, client, self.cut_after if cut else None)


def _pump(source: socket.socket, sink: socket.socket, limit: int | None) -> None:
    sent = 0
    try:
        while limit is None or sent < limit:
            data = source.recv(65536 if limit is None else min(65536, limit - sent))
            if not data:
                break
            sink.sendall(data)
            sent += len(data)
    except OSError:
        pass
    for sock in (source, sink):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
