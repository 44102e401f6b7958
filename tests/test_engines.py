"""The engine registry and request helpers."""

from __future__ import annotations

import pytest

from rig.config import Config
from rig.engines import EngineError, Request, build_engine
from rig.prompt import parse_prompt


def test_seeded_keeps_a_given_seed_and_fills_a_missing_one() -> None:
    request = Request(parse_prompt("x"), "word")
    seeded = request.seeded()
    assert isinstance(seeded.seed, int) and 0 <= seeded.seed < 2**31
    assert seeded.seeded() is seeded
    assert Request(parse_prompt("x"), "word", seed=4).seeded().seed == 4


def test_build_engine_errors_name_the_problem() -> None:
    with pytest.raises(EngineError, match="no engine named 'gan'; available: none are installed"):
        build_engine("gan", {}, Config())
    with pytest.raises(
        EngineError, match=r"engine 'x' \(nowhere.module:Thing\) cannot be imported"
    ):
        build_engine("x", {"x": "nowhere.module:Thing"}, Config())
    engine = build_engine("word", {"word": "fake_engines:WordEngine"}, Config())
    assert type(engine).__name__ == "WordEngine"
