"""``rig perform``: the show. The OSC link, the generation session (worker process with the
engines), the performer state, the MIDI controller and the web UI, until Ctrl-C.

Start order is link → session → performance → MIDI → UI; stop order is the reverse, so nothing
is left running: no worker process, no thread, no open port.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType

from rig.config import Config
from rig.engines import ENGINES
from rig.engines.gan_schema import gan_schema
from rig.link import Link, LinkEvent
from rig.midi import MidiController, MidiError, MidiMapping, open_input
from rig.performance import ActionError, Performance
from rig.presets import load_sets
from rig.release import find_model_folders
from rig.session import Session


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def missing_parts(config: Config) -> list[str]:
    """What ``rig perform`` cannot offer as configured, in words for the performer."""
    missing = []
    if not find_model_folders(config.paths.models):
        folders = ", ".join(str(p) for p in config.paths.models)
        missing.append(
            f"no loop models in {folders}, so the gan engine has nothing to play "
            "(`rig doctor` says more; `make train-defaults` trains the default ones)"
        )
    return missing


def start_midi(config: Config, perf: Performance) -> MidiController:
    """The controller with the configured mapping, reading its port if one is named."""
    mapping = MidiMapping()
    if config.midi.mapping.is_file():
        try:
            mapping = MidiMapping.load(config.midi.mapping)
        except MidiError as error:
            _say(f"  MIDI: {error}; no mapping loaded")
    controller = MidiController(mapping, perf)
    port = config.midi.port or mapping.port
    if port:
        try:
            controller.start(open_input(port))
            _say(f"  MIDI: reading {port!r} with {config.midi.mapping}")
        except MidiError as error:
            _say(f"  MIDI: {error}")
    return controller


def osc_bridge(perf: Performance, midi: MidiController) -> Callable[[LinkEvent], None]:
    """A link subscriber that runs ``/rig/cc`` and ``/rig/action`` like the MIDI controller,
    and re-renders the slots when Live's tempo settles."""

    def on_event(event: LinkEvent) -> None:
        try:
            if event.kind == "cc":
                midi.on_cc(event.data["cc"], event.data["value"])
            elif event.kind == "tempo":
                perf.follow_tempo(event.data["bpm"])
            elif event.kind == "action":
                perf.action(event.data["name"], event.data["argument"])
        except (ActionError, ValueError) as error:
            _say(f"OSC {event.kind} {event.data}: {error}")

    return on_event


def perform(config: Config) -> int:
    """Run until SIGINT/SIGTERM; returns the exit code."""
    from rig.ui.server import UiServer  # gradio: only here

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    link = Link(config.osc, config.paths.takes).start()
    link.subscribe(_log_link_event)
    preload = ["gan", *(["sao", "sa3"] if config.diffusion.preload else [])]
    session = Session(config, link).start(preload=preload)
    midi: MidiController | None = None
    ui: UiServer | None = None
    perf: Performance | None = None
    try:
        sets, problems = load_sets(config.paths.prompts)
        perf = Performance(config, session, link, gan_schema(config.paths.models), sets)
        _say(f"rig perform: takes in {session.store.folder}")
        _say(
            f"  OSC: sending to the device at {config.osc.host}:{config.osc.port}, "
            f"listening on UDP {link.port}"
        )
        _say(
            f"  engines: {', '.join(sorted(ENGINES))}; prompt sets: "
            f"{', '.join(s.name for s in sets) or 'none'}"
        )
        for problem in problems:
            _say(f"  prompt set skipped: {problem}")
        midi = start_midi(config, perf)
        link.subscribe(osc_bridge(perf, midi))
        ui = UiServer(perf, midi, config.ui.host, config.ui.port).start()
        _say(f"  performer page: {ui.url}")
        _say(f"  stage view (projector): {ui.url}stage")
        for item in missing_parts(config):
            _say(f"  missing: {item}")
        _say("  Ctrl-C stops the rig.")
        stop.wait()
    finally:
        _say("rig perform: stopping")
        for part in (ui, midi, perf, session, link):
            if part is not None:
                part.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _log_link_event(event: LinkEvent) -> None:
    if event.kind == "hello":
        _say(f"device says hello: version {event.data['version']}, {event.data['slots']} slots")
    elif event.kind == "tempo":
        _say(f"Live's tempo: {event.data['bpm']:g} BPM")
    elif event.kind in ("error", "load_failed"):
        _say(f"slot {event.data['slot']}: {event.data['message']}")
