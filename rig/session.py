"""The session: a request queue and a worker process that runs engines, loop tools and takes.

Engines run in a separate worker process (``spawn``), never on the UI, OSC or MIDI threads. A
supervisor thread in the rig's process feeds it one request at a time and watches it: a worker that
dies (crash, out of memory) or runs past ``session.timeout_s`` is killed and restarted, its request
is reported as failed, and the device slot keeps its last good loop. Finished takes are announced
to the device through the :class:`~rig.link.Link`.

The engine protocol lives in :mod:`rig.engines.base` and is re-exported here.
"""

from __future__ import annotations

import collections
import logging
import multiprocessing
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from typing import Any, Literal

from rig.clips import place_clip
from rig.config import TEMPO_RANGE, Config
from rig.engines.base import (
    CHANNELS,
    ENGINES,
    Cancelled,
    Engine,
    EngineError,
    EngineOutput,
    ProgressFn,
    Recipe,
    Request,
    build_engine,
    output_channels,
)
from rig.link import Link, LinkError
from rig.loops import Loop, make_loop
from rig.prompt import Prompt
from rig.takes import Take, TakeStore

__all__ = [
    "Cancelled",
    "Engine",
    "EngineError",
    "EngineOutput",
    "Job",
    "ProgressFn",
    "Request",
    "Session",
    "SessionError",
    "produce_take",
]

log = logging.getLogger(__name__)
_CTX = multiprocessing.get_context("spawn")


class SessionError(RuntimeError):
    """A request the session cannot accept."""


RESTART_BACKOFF_MAX_S = 10.0  # longest wait before restarting a worker that keeps dying


LOAD_LIMIT_S = 600.0  # loading an engine (models, pipelines) before a request may take this long


def fold_tempo(bpm: float) -> float:
    """``bpm`` doubled or halved until it is within the engines' range (40-240 BPM): the same
    beat grid at double or half time, so Live's tempo never fails a request."""
    low, high = TEMPO_RANGE
    while bpm < low:
        bpm *= 2
    while bpm > high:
        bpm /= 2
    return bpm


def restart_delay(failures: int) -> float:
    """Seconds to wait before the next worker start after ``failures`` deaths in a row with no
    request finished in between: none for the first, then 0.5, 1, 2, ... up to 10 s."""
    return 0.0 if failures <= 1 else min(RESTART_BACKOFF_MAX_S, 0.25 * 2 ** (failures - 1))


JobStatus = Literal["queued", "running", "done", "failed", "cancelled"]


@dataclass
class Job:
    """A request and what became of it."""

    request: Request
    status: JobStatus = "queued"
    take: Take | None = None
    error: str | None = None
    step: int = 0  # progress: step of total
    total: int = 0
    note: str = ""
    submitted: float = 0.0
    finished: float | None = None

    @property
    def takes(self) -> tuple[Take, ...]:
        """The take a slot gets, then the variations to audition; empty until done."""
        return (self.take, *self.take.variations) if self.take is not None else ()


def produce_take(
    request: Request, engine: Engine, config: Config, store: TakeStore, progress: ProgressFn
) -> Take:
    """Run one request end to end: engine → loop tools → take store.

    Args:
        request: with ``prompt.tempo`` and ``prompt.bars`` filled (defaults apply otherwise),
            its seed drawn (a fresh one otherwise) and its channels in ``settings`` (else
            ``music.channels``).

    Returns:
        The written :class:`Take`: the request's recipe, and the engine's replay recipe; the
        engine's other variations, each a take of its own, in its ``variations``.

    Raises:
        LoopError, TakeError, EngineError, Cancelled: nothing is written then.
    """
    music = config.music
    prompt = request.prompt.with_defaults(music.tempo, music.bars, music.meter)
    request = replace(request, prompt=prompt).seeded()
    if music.channels != 2 and CHANNELS not in request.settings:  # quad: the recipe says so
        request = replace(request, settings={**request.settings, CHANNELS: music.channels})
    output = engine.generate(request, progress)
    outputs = [output, *output.variations]
    channels = output_channels(request.recipe)
    loops = [_loop_of(out, prompt, config, channels) for out in outputs]  # cut before any write
    takes = [
        replace(
            store.write(loop, request.recipe, out.replay, out.metadata, request.id),
            spectrogram=out.spectrogram,
        )
        for loop, out in zip(loops, outputs, strict=True)
    ]
    return replace(takes[0], variations=tuple(takes[1:]))


