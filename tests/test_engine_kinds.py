"""An engine brings everything the rig shows of it: a toy engine registered in the test suite
only gets its sliders on the page, MIDI control, a stage line and exact regeneration, with no
change outside its module. And the page, MIDI and OSC threads may read while others submit."""

from __future__ import annotations

import dataclasses
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import gradio as gr
import mido
import pytest
import soundfile
from fake_engines import REGISTRY
from perf_fixtures import running_session

from rig.config import Config, DiffusionConfig, SessionConfig
from rig.midi import MidiController, MidiMapping
from rig.performance import ActionError, Performance
from rig.testing.standin import StandInDevice
from rig.ui import app


def running_rig(
    config: Config, engines: dict[str, str]
) -> Iterator[tuple[Performance, StandInDevice]]:
    settings = SessionConfig(timeout_s=60.0, max_queue=1000, warm=False)
    with running_session(config, engines, settings) as (config, session, link, device):
        perf = Performance(config, session, link)
        yield perf, device
        perf.close()


@pytest.fixture
def toy_rig(config: Config) -> Iterator[tuple[Performance, StandInDevice]]:
    yield from running_rig(config, {**REGISTRY, "toy": "toy_engine:TOY"})


def test_any_take_can_be_varied_from_its_audio_by_a_diffusion_engine(
    config: Config, tmp_path: Path
) -> None:
    """A toy take (no diffusion in it) → Stable Audio Open starts from its loop: the page's
    button and the MIDI/OSC action, with the noise level the page's slider set."""
    from rig.testing.tiny_pipelines import write_tiny

    tiny = write_tiny("sao", tmp_path / "tiny-sao")
    config = dataclasses.replace(
        config, diffusion=DiffusionConfig(sao_model=str(tiny), sao_steps=4)
    )
    engines = {"toy": "toy_engine:TOY", "sao": "rig.engines.diffusion_kind:SAO"}
    for perf, _device in running_rig(config, engines):
        perf.update(engine="toy", text="a toy tone", slot=None)
        toy = perf.session.wait(perf.generate().request.id, timeout=60).take
        perf.from_audio_strength = 0.3
        said = app.take_action(perf, "vary_audio", toy.id, 1)
        assert said.startswith("queued #2 (vary_audio of")
        job = perf.session.wait(2, timeout=120)
        assert job.status == "done", job.error
        recipe = job.take.recipe
        assert (recipe.engine, recipe.controls, recipe.model) == ("sao", {}, None)
        assert recipe.settings == {"init_audio": str(toy.wav), "strength": 0.3}
        assert recipe.prompt == toy.recipe.prompt and recipe.seed != toy.recipe.seed
        assert job.take.engine_info["strength"] == 0.3 and job.total < 4  # started part way
        assert soundfile.info(str(job.take.wav)).frames == soundfile.info(str(toy.wav)).frames
        action = perf.action("vary_audio", None, "osc")  # the newest take: the sao one
        assert action.request.recipe.settings["init_audio"] == str(job.take.wav)
        with pytest.raises(ActionError, match=r"strength 1\.5: how far from the take"):
            perf.vary_from_audio(toy, 1.5)


def test_without_an_engine_that_starts_from_audio_the_action_says_so(toy_rig) -> None:
    perf, _ = toy_rig
    perf.update(engine="toy", text="a toy tone", slot=None)
    perf.session.wait(perf.generate().request.id, timeout=60)
    with pytest.raises(ActionError, match="no engine here can start from a take's audio"):
        perf.vary_from_audio()


