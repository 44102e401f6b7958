"""A performance wired to a real session (test engine + the GAN engine on a tiny model), a real
link and a stand-in device, all on 127.0.0.1."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from fake_engines import REGISTRY
from tiny_models import write_tiny_model

from rig.config import Config, SessionConfig
from rig.engines.base import ENGINES
from rig.link import Link
from rig.performance import Performance
from rig.presets import load_sets
from rig.session import Session
from rig.testing.standin import StandInDevice

PROMPTS = Path(__file__).resolve().parents[1] / "prompts"


@dataclass
class Rig:
    config: Config
    session: Session
    link: Link
    device: StandInDevice
    perf: Performance


@contextlib.contextmanager
def running_session(
    config: Config, engines: Mapping[str, str], settings: SessionConfig
) -> Iterator[tuple[Config, Session, Link, StandInDevice]]:
    """A session on ``engines`` with ``settings``, its link and a stand-in device talking to it
    over UDP on 127.0.0.1, the take folder made; yields the config they run with."""
    config = dataclasses.replace(config, session=settings)
    device = StandInDevice(rig_port=config.osc.listen_port)
    config = dataclasses.replace(config, osc=dataclasses.replace(config.osc, port=device.port))
    config.paths.takes.mkdir(parents=True)
    with (
        device,
        Link(config.osc, config.paths.takes) as link,
        Session(config, link, engines=engines) as session,
    ):
        yield config, session, link, device


@pytest.fixture
def perf_rig(config: Config) -> Iterator[Rig]:
    write_tiny_model(config.paths.models[0] / "drums", name="drums")
    sets, _ = load_sets(PROMPTS)
    engines = {**REGISTRY, "gan": ENGINES["gan"]}
    with running_session(config, engines, SessionConfig(timeout_s=60.0)) as running:
        config, session, link, device = running
        perf = Performance(config, session, link, sets)
        perf.update(engine="word")
        yield Rig(config, session, link, device, perf)


def page_values(perf: Performance, **changes: object) -> tuple[dict, dict]:
    """What a freshly drawn performer page sends: every widget's value as the state renders it
    (the record of what was drawn), then ``changes`` typed by the performer."""
    from rig.ui.fields import render, widget_names

    rendered = render(perf.snapshot(), widget_names(perf))
    return {**rendered, **changes}, rendered


def page_generate(perf: Performance, text: str | None = "pad", **changes: object) -> str:
    """Type ``text`` (and ``changes``) into a fresh page and press Enter; the status line."""
    from rig.ui import app

    values, rendered = page_values(perf, text=text, **changes)
    return app.generate(perf, values, rendered)[0]
