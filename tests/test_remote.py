"""Two machines on loopback: a remote host (`rig perform --remote`'s link and routes) and a
companion with its own take folder, talking to a stand-in device over real UDP, over a real
WebSocket and real HTTP."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from conftest import free_udp_port, wait_until
from net import CuttingProxy, free_tcp_port
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from rig.config import Config, OscConfig, PathsConfig, RemoteConfig, UiConfig
from rig.engines.base import Recipe
from rig.loops import make_loop
from rig.prompt import parse_prompt
from rig.remote.companion import Companion
from rig.remote.connection import Reconnect, relay_url
from rig.remote.download import FetchError, FetchPolicy, fetch_take
from rig.remote.wire import RelayMessage, TakeFile, WireError, decode, safe_relative
from rig.show import ui_token
from rig.takes import Take, TakeStore
from rig.testing.remote import RemoteHost
from rig.testing.signals import drum_signal
from rig.testing.standin import StandInDevice
from rig.ui.access import gate

TOKEN = "t0ken-for-tests"
QUICK = Reconnect(first_s=0.05, max_s=0.3, ping_s=2.0)
FETCH = FetchPolicy(attempts=4, first_s=0.05, max_s=0.2, timeout_s=5.0)


@dataclass
class Pair:
    host: RemoteHost
    companion: Companion
    device: StandInDevice
    said: list[str]

    @property
    def laptop(self) -> Path:
        return self.companion.take_root


def host_config(root: Path) -> Config:
    return Config(
        osc=OscConfig(port=free_udp_port(), listen_port=0),
        paths=PathsConfig(takes=root),
        ui=UiConfig(port=free_tcp_port(), token=TOKEN),
        remote=RemoteConfig(enabled=True),
    )


def a_take(root: Path, bars: int = 4, text: str = "dusty drums") -> Take:
    """A 4-bar 44.1 kHz stereo take at 120 BPM on the host."""
    loop = make_loop(drum_signal(9.0, 44100), 44100, 120.0, bars, 4, Config().audio)
    recipe = Recipe(parse_prompt(f"{text}, Tempo: 120, Bars: {bars}"), "word", seed=1)
    return TakeStore(root, session="20261130-010203").write(loop, recipe)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    (tmp_path / "host").mkdir()
    with RemoteHost(host_config(tmp_path / "host")) as host:
        yield from companion_for(host, host.url, tmp_path / "laptop")


def companion_for(host: RemoteHost, url: str, laptop: Path) -> Iterator[Pair]:
    said: list[str] = []
    with StandInDevice(rig_port=0, refuse_outside=laptop.resolve()) as device:
        osc = OscConfig(port=device.port, listen_port=0)
        with Companion(url, TOKEN, osc, laptop, said.append, FETCH, QUICK) as companion:
            device.rig_port = companion.port
            companion.host.connected.wait(5)
            yield Pair(host, companion, device, said)


def say_hello(pair: Pair) -> None:
    pair.device.send("/rig/hello", "2", 8, pair.device.port)
    pair.device.wait_for("/rig/folder")


def test_a_take_made_on_the_host_arrives_byte_identical(pair: Pair) -> None:
    say_hello(pair)
    assert pair.device.messages("/rig/folder") == [(str(pair.laptop),)]  # its own folder
    take = a_take(pair.host.config.paths.takes)
    req_id = pair.host.link.send_take(2, take)

    (load,) = pair.device.wait_for("/rig/load")
    local = pair.laptop / take.wav.relative_to(pair.host.config.paths.takes)
    assert load == (2, str(local), 120.0, 4, 16, take.id, req_id)
    assert local.read_bytes() == take.wav.read_bytes()
    assert not list(pair.laptop.rglob("*.part"))
    wait_until(lambda: pair.host.link.snapshot().slots[2].status == "loaded")  # the ack came back
    wait_until(lambda: (pair.host.config.paths.takes / ".slots.json").is_file())
    held = json.loads((pair.host.config.paths.takes / ".slots.json").read_text())
    assert held == {"2": str(take.wav.resolve())}


def test_a_clip_request_is_fetched_and_rewritten_too(pair: Pair) -> None:
    say_hello(pair)
    take = a_take(pair.host.config.paths.takes)
    req_id = pair.host.link.place_clip(3, take, "dusty drums", 0xFF0000, False)
    (clip,) = pair.device.wait_for("/rig/clip")
    local = pair.laptop / take.wav.relative_to(pair.host.config.paths.takes)
    assert clip[:3] == (3, 0, str(local)) and clip[9] == req_id
    assert local.read_bytes() == take.wav.read_bytes()
    wait_until(lambda: pair.host.link.pending() == 0)  # /rig/clipped came back


def test_every_route_wants_the_token_even_from_loopback(pair: Pair, tmp_path: Path) -> None:
    take = a_take(pair.host.config.paths.takes)
    rel = take.wav.relative_to(pair.host.config.paths.takes).as_posix()
    url = f"{pair.host.url}/rig/takes/{rel}"
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        assert httpx.get(url, headers=headers).status_code == 401
        with pytest.raises(InvalidStatus) as refused:
            connect(relay_url(pair.host.url), additional_headers=headers, open_timeout=5)
        assert refused.value.response.status_code == 403
    good = {"Authorization": f"Bearer {TOKEN}"}
    answer = httpx.get(url, headers=good)
    assert answer.status_code == 200 and answer.content == take.wav.read_bytes()
    part = httpx.get(url, headers={**good, "Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == take.wav.read_bytes()[100:200]
    for bad in ("../host/x.wav", ".slots.json", "20261130-010203/x.txt", "nothing.wav"):
        assert httpx.get(f"{pair.host.url}/rig/takes/{bad}", headers=good).status_code == 404
    (tmp_path / "secret.wav").write_bytes(b"RIFF")
    escape = f"{pair.host.url}/rig/takes/%2E%2E/secret.wav"
    assert httpx.get(escape, headers=good).status_code == 404
    assert httpx.post(url, headers=good).status_code == 405  # read-only


def test_a_companion_with_a_wrong_token_stops_and_says_why(tmp_path: Path) -> None:
    (tmp_path / "host").mkdir()
    with RemoteHost(host_config(tmp_path / "host")) as host:
        said: list[str] = []
        osc = OscConfig(port=free_udp_port(), listen_port=0)
        with Companion(host.url, "nope", osc, tmp_path / "laptop", said.append, FETCH, QUICK) as c:
            wait_until(lambda: c.host.refused is not None)
        assert c.host.connections == 0
        assert any("refused the token (HTTP 403)" in line for line in said)


def test_a_download_cut_mid_way_resumes_where_it_stopped(tmp_path: Path) -> None:
    (tmp_path / "host").mkdir()
    with RemoteHost(host_config(tmp_path / "host")) as host:
        proxy = CuttingProxy(host.config.ui.port, b"GET /rig/takes/", cut_after=300_000)
        try:
            for pair in companion_for(host, f"http://127.0.0.1:{proxy.port}", tmp_path / "laptop"):
                say_hello(pair)
                take = a_take(host.config.paths.takes)
                req_id = host.link.send_take(1, take)
                (load,) = pair.device.wait_for("/rig/load")
                assert Path(load[1]).read_bytes() == take.wav.read_bytes()
                report = pair.companion.reports[req_id]
                assert proxy.cuts == 1 and report.attempts == 2
                assert len(report.resumed_from) == 1 and 0 < report.resumed_from[0] <= 300_000
        finally:
            proxy.close()


def test_a_newer_load_for_the_slot_wins_over_one_still_downloading(tmp_path: Path) -> None:
    (tmp_path / "host").mkdir()
    with RemoteHost(host_config(tmp_path / "host")) as host:
        proxy = CuttingProxy(host.config.ui.port, b"GET /rig/takes/", None, delay_s=1.0)
        try:
            for pair in companion_for(host, f"http://127.0.0.1:{proxy.port}", tmp_path / "laptop"):
                say_hello(pair)
                slow, fast = a_take(host.config.paths.takes), a_take(host.config.paths.takes, 2)
                host.link.send_take(1, slow)  # its download is held a second
                wait_until(lambda: proxy.cuts == 1)
                host.link.send_take(1, fast)
                (load,) = pair.device.wait_for("/rig/load")
                assert load[5] == fast.id
                wait_until(lambda p=pair: len(p.companion.reports) == 2, timeout=10)  # slow came
                time.sleep(0.3)
                assert [args[5] for args in pair.device.messages("/rig/load")] == [fast.id]
                assert (pair.laptop / slow.wav.relative_to(host.config.paths.takes)).is_file()
        finally:
            proxy.close()


def test_the_host_restarted_mid_show_gets_its_slots_back(tmp_path: Path) -> None:
    (tmp_path / "host").mkdir()
    config = host_config(tmp_path / "host")
    host = RemoteHost(config).start()
    try:
        pair = companion_for(host, host.url, tmp_path / "laptop")
        running = next(pair)
        say_hello(running)
        take = a_take(config.paths.takes)
        host.link.send_take(3, take)
        (first,) = running.device.wait_for("/rig/load")
        wait_until(lambda: (config.paths.takes / ".slots.json").is_file())
        host.close()  # the host goes away mid-show
        wait_until(lambda: not running.companion.host.connected.is_set())
        assert running.device.slots == {3: first[1]}  # the device keeps its loop
        host = RemoteHost(config).start()  # a new process: nothing in memory
        wait_until(lambda: running.companion.host.connections == 2, timeout=10)
        loads = running.device.wait_for("/rig/load", count=2)  # the replayed hello did it
        assert loads[1][:6] == first[:6]
        wait_until(lambda: host.link.snapshot().slots[3].status == "loaded")
        assert any("lost the host" in line for line in running.said)
        pair.close()
    finally:
        host.close()


def test_a_take_the_host_cannot_serve_fails_its_slot_by_name(pair: Pair) -> None:
    say_hello(pair)
    take = a_take(pair.host.config.paths.takes)
    relay_send = pair.host.link.outlet
    assert relay_send is not None

    def send_then_lose_the_file(address: str, args: tuple) -> None:
        relay_send(address, args)
        if address == "/rig/load":
            take.wav.unlink(missing_ok=True)

    pair.host.link.outlet = send_then_lose_the_file
    req_id = pair.host.link.send_take(1, take)
    wait_until(lambda: pair.host.link.snapshot().slots[1].status == "failed")
    error = pair.host.link.snapshot().slots[1].error or ""
    assert "HTTP 404" in error and str(req_id)
    assert pair.device.messages("/rig/load") == []


def test_fetch_refuses_a_file_that_does_not_match(pair: Pair) -> None:
    take = a_take(pair.host.config.paths.takes)
    facts = pair.host.relay.take_file(take.wav)
    url = f"{pair.host.url}/rig/takes/{facts.path}"
    client = httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"})
    dest = pair.laptop / "x.wav"
    wrong = dataclasses.replace(facts, sha256="0" * 64)
    with pytest.raises(FetchError, match=r"does not match the host.s size \d+ and SHA-256"):
        fetch_take(client, url, dest, wrong, FETCH)
    assert not dest.exists() and not dest.with_name("x.wav.part").exists()
    report = fetch_take(client, url, dest, facts, FETCH)
    assert dest.read_bytes() == take.wav.read_bytes() and report.attempts == 1
    assert fetch_take(client, url, dest, facts, FETCH).had_it  # a re-send fetches nothing


def test_relay_frames_are_checked() -> None:
    message = RelayMessage("/rig/load", (1, "/a.wav", 120.0, 2, 8, "s-1", 7),
                           TakeFile("s/0001_a.wav", 10, "ab" * 32))  # fmt: skip
    assert decode(message.encode()) == message
    assert isinstance(decode(message.encode()).args[2], float)  # 120.0 stays a float
    bad = {
        "[1]": "JSON object",
        '{"address": "/other", "args": []}': "not a /rig/ address",
        '{"address": "/rig/x", "args": [true]}': "at most 32 ints, floats and strings",
        '{"address": "/rig/x", "args": [], "file": {"path": "../a.wav", "size": 1, '
        '"sha256": "' + "0" * 64 + '"}}': "not a relative path",
        '{"address": "/rig/x", "args": [], "file": {"path": "a.wav", "size": -1, '
        '"sha256": "' + "0" * 64 + '"}}': "not a byte count",
        '{"address": "/rig/x", "args": [], "file": {"path": "a.wav", "size": 1, '
        '"sha256": "xyz"}}': "not 64 hex digits",
        "{": "not JSON",
    }
    for frame, reason in bad.items():
        with pytest.raises(WireError, match=reason):
            decode(frame)
    with pytest.raises(WireError, match="over the 65536-byte limit"):
        decode(" " * 70000)
    assert safe_relative("s/0001_a.wav") and safe_relative("s/0001_a.json")
    for path in ("/s/a.wav", "s/../a.wav", "s/.a.wav", "s/a.txt", "s\\a.wav", ""):
        assert not safe_relative(path)


def test_tokens_are_required_where_the_rig_is_reachable(tmp_path: Path) -> None:
    async def app(scope, receive, send) -> None:  # pragma: no cover - never called
        return None

    with pytest.raises(ValueError, match=r"serving on 0\.0\.0\.0 .* needs a token: .*RIG_TOKEN"):
        gate(app, "0.0.0.0", "")
    with pytest.raises(ValueError, match="remote mode needs a token"):
        gate(app, "127.0.0.1", "", trust_loopback=False)
    assert gate(app, "127.0.0.1", "") is app
    remote = Config(remote=RemoteConfig(enabled=True))
    assert len(ui_token(remote)) >= 16  # made for loopback too: a tunnel arrives there
    assert ui_token(dataclasses.replace(remote, ui=UiConfig(token="mine"))) == "mine"
    assert ui_token(Config()) == ""
    with pytest.raises(ValueError, match="must start with http:// or https://"):
        relay_url("gpu-box:7860")
    assert relay_url("https://x.example/rig/") == "wss://x.example/rig/rig/relay"


def test_rig_companion_names_what_it_lacks(monkeypatch, capsys) -> None:
    from rig import cli

    monkeypatch.delenv("RIG_TOKEN", raising=False)
    assert cli.main(["companion", "http://127.0.0.1:7861"]) == 1
    err = capsys.readouterr().err
    assert "rig: error: the companion needs the host's token: --token T or RIG_TOKEN" in err
    assert cli.main(["companion", "gpu-box:7860", "--token", "t"]) == 1
    assert "must start with http:// or https://" in capsys.readouterr().err
