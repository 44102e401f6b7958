"""The OSC link over real UDP on 127.0.0.1 against a python-osc stand-in device."""

from __future__ import annotations

import collections
import functools
import logging
import random
import struct
import threading
import time
from pathlib import Path

import pytest
from conftest import FAST_RETRY, wait_until

from rig.config import OscConfig
from rig.link import Link, LinkError, LinkEvent, encode
from rig.osc import MAX_DEPTH, MAX_MESSAGES, MAX_PACKET, OscError, OscMessage, decode


def take_file(link: Link, name: str = "0001_x.wav") -> Path:
    path = link.take_root / name
    path.write_bytes(b"RIFF")  # the stand-in only checks that the file exists
    return path


def test_load_is_acknowledged(device_and_link) -> None:
    device, link = device_and_link
    path = take_file(link)
    events: list[LinkEvent] = []
    link.subscribe(events.append)
    req_id = link.load(3, path, 107.0, 4, 16, "s-0001")
    (args,) = device.wait_for("/rig/load")
    assert args == (3, str(path.resolve()), 107.0, 4, 16, "s-0001", req_id)
    wait_until(lambda: link.snapshot().slots[3].status == "loaded")
    assert link.pending() == 0
    assert LinkEvent("loaded", {"slot": 3, "take_id": "s-0001", "req_id": req_id}) in events


def test_unacknowledged_load_is_retried_with_the_same_request_id(device_and_link) -> None:
    device, link = device_and_link
    device.ignore_loads = 2
    req_id = link.load(1, take_file(link), 120.0, 2, 8, "s-0001")
    loads = device.wait_for("/rig/load", count=3)
    assert {args[-1] for args in loads} == {req_id}
    wait_until(lambda: link.snapshot().slots[1].status == "loaded")


def test_retries_give_up_and_report(device_and_link) -> None:
    device, link = device_and_link
    device.ignore_loads = 100
    failed = threading.Event()
    link.subscribe(lambda e: failed.set() if e.kind == "load_failed" else None)
    link.load(1, take_file(link), 120.0, 2, 8, "s-0001")
    assert failed.wait(5)
    assert len(device.messages("/rig/load")) == FAST_RETRY.attempts
    state = link.snapshot().slots[1]
    assert state.status == "failed" and "no answer" in (state.error or "")


def test_hello_resends_current_assignments(device_and_link) -> None:
    device, link = device_and_link
    first = link.load(1, take_file(link, "a.wav"), 120.0, 2, 8, "s-0001")
    second = link.load(2, take_file(link, "b.wav"), 120.0, 4, 16, "s-0002")
    device.wait_for("/rig/load", count=2)
    wait_until(lambda: link.pending() == 0)
    device.send("/rig/hello", "1.0.0", 8)  # the device was reloaded: its buffers are empty
    loads = device.wait_for("/rig/load", count=4)
    resent = {args[0]: args for args in loads[2:]}
    assert resent[1][5] == "s-0001" and resent[2][5] == "s-0002"
    assert resent[2][3:5] == (4, 16)  # bars and beats as first sent
    assert {resent[1][6], resent[2][6]}.isdisjoint({first, second})  # fresh request ids
    wait_until(lambda: link.snapshot().device_slots == 8)
    assert link.snapshot().device_version == "1.0.0"


def test_hello_is_answered_with_the_take_folder_and_the_port_is_checked(
    device_and_link, caplog: pytest.LogCaptureFixture
) -> None:
    device, link = device_and_link
    caplog.set_level(logging.WARNING, logger="rig.link")
    device.send("/rig/hello", "rig-slots 2.0 (protocol 2)", 8, 7410)
    (folder,) = device.wait_for("/rig/folder")
    assert folder == (str(link.take_root),)
    wait_until(lambda: link.snapshot().device_port == 7410)
    assert f"the device listens on UDP 7410 but the rig sends to {link.osc.port}" in caplog.text


def test_time_signature_sets_the_meter(device_and_link, caplog) -> None:
    device, link = device_and_link
    caplog.set_level(logging.WARNING, logger="rig.link")
    device.send("/rig/timesig", 6, 8)
    wait_until(lambda: link.snapshot().meter == "6/8")
    device.send("/rig/timesig", 7, 8)  # 3.5 quarter notes: kept at 6/8, and said
    device.send("/rig/timesig", 3.0, 4.0)  # Max may send whole floats
    wait_until(lambda: link.snapshot().meter == "3/4")
    assert "Live's time signature 7/8 has no whole-quarter bar" in caplog.text


