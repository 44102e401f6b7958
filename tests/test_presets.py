"""Prompt sets: the shipped ones load; every problem names its file and entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from rig.presets import PresetError, load_set, load_sets

PROMPTS = Path(__file__).resolve().parents[1] / "prompts"


def test_the_shipped_sets_load() -> None:
    sets, problems = load_sets(PROMPTS)
    assert problems == []
    assert len(sets) >= 3 and all(len(s.presets) >= 3 for s in sets)
    assert [s.name for s in sets][:3] == ["Warm-up", "Peak", "Wind-down"]
    peak = sets[1].presets
    assert peak[0].slot == 1 and peak[0].controls == {"morph": 0.6, "variation": 0.25}
    assert peak[2].seed == 4242


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("name = 'x'", "no [[prompt]] entries"),
        ("[[prompt]]\ntext = ''", "prompt 1: text must be a non-empty string"),
        ("[[prompt]]\ntext = 'a, Tempo: 900'", "prompt 1: Tempo: '900' is not valid"),
        ("[[prompt]]\ntext = 'a'\n[[prompt]]\ntext = 'b'\nslot = 0", "prompt 2: slot must be"),
        ("[[prompt]]\ntext = 'a'\nvolume = 3", "unknown key(s) volume"),
        ("[[prompt]]\ntext = 'a'\ncontrols = { morph = 'lots' }", "controls must map names"),
        ("[[prompt]\ntext = 'a'", "cannot be read as TOML"),
    ],
)
def test_errors_name_the_file_and_entry(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "set.toml"
    path.write_text(content)
    with pytest.raises(PresetError) as raised:
        load_set(path)
    assert str(raised.value).startswith(str(path)) and message in str(raised.value)


def test_a_bad_set_is_skipped_and_reported(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text("[[prompt]]\ntext = 'fine'\n")
    (tmp_path / "b.toml").write_text("broken = [")
    sets, problems = load_sets(tmp_path)
    assert [s.name for s in sets] == ["a"] and "b.toml" in problems[0]
    assert load_sets(tmp_path / "missing") == ([], [])
