"""The performer's state — the prompt being written, its fields, the controls, the chosen preset —
and the actions on it. The UI, the MIDI controller and OSC ``/rig/action``/``/rig/cc`` all call
these; an action only changes this state or enqueues a request, it never runs an engine.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from rig.config import Config
from rig.engines.base import Request, check_seed, check_slot
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

ACTIONS = ("generate", "vary", "regenerate", "next_preset", "previous_preset", "cancel")
ACTION_BURST = 4  # actions a MIDI or OSC source may send at once before the rate applies
DEFAULT_SLOTS = 8  # slots of the device until its hello says how many it has
TEMPO_SETTLE_S = 1.0  # Live's tempo must hold this long before the slots are re-rendered


class ActionError(ValueError):
    """An action or control that does not exist or cannot be done now."""


@dataclass
class Fields:
    """What the next generation uses, as the performer set it."""

    text: str = ""
    tempo: float | None = None  # None: Live's tempo
    key: str | None = None
    bars: int | None = None
    genre: str | None = None
    instrument: str | None = None
    engine: str = "gan"
    model: str | None = None  # None: the engine picks from the prompt
    slot: int | None = 1  # None: do not send
    seed: int | None = None  # locked seed; None: a fresh one each time
    controls: dict[str, float] = field(default_factory=dict)


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
    """Shared by the UI, MIDI and OSC handlers; thread-safe."""

    def __init__(
        self,
        config: Config,
        session: Session,
        link: Link | None,
        schema: list[Param],
        sets: list[PromptSet] | None = None,
    ) -> None:
        self.config = config
        self.session = session
        self.link = link
        self.schema = {p.name: p for p in schema}
        self.sets = list(sets or [])
        self.fields = Fields(controls={p.name: p.default for p in schema})
        self.set_index = 0
        self.preset_index = -1  # none chosen yet
        self.last: Request | None = None
        self._lock = threading.RLock()
        self._retempo: threading.Timer | None = None
        self.budget = ActionBudget(config.session.actions_per_s)
        self.notices: deque[str] = deque(maxlen=5)  # what went wrong for MIDI / OSC, newest last

    # -- state -----------------------------------------------------------------------------
    def update(self, **changes: Any) -> Fields:
        """Change fields (``text="..."``, ``slot=2``, ...); returns a copy of the new state.

        Every value goes through the prompt's and the request's own checks, whatever sent it
        (page, MIDI, OSC, a preset).

        Raises:
            ActionError: an unknown field; PromptError / RequestError: a value out of range,
                naming the field.
        """
        with self._lock:
            unknown = sorted(set(changes) - set(Fields.__dataclass_fields__) - {"controls"})
            if unknown:
                raise ActionError(f"unknown field(s) {', '.join(unknown)}")
            checked = {name: self._check(name, value) for name, value in changes.items()}
            self.fields = replace(self.fields, **checked)
            return replace(self.fields, controls=dict(self.fields.controls))

    def _check(self, name: str, value: Any) -> Any:
        """``value`` of field ``name`` as the prompt and request rules accept it."""
        if value is None or name in ("engine", "model", "controls"):
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
            "slot": self.check_slot,
            "seed": check_seed,
        }
        return checks[name](value)

    def check_slot(self, value: object) -> int:
        """A slot the device has (its hello's count; 8 until it says hello)."""
        slots = self.link.snapshot().device_slots if self.link is not None else None
        return check_slot(value, slots or DEFAULT_SLOTS)

    def set_control(self, name: str, value: float) -> float:
        """Set a control to ``value`` (clamped to its range); returns the value set."""
        param = self._param(name)
        with self._lock:
            self.fields.controls[name] = param.clamp(value)
            return self.fields.controls[name]

    def set_control_unit(self, name: str, position: float) -> float:
        """Set a control from a controller position in [0, 1] (a CC value / 127)."""
        return self.set_control(name, self._param(name).from_unit(position))

    def _param(self, name: str) -> Param:
        if name not in self.schema:
            raise ActionError(f"no control named {name!r}; known: {', '.join(self.schema)}")
        return self.schema[name]

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

    # -- actions ---------------------------------------------------------------------------
    def generate(self, slot: int | None = None) -> Job:
        """Queue the current prompt (into ``slot``, else the chosen slot)."""
        with self._lock:
            f = self.fields
            request = Request(
                self.prompt(),
                f.engine,
                f.model,
                f.slot if slot is None else self.check_slot(slot),
                f.seed,
                self._controls_for(f.engine, f.controls),
            )
        return self._submit(request)

    def vary(self, take: Take | None = None) -> Job:
        """The same prompt and controls as ``take`` (or the last request), with a new seed."""
        base = self._request_of(take) if take is not None else self.last
        if base is None:
            raise ActionError("nothing to vary yet: generate first")
        return self._submit(replace(base, seed=None, target=None, id=0))

    def regenerate(self, take: Take) -> Job:
        """``take`` again, identically (its seed, controls and recorded latent)."""
        return self._submit(self._regeneration(take))

    def _regeneration(self, take: Take) -> Request:
        """The request that makes ``take`` again (its seed, controls and recorded latent)."""
        request = self._request_of(take)
        info = take.meta.get("engine_info", {})
        if request.engine == "gan" and isinstance(info.get("w"), list):
            controls = {**request.controls, "morph": 1.0}
            request = replace(
                request,
                controls=controls,
                target=tuple(info["w"]),
                model=info.get("model", request.model),
            )
        return request

    def send(self, take: Take, slot: int) -> int:
        """Load ``take`` into device ``slot``; returns the link's request id."""
        if self.link is None:
            raise ActionError("no device link in this session")
        return self.link.send_take(slot, take)

    def load_preset(self, set_index: int, preset_index: int) -> Preset:
        """Put a preset into the fields (text, slot, seed, engine, model, controls)."""
        with self._lock:
            if not 0 <= set_index < len(self.sets):
                raise ActionError(f"no prompt set {set_index + 1} (there are {len(self.sets)})")
            presets = self.sets[set_index].presets
            if not 0 <= preset_index < len(presets):
                raise ActionError(f"no prompt {preset_index + 1} in {self.sets[set_index].name}")
            preset = presets[preset_index]
            self.set_index, self.preset_index = set_index, preset_index
            controls = dict(self.fields.controls)
            controls.update(
                {k: self._param(k).clamp(v) for k, v in preset.controls.items() if k in self.schema}
            )
            self.fields = replace(
                self.fields,
                text=preset.text,
                slot=preset.slot or self.fields.slot,
                seed=preset.seed,
                engine=preset.engine or self.fields.engine,
                model=preset.model,
                controls=controls,
                tempo=None,
                key=None,
                bars=None,
                genre=None,
                instrument=None,
            )
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
        """Queue a re-render at ``bpm`` for each slot whose take is a GAN take of this session
        made at another tempo; returns the jobs."""
        if self.link is None:
            return []
        jobs = []
        for slot, state in sorted(self.link.snapshot().slots.items()):
            take = self.find_take(state.take_id)
            if take is None or take.meta.get("engine") != "gan":
                continue
            if abs(take.loop_facts[0] - bpm) < 0.01:
                continue
            request = self._regeneration(take)
            prompt = replace(request.prompt, tempo=bpm)
            jobs.append(self._submit(replace(request, prompt=prompt, slot=slot)))
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
        if name == "regenerate":
            take = self._last_take()
            return self.regenerate(take)
        if name in ("next_preset", "previous_preset"):
            return self.step_preset(1 if name == "next_preset" else -1)
        raise ActionError(f"no action named {name!r}; known: {', '.join(ACTIONS)}")

    # -- views -----------------------------------------------------------------------------
    def history(self, limit: int = 50) -> list[Job]:
        """Finished and failed jobs, newest first."""
        jobs = sorted(self.session.jobs.values(), key=lambda j: j.request.id, reverse=True)
        return [j for j in jobs if j.status in ("done", "failed", "cancelled")][:limit]

    def find_take(self, take_id: str | None) -> Take | None:
        """A take of this session by id (None when unknown)."""
        for job in self.session.jobs.values():
            if job.take is not None and job.take.id == take_id:
                return job.take
        return None

    def current(self) -> Job | None:
        """The running job, else the newest queued one, else the newest of all."""
        jobs = sorted(self.session.jobs.values(), key=lambda j: j.request.id, reverse=True)
        for status in ("running", "queued"):
            for job in jobs:
                if job.status == status:
                    return job
        return jobs[0] if jobs else None

    # -- helpers ---------------------------------------------------------------------------
    def _controls_for(self, engine: str, controls: Mapping[str, float]) -> dict[str, float]:
        """Controls apply to the GAN engine; other engines get none."""
        return dict(controls) if engine == "gan" else {}

    def _submit(self, request: Request) -> Job:
        try:
            job = self.session.submit(request)
        except (ParamError, ValueError, SessionError) as error:
            raise ActionError(str(error)) from None
        with self._lock:
            self.last = job.request
        return job

    def _request_of(self, take: Take) -> Request:
        meta = take.meta
        return Request(
            parse_prompt(meta["prompt"]["full"]),
            str(meta["engine"]),
            meta.get("model"),
            meta.get("slot"),
            meta.get("seed"),
            dict(meta.get("controls", {})),
        )

    def _last_take(self) -> Take:
        for job in self.history():
            if job.take is not None:
                return job.take
        raise ActionError("no take yet to regenerate")


def _number_or_text(value: Any) -> bool:
    return isinstance(value, int | float | str)
