"""The performer's state — the prompt being written, its fields, the controls, the chosen preset —
and the actions on it. The UI, the MIDI controller and OSC ``/rig/action``/``/rig/cc`` all call
these; an action only changes this state or enqueues a request, it never runs an engine.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from rig.config import Config
from rig.engines.base import EngineError, EngineKind, Recipe, check_seed, check_slot, engine_kind
from rig.link import Link
from rig.params import Param, ParamError
from rig.presets import Preset, PromptSet
from rig.prompt import (
    Prompt,
    PromptError,
    check_text,
    parse_bars,
    parse_key,
    parse_prompt,
    parse_tempo,
)
from rig.session import Job, Session, SessionError
from rig.takes import Take

if TYPE_CHECKING:
    from rig.evolve import Evolver

ACTIONS = (
    "generate",
    "vary",
    "vary_audio",
    "regenerate",
    "next_preset",
    "previous_preset",
    "cancel",
    "evolve",
)
EVOLVE_BARS = 4  # bars between an evolving slot's swaps when the action does not say
NEGATIVE_LIMIT = 300  # characters of a negative prompt
FROM_AUDIO_STRENGTH = 0.5  # noise level a "vary from audio" starts at: as much noise as take
ACTION_BURST = 4  # actions a MIDI or OSC source may send at once before the rate applies
DEFAULT_SLOTS = 8  # slots of the device until its hello says how many it has
TEMPO_SETTLE_S = 1.0  # Live's tempo must hold this long before the slots are re-rendered


class ActionError(ValueError):
    """An action or control that does not exist or cannot be done now."""


@dataclass
class Fields:
    """What the next generation uses, as the performer set it: the page shows exactly this, and
    every entry point (page, MIDI, OSC, presets) changes it through :class:`Performance`."""

    text: str = ""
    tempo: float | None = None  # None: Live's tempo
    key: str | None = None
    bars: int | None = None
    genre: str | None = None
    instrument: str | None = None
    # What a diffusion engine steers away from; None: the engine's own (diffusion.<engine>_
    # negative_prompt), "": none at all. Other engines ignore it.
    negative: str | None = None
    engine: str = "gan"
    model: str | None = None  # None: the engine picks from the prompt
    slot: int | None = 1  # None: do not send
    seed: int | None = None  # locked seed; None: a fresh one each time
    controls: dict[str, dict[str, float]] = field(default_factory=dict)  # engine → name → value


class ActionBudget:
    """A token bucket per source: ``burst`` actions at once, then ``per_s`` a second."""

    def __init__(self, per_s: float, burst: int = ACTION_BURST) -> None:
        self.per_s, self.burst = per_s, burst
        self._tokens: dict[str, tuple[float, float]] = {}  # source -> (tokens, time)
        self._lock = threading.Lock()

    def take(self, source: str) -> bool:
        """True if ``source`` may act now (and spend one action)."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._tokens.get(source, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.per_s)
            allowed = tokens >= 1.0
            self._tokens[source] = (tokens - 1.0 if allowed else tokens, now)
            return allowed


