"""The performer page (``build_ui``) and the stage view (``build_stage``).

Every handler only changes the :class:`Performance` state or enqueues a request and returns at
once; timers redraw the history, slot grid and progress from the session and the link. Handlers
are plain functions of the performance, so tests call them without a browser.
"""

from __future__ import annotations

import html
from functools import partial
from typing import Any

import gradio as gr

from rig.config import ALLOWED_BARS
from rig.engines.base import ENGINES
from rig.link import LinkState
from rig.midi import MidiController
from rig.performance import ACTIONS, ActionError, Performance
from rig.prompt import PromptError
from rig.release import find_model_folders, read_config
from rig.session import SessionError
from rig.ui.access import is_local
from rig.ui.render import (
    morph_text,
    progress_text,
    slot_grid,
    stage_html,
    take_spectrogram,
)

AUTO = "auto"
NO_SLOT = "none"
HISTORY_HEADERS = ["#", "take", "prompt", "seed", "model", "slot", "status"]
REFRESH_S = 0.5


# -- handlers (tested directly) --------------------------------------------------------------
def generate(perf: Performance, text: str, *fields: Any) -> str:
    """Enter in the prompt box or the Generate button: set the fields, queue a request.

    Returns:
        A status line: what was queued, or the error (a bad prompt field, unknown engine, ...).
    """
    try:
        apply_fields(perf, text, *fields)
        job = perf.generate()
    except (ActionError, PromptError, SessionError, ValueError) as error:
        return f"⚠ {error}"
    return f"queued #{job.request.id}: {job.request.prompt.text or '(no text)'}"


def apply_fields(
    perf: Performance,
    text: str | None,
    tempo: float | None,
    key: str | None,
    bars: str | None,
    genre: str | None,
    instrument: str | None,
    engine: str | None,
    model: str | None,
    slot: str | None,
    lock: bool | None,
    seed: float | None,
) -> None:
    """The performer page's fields into the performance (empty or None = not set); every value
    goes through :meth:`Performance.update`'s checks, which name the field that is wrong."""
    perf.update(
        text=_text(text) or "",
        tempo=_text(tempo),
        key=_text(key),
        bars=None if bars in (None, AUTO) else bars,
        genre=_text(genre),
        instrument=_text(instrument),
        engine=engine or perf.fields.engine,
        model=None if model in (None, AUTO) else model,
        slot=None if slot in (None, NO_SLOT) else _whole(slot),
        seed=_whole(seed) if lock and seed is not None else None,
    )


def _text(value: Any) -> Any:
    """Stripped text, None for nothing; anything else as it came (the checks refuse it)."""
    if value is None:
        return None
    return value.strip() or None if isinstance(value, str) else value


def _whole(value: Any) -> Any:
    """``"3"`` → 3; anything else as it came (the checks say what is wrong)."""
    return int(value) if isinstance(value, str) and value.strip().isdigit() else value


def set_control(perf: Performance, name: str, value: float) -> None:
    """A latent control slider moved."""
    perf.set_control(name, value)


def history_rows(perf: Performance) -> list[list[Any]]:
    """The history table: newest first."""
    rows = []
    for job in perf.history():
        take = job.take
        meta = take.meta if take else {}
        model = meta.get("engine_info", {}).get("model") or job.request.model or job.request.engine
        status = "done" if job.status == "done" else f"{job.status}: {job.error or ''}"
        rows.append(
            [
                job.request.id,
                take.id if take else "",
                job.request.prompt.text,
                job.request.seed,
                model,
                job.request.slot or "",
                status,
            ]
        )
    return rows


def take_of_row(perf: Performance, row: int) -> str | None:
    """The id of the take shown in history row ``row`` (None for a failed job)."""
    jobs = perf.history()
    take = jobs[row].take if 0 <= row < len(jobs) else None
    return take.id if take is not None else None


