"""The performer's actions: generate, vary, regenerate, presets, controls; and MIDI + OSC."""

from __future__ import annotations

from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile
from conftest import wait_until
from perf_fixtures import Rig

from rig.link import LinkEvent
from rig.midi import MidiController, MidiError, MidiMapping, open_input, parse_action
from rig.performance import ActionError
from rig.show import osc_bridge
from rig.ui import fields


def done(perf_rig: Rig, job_id: int):
    job = perf_rig.session.wait(job_id, timeout=90)
    assert job.status == "done", job.error
    return job


def test_generate_uses_fields_and_controls(perf_rig: Rig) -> None:
    perf_rig.perf.update(text="dusty loop, Bars: 1", tempo=100.0, slot=3, seed=11)
    perf_rig.perf.set_control("gan.morph", 0.9)
    job = done(perf_rig, perf_rig.perf.generate().request.id)
    recipe = job.take.recipe
    assert (recipe.prompt.tempo, recipe.prompt.bars, recipe.slot, recipe.seed) == (100.0, 1, 3, 11)
    assert recipe.controls == {}  # the word engine has no controls; the GAN's stay its own
    (args,) = perf_rig.device.wait_for("/rig/load")
    assert args[0] == 3 and args[1] == str(job.take.wav)


def test_vary_changes_the_seed_only(perf_rig: Rig) -> None:
    perf_rig.perf.update(text="dusty loop", seed=5)
    first = done(perf_rig, perf_rig.perf.generate().request.id)
    varied = done(perf_rig, perf_rig.perf.vary(first.take).request.id)
    assert varied.request.seed != 5
    assert varied.take.recipe.prompt == first.take.recipe.prompt
    with pytest.raises(ActionError, match="nothing to vary yet"):
        type(perf_rig.perf)(perf_rig.config, perf_rig.session, perf_rig.link).vary()


def test_regenerate_is_identical_with_the_gan_engine(perf_rig: Rig) -> None:
    perf_rig.perf.update(engine="gan", text="drums", slot=None)
    perf_rig.perf.set_control("variation", 0.5)
    first = done(perf_rig, perf_rig.perf.generate().request.id)
    done(perf_rig, perf_rig.perf.generate().request.id)  # the latent moves on
    again = done(perf_rig, perf_rig.perf.regenerate(first.take).request.id)
    a, _ = soundfile.read(first.take.wav)
    b, _ = soundfile.read(again.take.wav)
    assert np.array_equal(a, b)
    assert again.take.engine_info["w"] == first.take.engine_info["w"]
    assert first.take.recipe.controls["variation"] == 0.5
    assert again.take.recipe == first.take.replay  # regenerate asks for exactly the replay


def test_a_settled_tempo_change_re_renders_the_slots_gan_takes(perf_rig: Rig) -> None:
    """Live's tempo moves: once it holds, each slot's GAN take is made again at the new tempo
    from its recorded latent (other engines' takes are left to the device's slices)."""
    perf_rig.perf.update(engine="gan", text="drums, Bars: 1", tempo=120.0, slot=2, seed=3)
    gan = done(perf_rig, perf_rig.perf.generate().request.id)
    perf_rig.perf.update(engine="word", text="pad, Bars: 1", slot=3)
    done(perf_rig, perf_rig.perf.generate().request.id)
    wait_until(lambda: len(perf_rig.device.messages("/rig/load")) == 2)
    wait_until(lambda: perf_rig.link.snapshot().slots[3].status == "loaded")
    bridge = osc_bridge(perf_rig.perf, MidiController(MidiMapping(), perf_rig.perf))
    for bpm in (121.0, 123.5, 126.0):  # turning the tempo knob: only the last one counts
        bridge(LinkEvent("tempo", {"bpm": bpm}))
    wait_until(lambda: len(perf_rig.device.messages("/rig/load")) == 3, timeout=60)
    slot, path, bpm, bars, beats = perf_rig.device.messages("/rig/load")[-1][:5]
    assert (slot, bpm, bars, beats) == (2, 126.0, 1, 4)
    again = perf_rig.perf.find_take(perf_rig.link.snapshot().slots[2].take_id)
    assert again is not None and again.wav == Path(path)
    assert again.engine_info["w"] == gan.take.engine_info["w"]
    assert perf_rig.perf.retempo(126.0) == []  # already at that tempo: nothing to do


