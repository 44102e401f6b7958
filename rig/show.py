"""``rig perform``: the show. The OSC link, the generation session (worker process with the
engines), the performer state, the MIDI controller and the web UI, until Ctrl-C.

Start order is link → session → performance → MIDI → UI; stop order is the reverse, so nothing
is left running: no worker process, no thread, no open port.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import FrameType

from rig.config import Config, is_loopback
from rig.engines import ENGINES
from rig.evolve import Evolver
from rig.link import Link, LinkEvent
from rig.lograte import LogLimiter
from rig.midi import MidiController, MidiError, MidiMapping, open_input
from rig.performance import ActionError, Performance
from rig.presets import load_sets
from rig.release import find_model_folders
from rig.remote.host import REMOTE_RETRY, Relay
from rig.retention import held_takes, prune, record_slot
from rig.session import Session
from rig.takes import TakeStore
from rig.ui.access import new_token

log = logging.getLogger(__name__)


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


def ui_token(config: Config) -> str:
    """The token other computers need for the web UI: ui.token, or a new one when the UI is
    served beyond this computer or in remote mode; "" when it is served on loopback only."""
    if is_loopback(config.ui.host) and not config.remote.enabled:
        return ""
    return config.ui.token or new_token()


def start_link(config: Config) -> tuple[Link, Relay | None]:
    """The device link, over UDP, or (remote mode) through a relay to companions; it holds the
    slots recorded before a restart, so the device's next hello brings them back."""
    relay = Relay(config.paths.takes, _say) if config.remote.enabled else None
    if relay is None:
        link = Link(config.osc, config.paths.takes)
    else:
        link = Link(config.osc, config.paths.takes, REMOTE_RETRY, outlet=relay.send)
        relay.attach(link.handle_message)
    for slot, take in held_takes(config.paths.takes).items():
        link.restore(slot, take)
    link.subscribe(partial(_record_slot, link, config.paths.takes))
    return link.start(), relay


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

    limited = LogLimiter(log)

    def on_event(event: LinkEvent) -> None:
        try:
            if event.kind == "cc":
                midi.on_cc(event.data["cc"], event.data["value"])
            elif event.kind == "tempo":
                perf.follow_tempo(event.data["bpm"])
            elif event.kind == "action":
                perf.action(event.data["name"], event.data["argument"], source="osc")
        except (ActionError, ValueError) as error:
            perf.notice(f"OSC {event.data.get('name', event.kind)}: {error}")
            limited.warning(event.kind, "OSC %s %.80s: %s", event.kind, event.data, error)

    return on_event


def perform(config: Config) -> int:
    """Run until SIGINT/SIGTERM; returns the exit code."""
    from rig.ui.server import UiServer  # gradio: only here

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    TakeStore(config.paths.takes).check()  # a read-only or missing disk: say so before the show
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    link, relay = start_link(config)
    link.subscribe(_log_link_event)
    preload = ["gan", *(["sao", "sa3"] if config.diffusion.preload else [])]
    session = Session(config, link).start(preload=preload)
    _prune_old_takes(config, session.store.session)
    midi: MidiController | None = None
    ui: UiServer | None = None
    perf: Performance | None = None
    try:
        sets, problems = load_sets(config.paths.prompts)
        perf = Performance(config, session, link, sets)
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
        Evolver(perf, link, log.info)
        midi = start_midi(config, perf)
        link.subscribe(osc_bridge(perf, midi))
        token = ui_token(config)
        ui = UiServer(perf, midi, config.ui.host, config.ui.port, token, relay).start()
        suffix = f"?token={token}" if token else ""
        _say(f"  performer page: {ui.url}{suffix}")
        _say(f"  stage view (projector): {ui.url}stage{suffix}")
        if relay is not None:
            _say(f"  remote: on the Live laptop run `rig companion {ui.url} --token {token}`")
            _say("  (through a tunnel: the URL of this port as the laptop reaches it)")
        if token and not config.ui.token:
            _say("  (a new token each start: set ui.token / RIG_TOKEN to keep one)")
        for item in missing_parts(config):
            _say(f"  missing: {item}")
        _say("  Ctrl-C stops the rig.")
        stop.wait()
    finally:
        _say("rig perform: stopping")
        for part in (ui, midi, perf, session, link, relay):
            if part is not None:
                part.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _record_slot(link: Link, root: Path, event: LinkEvent) -> None:
    """Keep ``.slots.json`` (what each slot holds) for the retention rules."""
    if event.kind == "loaded" and event.data["take_id"]:
        state = link.snapshot().slots.get(event.data["slot"])
        if state is not None and state.path:
            record_slot(root, event.data["slot"], Path(state.path))


def _prune_old_takes(config: Config, current: str) -> None:
    """Apply ``takes.keep_sessions`` / ``takes.max_gb`` at start (never this session)."""
    takes = config.takes
    if takes.keep_sessions or takes.max_gb:
        report = prune(config.paths.takes, takes.keep_sessions, takes.max_gb, current)
        if report.sessions or report.files:
            _say(
                f"  takes: removed {len(report.sessions)} old sessions and {len(report.files)} "
                f"files ({report.freed_bytes / 1e6:.0f} MB; takes.keep_sessions / max_gb)"
            )


def _log_link_event(event: LinkEvent) -> None:
    if event.kind == "hello":
        _say(f"device says hello: version {event.data['version']}, {event.data['slots']} slots")
    elif event.kind == "tempo":
        _say(f"Live's tempo: {event.data['bpm']:g} BPM")
    elif event.kind in ("error", "load_failed"):
        where = f"slot {event.data['slot']}" if event.data["slot"] else "clip"
        _say(f"{where}: {event.data['message']}")
    elif event.kind == "clipped":
        _say(f"clip in track {event.data['track']}, scene {event.data['scene']}")