def take_details(perf: Performance, take_id: str | None) -> tuple[Any, Any, str]:
    """Audio file, spectrogram image and a description of a take."""
    take = perf.find_take(take_id)
    if take is None:
        return None, None, "select a take in the history"
    meta = take.meta
    info = meta.get("engine_info", {})
    text = (
        f"**{html.escape(take.id)}** — {html.escape(meta['prompt']['full'])}  \n"
        f"seed {meta.get('seed')} · {meta['prompt']['tempo']:g} BPM · "
        f"{meta['prompt']['bars']} bars · model {info.get('model', meta.get('model'))}"
    )
    return str(take.wav), take_spectrogram(take), text


def take_action(perf: Performance, action: str, take_id: str | None, slot: Any) -> str:
    """The history's buttons: send to slot, vary, regenerate."""
    take = perf.find_take(take_id)
    if take is None:
        return "⚠ select a take first"
    try:
        if action == "send":
            if slot in (None, "", 0, "0"):
                return "⚠ choose a slot number (from 1)"
            number = perf.check_slot(_whole(slot))
            perf.send(take, number)
            return f"sending {take.id} to slot {number}"
        job = perf.vary(take) if action == "vary" else perf.regenerate(take)
    except (ActionError, SessionError, ValueError) as error:
        return f"⚠ {error}"
    return f"queued #{job.request.id} ({action} of {take.id})"


def cancel_all(perf: Performance) -> str:
    """The Cancel button: every waiting request and the running one."""
    count = perf.action("cancel")
    return f"cancelled {count} requests" if count else "nothing to cancel"


def preset_choices(perf: Performance, set_name: str | None) -> list[str]:
    """The presets of a set, as "1. text" labels."""
    for prompt_set in perf.sets:
        if prompt_set.name == set_name:
            return [f"{i + 1}. {p.text}" for i, p in enumerate(prompt_set.presets)]
    return []


def load_preset(perf: Performance, set_name: str | None, label: str | None) -> tuple[Any, ...]:
    """Load a preset (or step to the next one when ``label`` is "next") into the page."""
    try:
        if label == "next":
            perf.step_preset(1)
        else:
            index = [s.name for s in perf.sets].index(str(set_name))
            perf.load_preset(index, int(str(label).split(".")[0]) - 1)
    except (ActionError, ValueError) as error:
        return (gr.update(),) * 4 + (f"⚠ {error}",)
    f = perf.fields
    slot = str(f.slot) if f.slot else NO_SLOT
    name = perf.sets[perf.set_index].name
    return (
        f.text,
        slot,
        name,
        f"{perf.preset_index + 1}. {f.text}",
        f"preset {name} {perf.preset_index + 1}",
    )


def status_html(perf: Performance, midi: MidiController | None) -> str:
    """Queue depth, current progress, recent errors, MIDI."""
    session = perf.session
    failed = [j for j in perf.history(10) if j.status == "failed"][:3]
    lines = [f"queue: {session.queue_depth()}", html.escape(progress_text(perf.current()))]
    lines += [f"⚠ #{j.request.id}: {html.escape(j.error or '')}" for j in failed]
    lines += [f"⚠ {html.escape(w)}" for w in session.warnings[-3:]]
    lines += [f"⚠ {html.escape(n)}" for n in list(perf.notices)[-3:]]
    if midi is not None:
        learning = f" · learning {midi.learning}…" if midi.learning else ""
        lines.append(f"MIDI: {html.escape(midi.last_event or 'no message yet')}{learning}")
    return "<br>".join(lines)


def link_state(perf: Performance) -> LinkState:
    """The link's state, or an empty one without a link."""
    return perf.link.snapshot() if perf.link is not None else LinkState()


def stage_view(perf: Performance) -> str:
    """The stage page's HTML: current prompt and progress, latest take's pictures, slots."""
    current = perf.current()
    latest = next((j for j in perf.history() if j.take is not None), None)
    prompt = current.request.prompt.text if current else ""
    take = latest.take if latest is not None else None
    return stage_html(prompt, progress_text(current), morph_text(latest), link_state(perf), take)


