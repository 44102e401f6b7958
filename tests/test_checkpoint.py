"""Release folders: save → load → identical output, shared vocoders, strict loading errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import safetensors.torch
import torch
from tiny_models import TINY_AUDIO, TINY_GENERATOR, TINY_MELGAN, tiny_model

from rig.loop_model import (
    CheckpointError,
    LoopAudio,
    load_loop_model,
    new_loop_model,
    save_loop_model,
    save_vocoder,
)
from rig.nn.istft import IstftConfig
from rig.nn.mel import MelSpec


def outputs(model, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        spec = model.generator(z)
        return spec, model.vocoder(model.mel.denormalize(spec[:, 0]))


@pytest.mark.parametrize("vocoder", ["istft", "melgan"])
def test_save_load_gives_identical_output(tmp_path: Path, vocoder: str) -> None:
    kwargs = {"vocoder": TINY_MELGAN} if vocoder == "melgan" else {}
    model = tiny_model(**kwargs)
    model.generator.mapping.w_avg.normal_()
    folder = save_loop_model(model, tmp_path / "drums")
    assert sorted(p.name for p in folder.iterdir()) == [
        "MODEL_CARD.md",
        "config.json",
        "directions.safetensors",
        "generator.safetensors",
        "vocoder.safetensors",
    ]
    loaded = load_loop_model(folder)
    z = torch.randn(2, TINY_GENERATOR.z_dim)
    for ours, theirs in zip(outputs(model.ready(), z), outputs(loaded, z), strict=True):
        assert torch.equal(ours, theirs)
    assert torch.equal(loaded.mel.mean, model.mel.mean)
    assert loaded.directions.keys() == model.directions.keys()
    for name, direction in loaded.directions.items():
        assert torch.allclose(direction.vector, model.directions[name].vector)
        assert (direction.low, direction.high) == (
            model.directions[name].low,
            model.directions[name].high,
        )
    config = json.loads((folder / "config.json").read_text())
    assert config["audio"] == {
        "sr": 8000,
        "n_fft": 500,
        "hop": 125,
        "win": 500,
        "n_mels": 20,
        "fmin": 0.0,
        "fmax": 4000.0,
        "bpm": 120.0,
        "bars": 2,
        "beats_per_bar": 4,
    }
    assert config["format_version"] == 1 and config["tags"] == ["drums", "techno"]
    assert "tiny" in (folder / "MODEL_CARD.md").read_text()


def test_shared_vocoder_folder(tmp_path: Path) -> None:
    model = tiny_model()
    save_vocoder(model.vocoder, model.vocoder_config, TINY_AUDIO.mel, tmp_path / "voc")
    model.shared_vocoder = "voc"
    folder = save_loop_model(model, tmp_path / "drums")
    assert not (folder / "vocoder.safetensors").exists()
    loaded = load_loop_model(folder)
    z = torch.randn(1, TINY_GENERATOR.z_dim)
    assert torch.equal(outputs(model.ready(), z)[1], outputs(loaded, z)[1])
    other = MelSpec(sr=8000, n_fft=500, hop=125, win=500, n_mels=20, fmax=3000.0)
    save_vocoder(model.vocoder, model.vocoder_config, other, tmp_path / "voc")
    with pytest.raises(CheckpointError, match=r"vocoder 'voc' was made for other audio.*fmax"):
        load_loop_model(folder)


def edit(path: Path, change) -> None:
    tensors = safetensors.torch.load_file(str(path))
    change(tensors)
    safetensors.torch.save_file(tensors, str(path))


def test_strict_loading_names_the_keys(tmp_path: Path) -> None:
    folder = save_loop_model(tiny_model(), tmp_path / "m")
    gen = folder / "generator.safetensors"
    edit(gen, lambda t: t.pop("generator.mapping.w_avg"))
    with pytest.raises(
        CheckpointError,
        match=r"generator.safetensors: missing keys: "
        r"generator.mapping.w_avg",
    ):
        load_loop_model(folder)
    save_loop_model(tiny_model(), folder)
    edit(folder / "vocoder.safetensors", lambda t: t.update(extra=torch.zeros(1)))
    with pytest.raises(CheckpointError, match=r"vocoder.safetensors: unexpected keys: extra"):
        load_loop_model(folder)
    save_loop_model(tiny_model(), folder)
    edit(gen, lambda t: t.update({"mel.mean": torch.zeros(7)}))
    with pytest.raises(
        CheckpointError,
        match=r"wrong shapes: mel.mean is \(7,\), the config "
        r"needs \(20,\)",
    ):
        load_loop_model(folder)
    save_loop_model(tiny_model(), folder)
    edit(folder / "directions.safetensors", lambda t: t.pop("bass"))
    with pytest.raises(CheckpointError, match=r"directions.safetensors: missing keys: bass"):
        load_loop_model(folder)


def test_broken_folders_are_named(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"has no config.json"):
        load_loop_model(tmp_path)
    folder = save_loop_model(tiny_model(), tmp_path / "m")
    (folder / "vocoder.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(CheckpointError, match=r"vocoder.safetensors is not a readable safetensors"):
        load_loop_model(folder)
    (folder / "vocoder.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"vocoder.safetensors is missing"):
        load_loop_model(folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "format_version": 9}))
    with pytest.raises(CheckpointError, match=r"format_version 9 is not supported"):
        load_loop_model(folder)
    del config["generator"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"bad or missing field: 'generator'"):
        load_loop_model(folder)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"cannot be read as JSON"):
        load_loop_model(folder)


def test_mismatched_shapes_are_refused() -> None:
    with pytest.raises(CheckpointError, match=r"generator makes \(20, 256\).*needs \(20, 128\)"):
        new_loop_model(
            "x",
            LoopAudio(TINY_AUDIO.mel, bars=1),
            TINY_GENERATOR,
            IstftConfig(n_mels=20, hop=125, n_fft=500),
        )
    with pytest.raises(CheckpointError, match=r"vocoder takes 80 mels at hop 375"):
        new_loop_model("x", TINY_AUDIO, TINY_GENERATOR, IstftConfig())


def test_loading_a_model_or_the_engine_leaves_the_global_random_state(config) -> None:
    from rig.engines.gan import GanEngine

    folder = save_loop_model(tiny_model("d"), config.paths.models[0] / "d")
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    load_loop_model(folder)
    GanEngine(config)
    assert torch.equal(torch.rand(3), expected)
