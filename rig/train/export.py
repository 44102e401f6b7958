"""``rig export RUN --name NAME``: a training run → a release folder under ``models/``.

A StyleGAN2 run becomes a loop model (its EMA generator, the dataset's mel statistics, the shared
vocoder it names); a vocoder run becomes a shared vocoder folder. The training facts go into
``config.json`` (``"training"``) and the card. With ``--heldout`` the folder is evaluated at once
(``rig eval``), and its metrics go into the card too.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import safetensors.torch
import torch

from rig import __version__
from rig.loop_model import (
    LoopAudio,
    load_vocoder_folder,
    new_loop_model,
    save_loop_model,
    save_vocoder,
)
from rig.nn.istft import IstftConfig
from rig.nn.mel import MelSpec
from rig.nn.stylegan2 import GeneratorConfig
from rig.nn.vocoder import build_vocoder, vocoder_config
from rig.release import CheckpointError, read_config, update_config
from rig.train.card import refresh_card
from rig.train.run import TrainError, load_checkpoint, load_module
from rig.train.vocoder import AVERAGE, VocoderSettings

STATS_FILE = "stats.safetensors"


def export_run(
    run: Path,
    name: str,
    models: Path,
    vocoder: str | None = None,
    tags: tuple[str, ...] = (),
    heldout: Path | None = None,
    notes: tuple[str, ...] = (),
    live: bool = False,
    max_magnitude: float | None = None,
) -> Path:
    """Export ``run`` as ``models/name``; returns the release folder. ``notes`` (known weaknesses,
    how it was made) go into the card's last section. ``live``: a StyleGAN2 run's last generator
    weights instead of their EMA (the card says so). ``max_magnitude``: an iSTFT vocoder run's
    head writes no bin louder than this (linear STFT magnitude) instead of the cap it trained
    under."""
    if not name or "/" in name or name.startswith("."):
        raise TrainError(f"{name!r} is not a folder name for a release")
    config = _run_config(run)
    if max_magnitude is not None:
        _check_cap(config, max_magnitude)
    found = load_checkpoint(run / "checkpoint")
    if found is None:
        raise TrainError(f"{run} has no checkpoint yet: train it first")
    tensors, state = found
    folder = models / name
    facts = _training_facts(config, state)
    if config["kind"] == "vocoder_run":
        facts |= _export_vocoder(config, tensors, folder, max_magnitude)
    else:
        if not vocoder:
            raise TrainError("a loop model needs --vocoder NAME (a shared vocoder folder)")
        _export_generator(run, config, tensors, folder, name, vocoder, tags, live)
        facts["generator_weights"] = "live" if live else "ema"
    update_config(folder, name=name, training=facts)
    if notes:
        update_config(folder, notes=list(notes))
    refresh_card(folder)
    if heldout is not None and config["kind"] == "stylegan2_run":
        from rig.train.evaluate import evaluate_model

        evaluate_model(folder, heldout)
    return folder


def _run_config(run: Path) -> dict[str, Any]:
    path = run / "config.json"
    if not path.is_file():
        raise TrainError(f"{run} is not a training run folder (no config.json)")
    config = json.loads(path.read_text())
    if config.get("kind") not in ("stylegan2_run", "vocoder_run"):
        raise TrainError(f"{run}: cannot export a {config.get('kind')!r} run")
    return config


def _check_cap(config: dict[str, Any], max_magnitude: float) -> None:
    """Refuse ``--max-magnitude`` for anything but an iSTFT vocoder run, or a cap that is not a
    positive number."""
    if config["kind"] != "vocoder_run" or config["vocoder"].get("type") != "istft":
        raise TrainError("--max-magnitude: only an iSTFT vocoder run's head has a magnitude cap")
    if not 0 < max_magnitude < math.inf:
        raise TrainError(f"--max-magnitude {max_magnitude:g}: must be a positive magnitude")


def _export_vocoder(
    config: dict[str, Any], tensors: dict, folder: Path, max_magnitude: float | None = None
) -> dict[str, Any]:
    """Save the run's weight average (:mod:`rig.train.average`) if it kept one, else its last
    weights, with the head capped at ``max_magnitude`` if given (the weights are the same);
    returns the training facts about those choices."""
    cfg = vocoder_config(config["vocoder"])
    facts: dict[str, Any] = {}
    if max_magnitude is not None:
        assert isinstance(cfg, IstftConfig)  # _check_cap
        facts["max_magnitude"] = {"trained": cfg.magnitude_cap, "exported": max_magnitude}
        cfg = dataclasses.replace(cfg, max_magnitude=max_magnitude)
    network = build_vocoder(cfg)
    averaged = f"{AVERAGE}/average."
    updates = int(tensors.get(f"{AVERAGE}/updates", torch.zeros(())))
    if updates > 0:
        tensors = {
            "vocoder/" + key.removeprefix(averaged): value
            for key, value in tensors.items()
            if key.startswith(averaged)
        }
        # A run begun before averaging existed recorded no decay: it averaged with the default.
        decay = config.get("settings", {}).get("average_decay", VocoderSettings.average_decay)
        facts["weights"] = {"average_decay": decay, "averaged_steps": updates}
    load_module("vocoder", network, tensors)
    mel = LoopAudio.from_dict(config["audio"]).mel
    save_vocoder(network, cfg, mel, folder)
    return facts


def _export_generator(
    run: Path,
    config: dict[str, Any],
    tensors: dict,
    folder: Path,
    name: str,
    vocoder: str,
    tags: tuple[str, ...],
    live: bool,
) -> None:
    audio = LoopAudio.from_dict(config["audio"])
    shared = folder.parent / vocoder
    try:
        voc_config = read_config(shared)
    except CheckpointError as error:
        raise TrainError(f"--vocoder {vocoder}: {error}") from None
    if voc_config.get("kind") != "vocoder" or MelSpec(**voc_config["audio"]) != audio.mel:
        raise TrainError(f"{shared} is not a vocoder folder for this model's audio settings")
    load_vocoder_folder(shared)  # refuses weights that do not fit before anything is written
    material = str(config.get("material", ""))
    model = new_loop_model(
        name,
        audio,
        GeneratorConfig.from_dict(config["generator"]),
        vocoder_config(voc_config["vocoder"]),
        material=material,
        tags=tags or ((material,) if material else ()),
    )
    load_module("G" if live else "G_ema", model.generator, tensors)
    stats = safetensors.torch.load_file(str(run / STATS_FILE))
    model.mel.set_statistics(stats["mean"], stats["std"])
    model.shared_vocoder = vocoder
    save_loop_model(model, folder)


def _training_facts(config: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    datasets = config.get("datasets") or [config.get("dataset")]
    read = config.get("settings", {}).get("loops_per_dataset")  # a vocoder reads that many
    return {
        "run_kind": config["kind"],
        "data": [_dataset_facts(Path(d), read) for d in datasets if d],
        "steps": state.get("step"),
        "batch": config.get("settings", {}).get("batch"),
        "wall_hours": round(float(state.get("wall_seconds", 0.0)) / 3600, 3),
        "hardware": state.get("device", "CPU"),
        "exported": datetime.date.today().isoformat(),
        "rig_version": __version__,
        **({"initialised_from": _init_facts(config["init"])} if "init" in config else {}),
    }


def _init_facts(init: dict[str, Any]) -> dict[str, Any]:
    """What a transfer-learning run started from: the folder, its step and its data."""
    data = [
        _dataset_facts(Path(d["dataset"])) if set(d) == {"dataset"} else d for d in init["data"]
    ]
    return {"from": Path(init["from"]).name, "step": init["step"], "data": data}


def _dataset_facts(dataset: Path, read: int | None = None) -> dict[str, Any]:
    """Material, loop count and licences (with counts) of a prepared dataset; ``read``: how many
    of its loops the run read (a vocoder run's ``loops_per_dataset``; None: all)."""
    facts: dict[str, Any] = {"dataset": dataset.name}
    manifest = dataset / "manifest.jsonl"
    if manifest.is_file():
        rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
        segments = [r for r in rows if "offset_s" in r]
        facts["segments"] = len(segments)
        facts["material"] = segments[0].get("material", "") if segments else ""
        facts["licences"] = dict(Counter(r.get("licence", "") for r in segments))
        if read is not None and read < len(segments):
            facts["read"] = read
    return facts