def model_names(perf: Performance) -> list[str]:
    """Names of the loop models in the configured folders (from their config.json)."""
    names = []
    for folder in find_model_folders(perf.config.paths.models):
        try:
            names.append(str(read_config(folder).get("name", folder.name)))
        except ValueError:
            continue
    return names


# -- layout ----------------------------------------------------------------------------------
def build_ui(perf: Performance, midi: MidiController | None = None) -> gr.Blocks:
    """The performer page. Not launched: serve it with :mod:`rig.ui.server`."""
    with gr.Blocks(title="rig — performer") as page:
        with gr.Row():
            prompt = gr.Textbox(
                label="prompt (Enter generates)",
                elem_id="prompt",
                scale=5,
                placeholder="dusty drums, Tempo: 96, Key: A minor, Bars: 2",
            )
            go = gr.Button("Generate", variant="primary", scale=1, elem_id="generate")
        status = gr.Markdown(elem_id="message")
        fields = _field_controls(perf)
        _latent_controls(perf)
        with gr.Row():
            set_names = [s.name for s in perf.sets]
            first = set_names[0] if set_names else None
            sets = gr.Dropdown(set_names, value=first, label="prompt set")
            presets = gr.Dropdown(preset_choices(perf, first), label="preset")
            load = gr.Button("Load preset")
            step = gr.Button("Next preset")
        with gr.Row():
            progress = gr.HTML(elem_id="status")
            slots = gr.HTML(elem_id="slots")
        history = gr.Dataframe(
            headers=HISTORY_HEADERS,
            interactive=False,
            elem_id="history",
            label="takes (select one)",
        )
        selected = gr.State(None)
        with gr.Row():
            audio = gr.Audio(type="filepath", interactive=False, label="take", elem_id="take-audio")
            image = gr.Image(type="pil", interactive=False, label="spectrogram")
        about = gr.Markdown()
        with gr.Row():
            send_slot = gr.Dropdown(
                [str(n) for n in range(1, 9)], value="1", label="slot", allow_custom_value=True
            )
            send = gr.Button("Send to slot")
            vary = gr.Button("Vary")
            again = gr.Button("Regenerate")
            cancel = gr.Button("Cancel the queue", variant="stop", elem_id="cancel")
        if midi is not None:
            _learn_controls(perf, midi)
        inputs = [prompt, *fields]
        prompt.submit(partial(generate, perf), inputs, status, api_name="generate")
        go.click(partial(generate, perf), inputs, status)
        sets.change(
            lambda name: gr.update(choices=preset_choices(perf, name), value=None), sets, presets
        )
        preset_out = [prompt, fields[7], sets, presets, status]
        load.click(partial(load_preset, perf), [sets, presets], preset_out)
        step.click(lambda: load_preset(perf, None, "next"), None, preset_out)

        def select_row(evt: gr.SelectData) -> str | None:
            return take_of_row(perf, evt.index[0])

        history.select(select_row, None, selected)
        selected.change(partial(take_details, perf), selected, [audio, image, about])
        send.click(partial(take_action, perf, "send"), [selected, send_slot], status)
        vary.click(partial(take_action, perf, "vary"), [selected, send_slot], status)
        again.click(partial(take_action, perf, "regenerate"), [selected, send_slot], status)
        cancel.click(partial(cancel_all, perf), None, status)
        timer = gr.Timer(REFRESH_S)
        timer.tick(
            lambda: (
                status_html(perf, midi),
                slot_grid(link_state(perf)),
                history_rows(perf) or [[""] * len(HISTORY_HEADERS)],
            ),
            None,
            [progress, slots, history],
        )
    return page