def test_duplicate_and_late_acks_are_harmless(device_and_link) -> None:
    device, link = device_and_link
    device.ignore_loads = 100  # acknowledge by hand
    old = link.load(1, take_file(link, "a.wav"), 120.0, 2, 8, "s-0001")
    new = link.load(1, take_file(link, "b.wav"), 120.0, 2, 8, "s-0002")  # supersedes the first
    device.send("/rig/loaded", 1, "s-0001", old)  # late ack of the superseded load
    time.sleep(0.1)
    assert link.snapshot().slots[1].status == "pending"
    assert link.snapshot().slots[1].take_id == "s-0002"
    device.send("/rig/loaded", 1, "s-0002", new)
    device.send("/rig/loaded", 1, "s-0002", new)  # duplicate
    wait_until(lambda: link.snapshot().slots[1].status == "loaded")
    assert link.pending() == 0


def test_device_error_is_reported(device_and_link) -> None:
    _device, link = device_and_link
    path = take_file(link)
    path.unlink()  # the device cannot read it
    errors: list[LinkEvent] = []
    link.subscribe(lambda e: errors.append(e) if e.kind == "error" else None)
    req_id = link.load(2, path, 120.0, 2, 8, "s-0001")
    wait_until(lambda: link.snapshot().slots[2].status == "failed")
    assert "cannot read" in (link.snapshot().slots[2].error or "")
    assert errors[0].data["req_id"] == req_id


def test_clear_tempo_playing_ping(device_and_link) -> None:
    device, link = device_and_link
    events: list[LinkEvent] = []
    link.subscribe(events.append)
    link.clear(4)
    device.wait_for("/rig/clear")
    wait_until(lambda: link.snapshot().slots[4].status == "empty" and link.pending() == 0)
    device.send("/rig/tempo", 98.5)
    device.send("/rig/playing", 4, 1)
    link.ping(77)
    wait_until(lambda: any(e.kind == "pong" for e in events))
    wait_until(lambda: link.snapshot().slots[4].playing)
    assert link.snapshot().tempo == 98.5
    assert LinkEvent("pong", {"token": 77}) in events


def test_malformed_and_unknown_messages_are_logged_and_survived(
    device_and_link, caplog: pytest.LogCaptureFixture
) -> None:
    device, link = device_and_link
    caplog.set_level(logging.WARNING, logger="rig.link")
    device.send_raw(b"\x00\x01garbage")  # not OSC: never reaches the dispatcher
    device.send_raw(b"/rig/tempo\x00\x00,f\x00\x00\x01")  # truncated float
    device.send("/rig/loaded", "one", "x")  # wrong types
    device.send("/rig/loaded")  # no arguments
    device.send("/rig/tempo", 5000.0)  # out of range
    device.send("/rig/hello", "1.0", 0)  # no slots
    device.send("/rig/unknown", 1)
    device.send("/rig/tempo", 101.0)  # a good message still gets through afterwards
    wait_until(lambda: link.snapshot().tempo == 101.0)
    text = caplog.text
    assert "malformed OSC packet" in text
    assert "dropped malformed /rig/loaded" in text
    assert "dropped unknown OSC message /rig/unknown" in text
    assert text.count("dropped") == 5  # one line per kind: the rest are rate-limited


def test_only_paths_inside_the_take_folder_are_sent(device_and_link, tmp_path: Path) -> None:
    device, link = device_and_link
    outside = tmp_path / "elsewhere.wav"
    outside.write_bytes(b"RIFF")
    sneaky = link.take_root / ".." / "elsewhere.wav"
    for path in (outside, sneaky, Path("/etc/passwd")):
        with pytest.raises(LinkError, match="outside the take folder"):
            link.load(1, path, 120.0, 2, 8, "s-0001")
    time.sleep(0.1)
    assert device.messages("/rig/load") == []


def test_slot_numbers_are_checked(device_and_link) -> None:
    device, link = device_and_link
    with pytest.raises(LinkError, match="numbered from 1"):
        link.load(0, take_file(link), 120.0, 2, 8, "s-0001")
    device.send("/rig/hello", "1.0", 4)
    wait_until(lambda: link.snapshot().device_slots == 4)
    with pytest.raises(LinkError, match="1 to 4"):
        link.load(5, take_file(link), 120.0, 2, 8, "s-0001")


def test_busy_listen_port_is_named(tmp_path: Path) -> None:
    with Link(OscConfig(port=9, listen_port=0), tmp_path) as first:
        second = Link(OscConfig(port=9, listen_port=first.port), tmp_path)
        with pytest.raises(OSError, match=f"UDP 127.0.0.1:{first.port}"):
            second.start()


def test_encode_golden_bytes() -> None:
    assert encode("/rig/ping", 1) == b"/rig/ping\x00\x00\x00,i\x00\x00\x00\x00\x00\x01"
    assert encode("/rig/tempo", 120.0) == b"/rig/tempo\x00\x00,f\x00\x00B\xf0\x00\x00"


def bundle(*elements: bytes) -> bytes:
    body = b"".join(struct.pack(">i", len(e)) + e for e in elements)
    return b"#bundle\x00" + b"\x00" * 8 + body