class Performance:
    """Shared by the UI, MIDI and OSC handlers; thread-safe.

    Args:
        config: the rig's configuration.
        session: the queue the actions feed (its registry names the engines).
        link: the device link (None: takes are only written).
        sets: the prompt sets of the presets.
    """

    def __init__(
        self,
        config: Config,
        session: Session,
        link: Link | None,
        sets: list[PromptSet] | None = None,
    ) -> None:
        self.config = config
        self.session = session
        self.link = link
        self.kinds = _load_kinds(session.engines, self.notice)
        self.schemas = {n: {p.name: p for p in k.params(config)} for n, k in self.kinds.items()}
        self.sets = list(sets or [])
        controls = {n: {p.name: p.default for p in s.values()} for n, s in self.schemas.items()}
        engine = "gan" if "gan" in self.kinds else next(iter(self.kinds), "gan")
        self.fields = Fields(engine=engine, controls=controls)
        self.set_index = 0
        self.preset_index = -1  # none chosen yet
        self.last: Recipe | None = None
        self.from_audio_strength = FROM_AUDIO_STRENGTH  # the page's "from the take" slider
        self.revision = 0  # bumped by every change of the fields (the page redraws on it)
        self._lock = threading.RLock()
        self._retempo: threading.Timer | None = None
        self.budget = ActionBudget(config.session.actions_per_s)
        self.notices: deque[str] = deque(maxlen=5)  # what went wrong for MIDI / OSC, newest last
        self.evolver: Evolver | None = None  # evolving slots (rig.evolve), set by its owner

    # -- state -----------------------------------------------------------------------------
    def snapshot(self) -> Fields:
        """A copy of the fields (safe to read on any thread)."""
        with self._lock:
            return _copy(self.fields)

    def update(self, **changes: Any) -> Fields:
        """Change fields (``text="..."``, ``slot=2``, ...); returns a copy of the new state.

        Every value goes through the prompt's and the request's own checks, whatever sent it
        (page, MIDI, OSC, a preset).

        Raises:
            ActionError: an unknown field or engine; PromptError / RequestError: a value out of
                range, naming the field.
        """
        with self._lock:
            unknown = sorted(set(changes) - set(Fields.__dataclass_fields__) - {"controls"})
            if unknown:
                raise ActionError(f"unknown field(s) {', '.join(unknown)}")
            checked = {name: self._check(name, value) for name, value in changes.items()}
            self.fields = replace(self.fields, **checked)
            self.revision += 1
            return _copy(self.fields)

    def _check(self, name: str, value: Any) -> Any:
        """``value`` of field ``name`` as the prompt and request rules accept it."""
        if name == "engine":
            return self.kind(str(value)).name
        if value is None or name in ("model", "controls"):
            return value
        if name == "text":
            parse_prompt(str(value))
            return str(value).strip()
        if name in ("tempo", "bars") and (isinstance(value, bool) or not _number_or_text(value)):
            raise PromptError(name.capitalize(), str(value)[:40], "a number")
        checks = {
            "tempo": lambda v: parse_tempo(f"{v}"),
            "bars": lambda v: parse_bars(f"{v}"),
            "key": lambda v: parse_key(str(v)),
            "genre": lambda v: check_text("Genre", str(v)),
            "instrument": lambda v: check_text("Instrument", str(v)),
            "negative": lambda v: check_text("Negative prompt", str(v), NEGATIVE_LIMIT),
            "slot": self.check_slot,
            "seed": check_seed,
        }
        return checks[name](value)

    def kind(self, engine: str) -> EngineKind:
        """The registered engine ``engine``.

        Raises:
            ActionError: no such engine (the known ones are listed).
        """
        if engine not in self.kinds:
            known = ", ".join(sorted(self.kinds)) or "none"
            raise ActionError(f"no engine named {engine!r}; available: {known}")
        return self.kinds[engine]

    def check_slot(self, value: object) -> int:
        """A slot the device has (its hello's count; 8 until it says hello)."""
        slots = self.link.snapshot().device_slots if self.link is not None else None
        return check_slot(value, slots or DEFAULT_SLOTS)

    def control_names(self) -> list[str]:
        """Every engine's controls as ``engine.name`` (for MIDI learn and the docs)."""
        return [f"{e}.{n}" for e, schema in self.schemas.items() for n in schema]

    def resolve(self, name: str) -> tuple[str, Param]:
        """The engine and parameter a control name means: ``engine.name``, or a bare name of
        the chosen engine's controls, else of the one engine that has it (as a MIDI mapping
        written for one engine keeps working).

        Raises:
            ActionError: no engine has it, or several do and none is chosen.
        """
        with self._lock:
            return self._resolve(name, self.fields.engine)

    def _resolve(self, name: str, chosen: str) -> tuple[str, Param]:
        engine, dot, bare = name.partition(".")
        if dot:
            schema = self.schemas.get(engine, {})
            if bare not in schema:
                raise ActionError(f"no control named {name!r}; known: {self._known()}")
            return engine, schema[bare]
        if name in self.schemas.get(chosen, {}):
            return chosen, self.schemas[chosen][name]
        owners = [e for e, schema in self.schemas.items() if name in schema]
        if len(owners) != 1:
            problem = "several engines have" if owners else "no engine has"
            raise ActionError(f"{problem} a control named {name!r}; known: {self._known()}")
        return owners[0], self.schemas[owners[0]][name]

    def _known(self) -> str:
        return ", ".join(self.control_names()) or "none"

    def set_control(self, name: str, value: float) -> float:
        """Set a control (``engine.name`` or a bare name, see :meth:`resolve`) to ``value``,
        clamped to its range; returns the value set."""
        engine, param = self.resolve(name)
        with self._lock:
            self.fields.controls.setdefault(engine, {})[param.name] = param.clamp(value)
            self.revision += 1
            return self.fields.controls[engine][param.name]

    def set_control_unit(self, name: str, position: float) -> float:
        """Set a control from a controller position in [0, 1] (a CC value / 127)."""
        return self.set_control(name, self.resolve(name)[1].from_unit(position))

    def prompt(self) -> Prompt:
        """The structured prompt: the text's own fields, overridden by the set fields."""
        with self._lock:
            f = self.fields
            parsed = parse_prompt(f.text)
            return replace(
                parsed,
                tempo=f.tempo if f.tempo is not None else parsed.tempo,
                key=f.key or parsed.key,
                bars=f.bars if f.bars is not None else parsed.bars,
                genre=f.genre or parsed.genre,
                instrument=f.instrument or parsed.instrument,
            )

    def recipe(self, slot: int | None = None) -> Recipe:
        """What Generate makes now (into ``slot``, else the chosen slot)."""
        with self._lock:
            f = self.fields
            return Recipe(
                self.prompt(),
                f.engine,
                f.model,
                f.slot if slot is None else self.check_slot(slot),
                f.seed,
                dict(f.controls.get(f.engine, {})),
                settings={"negative_prompt": f.negative} if f.negative is not None else {},
            )

    # -- actions ---------------------------------------------------------------------------
    def generate(self, slot: int | None = None) -> Job:
        """Queue the current recipe (into ``slot``, else the chosen slot)."""
        return self._submit(self.recipe(slot))

    def vary(self, take: Take | None = None) -> Job:
        """``take``'s recipe (or the last one queued) with a new seed."""
        base = take.recipe if take is not None else self.last
        if base is None:
            raise ActionError("nothing to vary yet: generate first")
        return self._submit(replace(base, seed=None, target=None))

    def vary_from_audio(self, take: Take | None = None, strength: float | None = None) -> Job:
        """A new take that starts from ``take``'s loop (default: the newest take), any engine's:
        its prompt, a new seed, and an engine that can start from audio (the take's own, else
        the chosen one, else the first registered) at noise level ``strength`` in (0, 1]
        (default :attr:`from_audio_strength`; 1 ignores the take)."""
        take = take if take is not None else self._last_take()
        strength = self.from_audio_strength if strength is None else float(strength)
        if not (math.isfinite(strength) and 0.0 < strength <= 1.0):
            raise ActionError(f"strength {strength!r}: how far from the take, in (0, 1]")
        engine = self._audio_engine(take.recipe.engine)
        same = engine == take.recipe.engine
        recipe = replace(
            take.recipe,
            engine=engine,
            model=take.recipe.model if same else None,
            controls=take.recipe.controls if same else {},
            seed=None,
            target=None,
            settings={"init_audio": str(take.wav), "strength": strength},
        )
        return self._submit(recipe)

    def _audio_engine(self, preferred: str) -> str:
        for name in (preferred, self.fields.engine, *self.kinds):
            if name in self.kinds and self.kinds[name].from_audio:
                return name
        raise ActionError("no engine here can start from a take's audio (sao and sa3 can)")

    def regenerate(self, take: Take) -> Job:
        """``take`` again, identically: the recipe its engine said makes it again."""
        return self._submit(take.replay)

    def send(self, take: Take, slot: int) -> int:
        """Load ``take`` into device ``slot``; returns the link's request id."""
        if self.link is None:
            raise ActionError("no device link in this session")
        return self.link.send_take(slot, take)

    def load_preset(self, set_index: int, preset_index: int) -> Preset:
        """Put a preset into the fields: its text (tempo, key and the rest as the text says),
        slot, seed, engine, model and its engine's controls."""
        with self._lock:
            if not 0 <= set_index < len(self.sets):
                raise ActionError(f"no prompt set {set_index + 1} (there are {len(self.sets)})")
            presets = self.sets[set_index].presets
            if not 0 <= preset_index < len(presets):
                raise ActionError(f"no prompt {preset_index + 1} in {self.sets[set_index].name}")
            preset = presets[preset_index]
            engine = self.kind(preset.engine).name if preset.engine else self.fields.engine
            controls = {e: dict(values) for e, values in self.fields.controls.items()}
            for name, value in preset.controls.items():
                try:
                    owner, param = self._resolve(name, engine)
                except ActionError as error:  # a control of a model that is not installed
                    self.notice(f"preset {preset_index + 1}: {error}")
                    continue
                controls.setdefault(owner, {})[param.name] = param.clamp(value)
            self.set_index, self.preset_index = set_index, preset_index
            self.fields = replace(
                self.fields,
                text=preset.text,
                slot=preset.slot or self.fields.slot,
                seed=preset.seed,
                engine=engine,
                model=preset.model,
                controls=controls,
                tempo=None,
                key=None,
                bars=None,
                genre=None,
                instrument=None,
            )
            self.revision += 1
            return preset

    def step_preset(self, step: int) -> Preset:
        """The next (``step`` 1) or previous (-1) preset of the current set, wrapping."""
        with self._lock:
            if not self.sets:
                raise ActionError("no prompt sets loaded (put *.toml files in prompts/)")
            count = len(self.sets[self.set_index].presets)
            return self.load_preset(self.set_index, (self.preset_index + step) % count)

    def follow_tempo(self, bpm: float, settle_s: float = TEMPO_SETTLE_S) -> None:
        """Live's tempo changed: once it has held ``settle_s``, re-render every slot's GAN take
        at it (its recorded latent, so the same loop with fresh transients at the new tempo).
        Meanwhile the device keeps the old loop on the grid at its own pitch."""
        if not self.config.music.follow_tempo or self.link is None:
            return
        with self._lock:
            if self._retempo is not None:
                self._retempo.cancel()
            self._retempo = threading.Timer(settle_s, self.retempo, args=(bpm,))
            self._retempo.daemon = True
            self._retempo.start()

    def retempo(self, bpm: float) -> list[Job]:
        """Queue a re-render at ``bpm`` for each slot whose take is of this session, made at
        another tempo by an engine that follows the tempo (the GAN engine); returns the jobs."""
        if self.link is None:
            return []
        jobs = []
        for slot, state in sorted(self.link.snapshot().slots.items()):
            take = self.find_take(state.take_id)
            kind = self.kinds.get(take.replay.engine) if take is not None else None
            if take is None or kind is None or not kind.follows_tempo:
                continue
            if abs(take.loop.bpm - bpm) < 0.01:
                continue
            replay = take.replay
            prompt = replace(replay.prompt, tempo=bpm)
            jobs.append(self._submit(replace(replay, prompt=prompt, slot=slot)))
        return jobs

    def close(self) -> None:
        """Stop a pending re-render."""
        with self._lock:
            if self._retempo is not None:
                self._retempo.cancel()

    def notice(self, text: str) -> None:
        """Something a MIDI or OSC action could not do, for the page."""
        self.notices.append(f"{time.strftime('%H:%M:%S')} {text}")

    def action(self, name: str, argument: int | None = None, source: str = "ui") -> object:
        """Run a named action (MIDI notes, OSC ``/rig/action``, UI buttons). ``source`` "midi" or
        "osc" is rate-limited (``session.actions_per_s``, bursts of 4).

        Raises:
            ActionError: unknown action, a bad argument, too many actions, a full queue.
        """
        if source != "ui" and not self.budget.take(source):
            raise ActionError(
                f"too many {source} actions: at most {self.budget.per_s:g} a second "
                "(session.actions_per_s); this one was dropped"
            )
        if name == "cancel":
            if argument is None:
                return self.session.cancel_all()
            return self.session.cancel(argument)
        if name == "generate":
            return self.generate(argument)
        if name == "vary":
            return self.vary()
        if name == "vary_audio":
            return self.vary_from_audio()
        if name == "regenerate":
            take = self._last_take()
            return self.regenerate(take)
        if name in ("next_preset", "previous_preset"):
            return self.step_preset(1 if name == "next_preset" else -1)
        if name == "evolve":
            return self.toggle_evolve(argument)
        raise ActionError(f"no action named {name!r}; known: {', '.join(ACTIONS)}")

    def toggle_evolve(self, slot: int | None = None) -> object:
        """Start evolving ``slot`` (default: the chosen one) every :data:`EVOLVE_BARS` bars, or
        stop it if it evolves (the MIDI and ``/rig/action evolve N`` way; ``/rig/evolve`` and the
        page choose the bars and the path)."""
        if self.evolver is None:
            raise ActionError("slots evolve only with a device link (rig perform)")
        number = self.check_slot(slot if slot is not None else (self.fields.slot or 1))
        running = any(e.slot == number for e in self.evolver.snapshot())
        return self.evolver.evolve(number, 0 if running else EVOLVE_BARS)

    # -- views ---------------------------------------------------------------------------
    def history(self, limit: int = 50) -> list[Job]:
        """Finished and failed jobs, newest first."""
        jobs = self.session.snapshot()
        return [j for j in reversed(jobs) if j.status in ("done", "failed", "cancelled")][:limit]

    def history_rows(self, limit: int = 50) -> list[tuple[Job, Take | None]]:
        """The history as rows, newest job first: a row per take of a job (its variations
        side by side), one without a take for a job that failed or was cancelled."""
        rows: list[tuple[Job, Take | None]] = []
        for job in self.history(limit):
            rows.extend([(job, take) for take in job.takes] or [(job, None)])
        return rows

    def find_take(self, take_id: str | None) -> Take | None:
        """A take of this session by id, variations included (None when unknown)."""
        for job in self.session.snapshot():
            for take in job.takes:
                if take.id == take_id:
                    return take
        return None

    def current(self) -> Job | None:
        """The running job, else the newest queued one, else the newest of all."""
        jobs = self.session.snapshot()[::-1]
        for status in ("running", "queued"):
            for job in jobs:
                if job.status == status:
                    return job
        return jobs[0] if jobs else None

    def describe(self, take: Take) -> str:
        """The stage's line about ``take``, from its engine."""
        kind = self.kinds.get(take.replay.engine)
        return kind.describe(take) if kind is not None else ""

    # -- helpers ---------------------------------------------------------------------------
    def _submit(self, recipe: Recipe) -> Job:
        try:
            job = self.session.submit(recipe)
        except (ParamError, ValueError, SessionError) as error:
            raise ActionError(str(error)) from None
        with self._lock:
            self.last = job.request.recipe
        return job

    def _last_take(self) -> Take:
        for job in self.history():
            if job.take is not None:
                return job.take
        raise ActionError("no take yet to regenerate")


def _load_kinds(registry: Mapping[str, str], say: Callable[[str], None]) -> dict[str, EngineKind]:
    """The registered engines that can be described here (one that cannot is said and left
    out; the session reports it again when asked to run it)."""
    kinds = {}
    for name in registry:
        try:
            kinds[name] = engine_kind(name, registry)
        except EngineError as error:
            say(str(error))
    return kinds


def _copy(fields: Fields) -> Fields:
    return replace(fields, controls={e: dict(v) for e, v in fields.controls.items()})


def _number_or_text(value: Any) -> bool:
    return isinstance(value, int | float | str)
