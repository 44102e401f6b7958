"""The session: queue and worker process, end to end to a take and an OSC load; crash recovery."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import soundfile
from conftest import wait_until
from fake_engines import REGISTRY
from perf_fixtures import running_session

from rig.config import Config, SessionConfig
from rig.link import Link
from rig.loops import loop_length
from rig.prompt import parse_prompt
from rig.session import Request, Session, SessionError
from rig.testing.standin import StandInDevice


@pytest.fixture
def rig(config: Config) -> Iterator[tuple[Session, Link, StandInDevice]]:
    """A session with the test engine, its link, and a stand-in device, all on 127.0.0.1."""
    settings = SessionConfig(timeout_s=3.0, warm=True)  # as on stage: the 3 s count generation only
    with running_session(config, REGISTRY, settings) as (_, session, link, device):
        yield session, link, device


def ask(session: Session, text: str, slot: int | None = 1, seed: int = 5) -> int:
    return session.submit(Request(parse_prompt(text), "word", slot=slot, seed=seed)).request.id


def test_request_to_take_to_device(rig) -> None:
    session, _link, device = rig
    job = session.wait(ask(session, "dusty drums, Tempo: 97, Bars: 4"), timeout=60)
    assert job.status == "done", job.error
    take = job.take
    data, rate = soundfile.read(take.wav, always_2d=True)
    assert (rate, data.shape) == (44100, (loop_length(97, 4, 4, 44100), 2))
    assert take.recipe.prompt.tempo == 97.0 and take.recipe.seed == 5
    (args,) = device.wait_for("/rig/load")
    assert args[:6] == (1, str(take.wav), 97.0, 4, 16, take.id)
    assert job.total == 4 and job.step == 4  # progress reached the session


def test_default_tempo_is_lives(rig) -> None:
    session, link, device = rig
    device.send("/rig/tempo", 133.0)
    wait_until(lambda: link.snapshot().tempo == 133.0)
    job = session.wait(ask(session, "no tempo given", slot=None), timeout=60)
    assert job.status == "done", job.error
    assert job.take.loop.bpm == 133.0


def test_same_seed_same_take(rig) -> None:
    session, _, _ = rig
    a = session.wait(ask(session, "loop", slot=None, seed=9), timeout=60)
    b = session.wait(ask(session, "loop", slot=None, seed=9), timeout=60)
    np.testing.assert_array_equal(soundfile.read(a.take.wav)[0], soundfile.read(b.take.wav)[0])


def test_crash_restarts_the_worker_and_the_slot_keeps_its_loop(rig) -> None:
    session, link, device = rig
    good = session.wait(ask(session, "first loop"), timeout=60)
    device.wait_for("/rig/load")
    crashed = session.wait(ask(session, "crash now"), timeout=60)
    assert crashed.status == "failed"
    assert "died (exit code 3)" in (crashed.error or "")
    assert session.restarts == 1
    assert link.snapshot().slots[1].take_id == good.take.id  # the last good loop stays
    assert len(device.messages("/rig/load")) == 1  # nothing was sent for the failure
    after = session.wait(ask(session, "back again"), timeout=60)
    assert after.status == "done", after.error


def test_hang_times_out_and_the_next_request_runs(rig) -> None:
    session, _, _ = rig
    hung = session.wait(ask(session, "hang here", slot=None), timeout=60)
    assert hung.status == "failed" and "timed out after 3 s" in (hung.error or "")
    assert session.wait(ask(session, "next", slot=None), timeout=60).status == "done"


def test_engine_error_fails_the_request_only(rig) -> None:
    session, _, _ = rig
    failed = session.wait(ask(session, "fail please", slot=None), timeout=60)
    assert failed.status == "failed"
    assert "ValueError: the test engine was asked to fail" in (failed.error or "")
    assert session.restarts == 0
    assert session.wait(ask(session, "fine", slot=None), timeout=60).status == "done"


def test_cancel_running_and_queued(rig) -> None:
    session, _, _ = rig
    slow = ask(session, "slow one", slot=None)
    queued = ask(session, "queued", slot=None)
    wait_until(lambda: session.jobs[slow].step >= 3, timeout=30)
    assert session.cancel(queued)
    assert session.cancel(slow)
    assert session.wait(slow, timeout=30).status == "cancelled"
    assert session.jobs[slow].step < 200
    assert session.jobs[queued].status == "cancelled"
    assert not session.store.takes()  # nothing was written


def test_unknown_engine_is_refused(rig) -> None:
    session, _, _ = rig
    with pytest.raises(SessionError, match="no engine named 'nope'; available: slowload, word"):
        session.submit(Request(parse_prompt("x"), "nope"))


def test_restart_backoff_grows_and_is_capped() -> None:
    from rig.session import restart_delay

    delays = [restart_delay(n) for n in range(8)]
    assert delays[:2] == [0.0, 0.0]  # one crash: restart at once
    assert delays[2:6] == [0.5, 1.0, 2.0, 4.0]
    assert delays[-1] == 10.0