def _loop_of(output: EngineOutput, prompt: Prompt, config: Config, channels: int) -> Loop:
    """The engine's raw audio cut to the prompt's exact, click-free loop of ``channels``."""
    assert prompt.tempo is not None and prompt.bars is not None
    return make_loop(
        output.audio,
        output.sample_rate,
        prompt.tempo,
        prompt.bars,
        prompt.beats_per_bar,
        config.audio,
        source_bpm=output.source_bpm,
        trim=not output.bar_aligned,
        channels=channels,
    )


# -- the worker process ----------------------------------------------------------------------
def _worker_main(
    conn: Connection, cancel: Any, config: Config, registry: Mapping[str, str], session: str
) -> None:
    """Worker process: build engines on demand, run requests, report over ``conn``."""
    from rig.loops import warm_up

    # Ctrl-C and a SIGTERM to the process group reach the worker too; the rig's process stops
    # the worker itself, so it never dies of them mid-request while the rig shuts down.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if config.session.threads:
        import torch

        torch.set_num_threads(config.session.threads)
    if config.session.warm:
        warm_up(config.audio)
    store = TakeStore(config.paths.takes, session, config.audio.wav_subtype)
    engines: dict[str, Engine] = {}
    conn.send(("ready",))
    while True:
        message = conn.recv()
        if message[0] == "stop":
            return
        if message[0] == "preload":
            for name in message[1]:
                try:
                    engines.setdefault(name, build_engine(name, registry, config))
                except Exception as error:  # reported; the request that needs it fails later
                    conn.send(("warning", f"engine {name!r} could not be loaded: {error}"))
                for problem in getattr(engines.get(name), "problems", ()):
                    conn.send(("warning", f"engine {name!r}: {problem}"))
            continue
        request: Request = message[1]

        def progress(step: int, total: int, note: str = "", rid: int = request.id) -> None:
            if cancel.value == rid:
                raise Cancelled()
            conn.send(("progress", rid, step, total, note))

        try:
            if request.engine not in engines:
                engines[request.engine] = build_engine(request.engine, registry, config)
            conn.send(("started", request.id))  # the time limit counts from here, not the load
            take = produce_take(request, engines[request.engine], config, store, progress)
        except Cancelled:
            conn.send(("cancelled", request.id))
        except Exception as error:  # the engine boundary: any failure belongs to the request
            conn.send(("failed", request.id, f"{type(error).__name__}: {error}"))
        else:
            conn.send(("done", request.id, take))


class _Worker:
    """One worker process and its pipe."""

    def __init__(self, config: Config, registry: Mapping[str, str], session: str) -> None:
        self.conn, child = _CTX.Pipe()
        self.cancel = _CTX.Value("q", 0)
        self.process = _CTX.Process(
            target=_worker_main,
            args=(child, self.cancel, config, dict(registry), session),
            name="rig-worker",
            daemon=True,
        )
        self.process.start()
        child.close()

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()


