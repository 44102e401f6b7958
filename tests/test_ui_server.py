"""The web UI served for real (uvicorn on a free port): the Gradio API fed hostile values, the
token for clients on other computers, /stage with and without its slash, and the cache folder."""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from gradio_client import Client
from net import free_tcp_port
from perf_fixtures import Rig, page_values

from rig.midi import MidiController, MidiMapping
from rig.ui.server import UiServer


def outside_address() -> str | None:
    """This machine's address on a network interface (a client that is not loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))  # no packet is sent: it only picks the interface
            address = str(sock.getsockname()[0])
        except OSError:
            return None
    return None if address.startswith("127.") else address


@pytest.fixture
def served(perf_rig: Rig) -> Iterator[tuple[Rig, UiServer]]:
    midi = MidiController(MidiMapping(), perf_rig.perf)
    server = UiServer(perf_rig.perf, midi, "0.0.0.0", free_tcp_port(), token="s3cret").start()
    try:
        yield perf_rig, server
    finally:
        server.close()
    assert not Path(server.cache).exists()  # Gradio's copies are gone with the server


def test_the_generate_api_refuses_hostile_values_by_name(served) -> None:
    perf_rig, server = served
    client = Client(f"http://127.0.0.1:{server.port}/", verbose=False)
    values, _ = page_values(perf_rig.perf)
    hostile = {  # field: values
        "tempo": [0, 39, 241, 1e9, "NaN", "true", "<script>", -5],
        "key": ["H minor", "<script>", "E\x00", "C" * 10_000, 7],
        "genre": ["x" * 500],
        "seed": [1e20, -1, "NaN", "seven"],
    }
    names = {"tempo": "Tempo", "key": "Key", "genre": "Genre", "seed": "seed"}
    for field, bad in hostile.items():
        for value in bad:
            typed = {**values, "text": "pad", field: value, "lock": field == "seed"}
            said = client.predict(*typed.values(), api_name="/generate")[0]
            assert said.startswith(f"⚠ {names[field]}"), (value, said)
    assert perf_rig.session.jobs == {}
    said = client.predict(*{**values, "text": "pad"}.values(), api_name="/generate")[0]
    assert said.startswith("queued #1")


def test_stage_with_and_without_its_slash(served) -> None:
    _, server = served
    base = f"http://127.0.0.1:{server.port}"
    assert httpx.get(f"{base}/stage", follow_redirects=True).status_code == 200
    assert httpx.get(f"{base}/stage/").status_code == 200


def test_another_computer_needs_the_token(served) -> None:
    _, server = served
    address = outside_address()
    if address is None:
        pytest.skip("no network interface besides loopback")
    base = f"http://{address}:{server.port}"
    assert httpx.get(f"{base}/").status_code == 401
    assert httpx.get(f"{base}/stage/").status_code == 401
    assert httpx.get(f"{base}/?token=guess").status_code == 401
    with httpx.Client() as browser:
        assert browser.get(f"{base}/?token=s3cret").status_code == 200
        assert browser.get(f"{base}/stage/").status_code == 200  # the cookie carries it
    assert httpx.get(f"{base}/", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert os.environ["GRADIO_TEMP_DIR"] == server.cache


def test_uploads_are_limited(served) -> None:
    _, server = served
    big = b"0" * (2 * 1024 * 1024)
    answer = httpx.post(
        f"http://127.0.0.1:{server.port}/gradio_api/upload", files={"files": ("a.wav", big)}
    )
    assert answer.status_code in (400, 413), answer.status_code


def test_perform_needs_no_token_on_loopback_and_makes_one_beyond(config) -> None:
    from rig.show import ui_token

    assert ui_token(config) == ""
    exposed = dataclasses.replace(config, ui=dataclasses.replace(config.ui, host="0.0.0.0"))
    made = ui_token(exposed)
    assert len(made) >= 16 and made != ui_token(exposed)
    kept = dataclasses.replace(exposed, ui=dataclasses.replace(exposed.ui, token="mine"))
    assert ui_token(kept) == "mine"
