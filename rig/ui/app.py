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

from rig.clips import place_clip
from rig.config import ALLOWED_BARS
from rig.evolve import Evolution
from rig.link import LinkError, LinkState
from rig.midi import MidiController
from rig.performance import ACTIONS, ActionError, Performance
from rig.prompt import PromptError, format_prompt
from rig.release import find_model_folders, read_config
from rig.session import SessionError
from rig.takes import Take
from rig.ui.access import is_local
from rig.ui.fields import AUTO, NO_SLOT, apply, edits, redraw, render, whole, widget_names
from rig.ui.render import (
    evolving_html,
    progress_text,
    slot_grid,
    stage_html,
    take_spectrogram,
)

HISTORY_HEADERS = ["#", "take", "prompt", "seed", "model", "slot", "status"]
REFRESH_S = 0.5
Redraw = tuple[str, dict[str, Any], dict[str, Any]]  # (message, widget updates, rendered)


# -- handlers (tested directly) --------------------------------------------------------------
def generate(perf: Performance, values: dict[str, Any], rendered: dict[str, Any]) -> Redraw:
    """Enter in the prompt box or the Generate button: the performer's edits into the state,
    then the state's recipe into the queue (nothing is queued while an edit is refused).

    Args:
        values: every widget's value (:func:`rig.ui.fields.widget_names`).
        rendered: what the page rendered last.

    Returns:
        A status line (what was queued, or what is wrong, naming the field), the widget
        updates, and the new record of what the page shows.
    """
    problems = apply(perf, edits(values, rendered))
    if problems:
        return _redraw(perf, values, rendered, "⚠ " + "; ".join(problems))
    try:
        job = perf.generate()
    except (ActionError, PromptError, SessionError, ValueError) as error:
        return _redraw(perf, values, rendered, f"⚠ {error}")
    text = job.request.prompt.text or "(no text)"
    return _redraw(perf, values, rendered, f"queued #{job.request.id}: {text}")


def edit(perf: Performance, values: dict[str, Any], rendered: dict[str, Any]) -> Redraw:
    """A field or slider changed (a choice made, a text box left): the edits into the state; a
    refused one is named and its widget shows the state's value again."""
    problems = apply(perf, edits(values, rendered))
    message = "⚠ " + "; ".join(problems) if problems else ""
    return _redraw(perf, values, rendered, message, force=bool(problems))


def _redraw(
    perf: Performance,
    values: dict[str, Any],
    rendered: dict[str, Any],
    message: str = "",
    force: bool = False,
) -> Redraw:
    state = render(perf.snapshot(), list(values))
    updates, shown = redraw(state, values, rendered, force)
    return message, updates, shown


def history_rows(perf: Performance) -> list[list[Any]]:
    """The history table: newest first."""
    rows = []
    for job, take in perf.history_rows():
        request = job.request
        model = (take.replay.model if take else None) or request.model or request.engine
        status = "done" if job.status == "done" else f"{job.status}: {job.error or ''}"
        if take is not None and take.engine_info.get("variation"):
            info = take.engine_info
            status = f"variation {info['variation']} of {info.get('variations', '?')}"
        rows.append(
            [
                request.id,
                take.id if take else "",
                request.prompt.text,
                request.seed,
                model,
                request.slot or "",
                status,
            ]
        )
    return rows


def take_of_row(perf: Performance, row: int) -> str | None:
    """The id of the take shown in history row ``row`` (None for a failed job)."""
    rows = perf.history_rows()
    take = rows[row][1] if 0 <= row < len(rows) else None
    return take.id if take is not None else None


def take_details(perf: Performance, take_id: str | None) -> tuple[Any, Any, str]:
    """Audio file, spectrogram image and a description of a take."""
    take = perf.find_take(take_id)
    if take is None:
        return None, None, "select a take in the history"
    recipe, loop = take.recipe, take.loop
    text = (
        f"**{html.escape(take.id)}** — {html.escape(format_prompt(recipe.prompt))}  \n"
        f"{recipe.engine} · {loop.bpm:g} BPM · {loop.bars} bars · "
        f"{html.escape(perf.describe(take))}"
    )
    return str(take.wav), take_spectrogram(take), text


