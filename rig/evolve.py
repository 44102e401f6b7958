"""Evolving slots: every N bars a slot gets the next loop along a path, on its own.

``/rig/evolve slot every_bars [path]`` (the device, any OSC app, the page, MIDI) starts one; 0
bars stops it. The device's ``/rig/position`` (each beat while Live plays) is the clock
(:class:`BarClock`). A slot evolving every N bars swaps at bars 1, 1 + N, 1 + 2N, ... of Live's
song (the first at least two bars ahead). The next loop is generated as soon as the previous one
is sent, and the load goes out on the first beat of the bar *before* its swap bar: the device
reads it during that bar and swaps it in at the swap bar (it swaps a read loop in at the next
bar). A take that is not ready by then is not sent: the slot keeps its loop, and the take is
aimed at the following boundary.

Paths (each step is a recipe; the take records the recipe that makes it again):

- ``morph``: the GAN engine's w moves from where the path leg began toward a new seed's, a
  quarter of the way more each step (``settings["from_w"]``, ``morph`` = k/4); after four steps
  a new seed. A take of an engine that starts from audio (diffusion) is varied from its own
  audio instead, with a new seed each step.
- ``drift`` or ``drift:NAME``: the GAN take's exact w, moved along a named direction (default:
  the model's first), an eighth of its range more each step, turning back at the ends.
- ``walk``: the presets of the chosen prompt set, one after another, at the slot's tempo and bars.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from rig.engines.base import Recipe
from rig.engines.gan_kind import CORE_PARAMS
from rig.link import Link, LinkEvent, Position
from rig.performance import ActionError, Performance
from rig.prompt import parse_prompt
from rig.session import Job
from rig.takes import Take

log = logging.getLogger(__name__)
MORPH_STEPS = 4  # steps from one seed's w to the next
DRIFT_STEPS = 8  # steps across a direction's range
FROM_AUDIO_STEP = 0.35  # noise level of a diffusion take's next step
FAILURES_TO_STOP = 3  # failed generations in a row before a slot stops evolving
PATHS = ("morph", "drift", "walk")


@dataclass(frozen=True)
class BarClock:
    """Live's bar grid from the last ``/rig/position`` and the meter ``num``/``den``."""

    position: Position
    num: int = 4
    den: int = 4

    @property
    def beat_s(self) -> float:
        """Seconds of one beat of the meter."""
        return 60.0 / self.position.bpm * 4.0 / self.den

    def time_of(self, bar: int) -> float:
        """``time.monotonic()`` at which ``bar`` starts (at the current tempo)."""
        beats = (bar - self.position.bar) * self.num - (self.position.beat - 1.0)
        return self.position.at + beats * self.beat_s


@dataclass(frozen=True)
class Delivery:
    """One evolution step that reached the device in time."""

    slot: int
    bar: int  # the swap bar
    take_id: str
    ready_s: float  # how long before the swap bar's start the take was written
    sent_s: float  # how long before it the load was sent


@dataclass
class Evolution:
    """One evolving slot."""

    slot: int
    every: int  # bars between swaps
    path: str  # "morph", "drift:NAME" or "walk"
    origin: Take  # the last take sent (the path goes on from it)
    swap_bar: int | None = None  # the bar the next loop swaps in at (None until Live plays)
    step: int = 0  # steps into the current morph leg / drift / walk
    seed: int | None = None  # morph: the seed w is going toward
    leg_w: tuple[float, ...] | None = None  # morph: w where the leg began
    sign: float = 1.0  # drift: +1 or -1
    job: int | None = None  # the request generating the next loop
    ready: Take | None = None
    ready_at: float = 0.0
    failures: int = 0
    late: int = 0  # boundaries missed
    deliveries: list[Delivery] = field(default_factory=list)

    def heading(self) -> str:
        """Where the path goes, for the stage."""
        if self.path == "morph" and self.seed is not None:
            return f"morph toward seed {self.seed} ({self.step}/{MORPH_STEPS})"
        return self.path


