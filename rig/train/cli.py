"""The training side of the ``rig`` command: ``rig data``, ``rig train``, ``rig export`` and
``rig eval``. Parsers and handlers; the work is in the modules they call."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rig.config import Config

ConfigFlags = Callable[[argparse.ArgumentParser], None]


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in _csv(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of integers"
        ) from None


def _step_range(text: str) -> tuple[int, int]:
    """``FROM:UNTIL`` → two step numbers, FROM < UNTIL."""
    start, _, end = text.partition(":")
    try:
        first, last = int(start), int(end)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not FROM:UNTIL (two step numbers)") from None
    if not 0 <= first < last:
        raise argparse.ArgumentTypeError(f"{text!r}: FROM must be at least 0 and below UNTIL")
    return first, last


def _run_flags(parser: argparse.ArgumentParser, steps: int, save_every: int) -> None:
    parser.add_argument("--out", type=Path, required=True, help="run folder (resumes if present)")
    parser.add_argument("--steps", type=int, default=steps, help=f"total steps (default {steps})")
    parser.add_argument("--minutes", type=float, default=0.0, help="stop after this wall time")
    parser.add_argument("--save-every", type=int, default=save_every)
    parser.add_argument("--preview-every", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")


def add_parsers(sub: Any, config_flags: ConfigFlags) -> None:
    """Add ``data``, ``train``, ``export`` and ``eval`` to the sub-command set ``sub``."""
    data = sub.add_parser("data", help="training data")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="WHAT")
    prepare = data_sub.add_parser("prepare", help="a folder of audio → 2-bar mel dataset")
    prepare.add_argument("src", type=Path, help="folder of WAV/FLAC/AIFF/MP3/OGG files")
    prepare.add_argument("out", type=Path, help="dataset folder (extended if present)")
    prepare.add_argument("--material", required=True, help="e.g. drums, bass, pads")
    prepare.add_argument(
        "--tempos", type=Path, help="CSV file,tempo[,licence][,offset] (else estimated)"
    )
    prepare.add_argument("--licence", default="", help="licence of the material")
    demo = data_sub.add_parser("demo", help="render the default CC0/MIT corpus and prepare it")
    demo.add_argument("out", type=Path, help="corpus folder (resumes if present)")
    demo.add_argument("--materials", type=_csv, help="comma-separated (default: all)")
    demo.add_argument("--loops", type=int, default=2000, help="training loops per material")
    demo.add_argument("--heldout", type=int, default=200, help="held-out loops per material")
    demo.add_argument("--seed", type=int, default=0)
    config_flags(data)

    train = sub.add_parser("train", help="training runs")
    train_sub = train.add_subparsers(dest="train_command", required=True, metavar="WHAT")
    gan = train_sub.add_parser("stylegan2", help="a spectrogram StyleGAN2 on a prepared dataset")
    gan.add_argument("dataset", type=Path, help="a rig data prepare folder")
    _run_flags(gan, steps=20_000, save_every=500)
    gan.add_argument("--batch", type=int, default=8)
    gan.add_argument("--lr", type=float, default=0.002, help="learning rate")
    gan.add_argument("--r1-gamma", type=float, default=1.0)
    gan.add_argument(
        "--ema-kimg", type=float, default=2.0, help="EMA generator half-life, thousands of images"
    )
    gan.add_argument(
        "--ema-rampup",
        type=float,
        default=0.05,
        help="EMA half-life at most this fraction of the images seen (0: no ramp-up)",
    )
    gan.add_argument(
        "--profile-weight",
        type=float,
        default=0.0,
        help="weight of matching the generated mean spectrogram to the dataset's, frame by frame "
        "(removes a column the data lacks at a fixed frame; 0: off)",
    )
    gan.add_argument("--channels", type=_ints, help="generator channels per level, coarse → fine")
    gan.add_argument("--vocoder", type=Path, help="vocoder folder for the audio previews")
    gan.add_argument(
        "--augment",
        type=float,
        default=0.3,
        help="probability of each discriminator augmentation: shift by sixteenths, band mask, "
        "gain (0: off; default 0.3)",
    )
    gan.add_argument(
        "--init", type=Path, help="a stylegan2 run whose weights a new run starts from"
    )
    for name, kind in (("melgan", "melgan"), ("vocoder", None)):
        voc = train_sub.add_parser(
            name, help=f"a {kind or 'mel → audio'} vocoder on datasets' audio"
        )
        voc.add_argument("datasets", type=Path, nargs="+", help="rig data prepare folders")
        _run_flags(voc, steps=20_000, save_every=500)
        if kind is None:
            voc.add_argument("--type", choices=["istft", "melgan"], default="istft")
        voc.add_argument("--batch", type=int, default=8)
        voc.add_argument("--lr", type=float, default=2e-4, help="learning rate")
        voc.add_argument(
            "--decay",
            type=_step_range,
            default=(0, 0),
            metavar="FROM:UNTIL",
            help="the vocoder's learning rate falls by a half cosine from --lr at step FROM to "
            "1/20 of it at UNTIL and stays there (default: constant)",
        )
        voc.add_argument("--adversarial-from", type=int, default=2000)
        voc.add_argument("--loops-per-dataset", type=int, default=600)
        voc.add_argument(
            "--upsample",
            type=int,
            choices=(1, 2),
            default=2,
            help="output rate ÷ mel rate (istft; 2: 24 kHz mels → 48 kHz audio, the default)",
        )
        voc.add_argument(
            "--augment",
            type=float,
            default=0.5,
            help="probability of each audio augmentation: gain, tilt, pitch (0: off)",
        )
        voc.add_argument(
            "--init",
            type=Path,
            help="a vocoder run or shared vocoder folder whose weights a new run starts from",
        )
    directions = train_sub.add_parser("directions", help="fit named and PCA directions of a model")
    directions.add_argument("model", type=Path, help="a model release folder")
    directions.add_argument("--samples", type=int, default=512, help="loops generated to fit on")
    directions.add_argument("--components", type=int, default=3, help="PCA directions kept")
    directions.add_argument("--seed", type=int, default=0)
    directions.add_argument(
        "--check",
        action="store_true",
        help="keep the stored directions; check them again as the model now plays (e.g. "
        "through another vocoder), on the latents a fit of --samples checks them on",
    )
    calibration = train_sub.add_parser(
        "calibration", help="take a learnt click out of a model's loop point (see its docs)"
    )
    calibration.add_argument("model", type=Path, help="a model release folder")
    calibration.add_argument(
        "--data", type=Path, required=True, help="the prepared (loop-analysed) dataset it learnt"
    )
    calibration.add_argument("--samples", type=int, default=1024, help="loops averaged")
    calibration.add_argument("--seed", type=int, default=1)
    lora = train_sub.add_parser("lora", help="LoRA fine-tuning of Stable Audio Open")
    lora.add_argument("data", type=Path, help="CSV (file,caption) or JSONL of recordings")
    lora.add_argument("--base", type=Path, required=True, help="the base pipeline folder")
    _run_flags(lora, steps=1000, save_every=100)
    lora.add_argument("--batch", type=int, default=2)
    lora.add_argument("--lr", type=float, default=1e-4, help="learning rate")
    lora.add_argument("--rank", type=int, default=16)
    lora.add_argument("--alpha", type=int, default=16)
    lora.add_argument("--seconds", type=float, default=10.0, help="random crop length, s")
    lora.add_argument(
        "--cfg-dropout", type=float, default=0.1, help="share of captions dropped (guidance)"
    )
    lora.add_argument(
        "--precision", choices=("auto", "fp32", "fp16", "bf16"), default="auto",
        help="auto: bf16/fp16 autocast on CUDA, fp32 on the CPU",
    )  # fmt: skip
    lora.add_argument(
        "--no-gradient-checkpointing", action="store_true", help="faster on CUDA, more memory"
    )
    config_flags(train)

    export = sub.add_parser("export", help="a training run → a release folder under models/")
    export.add_argument("run", type=Path, help="a stylegan2 or vocoder run folder")
    export.add_argument("--name", required=True, help="release folder name")
    export.add_argument("--models", type=Path, help="models folder (default: paths.models)")
    export.add_argument("--vocoder", help="name of the shared vocoder folder (loop models)")
    export.add_argument("--tags", type=_csv, default=(), help="comma-separated prompt tags")
    export.add_argument("--heldout", type=Path, help="held-out dataset: evaluate into the card")
    export.add_argument(
        "--note", action="append", default=[], help="a line for the card's notes (repeatable)"
    )
    export.add_argument(
        "--live",
        action="store_true",
        help="a StyleGAN2 run's last generator weights instead of their moving average (EMA)",
    )
    export.add_argument(
        "--max-magnitude",
        type=float,
        help="an iSTFT vocoder run's head writes no STFT bin louder than this (default: the cap "
        "it trained under)",
    )
    config_flags(export)

    evaluate = sub.add_parser(
        "eval", help="vocoder and generator metrics against held-out and recorded loops"
    )
    evaluate.add_argument("model", type=Path, help="a model or shared vocoder release folder")
    evaluate.add_argument("--data", type=Path, help="held-out prepared dataset")
    evaluate.add_argument(
        "--recorded",
        nargs="?",
        const="",
        metavar="DIR",
        help="also the vocoder on recorded loops (a folder of loop_* files; default: "
        "sonic-pi-samples' own)",
    )
    evaluate.add_argument("--train", type=Path, help="training dataset (default: the card's)")
    evaluate.add_argument("--loops", type=int, default=200, help="loops per set")
    evaluate.add_argument("--report", type=Path, help="write a listening report (HTML) here")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    config_flags(evaluate)


def _positive(**values: float) -> None:
    bad = [f"--{k.replace('_', '-')} {v:g}" for k, v in values.items() if v < 1]
    if bad:
        raise ValueError(f"{', '.join(bad)}: must be at least 1")


def _threads(args: argparse.Namespace) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)


def cmd_data(args: argparse.Namespace, config: Config) -> int:
    """``rig data prepare|demo``."""
    if args.data_command == "demo":
        from rig.train.demo import MATERIALS, DemoPlan, build_demo

        _positive(loops=args.loops, heldout=args.heldout)
        reports = build_demo(
            args.out,
            args.materials or MATERIALS,
            DemoPlan(args.loops, args.heldout, seed=args.seed),
        )
        for name, report in reports.items():
            print(f"{name}: {report.segments} new segments", file=sys.stderr)
        print(args.out)
        return 0
    from rig.train.data import prepare_dataset

    if not args.src.is_dir():
        raise ValueError(f"{args.src} is not a folder")
    report = prepare_dataset(args.src, args.out, args.material, args.tempos, args.licence)
    print(
        f"{report.files} files read ({report.resumed} done before), {report.segments} "
        f"segments kept, {report.silent} silent and {report.duplicates} duplicates dropped, "
        f"{len(report.skipped)} files skipped",
        file=sys.stderr,
    )
    for line in report.skipped:
        print(f"  skipped {line}", file=sys.stderr)
    print(args.out)
    return 0


def cmd_train(args: argparse.Namespace, config: Config) -> int:
    """``rig train stylegan2|melgan|vocoder|directions|calibration|lora``."""
    handler = {
        "stylegan2": _train_stylegan2,
        "melgan": _train_vocoder,
        "vocoder": _train_vocoder,
        "directions": _train_directions,
        "calibration": _train_calibration,
        "lora": _train_lora,
    }[args.train_command]
    return handler(args, config)


def _train_stylegan2(args: argparse.Namespace, config: Config) -> int:
    from rig.nn.stylegan2 import GeneratorConfig
    from rig.train.gan import GanSettings, train_stylegan2

    _positive(steps=args.steps, batch=args.batch, save_every=args.save_every)
    _threads(args)
    settings = GanSettings(
        steps=args.steps,
        minutes=args.minutes,
        batch=args.batch,
        learning_rate=args.lr,
        r1_gamma=args.r1_gamma,
        ema_kimg=args.ema_kimg,
        ema_rampup=args.ema_rampup,
        profile_weight=args.profile_weight,
        augment_p=args.augment,
        save_every=args.save_every,
        preview_every=max(1, args.preview_every),
        seed=args.seed,
        device=args.device,
    )
    generator = GeneratorConfig(channels=args.channels) if args.channels else None
    print(train_stylegan2(args.dataset, args.out, settings, generator, args.vocoder, args.init))
    return 0


def _train_vocoder(args: argparse.Namespace, config: Config) -> int:
    from rig.train.vocoder import VocoderSettings, train_vocoder

    _positive(steps=args.steps, batch=args.batch, loops_per_dataset=args.loops_per_dataset)
    _threads(args)
    settings = VocoderSettings(
        steps=args.steps,
        minutes=args.minutes,
        batch=args.batch,
        learning_rate=args.lr,
        decay_from=args.decay[0],
        decay_until=args.decay[1],
        adversarial_from=args.adversarial_from,
        loops_per_dataset=args.loops_per_dataset,
        upsample=args.upsample if (getattr(args, "type", None) or "melgan") == "istft" else 1,
        augment_p=args.augment,
        save_every=max(1, args.save_every),
        preview_every=max(1, args.preview_every),
        seed=args.seed,
        device=args.device,
    )
    kind = getattr(args, "type", None) or args.train_command
    print(train_vocoder(args.datasets, args.out, kind, settings, init=args.init))
    return 0


def _train_directions(args: argparse.Namespace, config: Config) -> int:
    from rig.train.directions import check_directions, fit_directions

    _positive(samples=args.samples)
    if args.check:
        report = check_directions(args.model, args.samples, args.seed)
    else:
        report = fit_directions(args.model, args.samples, args.components, args.seed)
    for name, line in report.items():
        print(f"{name}: {line}", file=sys.stderr)
    print(args.model)
    return 0


def _train_calibration(args: argparse.Namespace, config: Config) -> int:
    from rig.train.calibration import fit_calibration

    _positive(samples=args.samples)
    section = fit_calibration(args.model, args.data, args.samples, args.seed)
    for frame, size in section["mean_abs_offset"].items():
        print(f"frame {frame}: mean |offset| {size} (normalised units)", file=sys.stderr)
    print(args.model)
    return 0


def _train_lora(args: argparse.Namespace, config: Config) -> int:
    from rig.train.lora import LoraSettings, train_lora

    if args.steps < 1 or args.batch < 1 or args.rank < 1 or args.seconds <= 0:
        raise ValueError("--steps, --batch and --rank must be ≥ 1 and --seconds > 0")
    if not 0.0 <= args.cfg_dropout < 1.0:
        raise ValueError(f"--cfg-dropout {args.cfg_dropout}: a share in [0, 1)")
    _threads(args)
    settings = LoraSettings(
        steps=args.steps,
        batch=args.batch,
        learning_rate=args.lr,
        rank=args.rank,
        alpha=args.alpha,
        seconds=args.seconds,
        cfg_dropout=args.cfg_dropout,
        device=args.device,
        precision=args.precision,
        gradient_checkpointing=not args.no_gradient_checkpointing,
        minutes=args.minutes,
        save_every=max(1, args.save_every),
        seed=args.seed,
    )
    print(train_lora(args.data, args.base, args.out, settings))
    return 0


def cmd_export(args: argparse.Namespace, config: Config) -> int:
    """``rig export RUN --name NAME``."""
    from rig.train.export import export_run

    models = args.models or config.paths.models[0]
    folder = export_run(
        args.run,
        args.name,
        models,
        args.vocoder,
        args.tags,
        args.heldout,
        tuple(args.note),
        args.live,
        args.max_magnitude,
    )
    print(folder)
    return 0


def cmd_eval(args: argparse.Namespace, config: Config) -> int:
    """``rig eval MODEL [--data HELDOUT] [--recorded [DIR]] [--report DIR]``."""
    from rig.train.evaluate import evaluate_model

    _positive(loops=args.loops)
    recorded = None
    if args.recorded is not None:
        from rig.train.demo import SONIC_PI, recorded_loops

        folder = Path(args.recorded) if args.recorded else SONIC_PI
        recorded = recorded_loops(folder)
        if not recorded:
            raise ValueError(f"no recorded loops (loop_*.flac) in {folder}")
    if args.data is None and recorded is None:
        raise ValueError("give a held-out dataset (--data) or --recorded")
    metrics = evaluate_model(
        args.model, args.data, args.train, args.loops, recorded=recorded, report=args.report
    )
    if args.json:
        print(json.dumps(metrics))
    else:
        width = max(len(k) for k in metrics)
        for key, value in metrics.items():
            print(f"{key:<{width}}  {value}")
    return 0


COMMANDS = {"data": cmd_data, "train": cmd_train, "export": cmd_export, "eval": cmd_eval}