def take_action(
    perf: Performance, action: str, take_id: str | None, slot: Any, scene: Any = 0
) -> str:
    """The history's buttons: send to slot, vary, vary from its audio, regenerate."""
    take = perf.find_take(take_id)
    if take is None:
        return "⚠ select a take first"
    try:
        if action == "clip":
            return send_to_clip(perf, take, slot, scene)
        if action == "send":
            if slot in (None, "", 0, "0"):
                return "⚠ choose a slot number (from 1)"
            number = perf.check_slot(whole(slot))
            perf.send(take, number)
            return f"sending {take.id} to slot {number}"
        if action == "vary_audio":
            job = perf.vary_from_audio(take)
        else:
            job = perf.vary(take) if action == "vary" else perf.regenerate(take)
    except (ActionError, SessionError, ValueError) as error:
        return f"⚠ {error}"
    return f"queued #{job.request.id} ({action} of {take.id})"


def send_to_clip(perf: Performance, take: Take, track: Any, scene: Any = 0) -> str:
    """The history's Send to clip: ``take`` into audio ``track``'s clip slot at ``scene``
    (0: the next empty one)."""
    number, row = _count(track), _count(scene)
    if number is None or number < 1:
        return f"⚠ track {track!r}: an audio track's number, from 1"
    if row is None or row < 0:
        return f"⚠ scene {scene!r}: a scene's number, from 1 (0: the next empty slot)"
    if perf.link is None:
        return "⚠ no device link in this session"
    try:
        place_clip(perf.link, perf.config.clips, take, number, row)
    except LinkError as error:
        return f"⚠ {error}"
    where = f"scene {row}" if row else "its next empty slot"
    return f"placing {take.id} as a clip in track {number}, {where} (Live 12.0.5 or newer)"


def _count(value: Any) -> int | None:
    """A whole number from a page field ("3", 3.0, 3), else None."""
    number = whole(value)
    if isinstance(number, float) and number.is_integer():
        number = int(number)
    return number if isinstance(number, int) and not isinstance(number, bool) else None


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


def load_preset(
    perf: Performance,
    set_name: str | None,
    label: str | None,
    values: dict[str, Any],
    rendered: dict[str, Any],
) -> tuple[str, str | None, str | None, dict[str, Any], dict[str, Any]]:
    """Load a preset (or step to the next one when ``label`` is "next"): every field and slider
    then shows the state, the preset's seed, engine, model and controls included.

    Returns:
        (status line, the set's name, the preset's label, widget updates, rendered).
    """
    try:
        if label == "next":
            perf.step_preset(1)
        else:
            index = [s.name for s in perf.sets].index(str(set_name))
            perf.load_preset(index, int(str(label).split(".")[0]) - 1)
    except (ActionError, ValueError) as error:
        message, updates, shown = _redraw(perf, values, rendered, f"⚠ {error}")
        return message, set_name, label, updates, shown
    name = perf.sets[perf.set_index].name
    preset = perf.sets[perf.set_index].presets[perf.preset_index]
    said = f"preset {name} {perf.preset_index + 1}"
    message, updates, shown = _redraw(perf, values, rendered, said, force=True)
    return message, name, f"{perf.preset_index + 1}. {preset.text}", updates, shown


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
    """The stage page's HTML: current prompt and progress, latest take's pictures and its
    engine's line about it, slots."""
    current = perf.current()
    latest = next((j.take for j in perf.history() if j.take is not None), None)
    prompt = current.request.prompt.text if current else ""
    about = perf.describe(latest) if latest is not None else ""
    return stage_html(
        prompt, progress_text(current), about, link_state(perf), latest, evolutions(perf)
    )


def evolutions(perf: Performance) -> list[Evolution]:
    """The evolving slots (none without a device link)."""
    return perf.evolver.snapshot() if perf.evolver is not None else []


