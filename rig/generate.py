"""``rig generate``: one take made in this process (engine → loop tools → take), then one load
into a device slot, waiting for its answer."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import threading

from rig.config import Config
from rig.engines import ENGINES, Request, build_engine
from rig.engines.base import engine_kind
from rig.link import Link, LinkEvent, RetryPolicy
from rig.params import ParamError, check_controls
from rig.prompt import parse_prompt
from rig.session import produce_take
from rig.takes import Take, TakeStore

# Shorter than the session's: a one-shot command should not hang for long on a missing device.
CLI_RETRY = RetryPolicy(first_s=0.25, factor=2.0, max_s=1.0, attempts=4)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def generate(args: argparse.Namespace, config: Config) -> int:
    """``rig generate``: one request in this process, then (unless ``--no-send``) one load."""
    prompt = parse_prompt(args.prompt).with_defaults(
        config.music.tempo, config.music.bars, config.music.meter
    )
    controls = control_settings(args.set or [], args.engine, config)  # before any loading
    engine = build_engine(args.engine, ENGINES, config)
    slot = None if args.no_send else args.slot
    request = Request(prompt, args.engine, args.model, slot, args.seed, controls, id=1).seeded()

    def progress(step: int, total: int, note: str = "") -> None:
        _say(f"  step {step}/{total} {note}".rstrip())

    take = produce_take(request, engine, config, TakeStore(config.paths.takes), progress)
    if slot is not None:
        send_take(config, take, slot)
    for variation in take.variations:  # to audition; the last line is the take a slot gets
        _say(f"  variation {variation.engine_info.get('variation')}: {variation.wav}")
    print(take.wav)
    return 0


def control_settings(items: list[str], engine: str, config: Config) -> dict[str, float]:
    """``["variation=0", "gan.complexity=2"]`` → the controls of ``engine``, each checked
    against its schema as the page checks them.

    Raises:
        ParamError: not ``NAME=VALUE``, another engine's control, an unknown name (the known
            ones are listed) or a value that is not a number in the control's range.
    """
    given: dict[str, object] = {}
    for item in items:
        name, equals, value = item.partition("=")
        owner, dot, bare = name.strip().rpartition(".")
        if not equals or not bare:
            raise ParamError(f"--set {item!r}: write NAME=VALUE, e.g. --set variation=0")
        if dot and owner != engine:
            raise ParamError(f"--set {item!r}: {name.strip()} is not a control of {engine}")
        given[bare] = value.strip()
    schema = engine_kind(engine, ENGINES).params(config)
    return {k: v for k, v in check_controls(schema, given).items() if k in given}


def send_take(config: Config, take: Take, slot: int) -> bool:
    """Send ``take`` to ``slot`` and wait for the device's answer; says what happened.

    Returns:
        True when the device acknowledged the load.
    """
    osc = config.osc
    try:
        link = Link(osc, config.paths.takes, CLI_RETRY).start()
    except OSError:  # a running rig holds the listen port: send anyway, it gets the answer
        link = Link(dataclasses.replace(osc, listen_port=0), config.paths.takes, CLI_RETRY).start()
        _say(f"port {osc.listen_port} is in use (rig perform?); the device answers there")
    done = threading.Event()
    outcome: list[LinkEvent] = []

    def on_event(event: LinkEvent) -> None:
        if event.kind in ("loaded", "error", "load_failed"):
            outcome.append(event)
            done.set()

    link.subscribe(on_event)
    try:
        link.send_take(slot, take)
        done.wait(timeout=10)
    finally:
        link.close()
    if outcome and outcome[0].kind == "loaded":
        _say(f"the device loaded take {take.id} into slot {slot}")
        return True
    reason = outcome[0].data.get("message") if outcome else "no answer"
    _say(f"not loaded by the device at {osc.host}:{osc.port} ({reason}); the take is on disk")
    return False
