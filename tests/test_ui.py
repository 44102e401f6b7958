"""The UI's handlers, called directly on a page built with build_ui (never launched)."""

from __future__ import annotations

import gradio as gr
from conftest import wait_until
from perf_fixtures import Rig, page_generate, page_values
from PIL import Image

from rig.midi import MidiController, MidiMapping
from rig.ui import app


def test_pages_build_without_launching(perf_rig: Rig) -> None:
    page = app.build_ui(perf_rig.perf, MidiController(MidiMapping(), perf_rig.perf))
    stage = app.build_stage(perf_rig.perf)
    assert isinstance(page, gr.Blocks) and isinstance(stage, gr.Blocks)
    labels = {getattr(block, "label", None) for block in page.blocks.values()}
    assert {"morph", "variation", "spread", "complexity", "bass"} <= labels  # the schema's sliders


def test_enter_queues_and_the_take_reaches_history_and_device(perf_rig: Rig) -> None:
    said = page_generate(perf_rig.perf, "dusty loop, Bars: 1", slot="2")
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
    assert "Tempo: '500'" in page_generate(perf_rig.perf, "pad, Tempo: 500")
    assert "no engine named 'nope'" in page_generate(perf_rig.perf, "pad", engine="nope")
    assert page_generate(perf_rig.perf, "fail please").startswith("queued")
    failed = "the test engine was asked to fail"
    wait_until(lambda: failed in app.status_html(perf_rig.perf, None), timeout=60)
    assert "failed" in app.history_rows(perf_rig.perf)[0][6]
    assert app.take_action(perf_rig.perf, "send", None, 1) == "⚠ select a take first"


def test_history_buttons(perf_rig: Rig) -> None:
    page_generate(perf_rig.perf, "dusty loop")
    take = perf_rig.session.wait(1, timeout=60).take
    perf_rig.device.wait_for("/rig/load")
    assert app.take_action(perf_rig.perf, "send", take.id, 6) == f"sending {take.id} to slot 6"
    wait_until(lambda: any(args[0] == 6 for args in perf_rig.device.messages("/rig/load")))
    assert app.take_action(perf_rig.perf, "send", take.id, 0).startswith("⚠ choose a slot")
    assert app.take_action(perf_rig.perf, "vary", take.id, None).startswith("queued #2 (vary")
    assert app.take_action(perf_rig.perf, "regenerate", take.id, None).startswith("queued #3")
    assert perf_rig.session.wait(3, timeout=60).request.seed == take.recipe.seed


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
    values, rendered = page_values(perf_rig.perf)
    said, set_name, label, updates, shown = app.load_preset(
        perf_rig.perf, "Peak", "2. busy ...", values, rendered
    )
    assert (said, set_name, updates["slot"]) == ("preset Peak 2", "Peak", "4")
    assert updates["text"].startswith("busy percussion") and label.startswith("2. busy")
    assert shown == {**values, **updates}
    assert app.load_preset(perf_rig.perf, None, "next", values, shown)[2].startswith("3. heavy")
    assert app.load_preset(perf_rig.perf, "Nope", "1. x", values, shown)[0].startswith("⚠")
    html = app.stage_view(perf_rig.perf)
    assert 'id="stage-prompt"' in html and "no device heard yet" in html
    page_generate(perf_rig.perf, "dusty loop")
    perf_rig.session.wait(1, timeout=60)
    html = app.stage_view(perf_rig.perf)
    assert "dusty loop" in html and 'id="stage-spectrogram" src="data:image/png;base64,' in html


def test_the_slot_box_names_bad_slots_and_cancel_empties_the_queue(perf_rig: Rig) -> None:
    page_generate(perf_rig.perf, "dusty loop")
    take = perf_rig.session.wait(1, timeout=60).take
    assert app.take_action(perf_rig.perf, "send", take.id, "3") == f"sending {take.id} to slot 3"
    assert "slot" in app.take_action(perf_rig.perf, "send", take.id, "99").lower()
    assert app.take_action(perf_rig.perf, "send", take.id, "two").startswith("⚠")
    for _ in range(3):
        page_generate(perf_rig.perf, "slow loop")
    wait_until(lambda: perf_rig.session.jobs[2].status == "running", timeout=30)
    assert app.cancel_all(perf_rig.perf) == "cancelled 3 requests"
    assert [perf_rig.session.wait(n, timeout=30).status for n in (2, 3, 4)] == ["cancelled"] * 3
    assert app.cancel_all(perf_rig.perf) == "nothing to cancel"


def test_a_preset_keeps_its_seed_engine_and_controls_through_the_page(perf_rig: Rig) -> None:
    """The bug of the first plan: Load preset filled only the text, so the next Generate rebuilt
    the fields from stale widgets and lost the preset's seed. Peak 3 has seed 4242, Peak 1
    controls."""
    values, rendered = page_values(perf_rig.perf)
    _, _, _, updates, shown = app.load_preset(perf_rig.perf, "Peak", "1. x", values, rendered)
    assert updates["gan.morph"] == 0.6 and updates["gan.variation"] == 0.25
    _, _, _, updates, shown = app.load_preset(perf_rig.perf, "Peak", "3. x", values, shown)
    assert updates["lock"] is True and updates["seed"] == "4242" and updates["slot"] == "2"
    # Enter pressed before the browser drew the preset: the old values and the old record
    # arrive together, nothing counts as an edit, and the state (the preset) is generated.
    said, _, _ = app.generate(perf_rig.perf, values, rendered)
    job = perf_rig.session.wait(int(said.split("#")[1].split(":")[0]), timeout=60)
    assert job.request.seed == 4242 and job.request.slot == 2
    assert job.request.prompt.key == "F minor"  # from the preset's text, not a stale box
    said, _, _ = app.generate(perf_rig.perf, {**shown, "text": "my own words"}, shown)
    job = perf_rig.session.wait(int(said.split("#")[1].split(":")[0]), timeout=60)
    assert job.request.seed == 4242 and job.request.prompt.text == "my own words"


def test_the_timer_redraws_what_changed_behind_the_page_but_not_what_is_typed(
    perf_rig: Rig,
) -> None:
    values, rendered = page_values(perf_rig.perf)
    typing = {**values, "tempo": "13"}  # the performer is typing a tempo
    perf_rig.perf.set_control("gan.spread", 0.1)  # a MIDI knob
    perf_rig.perf.update(key="A minor")  # an OSC action, a preset from the controller...
    _, updates, shown = app._redraw(perf_rig.perf, typing, rendered)
    assert updates == {"gan.spread": 0.1, "key": "A minor"}
    assert shown["tempo"] == rendered["tempo"]  # still an edit on the next tick
    message, updates, _ = app.edit(perf_rig.perf, {**typing, "tempo": "500"}, shown)
    assert message.startswith("⚠ Tempo: '500'") and updates["tempo"] == ""  # shown as it is