def test_a_toy_engine_gets_a_page_midi_and_a_stage_line(toy_rig) -> None:
    perf, device = toy_rig
    page = app.build_ui(perf, MidiController(MidiMapping(), perf))
    sliders = [
        b
        for b in page.blocks.values()
        if isinstance(b, gr.Slider) and (b.elem_id or "").startswith("control-")
    ]
    assert [(s.label, s.elem_id) for s in sliders] == [("wobble", "control-toy-wobble")]
    engines = next(b for b in page.blocks.values() if getattr(b, "label", None) == "engine")
    assert "toy: a test toy" in engines.info
    midi = MidiController(MidiMapping(cc={20: "wobble"}), perf)
    perf.update(engine="toy", text="a toy tone", slot=1)
    midi.handle(mido.Message("control_change", control=20, value=127))
    assert perf.snapshot().controls["toy"]["wobble"] == 10.0
    job = perf.session.wait(perf.generate().request.id, timeout=60)
    assert job.status == "done", job.error
    assert job.take.recipe.controls == {"wobble": 10.0} and job.take.engine_info["wobble"] == 10.0
    assert "toy tone wobbling at 10 Hz" in app.stage_view(perf)
    device.wait_for("/rig/load")
    again = perf.session.wait(perf.regenerate(job.take).request.id, timeout=60)
    assert again.take.recipe == job.take.replay
    assert again.take.wav.read_bytes()[44:] == job.take.wav.read_bytes()[44:]


def test_variations_are_takes_side_by_side_and_any_goes_to_a_slot(toy_rig) -> None:
    perf, device = toy_rig
    perf.update(engine="toy", text="three tones", slot=1)
    job = perf.session.wait(perf.generate().request.id, timeout=60)
    assert job.status == "done", job.error
    first, *others = job.takes
    assert [t.engine_info["variation"] for t in job.takes] == [1, 2, 3]
    assert len({t.wav for t in job.takes}) == 3 and all(t.wav.is_file() for t in job.takes)
    (sent,) = device.wait_for("/rig/load")
    assert sent[5] == first.id  # the first goes to the slot; the others wait to be auditioned
    rows = app.history_rows(perf)
    assert [row[1] for row in rows] == [t.id for t in job.takes]
    assert [row[6] for row in rows] == ["variation 1 of 3", "variation 2 of 3", "variation 3 of 3"]
    assert app.take_of_row(perf, 2) == others[1].id
    assert app.take_action(perf, "send", others[1].id, 2) == f"sending {others[1].id} to slot 2"
    loads = device.wait_for("/rig/load", count=2)
    assert loads[-1][:2] == (2, str(others[1].wav)) and loads[-1][5] == others[1].id


def test_the_page_polls_while_three_threads_submit(toy_rig) -> None:
    """Thread switches every microsecond, so an unlocked read of a table another thread grows
    fails here ("dictionary changed size during iteration") rather than on stage."""
    perf, _ = toy_rig
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        run_the_stress(perf)
    finally:
        sys.setswitchinterval(interval)


SUBMITS = 300  # per thread; every third is a cancel of everything


def run_the_stress(perf: Performance) -> None:
    perf.update(engine="word", text="busy", slot=None)
    problems: list[BaseException] = []
    stop = threading.Event()

    def submit(source: int) -> None:
        for n in range(SUBMITS):
            try:
                perf.generate() if n % 3 else perf.action("cancel", None)
            except ActionError:
                pass  # a full queue is an answer, not a failure
            except BaseException as error:  # anything else breaks the show
                problems.append(error)

    def poll(*reads: Callable[[], object]) -> None:
        while not stop.is_set():
            try:
                for read in reads:
                    read()
            except BaseException as error:
                problems.append(error)

    page = (lambda: app.history_rows(perf), lambda: app.status_html(perf, None))
    tight = (perf.current, lambda: perf.find_take("x"), perf.history, perf.snapshot)
    pollers = [
        threading.Thread(target=poll, args=page),
        threading.Thread(target=poll, args=(lambda: app.stage_view(perf),)),
        threading.Thread(target=poll, args=tight),
    ]
    writers = [threading.Thread(target=submit, args=(i,)) for i in range(3)]
    for thread in [*pollers, *writers]:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in pollers:
        thread.join()
    assert problems == []
    assert len(perf.session.snapshot()) == 3 * (SUBMITS - SUBMITS // 3)