def evolve_action(perf: Performance, slot: Any, every: Any, path: str | None) -> str:
    """The page's Evolve button (every 0 bars stops the slot)."""
    if perf.evolver is None:
        return "⚠ slots evolve only with a device link (rig perform)"
    bars = _count(every)  # gr.Number gives floats
    if bars is None:
        return f"⚠ every {every!r}: a whole number of bars (0 stops)"
    try:
        number = perf.check_slot(whole(slot))
        evolution = perf.evolver.evolve(number, bars, path or None)
    except (ActionError, SessionError, ValueError) as error:
        return f"⚠ {error}"
    if evolution is None:
        return f"slot {number} stops evolving"
    return f"slot {number} evolves every {bars} bars ({evolution.path})"


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
    """The performer page. Not launched: serve it with :mod:`rig.ui.server`.

    Every field and slider shows the performance state (:mod:`rig.ui.fields`): the timer
    redraws what the state changed behind the page's back, the performer's edits go into the
    state through its checks."""
    names = widget_names(perf)
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
        widgets = {"text": prompt, **_field_controls(perf), **_engine_controls(perf)}
        rendered = gr.State(render(perf.snapshot(), names))
        with gr.Row():
            set_names = [s.name for s in perf.sets]
            first = set_names[0] if set_names else None
            sets = gr.Dropdown(set_names, value=first, label="prompt set", elem_id="preset-set")
            presets = gr.Dropdown(preset_choices(perf, first), label="preset", elem_id="preset")
            load = gr.Button("Load preset", elem_id="load-preset")
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
            clip_track = gr.Number(
                perf.config.clips.track or 1,
                precision=0,
                minimum=1,
                label="clip track",
                elem_id="clip-track",
            )
            clip_scene = gr.Number(
                0, precision=0, minimum=0, label="scene (0: next empty)", elem_id="clip-scene"
            )
            to_clip = gr.Button("Send to clip", elem_id="send-clip")
            vary = gr.Button("Vary")
            from_audio = gr.Button("Vary from audio", elem_id="vary-audio")
            strength = gr.Slider(
                0.05,
                1.0,
                value=perf.from_audio_strength,
                step=0.05,
                label="from the take: noise",
                info="0.05 stays close to the take, 1 ignores it (a diffusion engine)",
                elem_id="from-audio-strength",
            )
            again = gr.Button("Regenerate")
            cancel = gr.Button("Cancel the queue", variant="stop", elem_id="cancel")
        with gr.Row():
            every = gr.Number(
                4,
                precision=0,
                minimum=0,
                maximum=256,
                label="evolve every (bars; 0 stops)",
                elem_id="evolve-every",
            )
            path = gr.Dropdown(
                ["morph", "drift", "walk"],
                value="morph",
                allow_custom_value=True,
                label="evolve along",
                elem_id="evolve-path",
            )
            evolve = gr.Button("Evolve the slot", elem_id="evolve")
        if midi is not None:
            _learn_controls(perf, midi)

        ordered = [widgets[n] for n in names]
        state_io = [*ordered, rendered]

        def wired(handler: Any) -> Any:
            """A handler of (values, rendered) as Gradio calls it: positional widget values in,
            the status line, one update per widget and the new record out."""

            def run(*args: Any) -> list[Any]:
                values = dict(zip(names, args[:-1], strict=True))
                message, updates, shown = handler(perf, values, args[-1])
                return [message, *_updates(names, updates), shown]

            return run

        prompt.submit(wired(generate), state_io, [status, *state_io], api_name="generate")
        go.click(wired(generate), state_io, [status, *state_io])
        for name, widget in widgets.items():
            if name == "text":
                continue
            events = (
                [widget.release]
                if isinstance(widget, gr.Slider)
                else [widget.blur, widget.submit]
                if isinstance(widget, gr.Textbox)
                else [widget.input]
            )
            for event in events:
                event(wired(edit), state_io, [status, *state_io], show_progress="hidden")
        sets.change(
            lambda name: gr.update(choices=preset_choices(perf, name), value=None), sets, presets
        )

        def preset(set_name: str | None, label: str | None, *args: Any) -> list[Any]:
            values = dict(zip(names, args[:-1], strict=True))
            said, name, shown_label, updates, shown = load_preset(
                perf, set_name, label, values, args[-1]
            )
            choices = preset_choices(perf, name)
            return [
                said,
                name,
                gr.update(choices=choices, value=shown_label),
                *_updates(names, updates),
                shown,
            ]

        preset_out = [status, sets, presets, *state_io]
        load.click(preset, [sets, presets, *state_io], preset_out)
        step.click(lambda *a: preset(None, "next", *a), state_io, preset_out)

        def select_row(evt: gr.SelectData) -> str | None:
            return take_of_row(perf, evt.index[0])

        history.select(select_row, None, selected)
        selected.change(partial(take_details, perf), selected, [audio, image, about])
        send.click(partial(take_action, perf, "send"), [selected, send_slot], status)
        to_clip.click(
            partial(take_action, perf, "clip"), [selected, clip_track, clip_scene], status
        )
        vary.click(partial(take_action, perf, "vary"), [selected, send_slot], status)
        again.click(partial(take_action, perf, "regenerate"), [selected, send_slot], status)
        from_audio.click(partial(take_action, perf, "vary_audio"), [selected, send_slot], status)
        strength.release(lambda value: setattr(perf, "from_audio_strength", float(value)), strength)
        cancel.click(partial(cancel_all, perf), None, status)
        evolve.click(partial(evolve_action, perf), [send_slot, every, path], status)

        def tick(*args: Any) -> list[Any]:
            values = dict(zip(names, args[:-1], strict=True))
            _, updates, shown = _redraw(perf, values, args[-1])
            return [
                status_html(perf, midi),
                evolving_html(evolutions(perf)) + slot_grid(link_state(perf)),
                history_rows(perf) or [[""] * len(HISTORY_HEADERS)],
                *_updates(names, updates),
                shown,
            ]

        outputs = [progress, slots, history, *state_io]
        gr.Timer(REFRESH_S).tick(tick, state_io, outputs, show_progress="hidden")
        page.load(tick, state_io, outputs)
    return page