def _field_controls(perf: Performance) -> list[Any]:
    f = perf.fields
    with gr.Accordion("fields", open=False):
        with gr.Row():
            # Text fields and open dropdowns: every value reaches the rig's own checks, which
            # name the field (Gradio's own refusals would only print tracebacks).
            tempo = gr.Textbox(label="tempo (empty: Live's)", placeholder="120")
            key = gr.Textbox(label="key", placeholder="E minor")
            bars = gr.Dropdown(
                [AUTO, *map(str, ALLOWED_BARS)], value=AUTO, label="bars", allow_custom_value=True
            )
            genre = gr.Textbox(label="genre")
            instrument = gr.Textbox(label="instrument")
        with gr.Row():
            engines = sorted({*ENGINES, f.engine})
            engine = gr.Dropdown(
                engines,
                value=f.engine,
                label="engine",
                info="gan: real time · sao: always denoises 47 s, minutes on a CPU · sa3",
                allow_custom_value=True,
            )
            model = gr.Dropdown(
                [AUTO, *model_names(perf)], value=AUTO, label="model", allow_custom_value=True
            )
            slot = gr.Dropdown(
                [NO_SLOT, *map(str, range(1, 9))],
                value=str(f.slot or NO_SLOT),
                label="slot",
                allow_custom_value=True,
            )
            lock = gr.Checkbox(label="lock seed", value=False)
            seed = gr.Textbox(label="seed", value="0")
    return [tempo, key, bars, genre, instrument, engine, model, slot, lock, seed]


def _latent_controls(perf: Performance) -> None:
    with gr.Accordion("latent controls", open=True), gr.Row():
        for param in perf.schema.values():
            slider = gr.Slider(
                param.low,
                param.high,
                value=perf.fields.controls[param.name],
                label=param.name,
                info=param.doc or None,
                elem_id=f"control-{param.name}",
            )
            slider.release(partial(set_control, perf, param.name), slider, None)


def save_mapping(perf: Performance, midi: MidiController, client: str = "127.0.0.1") -> str:
    """Write the controller mapping, learned bindings included, to ``midi.mapping`` — for a
    client on this computer, or any when ``ui.remote_writes`` allows it."""
    path = perf.config.midi.mapping
    if not is_local(client) and not perf.config.ui.remote_writes:
        return (
            f"⚠ only this computer may write {path} (a page from {client} may not; "
            "ui.remote_writes / RIG_UI_REMOTE_WRITES allows it)"
        )
    try:
        midi.mapping.save(path)
    except OSError as error:
        return f"⚠ cannot write {path}: {error.strerror}"
    return f"saved {len(midi.mapping.cc)} CCs and {len(midi.mapping.notes)} notes to {path}"


def _learn_controls(perf: Performance, midi: MidiController) -> None:
    targets = [*perf.schema, *(f"generate {n}" for n in range(1, 9)), *ACTIONS[1:]]
    with gr.Row():
        target = gr.Dropdown(targets, value=targets[0], label="MIDI learn: control or action")
        learn = gr.Button("Learn (then move a knob or hit a pad)")
        said = gr.Markdown()

    def arm(name: str) -> str:
        try:
            midi.learn(name)
        except (ActionError, ValueError) as error:
            return f"⚠ {error}"
        return f"move a control or hit a pad for {name}"

    learn.click(arm, target, said)
    save = gr.Button(f"Save mapping to {perf.config.midi.mapping}")

    def save_from(request: gr.Request) -> str:
        return save_mapping(perf, midi, request.client.host if request.client else "")

    save.click(save_from, None, said)


def build_stage(perf: Performance) -> gr.Blocks:
    """The projector page: prompt, progress, spectrogram, waveform, slots; no controls."""
    with gr.Blocks(title="rig — stage") as stage:
        board = gr.HTML(elem_id="stage-board")
        gr.Timer(REFRESH_S).tick(partial(stage_view, perf), None, board)
        stage.load(partial(stage_view, perf), None, board)
    return stage