class Session:
    """Queue, worker and history. Handlers only call :meth:`submit`; nothing here blocks them.

    Args:
        config: the rig's configuration.
        link: the OSC link that announces takes (``None``: takes are only written).
        engines: engine registry (name → ``module:factory``); default :data:`ENGINES`.
        session: take-folder session name; default the start time.
    """

    def __init__(
        self,
        config: Config,
        link: Link | None = None,
        engines: Mapping[str, str] | None = None,
        session: str | None = None,
    ) -> None:
        self.config = config
        self.link = link
        self.engines = dict(ENGINES if engines is None else engines)
        self.store = TakeStore(config.paths.takes, session, config.audio.wav_subtype)
        self.jobs: dict[int, Job] = {}
        self.restarts = 0
        self.warnings: list[str] = []  # engine load problems reported by the worker
        self._queue: collections.deque[int] = collections.deque()
        self._ids = 0
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._subscribers: list[Callable[[Job], None]] = []
        self._worker: _Worker | None = None
        self._ready = False
        self._current: int | None = None
        self._started_at = 0.0
        self._loading = False  # the running request's engine is still being built
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._preload: list[str] = []
        self._failed_starts = 0  # restarts in a row with no request finished in between

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, preload: list[str] | None = None) -> Session:
        """Start the worker (building the ``preload`` engines at once) and the supervisor."""
        self._preload = list(preload or [])
        self._spawn()
        self._thread = threading.Thread(target=self._supervise, name="rig-session", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop the supervisor and the worker process (a running request is cancelled; the
        worker gets a second to finish, then it is killed)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        worker, self._worker = self._worker, None
        if worker is not None:
            if self._current is not None:
                worker.cancel.value = self._current
            try:
                worker.conn.send(("stop",))
                worker.process.join(timeout=1.0)
            except (OSError, ValueError):
                pass
            worker.kill()

    def __enter__(self) -> Session:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests --------------------------------------------------------------------------
    def submit(self, recipe: Recipe) -> Job:
        """Queue ``recipe`` as a new request; the prompt's missing tempo/bars become Live's tempo
        or the defaults, and a missing seed a fresh one.

        Raises:
            SessionError: unknown engine.
        """
        if recipe.engine not in self.engines:
            available = ", ".join(sorted(self.engines)) or "none are installed yet"
            raise SessionError(f"no engine named {recipe.engine!r}; available: {available}")
        live = self.link.snapshot() if self.link is not None else None
        music = self.config.music
        tempo = music.tempo
        if live is not None and live.tempo is not None:
            tempo = fold_tempo(live.tempo)
            if tempo != live.tempo and recipe.prompt.tempo is None:
                self._warn_once(
                    f"Live's tempo {live.tempo:g} BPM is outside {TEMPO_RANGE[0]:g}-"
                    f"{TEMPO_RANGE[1]:g}: loops are made at {tempo:g} BPM "
                    f"({'double' if tempo > live.tempo else 'half'} time)"
                )
        meter = live.meter if live is not None and live.meter is not None else music.meter
        with self._lock:
            waiting = [self.jobs[i] for i in self._queue]
            if self.config.session.latest_wins and recipe.slot is not None:
                for old in [j for j in waiting if j.request.slot == recipe.slot]:
                    self._queue.remove(old.request.id)
                    self._finish(old, "cancelled", error="replaced by a newer request for its slot")
                waiting = [self.jobs[i] for i in self._queue]
            if len(waiting) >= self.config.session.max_queue:
                raise SessionError(
                    f"the queue is full: {len(waiting)} requests wait (session.max_queue); "
                    "cancel some or wait"
                )
            self._ids += 1
            prompt = recipe.prompt.with_defaults(tempo, music.bars, meter)
            request = Request.of(replace(recipe, prompt=prompt).seeded(), self._ids)
            job = Job(request, submitted=time.time())
            self.jobs[job.request.id] = job
            self._queue.append(job.request.id)
            self._changed.notify_all()
        self._notify(job)
        return job

    def _warn_once(self, text: str) -> None:
        """A warning for the page, unless it is already the latest one."""
        with self._lock:
            if not self.warnings or self.warnings[-1] != text:
                self.warnings.append(text)
                del self.warnings[:-20]

    def cancel_all(self) -> int:
        """Cancel every queued request and the running one; returns how many."""
        with self._lock:
            ids = [*self._queue, *([self._current] if self._current is not None else [])]
        return sum(self.cancel(i) for i in ids)

    def cancel(self, request_id: int) -> bool:
        """Cancel a queued request, or a running one at its engine's next step."""
        with self._lock:
            job = self.jobs.get(request_id)
            if job is None or job.status not in ("queued", "running"):
                return False
            if job.status == "queued":
                self._queue.remove(request_id)
                self._finish(job, "cancelled", error="cancelled before it started")
            elif self._worker is not None:
                self._worker.cancel.value = request_id
        return True

    def wait(self, request_id: int, timeout: float | None = None) -> Job:
        """Block until the request is done, failed or cancelled (or ``timeout`` s pass)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            job = self.jobs[request_id]
            while job.status in ("queued", "running"):
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._changed.wait(left)
            return job

    def subscribe(self, callback: Callable[[Job], None]) -> None:
        """Call ``callback(job)`` on every change of a job (on the session's thread)."""
        self._subscribers.append(callback)

    def snapshot(self) -> list[Job]:
        """Copies of every job, oldest first: safe to read on any thread while requests are
        submitted and the worker reports progress."""
        with self._lock:
            return [replace(job) for job in self.jobs.values()]

    def queue_depth(self) -> int:
        """Requests waiting, the running one included."""
        with self._lock:
            return len(self._queue) + (self._current is not None)

    # -- supervisor ------------------------------------------------------------------------
    def _supervise(self) -> None:
        while not self._stop.is_set():
            worker = self._worker
            if worker is None:
                return
            self._dispatch(worker)
            try:
                if worker.conn.poll(0.05):
                    self._on_message(worker.conn.recv())
                    continue
            except (EOFError, OSError):
                pass  # the worker died; handled below
            if not worker.process.is_alive():
                self._restart(f"the engine process died (exit code {worker.process.exitcode})")
            elif self._current is not None and self._overdue():
                self._restart(f"timed out after {self.config.session.timeout_s:g} s")

    def _dispatch(self, worker: _Worker) -> None:
        with self._lock:
            if not self._ready or self._current is not None or not self._queue:
                return
            request_id = self._queue.popleft()
            job = self.jobs[request_id]
            job.status = "running"
            self._current, self._started_at = request_id, time.monotonic()
            self._loading = True
        worker.cancel.value = 0
        worker.conn.send(("run", job.request))
        self._notify(job)

    def _on_message(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "ready":
            with self._lock:
                self._ready = True
            return
        if kind == "warning":
            log.warning("%s", message[1])
            self.warnings.append(message[1])
            return
        job = self.jobs[message[1]]
        if kind == "started":
            with self._lock:
                self._loading, self._started_at = False, time.monotonic()
            return
        if kind != "progress":
            self._failed_starts = 0  # the worker finished a request: it is healthy
        if kind == "progress":
            job.step, job.total, job.note = message[2], message[3], message[4]
            self._notify(job)
        elif kind == "done":
            self._finish(job, "done", take=message[2])
            self._announce(job)
        else:
            status: JobStatus = "failed" if kind == "failed" else "cancelled"
            self._finish(job, status, error=message[2] if len(message) > 2 else "cancelled")

    def _finish(
        self, job: Job, status: JobStatus, take: Take | None = None, error: str | None = None
    ) -> None:
        with self._lock:
            job.status, job.take, job.error, job.finished = status, take, error, time.time()
            if self._current == job.request.id:
                self._current = None
            self._changed.notify_all()
        if error and status == "failed":
            log.warning("request %d failed: %s", job.request.id, error)
        self._notify(job)

    def _announce(self, job: Job) -> None:
        if self.link is None or job.request.slot is None or job.take is None:
            return
        try:
            self.link.send_take(job.request.slot, job.take)
            if self.config.clips.track:  # clip mode: the take is also a clip in Live
                place_clip(self.link, self.config.clips, job.take)
        except LinkError as error:
            job.error = f"take written but not sent: {error}"
            self._notify(job)

    def _overdue(self) -> bool:
        """The running request passed ``session.timeout_s`` since it started generating (or
        LOAD_LIMIT_S while its engine still loads)."""
        limit = LOAD_LIMIT_S if self._loading else self.config.session.timeout_s
        return time.monotonic() - self._started_at > limit

    def _restart(self, reason: str) -> None:
        if self._stop.is_set():  # the rig is stopping: no new worker, no alarm
            return
        with self._lock:
            current = self._current
            self._failed_starts += 1
            self._ready = False
            self.restarts += 1  # counted before anyone hears of the failed job
        if current is not None:
            self._finish(self.jobs[current], "failed", error=f"{reason}; the worker was restarted")
        log.warning("restarting the engine process: %s", reason)
        if self._worker is not None:
            self._worker.kill()
        delay = restart_delay(self._failed_starts)
        if delay:  # a worker that keeps dying (a crash loading a model): back off, do not spin
            log.warning(
                "the engine process died %d times in a row; next start in %.1f s",
                self._failed_starts,
                delay,
            )
            self._stop.wait(delay)
        if not self._stop.is_set():
            self._spawn()

    def _spawn(self) -> None:
        self._worker = _Worker(self.config, self.engines, self.store.session)
        if self._preload:
            self._worker.conn.send(("preload", self._preload))

    def _notify(self, job: Job) -> None:
        for callback in list(self._subscribers):
            try:
                callback(job)
            except Exception:
                log.exception("session subscriber failed")