def _updates(names: list[str], updates: dict[str, Any]) -> list[Any]:
    """One Gradio update per widget: the new value, or no change."""
    return [gr.update(value=updates[n]) if n in updates else gr.update() for n in names]


def _field_controls(perf: Performance) -> dict[str, Any]:
    """The field widgets (without the prompt box), by field name."""
    f = perf.snapshot()
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
            negative = gr.Textbox(
                label="negative prompt (diffusion)",
                placeholder="the engine's own; none: no negative prompt",
                elem_id="negative",
            )
        with gr.Row():
            engine = gr.Dropdown(
                sorted(perf.kinds),
                value=f.engine,
                label="engine",
                info=" · ".join(f"{n}: {k.note}" for n, k in sorted(perf.kinds.items()) if k.note),
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
            lock = gr.Checkbox(label="lock seed", value=f.seed is not None, elem_id="lock")
            seed = gr.Textbox(
                label="seed", value=str(f.seed or ""), placeholder="random", elem_id="seed"
            )
    return {
        "tempo": tempo,
        "key": key,
        "bars": bars,
        "genre": genre,
        "instrument": instrument,
        "negative": negative,
        "engine": engine,
        "model": model,
        "slot": slot,
        "lock": lock,
        "seed": seed,
    }


def _engine_controls(perf: Performance) -> dict[str, Any]:
    """One slider per control of each engine that has any, by ``engine.name``."""
    f = perf.snapshot()
    sliders = {}
    for engine, schema in perf.schemas.items():
        if not schema:
            continue
        with gr.Accordion(f"controls: {engine}", open=engine == f.engine), gr.Row():
            for param in schema.values():
                sliders[f"{engine}.{param.name}"] = gr.Slider(
                    param.low,
                    param.high,
                    value=f.controls[engine][param.name],
                    label=param.name,
                    info=param.doc or None,
                    elem_id=f"control-{engine}-{param.name}",
                )
    return sliders


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
    targets = [*perf.control_names(), *(f"generate {n}" for n in range(1, 9)), *ACTIONS[1:]]
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
