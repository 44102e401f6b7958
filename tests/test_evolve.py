"""Evolving slots against a stand-in device on real UDP that plays Live's transport fast: it
sends /rig/position on each beat, and /rig/evolve like any OSC app."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import wait_until
from perf_fixtures import Rig

from rig.evolve import BarClock, Evolver, _next_boundary
from rig.link import Position
from rig.performance import ActionError
from rig.presets import Preset, PromptSet
from rig.testing.transport import PlayingTransport


@pytest.fixture
def evolving(perf_rig: Rig) -> Iterator[tuple[Rig, Evolver]]:
    yield perf_rig, Evolver(perf_rig.perf, perf_rig.link, lambda _: None)


def first_take(rig: Rig, engine: str, text: str, slot: int = 1) -> str:
    rig.perf.update(engine=engine, text=text, slot=slot)
    job = rig.session.wait(rig.perf.generate().request.id, timeout=60)
    assert job.status == "done", job.error
    wait_until(lambda: getattr(rig.link.snapshot().slots.get(slot), "status", "") == "loaded")
    return job.take.id


def loads_for(rig: Rig, slot: int) -> list[tuple[tuple, float]]:
    return [(args, at) for (address, args), at in zip(rig.device.received, rig.device.arrived,
            strict=True) if address == "/rig/load" and args[0] == slot]  # fmt: skip


def test_each_evolved_take_arrives_in_the_bar_before_its_swap(evolving) -> None:
    rig, evolver = evolving
    origin = first_take(rig, "gan", "dusty drums")
    with PlayingTransport(rig.device, bpm=240.0) as transport:  # a bar is 1 s
        rig.device.send("/rig/evolve", 1, 1)  # any OSC app, on real UDP
        wait_until(lambda: len(evolver.snapshot()[0].deliveries) >= 4 if evolver.snapshot()
                   else False, timeout=30)  # fmt: skip
        evolution = evolver.evolutions[1]  # the live record: its deliveries outlast the stop
        rig.device.send("/rig/evolve", 1, 0)
        wait_until(lambda: not evolver.snapshot())
        sent = {d.take_id for d in evolution.deliveries}  # every load the evolver sent...
        wait_until(lambda: sent <= {args[5] for args, _ in loads_for(rig, 1)})  # ...has landed
        stopped_at = time.monotonic()
        time.sleep(2.5)  # two more bars: nothing arrives
    firsts: dict[int, tuple[tuple, float]] = {}  # req_id → its first send (the link re-sends)
    for args, at in loads_for(rig, 1):
        firsts.setdefault(args[6], (args, at))
    loads = [(args, at) for args, at in firsts.values() if args[5] != origin]
    assert len(loads) >= 4 and all(at < stopped_at for _, at in loads)
    assert {args[5] for args, _ in loads} == sent  # nothing but what the evolver delivered
    assert len({args[5] for args, _ in loads}) == len(loads)  # a new take each time
    swaps = [args for args, _ in loads]
    bars = []
    for _args, at in loads:
        bar = transport.bar_after(at)
        assert transport.bar_start(bar) - at > 0.5, (
            f"arrived {transport.bar_start(bar) - at:.3f} s before bar {bar}"
        )
        bars.append(bar)
    assert bars == sorted(bars) and len(set(bars)) == len(bars)  # one take per bar boundary
    takes = [rig.perf.find_take(args[5]) for args in swaps]
    morphs = [t.recipe.controls["morph"] for t in takes[:3]]
    assert morphs == [0.25, 0.5, 0.75] and all("from_w" in t.recipe.settings for t in takes)
    assert len({t.recipe.seed for t in takes[:3]}) == 1  # one leg: toward one seed


def test_a_late_take_keeps_the_loop_and_aims_at_the_next_boundary(evolving) -> None:
    rig, evolver = evolving
    first_take(rig, "word", "tick", slot=2)
    rig.perf.sets = [PromptSet("hang", Path("hang.toml"), (Preset("hang forever"),))]
    evolution = evolver.evolve(2, 2, "walk")  # its generations never finish
    assert evolution is not None and evolution.path == "walk"
    at = time.monotonic()
    for bar in range(1, 9):
        for beat in (1.0, 2.0, 3.0, 4.0):
            evolver.on_position(Position(bar, beat, 120.0, at))
    (state,) = evolver.snapshot()
    assert state.late == 4  # the boundaries at bars 3, 5, 7 and 9 were missed (due by 2 ... 8)
    assert state.swap_bar == 11 and not state.deliveries  # ... and it aims at bar 11
    assert len(loads_for(rig, 2)) == 1  # the slot kept its loop
    assert any("not ready a bar before bar 9" in n for n in rig.perf.notices)
    evolver.evolve(2, 0)
    assert evolver.snapshot() == []


def test_a_slot_stopped_while_a_beat_is_handled_sends_nothing(evolving) -> None:
    rig, evolver = evolving
    for slot in (1, 2):
        first_take(rig, "gan", "dusty drums", slot=slot)
        evolver.evolve(slot, 1)
    wait_until(lambda: all(e.ready is not None for e in evolver.snapshot()), timeout=60)
    send = rig.perf.send

    def send_and_stop_slot_2(take, slot):  # the page's stop lands mid-beat, after slot 1's send
        if slot == 1:
            evolver.evolve(2, 0)
        return send(take, slot)

    rig.perf.send = send_and_stop_slot_2
    at = time.monotonic()
    evolver.on_position(Position(1, 1.0, 120.0, at))  # aims both at bar 3
    evolver.on_position(Position(2, 1.0, 120.0, at + 2))  # the bar before it: both are due
    assert [e.slot for e in evolver.snapshot()] == [1]
    assert len(evolver.snapshot()[0].deliveries) == 1
    wait_until(lambda: len(loads_for(rig, 1)) >= 2)
    time.sleep(0.3)  # UDP on 127.0.0.1: anything sent has landed
    assert len({args[6] for args, _ in loads_for(rig, 2)}) == 1  # only its first take


def test_evolve_names_what_it_cannot_do(evolving) -> None:
    rig, evolver = evolving
    with pytest.raises(ActionError, match="slot 3 holds no take of this session"):
        evolver.evolve(3, 4)
    first_take(rig, "word", "tick", slot=3)
    with pytest.raises(ActionError, match="word takes cannot morph: evolve them with walk"):
        evolver.evolve(3, 4)
    with pytest.raises(ActionError, match="no evolution path 'spiral'; known: morph, drift, walk"):
        evolver.evolve(3, 4, "spiral")
    with pytest.raises(ActionError, match="drift follows a GAN take's named directions"):
        evolver.evolve(3, 4, "drift")
    with pytest.raises(ActionError, match="evolve every 1-256 bars"):
        evolver.evolve(3, 300)
    first_take(rig, "gan", "dusty drums", slot=4)
    with pytest.raises(ActionError, match="no direction 'wobble'; known: "):
        evolver.evolve(4, 4, "drift:wobble")
    evolution = evolver.evolve(4, 4, "drift")
    assert evolution is not None and evolution.path.startswith("drift:")
    assert rig.perf.toggle_evolve(4) is None and evolver.snapshot() == []  # the MIDI way: off
    assert rig.perf.toggle_evolve(4).every == 4  # and on again


def test_bar_clock_and_boundaries() -> None:
    clock = BarClock(Position(5, 3.5, 120.0, 100.0), 4, 4)  # bar 5, halfway into beat 3
    assert clock.time_of(6) == pytest.approx(100.0 + 1.5 * 0.5)
    assert clock.time_of(5) == pytest.approx(100.0 - 2.5 * 0.5)
    six_eight = BarClock(Position(1, 1.0, 120.0, 0.0), 6, 8)  # eighth-note beats
    assert six_eight.time_of(2) == pytest.approx(6 * 0.25)
    assert [_next_boundary(b, 4) for b in (1, 2, 5, 6, 9)] == [1, 5, 5, 9, 9]
    assert _next_boundary(7, 1) == 7


def test_the_page_starts_and_stops_it_and_the_stage_shows_where_it_goes(evolving) -> None:
    from rig.ui.app import evolve_action, stage_view

    rig, evolver = evolving
    first_take(rig, "gan", "dusty drums", slot=2)
    assert evolve_action(rig.perf, "2", 2, "morph") == "slot 2 evolves every 2 bars (morph)"
    assert evolve_action(rig.perf, "2", "x", "morph").startswith("⚠")
    stage = stage_view(rig.perf)
    assert "slot 2 evolves every 2 bars · morph toward seed" in stage
    assert "(1/4) · waiting for Live to play" in stage
    evolver.on_position(Position(7, 1.0, 120.0, time.monotonic()))
    assert "next at bar 9" in stage_view(rig.perf)
    assert evolve_action(rig.perf, "2", 0, None) == "slot 2 stops evolving"
    assert "evolves" not in stage_view(rig.perf)
