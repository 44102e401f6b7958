"""rig train calibration: a loop model's mean spectrogram shape at the loop point's edge frames
matched to its loop-analysed dataset's, stored in the release folder and used by every render."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import safetensors.torch
import torch
from test_training import tiny_dataset
from tiny_models import TINY_AUDIO, write_tiny_model

from rig import cli
from rig.latents import measurement_latents
from rig.loop_model import (
    CALIBRATION_FILE,
    CheckpointError,
    LoopAudio,
    load_loop_model,
    save_loop_model,
)
from rig.nn.mel import MelSpec
from rig.synthesis import render
from rig.train.calibration import edge_frames, edge_offset, fit_calibration
from rig.train.data import load_dataset
from rig.train.run import TrainError


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_dataset(tmp_path_factory.mktemp("calibration") / "drums", (1, 2))


def test_edge_frames_are_those_whose_analysis_window_reaches_past_the_loop() -> None:
    assert edge_frames(TINY_AUDIO) == [0, 1, 255]  # n_fft 500, hop 125, 256 frames
    assert edge_frames(LoopAudio()) == [0, 1, 255]  # the shipped models: 1500 / 375
    wide = LoopAudio(MelSpec(sr=8000, n_fft=1000, hop=125, win=1000, n_mels=20, fmax=4000.0))
    assert edge_frames(wide) == [0, 1, 2, 3, 253, 254, 255]


def test_the_edge_offset_gives_the_edges_the_datas_shape_and_leaves_the_rest() -> None:
    torch.manual_seed(0)
    data = torch.randn(20, 256)
    generated = data + 0.3 * torch.randn(20, 256) + 1.0  # another level and inner pattern
    generated[:, [0, 255]] += 2.0  # the learnt column
    edges = [0, 1, 255]
    offset = edge_offset(generated, data, edges)
    inner = [t for t in range(256) if t not in edges]
    assert torch.count_nonzero(offset[:, inner]) == 0
    fixed = generated + offset
    shape = data - data.mean(-1, keepdim=True)
    assert torch.allclose((fixed - fixed.mean(-1, keepdim=True))[:, edges], shape[:, edges])
    assert float(fixed[:, 0].mean() - fixed[:, 2:255].mean()) < 0.3  # the column is gone


def test_calibration_matches_the_edges_and_travels_with_the_model(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_tiny_model(tmp_path / "tiny")
    before = load_loop_model(folder)
    assert cli.main(["train", "calibration", str(folder), "--data", str(dataset)]) == 0
    assert capsys.readouterr().out.strip() == str(folder)
    section = json.loads((folder / "config.json").read_text())["calibration"]
    assert section["frames"] == [0, 1, 255] and section["samples"] == 1024
    assert section["draw"] == 1 and "seed" not in section
    card = (folder / "MODEL_CARD.md").read_text()
    assert "## Calibration" in card and "1024 loops averaged, latents of measurement draw 1" in card

    model = load_loop_model(folder)
    assert model.calibration is not None and model.calibration.shape == (20, 256)
    z = measurement_latents(16, 1024, 1)  # the fit's latents
    with torch.no_grad():
        ws = model.generator.mapping(z)
        made = model.mel.normalize(model.spectrogram(ws)).mean(0)
        raw = model.mel.normalize(before.spectrogram(ws)).mean(0)
    mels, _ = load_dataset(dataset)
    data = model.mel.normalize(mels).mean(0)
    shape = data - data.mean(-1, keepdim=True)
    assert torch.allclose((made - made.mean(-1, keepdim=True))[:, [0, 1, 255]],
                          shape[:, [0, 1, 255]], atol=1e-4)  # fmt: skip
    raw_error = (raw - raw.mean(-1, keepdim=True) - shape)[:, [0, 1, 255]].abs().mean()
    assert float(raw_error) > 0.05  # there was something to correct
    assert torch.equal(made[:, 2:255], raw[:, 2:255])

    calibrated, plain = (render(m, ws[:2], 0.5).spectrogram for m in (model, before))
    assert (calibrated[:, [0, 1, 255]] != plain[:, [0, 1, 255]]).all()
    assert (calibrated[:, 2:255] == plain[:, 2:255]).all()  # the engine renders through it

    save_loop_model(model, tmp_path / "copy")  # a saved model keeps its offset
    assert torch.equal(load_loop_model(tmp_path / "copy").calibration, model.calibration)
    save_loop_model(before, folder)  # new weights over it (rig export): the old offset goes
    assert not (folder / CALIBRATION_FILE).exists()
    assert load_loop_model(folder).calibration is None


def test_calibration_refuses_old_data_and_loading_checks_the_file(
    dataset: Path, tmp_path: Path
) -> None:
    folder = write_tiny_model(tmp_path / "tiny")
    old = tmp_path / "old"
    shutil.copytree(dataset, old)
    summary = json.loads((old / "dataset.json").read_text())
    del summary["analysis"]
    (old / "dataset.json").write_text(json.dumps(summary))
    with pytest.raises(TrainError, match="older rig"):
        fit_calibration(folder, old)
    with pytest.raises(TrainError, match="prepared for"):
        fit_calibration(folder, _with_audio(dataset, tmp_path / "slow", bpm=100.0))
    with pytest.raises(TrainError, match="not a prepared dataset"):
        fit_calibration(folder, tmp_path)
    assert not (folder / CALIBRATION_FILE).exists()

    fit_calibration(folder, dataset, samples=8)
    safetensors.torch.save_file({"offset": torch.zeros(20, 128)}, str(folder / CALIBRATION_FILE))
    with pytest.raises(CheckpointError, match=r"offset is \(20, 128\).*\(20, 256\)"):
        load_loop_model(folder)
    (folder / CALIBRATION_FILE).unlink()
    with pytest.raises(CheckpointError, match=r"calibration\.safetensors is missing"):
        load_loop_model(folder)


def _with_audio(dataset: Path, copy: Path, **changes: float) -> Path:
    """A copy of ``dataset`` whose dataset.json records other audio settings."""
    shutil.copytree(dataset, copy)
    summary = json.loads((copy / "dataset.json").read_text())
    summary["audio"].update(changes)
    (copy / "dataset.json").write_text(json.dumps(summary))
    return copy