def test_controls_are_checked_and_clamped(perf_rig: Rig) -> None:
    assert perf_rig.perf.set_control("spread", 7.0) == 1.0
    assert perf_rig.perf.set_control_unit("variation", 0.5) == pytest.approx(0.25)
    assert perf_rig.perf.set_control_unit("complexity", 1.0) == 3.0  # the tiny model's range
    with pytest.raises(ActionError, match=r"no engine has a control named 'wobble'; known: gan\."):
        perf_rig.perf.set_control("wobble", 1.0)
    with pytest.raises(ActionError, match=r"no control named 'word\.spread'"):
        perf_rig.perf.set_control("word.spread", 1.0)
    assert perf_rig.perf.set_control("gan.spread", 0.5) == 0.5
    with pytest.raises(ActionError, match="unknown field"):
        perf_rig.perf.update(colour="red")


def test_presets_step_and_wrap(perf_rig: Rig) -> None:
    preset = perf_rig.perf.load_preset(1, 0)
    assert perf_rig.perf.fields.text == preset.text and perf_rig.perf.fields.slot == 1
    assert perf_rig.perf.fields.controls["gan"]["variation"] == 0.25
    count = len(perf_rig.perf.sets[1].presets)
    for _ in range(count):
        perf_rig.perf.step_preset(1)
    assert perf_rig.perf.preset_index == 0  # wrapped round
    assert perf_rig.perf.step_preset(-1) == perf_rig.perf.sets[1].presets[-1]
    with pytest.raises(ActionError, match="no prompt set 9"):
        perf_rig.perf.load_preset(8, 0)


def test_actions_by_name(perf_rig: Rig) -> None:
    perf_rig.perf.update(text="dusty loop")
    job = perf_rig.perf.action("generate", 4)
    assert job.request.slot == 4
    done(perf_rig, job.request.id)
    assert perf_rig.perf.action("regenerate").request.seed == job.request.seed
    perf_rig.perf.action("next_preset")
    assert perf_rig.perf.preset_index == 0
    with pytest.raises(ActionError, match="no action named 'explode'"):
        perf_rig.perf.action("explode")


# -- MIDI ------------------------------------------------------------------------------------
def mapping() -> MidiMapping:
    return MidiMapping(
        port="Test",
        cc={16: "morph", 17: "variation"},
        notes={36: ("generate", 2), 44: ("next_preset", None)},
    )


def test_mapping_file_round_trip_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "midi.toml"
    mapping().save(path)
    loaded = MidiMapping.load(path)
    assert loaded == mapping()
    path.write_text('[note]\n36 = "explode"\n')
    with pytest.raises(MidiError, match="'explode' is not an action; known: generate"):
        MidiMapping.load(path)
    path.write_text('[cc]\n300 = "morph"\n')
    with pytest.raises(MidiError, match="CC number '300' is outside 0-127"):
        MidiMapping.load(path)
    assert parse_action("generate 3") == ("generate", 3)


def test_cc_moves_a_control_and_a_note_generates(perf_rig: Rig) -> None:
    midi = MidiController(mapping(), perf_rig.perf)
    perf_rig.perf.update(text="dusty loop")
    midi.handle(mido.Message("control_change", control=16, value=127))
    midi.handle(mido.Message("control_change", control=17, value=64))
    assert perf_rig.perf.fields.controls["gan"]["morph"] == 1.0
    assert perf_rig.perf.fields.controls["gan"]["variation"] == pytest.approx((64 / 127) ** 2)
    midi.handle(mido.Message("note_on", note=36, velocity=90))
    midi.handle(mido.Message("note_on", note=36, velocity=0))  # a note-off in disguise
    jobs = perf_rig.session.snapshot()
    assert len(jobs) == 1 and jobs[0].request.slot == 2
    midi.handle(mido.Message("note_on", note=44, velocity=90))
    assert perf_rig.perf.preset_index == 0
    midi.handle(mido.Message("control_change", control=99, value=3))  # unmapped: nothing
    assert midi.last_event == "note 44 → next_preset"