class Evolver:
    """The evolving slots of a performance (link and session callbacks drive it)."""

    def __init__(self, perf: Performance, link: Link, say: Callable[[str], None]) -> None:
        self.perf, self.link, self.say = perf, link, say
        self.evolutions: dict[int, Evolution] = {}
        self._lock = threading.RLock()
        perf.evolver = self
        link.subscribe(self._on_link)
        perf.session.subscribe(self._on_job)

    # -- what the performer asks ---------------------------------------------------------------
    def evolve(self, slot: int, every: int, path: str | None = None) -> Evolution | None:
        """Start (or change) ``slot``'s evolution every ``every`` bars; 0 stops it.

        Raises:
            ActionError: a slot out of range, nothing in it yet, an unknown path, or a path its
                take's engine cannot follow.
        """
        slot = self.perf.check_slot(slot)
        if every == 0:
            with self._lock:
                stopped = self.evolutions.pop(slot, None)
            if stopped is not None and stopped.job is not None:
                self.perf.session.cancel(stopped.job)
            return None
        if not 1 <= every <= 256:
            raise ActionError(f"every {every} bars: evolve every 1-256 bars (0 stops)")
        evolution = Evolution(slot, every, "", self._held(slot))
        evolution.path = self._path(path or "morph", evolution.origin)
        recipe = self._next_recipe(evolution)  # a path this take cannot follow fails here
        with self._lock:
            previous = self.evolutions.get(slot)
            if previous is not None and previous.job is not None:
                self.perf.session.cancel(previous.job)
            try:
                evolution.job = self.perf.session.submit(recipe).request.id
            except ValueError as error:
                raise ActionError(str(error)) from None
            self.evolutions[slot] = evolution
        return evolution

    def snapshot(self) -> list[Evolution]:
        """Copies of the evolving slots, by slot."""
        with self._lock:
            chosen = sorted(self.evolutions.items())
            return [replace(e, deliveries=list(e.deliveries)) for _, e in chosen]

    def _held(self, slot: int) -> Take:
        state = self.link.snapshot().slots.get(slot)
        take = self.perf.find_take(state.take_id) if state is not None else None
        if take is None:
            raise ActionError(f"slot {slot} holds no take of this session to evolve from: "
                              "generate into it first")  # fmt: skip
        return take

    def _path(self, path: str, origin: Take) -> str:
        name, _, direction = path.partition(":")
        if name not in PATHS:
            raise ActionError(f"no evolution path {path!r}; known: {', '.join(PATHS)}")
        if name != "drift":
            return name
        schema = self.perf.schemas.get(origin.replay.engine, {})
        names = [n for n in schema if n not in CORE] if origin.replay.target is not None else []
        if not names:
            raise ActionError("drift follows a GAN take's named directions; this take has none")
        if direction and direction not in names:
            raise ActionError(f"no direction {direction!r}; known: {', '.join(names)}")
        return f"drift:{direction or names[0]}"

    # -- the clock -----------------------------------------------------------------------------
    def _on_link(self, event: LinkEvent) -> None:
        if event.kind == "position":
            self.on_position(event.data["position"])
        elif event.kind == "evolve":
            data = event.data
            try:
                self.evolve(data["slot"], data["every"], data["path"])
            except ActionError as error:
                self.perf.notice(f"/rig/evolve {data['slot']} {data['every']}: {error}")
                self.say(f"/rig/evolve: {error}")

    def on_position(self, position: Position) -> None:
        """A beat of Live's transport: send what is due, skip what is late."""
        clock = self._clock(position)
        with self._lock:
            evolutions = list(self.evolutions.values())
        for evolution in evolutions:
            with self._lock:
                if self.evolutions.get(evolution.slot) is evolution:  # not stopped meanwhile
                    self._tick(evolution, clock)

    def _clock(self, position: Position) -> BarClock:
        meter = self.link.snapshot().meter or f"{self.perf.config.music.beats_per_bar}/4"
        num, den = (int(x) for x in meter.split("/"))
        return BarClock(position, num, den)

    def _tick(self, evolution: Evolution, clock: BarClock) -> None:
        bar = clock.position.bar
        if evolution.swap_bar is None or not bar < evolution.swap_bar <= bar + evolution.every + 1:
            evolution.swap_bar = _next_boundary(bar + 2, evolution.every)
        if bar < evolution.swap_bar - 1:
            return
        if evolution.ready is None:  # too late for this boundary: keep the loop, aim further
            evolution.late += 1
            self.perf.notice(f"slot {evolution.slot}: the next loop was not ready a bar before "
                             f"bar {evolution.swap_bar}; it keeps its loop")  # fmt: skip
            evolution.swap_bar += evolution.every
            return
        take, start = evolution.ready, clock.time_of(evolution.swap_bar)
        self.perf.send(take, evolution.slot)
        now = time.monotonic()
        evolution.deliveries.append(Delivery(evolution.slot, evolution.swap_bar, take.id,
                                             start - evolution.ready_at, start - now))  # fmt: skip
        evolution.origin, evolution.ready = take, None
        evolution.swap_bar += evolution.every
        self._submit(evolution)

    # -- generations ---------------------------------------------------------------------------
    def _submit(self, evolution: Evolution) -> None:
        try:
            job = self.perf.session.submit(self._next_recipe(evolution))
        except (ActionError, ValueError) as error:
            self.perf.notice(f"slot {evolution.slot} stops evolving: {error}")
            self.evolutions.pop(evolution.slot, None)
            return
        evolution.job = job.request.id

    def _on_job(self, job: Job) -> None:
        with self._lock:
            evolution = next((e for e in self.evolutions.values() if e.job == job.request.id), None)
            if evolution is None or job.status not in ("done", "failed", "cancelled"):
                return
            evolution.job = None
            if job.status == "done" and job.take is not None:
                evolution.ready, evolution.ready_at = job.take, time.monotonic()
                evolution.failures = 0
                return
            evolution.failures += 1
            if job.status == "cancelled" or evolution.failures >= FAILURES_TO_STOP:
                self.evolutions.pop(evolution.slot, None)
                self.perf.notice(f"slot {evolution.slot} stops evolving: {job.error or job.status}")
                return
            self._submit(evolution)

    def _next_recipe(self, evolution: Evolution) -> Recipe:
        """The recipe of the path's next step (it advances the path)."""
        origin = evolution.origin
        tempo = self.link.snapshot().tempo or origin.loop.bpm
        tempo = tempo if 40.0 <= tempo <= 240.0 else origin.loop.bpm
        if evolution.path == "walk":
            recipe = self._walk(evolution, origin)
        elif evolution.path.startswith("drift:"):
            recipe = self._drift(evolution, origin)
        elif origin.replay.target is not None:
            recipe = self._morph(evolution, origin)
        elif self._from_audio(origin.recipe.engine):
            settings = {**origin.recipe.settings, "init_audio": str(origin.wav),
                        "strength": FROM_AUDIO_STEP}  # fmt: skip
            recipe = replace(origin.recipe, seed=None, target=None, settings=settings)
        else:
            raise ActionError(f"{origin.recipe.engine} takes cannot morph: evolve them with walk")
        bars = recipe.prompt.bars or origin.loop.bars
        return replace(recipe, prompt=replace(recipe.prompt, tempo=round(tempo, 3), bars=bars),
                       slot=None)  # fmt: skip

    def _from_audio(self, engine: str) -> bool:
        kind = self.perf.kinds.get(engine)
        return kind is not None and kind.from_audio

    def _morph(self, evolution: Evolution, origin: Take) -> Recipe:
        if evolution.seed is None or evolution.step >= MORPH_STEPS:
            evolution.seed = random.randrange(2**31)
            evolution.leg_w, evolution.step = origin.replay.target, 0
        evolution.step += 1
        controls = {**origin.replay.controls, "morph": evolution.step / MORPH_STEPS}
        settings = {**origin.replay.settings, "from_w": list(evolution.leg_w or ())}
        return replace(origin.replay, seed=evolution.seed, target=None, controls=controls,
                       settings=settings)  # fmt: skip

    def _drift(self, evolution: Evolution, origin: Take) -> Recipe:
        name = evolution.path.split(":", 1)[1]
        param = self.perf.schemas[origin.replay.engine][name]
        stride = (param.high - param.low) / DRIFT_STEPS
        value = origin.replay.controls.get(name, param.default) + evolution.sign * stride
        if not param.low <= value <= param.high:
            evolution.sign = -evolution.sign
            value = param.clamp(value)
        evolution.step += 1
        return replace(origin.replay, controls={**origin.replay.controls, name: value})

    def _walk(self, evolution: Evolution, origin: Take) -> Recipe:
        if not self.perf.sets:
            raise ActionError("there is no prompt set to walk through")
        presets = self.perf.sets[self.perf.set_index].presets
        preset = presets[evolution.step % len(presets)]
        evolution.step += 1
        engine = preset.engine or origin.recipe.engine
        return Recipe(parse_prompt(preset.text), engine, preset.model, None, preset.seed,
                      dict(preset.controls))  # fmt: skip


CORE = {p.name for p in CORE_PARAMS}  # the GAN engine's controls that are not directions


def _next_boundary(bar: int, every: int) -> int:
    """The first bar ≥ ``bar`` of the grid 1, 1 + every, 1 + 2·every, ..."""
    return bar + (-(bar - 1)) % every
