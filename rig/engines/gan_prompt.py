"""Prompt → GAN model and direction amounts.

The Instrument and Genre fields and the words of the text pick a model by its tags (and its name
and material). Words such as "complex", "sparse", "heavy bass" or "dark" become signed amounts
along the model's named directions: a plain word is half of the direction's range, an intensifier
("very", "heavy", "more") doubles it, a softener ("slightly", "a bit") halves it, and "less",
"no" or "without" flip its sign.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from rig.loop_model import Direction, LoopModel
from rig.prompt import Prompt

# word → (direction, sign); these names are what `rig train directions` fits.
DIRECTION_WORDS: dict[str, tuple[str, int]] = {
    **dict.fromkeys(
        ["complex", "busy", "dense", "intricate", "busier", "denser"], ("complexity", 1)
    ),
    **dict.fromkeys(
        ["simple", "sparse", "minimal", "sparser", "simpler", "straight"], ("complexity", -1)
    ),
    **dict.fromkeys(["bright", "brighter", "airy", "crisp", "shiny"], ("brightness", 1)),
    **dict.fromkeys(["dark", "darker", "dull", "muffled", "warm"], ("brightness", -1)),
    **dict.fromkeys(["bass", "bassy", "low", "sub"], ("bass", 1)),
    **dict.fromkeys(["thin"], ("bass", -1)),
}
# Words that name an instrument as often as a quality act only with a modifier ("heavy bass").
NEEDS_MODIFIER = frozenset({"bass", "low", "sub"})
MODIFIERS: dict[str, float] = {
    "very": 2.0,
    "heavy": 2.0,
    "really": 2.0,
    "extra": 2.0,
    "super": 2.0,
    "lots": 2.0,
    "more": 1.5,
    "much": 1.5,
    "slightly": 0.5,
    "little": 0.5,
    "bit": 0.5,
    "somewhat": 0.5,
    "less": -1.0,
    "no": -2.0,
    "without": -2.0,
}
BASE_FRACTION = 0.5  # a plain word moves half way to the end of the direction's range


def words(text: str) -> list[str]:
    """Lower-case words of ``text``."""
    return re.findall(r"[a-z0-9]+", text.lower())


def prompt_words(prompt: Prompt) -> list[str]:
    """The words of the text, the instrument and the genre."""
    return words(" ".join(filter(None, [prompt.text, prompt.instrument, prompt.genre])))


def match_score(model: LoopModel, tokens: Sequence[str]) -> int:
    """How many of the model's tags, material and name occur in ``tokens`` (as whole words)."""
    joined = f" {' '.join(tokens)} "
    labels = {*model.tags, model.material, model.name}
    return sum(1 for label in labels if label and f" {' '.join(words(label))} " in joined)


def choose_model(
    models: Mapping[str, LoopModel], prompt: Prompt, fallback: str | None
) -> tuple[str, int]:
    """The best-matching model's name and its score; ``fallback`` (or the first) when none match."""
    tokens = prompt_words(prompt)
    scored = sorted(
        ((match_score(m, tokens), name) for name, m in models.items()),
        key=lambda pair: (-pair[0], pair[1]),
    )
    best_score, best = scored[0]
    if best_score == 0 and fallback in models:
        return str(fallback), 0
    return best, best_score


def word_amounts(tokens: Iterable[str], directions: Mapping[str, Direction]) -> dict[str, float]:
    """Direction amounts asked for by words, clamped to each direction's range.

    Returns:
        ``{direction: amount}`` for the directions the model has and the words name.
    """
    amounts: dict[str, float] = {}
    previous: list[str] = []
    for token in tokens:
        entry = DIRECTION_WORDS.get(token)
        factor = 1.0
        for word in previous[-2:]:
            factor *= MODIFIERS.get(word, 1.0)
        modified = any(word in MODIFIERS for word in previous[-2:])
        previous.append(token)
        if entry is None or entry[0] not in directions:
            continue
        if token in NEEDS_MODIFIER and not modified:
            continue
        name, sign = entry
        direction = directions[name]
        end = direction.high if sign * factor > 0 else -direction.low
        amounts[name] = amounts.get(name, 0.0) + sign * factor * BASE_FRACTION * end
    return {
        name: min(directions[name].high, max(directions[name].low, value))
        for name, value in amounts.items()
    }
