"""The engine registry, recipes and requests."""

from __future__ import annotations

import json

import pytest

from rig.config import Config
from rig.engines import EngineError, Request, build_engine
from rig.engines.base import Recipe, RecipeError
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
    engine = build_engine("word", {"word": "fake_engines:WORD"}, Config())
    assert type(engine).__name__ == "WordEngine"
    with pytest.raises(EngineError, match="fake_engines:WordEngine is not an EngineKind"):
        build_engine("word", {"word": "fake_engines:WordEngine"}, Config())


def test_a_recipe_round_trips_through_json_and_names_what_is_wrong() -> None:
    recipe = Recipe(
        parse_prompt("dusty drums, Tempo: 97, Key: A minor, Bars: 2, Mood: dark"),
        "gan",
        "drums",
        3,
        42,
        {"morph": 1.0},
        (0.5, -1.25),
        {"steps": 8},
    )
    data = json.loads(json.dumps(recipe.to_json()))
    assert Recipe.from_json(data) == recipe and data["version"] == 1
    request = Request.of(recipe, 7)
    assert request.id == 7 and request.recipe == recipe
    for broken, named in (
        ({**data, "version": 2}, "recipe version 2"),
        ({**data, "seed": -1}, "seed"),
        ({**data, "slot": "x"}, "slot"),
        ({**data, "prompt": {"full": "x, Tempo: 900"}}, "Tempo"),
        ({k: v for k, v in data.items() if k != "engine"}, "engine"),
        ({**data, "target": [1.0, "nan"]}, "target"),
    ):
        with pytest.raises(RecipeError, match=named):
            Recipe.from_json(broken)