def test_learn_binds_the_next_control(perf_rig: Rig, tmp_path: Path) -> None:
    midi = MidiController(MidiMapping(), perf_rig.perf)
    midi.learn("spread")
    midi.handle(mido.Message("control_change", control=21, value=10))
    assert midi.mapping.cc == {21: "spread"} and midi.learning is None
    midi.handle(mido.Message("control_change", control=21, value=0))
    assert perf_rig.perf.fields.controls["gan"]["spread"] == 0.0
    midi.learn("generate 3")
    midi.handle(mido.Message("note_on", note=50, velocity=1))
    assert midi.mapping.notes == {50: ("generate", 3)}
    with pytest.raises(ActionError, match="cannot learn 'nonsense'"):
        midi.learn("nonsense")
    midi.mapping.save(tmp_path / "learned.toml")
    assert MidiMapping.load(tmp_path / "learned.toml").notes == {50: ("generate", 3)}


def test_an_in_memory_port_feeds_the_controller(perf_rig: Rig) -> None:
    port = mido.ports.BaseInput()
    midi = MidiController(mapping(), perf_rig.perf).start(port)
    try:
        port._messages.append(mido.Message("control_change", control=16, value=0))
        wait_until(lambda: perf_rig.perf.fields.controls["gan"]["morph"] == 0.0)
    finally:
        midi.close()
    assert port.closed


def test_ports_are_chosen_by_name() -> None:
    names = lambda: ["nanoKONTROL2 MIDI 1", "Launchpad X MIDI 1", "Launchpad X MIDI 2"]  # noqa: E731
    with pytest.raises(
        MidiError,
        match=r"'Akai' matches no input port; available: "
        r"'nanoKONTROL2 MIDI 1', 'Launchpad X MIDI 1'",
    ):
        open_input("Akai", names)
    with pytest.raises(MidiError, match="'Launchpad' matches several"):
        open_input("Launchpad", names)

    def broken() -> list[str]:
        raise OSError("ALSA sequencer unavailable")

    with pytest.raises(MidiError, match="no MIDI system is available here"):
        open_input("nanoKONTROL2", broken)


def test_osc_cc_and_action_reach_the_performance(perf_rig: Rig) -> None:
    midi = MidiController(mapping(), perf_rig.perf)
    perf_rig.link.subscribe(osc_bridge(perf_rig.perf, midi))
    perf_rig.perf.update(text="dusty loop")
    perf_rig.device.send("/rig/cc", 16, 0)
    wait_until(lambda: perf_rig.perf.fields.controls["gan"]["morph"] == 0.0)
    perf_rig.device.send("/rig/action", "generate", 5)
    wait_until(lambda: any(j.request.slot == 5 for j in perf_rig.session.jobs.values()))
    perf_rig.device.send("/rig/action", "explode")  # logged, nothing else
    perf_rig.device.send("/rig/cc", 500, 1)  # malformed: dropped by the link
    perf_rig.device.send("/rig/action", "next_preset")
    wait_until(lambda: perf_rig.perf.preset_index == 0)


def test_the_negative_prompt_is_a_field_of_the_page(perf_rig: Rig) -> None:
    """Empty: the engine's own; "none": no negative prompt; anything else goes to the engine in
    the recipe's settings (which a diffusion engine reads over its default)."""
    perf = perf_rig.perf
    assert perf.recipe().settings == {}
    assert fields.apply(perf, {"negative": "  hiss,  clipping "}) == []
    assert perf.recipe().settings == {"negative_prompt": "hiss, clipping"}
    assert fields.render(perf.snapshot(), ["negative"]) == {"negative": "hiss, clipping"}
    assert fields.apply(perf, {"negative": "None"}) == []
    assert perf.recipe().settings == {"negative_prompt": ""}
    assert fields.render(perf.snapshot(), ["negative"]) == {"negative": "none"}
    (problem,) = fields.apply(perf, {"negative": "x\x00y"})
    assert "Negative prompt" in problem and perf.snapshot().negative == ""  # kept as it was
    assert fields.apply(perf, {"negative": ""}) == [] and perf.recipe().settings == {}
