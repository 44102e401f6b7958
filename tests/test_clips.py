"""Clip mode on the rig's side: each new take also goes to the device as /rig/clip (name,
colour, loop facts), over real UDP to the stand-in device; its answers and refusals."""

from __future__ import annotations

import dataclasses

from conftest import wait_until
from perf_fixtures import Rig

from rig.clips import clip_color, clip_name
from rig.config import ClipsConfig
from rig.link import LinkEvent


def test_each_new_take_is_also_a_clip_when_clip_mode_is_on(perf_rig: Rig) -> None:
    rig = perf_rig
    rig.session.config = dataclasses.replace(rig.config, clips=ClipsConfig(track=3, fire=True))
    events: list[LinkEvent] = []
    rig.link.subscribe(events.append)
    rig.perf.update(engine="word", text="dusty drums, Tempo: 100, Bars: 2", slot=1)
    job = rig.session.wait(rig.perf.generate().request.id, timeout=60)
    take = job.take
    (clip,) = rig.device.wait_for("/rig/clip")
    assert clip[:9] == (3, 0, str(take.wav), 100.0, 2, 8, f"dusty drums · {take.id}",
                        clip_color(take), 1)  # fmt: skip
    assert rig.device.wait_for("/rig/load")[0][1] == str(take.wav)  # the slot still gets it
    wait_until(lambda: any(e.kind == "clipped" for e in events))
    (clipped,) = [e.data for e in events if e.kind == "clipped"]
    assert clipped == {"track": 3, "scene": 1, "req_id": clip[9]}
    assert rig.device.clips == {3: {1: str(take.wav)}}
    assert rig.link.pending() == 0


def test_send_to_clip_from_the_page_and_the_devices_refusal(perf_rig: Rig) -> None:
    from rig.ui.app import take_action

    rig = perf_rig
    rig.perf.update(engine="word", text="a very long prompt " * 5, slot=None)
    take = rig.session.wait(rig.perf.generate().request.id, timeout=60).take
    assert rig.device.messages("/rig/clip") == []  # clip mode is off by default
    said = take_action(rig.perf, "clip", take.id, 2.0)
    assert (
        said
        == f"placing {take.id} as a clip in track 2, its next empty slot (Live 12.0.5 or newer)"
    )
    (clip,) = rig.device.wait_for("/rig/clip")
    assert clip[:2] == (2, 0) and clip[6] == clip_name(take) and clip[6].endswith(f"… · {take.id}")
    assert len(clip[6].split(" · ")[0]) == 40
    assert take_action(rig.perf, "clip", take.id, 0).startswith("⚠ track 0")
    assert take_action(rig.perf, "clip", take.id, 2, -1).startswith("⚠ scene -1")
    assert take_action(rig.perf, "clip", take.id, 2, "3").endswith("scene 3 (Live 12.0.5 or newer)")
    assert rig.device.wait_for("/rig/clip", count=2)[1][:2] == (2, 3)
    events: list[LinkEvent] = []
    rig.link.subscribe(events.append)
    rig.device.send("/rig/error", 0, 999, "ignored: no such request")
    rig.device.refuse_outside = rig.config.paths.takes / "elsewhere"
    take_action(rig.perf, "clip", take.id, 1)
    wait_until(lambda: any(e.kind == "error" for e in events))
    (error,) = [e.data for e in events if e.kind == "error"]
    assert error["slot"] == 0 and "outside the take folder" in error["message"]
    assert 0 not in rig.link.snapshot().slots  # a clip's failure is no slot's
