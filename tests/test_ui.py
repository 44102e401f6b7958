"""The UI's handlers, called directly on a page built with build_ui (never launched)."""

from __future__ import annotations

import gradio as gr
from conftest import wait_until
from perf_fixtures import Rig
from PIL import Image

from rig.midi import MidiController, MidiMapping
from rig.ui import app

FIELDS = (None, "", "auto", "", "", "word", "auto", "2", False, 0)  # as an untouched page sends


def test_pages_build_without_launching(perf_rig: Rig) -> None:
    page = app.build_ui(perf_rig.perf, MidiController(MidiMapping(), perf_rig.perf))
    stage = app.build_stage(perf_rig.perf)
    assert isinstance(page, gr.Blocks) and isinstance(stage, gr.Blocks)
    labels = {getattr(block, "label", None) for block in page.blocks.values()}
    assert {"morph", "variation", "spread", "complexity", "bass"} <= labels  # the schema's sliders


def test_enter_queues_and_the_take_reaches_history_and_device(perf_rig: Rig) -> None:
    said = app.generate(perf_rig.perf, "dusty loop, Bars: 1", *FIELDS)
    assert said == "queued #1: dusty loop"
    job = perf_rig.session.wait(1, timeout=60)
    assert job.status == "done" and job.request.slot == 2
    rows = app.history_rows(perf_rig.perf)
    assert rows[0][:4] == [1, job.take.id, "dusty loop", job.request.seed]
    wav, image, text = app.take_details(perf_rig.perf, app.take_of_row(perf_rig.perf, 0))
    assert wav == str(job.take.wav) and isinstance(image, Image.Image)
    assert job.take.spectrogram is None  # the test engine has none: computed from the WAV
    assert job.take.id in text
    (args,) = perf_rig.device.wait_for("/rig/load")
    assert args[:2] == (2, str(job.take.wav))


def test_errors_are_shown_not_raised(perf_rig: Rig) -> None:
    assert app.generate(perf_rig.perf, "pad, Tempo: 500", *FIELDS).startswith("⚠ Tempo: '500'")
    fields = list(FIELDS)
    fields[5] = "nope"
    assert "no engine named 'nope'" in app.generate(perf_rig.perf, "pad", *fields)
    assert app.generate(perf_rig.perf, "fail please", *FIELDS).startswith("queued")
    failed = "the test engine was asked to fail"
    wait_until(lambda: failed in app.status_html(perf_rig.perf, None), timeout=60)
    assert "failed" in app.history_rows(perf_rig.perf)[0][6]
    assert app.take_action(perf_rig.perf, "send", None, 1) == "⚠ select a take first"


def test_history_buttons(perf_rig: Rig) -> None:
    app.generate(perf_rig.perf, "dusty loop", *FIELDS)
    take = perf_rig.session.wait(1, timeout=60).take
    perf_rig.device.wait_for("/rig/load")
    assert app.take_action(perf_rig.perf, "send", take.id, 6) == f"sending {take.id} to slot 6"
    wait_until(lambda: any(args[0] == 6 for args in perf_rig.device.messages("/rig/load")))
    assert app.take_action(perf_rig.perf, "send", take.id, 0).startswith("⚠ choose a slot")
    assert app.take_action(perf_rig.perf, "vary", take.id, None).startswith("queued #2 (vary")
    assert app.take_action(perf_rig.perf, "regenerate", take.id, None).startswith("queued #3")
    assert perf_rig.session.wait(3, timeout=60).request.seed == take.meta["seed"]


def test_learned_mapping_is_saved(perf_rig: Rig, tmp_path) -> None:
    import dataclasses

    midi = MidiController(MidiMapping(), perf_rig.perf)
    midi.learn("bass")
    midi.on_cc(30, 1)
    target = tmp_path / "midi.toml"
    perf_rig.perf.config = dataclasses.replace(
        perf_rig.config, midi=dataclasses.replace(perf_rig.config.midi, mapping=target)
    )
    assert app.save_mapping(perf_rig.perf, midi) == f"saved 1 CCs and 0 notes to {target}"
    assert MidiMapping.load(target).cc == {30: "bass"}
    perf_rig.perf.config = dataclasses.replace(
        perf_rig.config,
        midi=dataclasses.replace(perf_rig.config.midi, mapping=tmp_path / "no" / "midi.toml"),
    )
    assert app.save_mapping(perf_rig.perf, midi).startswith("⚠ cannot write")


def test_presets_and_stage(perf_rig: Rig) -> None:
    assert app.preset_choices(perf_rig.perf, "Peak")[0].startswith("1. very complex drums")
    text, slot, set_name, _label, said = app.load_preset(perf_rig.perf, "Peak", "2. busy ...")
    assert (slot, set_name, said) == ("4", "Peak", "preset Peak 2")
    assert text.startswith("busy percussion")
    assert app.load_preset(perf_rig.perf, None, "next")[3].startswith("3. heavy bass")
    assert app.load_preset(perf_rig.perf, "Nope", "1. x")[-1].startswith("⚠")
    html = app.stage_view(perf_rig.perf)
    assert 'id="stage-prompt"' in html and "no device heard yet" in html
    app.generate(perf_rig.perf, "dusty loop", *FIELDS)
    perf_rig.session.wait(1, timeout=60)
    html = app.stage_view(perf_rig.perf)
    assert "dusty loop" in html and 'id="stage-spectrogram" src="data:image/png;base64,' in html


def test_the_slot_box_names_bad_slots_and_cancel_empties_the_queue(perf_rig: Rig) -> None:
    app.generate(perf_rig.perf, "dusty loop", *FIELDS)
    take = perf_rig.session.wait(1, timeout=60).take
    assert app.take_action(perf_rig.perf, "send", take.id, "3") == f"sending {take.id} to slot 3"
    assert "slot" in app.take_action(perf_rig.perf, "send", take.id, "99").lower()
    assert app.take_action(perf_rig.perf, "send", take.id, "two").startswith("⚠")
    for _ in range(3):
        app.generate(perf_rig.perf, "slow loop", *FIELDS)
    wait_until(lambda: perf_rig.session.jobs[2].status == "running", timeout=30)
    assert app.cancel_all(perf_rig.perf) == "cancelled 3 requests"
    assert [perf_rig.session.wait(n, timeout=30).status for n in (2, 3, 4)] == ["cancelled"] * 3
    assert app.cancel_all(perf_rig.perf) == "nothing to cancel"
