"""Configuration: defaults < rig.toml < RIG_* < CLI flags, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from rig.config import ConfigError, load_config


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(env={})
    assert config.paths.takes == Path("takes")
    assert (config.osc.host, config.osc.port, config.osc.listen_port) == ("127.0.0.1", 7400, 7401)
    assert (config.audio.sample_rate, config.audio.wav_subtype) == (44100, "PCM_24")
    assert (config.music.tempo, config.music.bars, config.music.beats_per_bar) == (120.0, 2, 4)


def test_file_then_env_then_flags(tmp_path: Path) -> None:
    toml = tmp_path / "rig.toml"
    toml.write_text(
        '[osc]\nport = 9000\nhost = "10.0.0.5"\n[audio]\nwav_format = "float"\n'
        '[paths]\nmodels = ["a", "b"]\n[music]\ntempo = 90\n'
    )
    config = load_config(toml, env={"RIG_OSC_PORT": "9100", "RIG_TAKES": "/tmp/x"})
    assert config.osc.host == "10.0.0.5"
    assert config.osc.port == 9100  # env beats the file
    assert config.paths.takes == Path("/tmp/x")
    assert config.paths.models == (Path("a"), Path("b"))
    assert config.audio.wav_subtype == "FLOAT"
    assert config.music.tempo == 90.0
    flagged = load_config(toml, env={"RIG_OSC_PORT": "9100"}, overrides={"osc.port": "9200"})
    assert flagged.osc.port == 9200  # flags beat env


def test_rig_config_env_names_the_file(tmp_path: Path) -> None:
    toml = tmp_path / "other.toml"
    toml.write_text("[music]\nbars = 4\n")
    assert load_config(env={"RIG_CONFIG": str(toml)}).music.bars == 4


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"RIG_OSC_PORT": "70000"}, ["osc.port", "70000", "RIG_OSC_PORT", "1-65535"]),
        ({"RIG_LISTEN_PORT": "abc"}, ["osc.listen_port", "'abc'", "an integer"]),
        ({"RIG_WAV_FORMAT": "mp3"}, ["audio.wav_format", "pcm24, float"]),
        ({"RIG_TEMPO": "300"}, ["music.tempo", "40 to 240"]),
        ({"RIG_BARS": "3"}, ["music.bars", "1, 2, 4, 8, 16"]),
        ({"RIG_OSC_PORT": "7500", "RIG_LISTEN_PORT": "7500"}, ["talk to itself"]),
    ],
)
def test_bad_values_name_setting_source_and_range(env: dict[str, str], words: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, env=env)
    for word in words:
        assert word in str(caught.value)


def test_bad_file(tmp_path: Path) -> None:
    toml = tmp_path / "rig.toml"
    toml.write_text("[osc]\nprot = 1\n")
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) osc.prot"):
        load_config(toml, env={})
    toml.write_text("[osc\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(toml, env={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml", env={})


def test_retired_settings_are_named_not_ignored(tmp_path: Path) -> None:
    toml = tmp_path / "rig.toml"
    toml.write_text("[diffusion]\nguidance = 3\n")
    with pytest.raises(ConfigError, match=r"diffusion.guidance is per engine now: .*sao_guidance"):
        load_config(toml, env={})
    with pytest.raises(ConfigError, match=r"\$RIG_DIFFUSION_ATTENTION_SLICING was removed"):
        load_config(None, env={"RIG_DIFFUSION_ATTENTION_SLICING": "1"})
    assert load_config(None, env={"RIG_SA3_GUIDANCE": "4"}).diffusion.sa3_guidance == 4.0