def test_osc_decoder_reads_what_python_osc_writes_and_refuses_the_rest() -> None:
    tempo = encode("/rig/tempo", 120.5)
    assert decode(tempo) == [OscMessage("/rig/tempo", (120.5,))]
    loaded = encode("/rig/loaded", 1, "s-1", 7)
    assert decode(bundle(tempo, bundle(loaded))) == [
        OscMessage("/rig/tempo", (120.5,)),
        OscMessage("/rig/loaded", (1, "s-1", 7)),
    ]
    nested = tempo
    for _ in range(MAX_DEPTH):
        nested = bundle(nested)
    assert decode(nested) == [OscMessage("/rig/tempo", (120.5,))]  # the deepest allowed
    nested = bundle(nested)
    bad = {
        b"#bundle\x00" + b"\x00" * 8 + struct.pack(">i", -8) + tempo: "size -8",
        nested: "nested deeper",
        bundle(*[tempo] * (MAX_MESSAGES + 1)): "more than 64 messages",
        b"/rig/x\x00\x00,i\x00\x00\x00\x01": "cut off",
        b"/rig/x\x00\x00,q\x00\x00": "unknown OSC type tag",
        b"rig\x00": "not an OSC address",
        b"/rig/x": "without its NUL",
        b"\xff" * (MAX_PACKET + 1): "over the",
        b"/r\xff\x00,\x00\x00\x00": "not UTF-8",
    }
    for data, message in bad.items():
        with pytest.raises(OscError, match=message):
            decode(data)


def test_hostile_packets_never_stop_the_link(device_and_link, caplog) -> None:
    """Random and crafted garbage, then a good load is still acknowledged at once."""
    device, link = device_and_link
    caplog.set_level(logging.WARNING, logger="rig.link")
    rng = random.Random(1)
    good = [encode("/rig/tempo", 99.0), encode("/rig/hello", "x", 8, 7400)]
    crafted = [
        b"#bundle\x00" + b"\x00" * 8 + struct.pack(">i", -4) + good[0],  # stalls python-osc
        functools.reduce(lambda inner, _: bundle(inner), range(3000), good[0]),  # recursion
        encode("/rig/action", "generate", 1e30),
        encode("/rig/tempo", float("nan")),
        encode("/rig/hello", "x", 2**40),
        encode("/rig/cc", "a", "b"),
        b"\x00" * 60000,
    ]
    packets = crafted + [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
                         for _ in range(300)]  # fmt: skip
    for _ in range(300):  # good packets with random bytes changed
        packet = bytearray(rng.choice(good))
        packet[rng.randrange(len(packet))] = rng.randrange(256)
        packets.append(bytes(packet))
    start = time.monotonic()
    for packet in packets:
        device.send_raw(packet)
    link.load(1, take_file(link), 120.0, 1, 4, "s-0001")
    wait_until(lambda: link.snapshot().slots[1].status == "loaded", timeout=5)
    assert link.receiver_restarts == 0
    # hellos still queued behind the load re-send the slot under a new request id, which may
    # supersede the first before it is sent: "loaded" is the acknowledgement of the latest one
    slot = link.snapshot().slots[1]
    assert slot.take_id == "s-0001" and slot.req_id is None  # nothing left pending
    assert device.wait_for("/rig/load") and device.slots[1] == slot.path
    # one key per kind of problem (a malformed message: per address)
    lines = collections.Counter(
        (r.msg, r.args[0] if r.msg.startswith("dropped malformed %s") else None)
        for r in caplog.records
    )
    allowed = 1 + (time.monotonic() - start) // 5.0  # a line per kind every 5 s
    assert max(lines.values()) <= allowed, lines  # not hundreds


def test_only_the_device_host_and_the_allow_list_may_send(tmp_path: Path) -> None:
    with Link(OscConfig(host="10.0.0.5", port=9, listen_port=0), tmp_path) as link:
        assert link.osc.bind_host == "0.0.0.0"
        link.handle_datagram(encode("/rig/tempo", 101.0), "10.0.0.9")
        assert link.snapshot().tempo is None
        link.handle_datagram(encode("/rig/tempo", 102.0), "10.0.0.5")
        assert link.snapshot().tempo == 102.0
    config = OscConfig(port=9, listen_port=0, allow=("192.168.1.7",))
    with Link(config, tmp_path) as link:
        assert link.osc.bind_host == "127.0.0.1"
        link.handle_datagram(encode("/rig/tempo", 103.0), "192.168.1.7")
        assert link.snapshot().tempo == 103.0


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_receiver_is_restarted(device_and_link, monkeypatch) -> None:
    device, link = device_and_link
    original = link.handle_datagram

    def die_once(data: bytes, sender: str = "127.0.0.1") -> None:
        monkeypatch.setattr(link, "handle_datagram", original)
        raise SystemExit  # not an Exception: the thread ends

    monkeypatch.setattr(link, "handle_datagram", die_once)
    device.send("/rig/tempo", 97.0)
    wait_until(lambda: link.receiver_restarts == 1)
    device.send("/rig/tempo", 98.0)
    wait_until(lambda: link.snapshot().tempo == 98.0)
