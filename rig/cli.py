"""The ``rig`` command: perform, generate, loop, doctor, bench, device, data, train, export, eval.

Every command prints its result's path (if it makes a file) as its last line of standard output and
reports problems as one ``rig: error: ...`` line on standard error with a non-zero exit code.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rig import __version__
from rig.config import Config, ConfigError, load_config
from rig.train.cli import COMMANDS as TRAINING_COMMANDS
from rig.train.cli import add_parsers as add_training_parsers

EXIT_ERROR = 1
EXIT_USAGE = 2


def _config_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="rig.toml (default: ./rig.toml if present)")
    parser.add_argument("--takes", help="take folder (RIG_TAKES)")
    parser.add_argument("--osc-host", help="host of the Max for Live device (RIG_OSC_HOST)")
    parser.add_argument("--osc-port", help="the device's UDP port (RIG_OSC_PORT)")
    parser.add_argument("--listen-port", help="the rig's own UDP port (RIG_LISTEN_PORT)")
    parser.add_argument("--wav-format", choices=["pcm24", "float"], help="WAV sample format")


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "paths.takes": getattr(args, "takes", None),
        "osc.host": getattr(args, "osc_host", None),
        "osc.port": getattr(args, "osc_port", None),
        "osc.listen_port": getattr(args, "listen_port", None),
        "audio.wav_format": getattr(args, "wav_format", None),
        "remote.enabled": True if getattr(args, "remote", False) else None,
        "music.channels": getattr(args, "channels", None),
        "ui.token": getattr(args, "token", None),
        "ui.port": getattr(args, "ui_port", None),
    }


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = argparse.ArgumentParser(prog="rig", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"rig {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log debug messages; errors with tracebacks"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    perform = sub.add_parser("perform", help="run the rig for a show (session, OSC link, ...)")
    perform.add_argument(
        "--remote",
        action="store_true",
        help="this is a GPU host: relay takes and device messages to `rig companion` (RIG_REMOTE)",
    )
    _config_flags(perform)

    companion = sub.add_parser(
        "companion", help="on the Live laptop: relay a remote `rig perform --remote` to the device"
    )
    companion.add_argument("url", help="the host's UI address, e.g. http://127.0.0.1:7861")
    companion.add_argument("--token", help="the host's token (RIG_TOKEN)")
    companion.add_argument("--ui-port", help="serve the host's pages here (RIG_UI_PORT, 7860)")
    _config_flags(companion)

    generate = sub.add_parser("generate", help="one prompt → one take (→ one device slot)")
    generate.add_argument("prompt", help="e.g. 'dark pad, Tempo: 107, Key: E minor, Bars: 4'")
    generate.add_argument("--engine", default="gan", help="engine name (default: gan)")
    generate.add_argument("--model", help="model name or folder")
    generate.add_argument("--slot", type=int, default=1, help="device slot, from 1 (default 1)")
    generate.add_argument("--seed", type=int, help="random seed (default: a fresh one)")
    generate.add_argument("--no-send", action="store_true", help="write the take, send nothing")
    generate.add_argument(
        "--channels", choices=["2", "4"], help="2 = stereo, 4 = quad take (RIG_CHANNELS)"
    )
    generate.add_argument(
        "--set",
        action="append",
        metavar="NAME=VALUE",
        help="a control of the engine, e.g. --set variation=0 --set complexity=2 (repeatable)",
    )
    _config_flags(generate)

    loop = sub.add_parser("loop", help="make a bar-exact, click-free loop from an audio file")
    loop.add_argument("input", type=Path, help="WAV/FLAC/OGG/AIFF/MP3 file")
    loop.add_argument("--bpm", type=float, required=True, help="target tempo")
    loop.add_argument("--bars", type=int, required=True, help="target length in bars")
    loop.add_argument("--beats-per-bar", type=int, default=None, help="default from config (4)")
    loop.add_argument("--source-bpm", type=float, help="the file's own tempo, if known")
    loop.add_argument("--no-trim", action="store_true", help="keep leading/trailing silence")
    loop.add_argument("-o", "--output", type=Path, help="output WAV (default: IN.loop.wav)")
    _config_flags(loop)

    doctor = sub.add_parser("doctor", help="check this machine and the configuration")
    _config_flags(doctor)

    bench = sub.add_parser("bench", help="measure speed; prints figures")
    bench.add_argument(
        "what",
        choices=["loops", "gan", "diffusion", "train", "lora", "sound", "companion", "evolve"],
        help="what to measure",
    )
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    _config_flags(bench)

    add_training_parsers(sub, _config_flags)

    device = sub.add_parser("device", help="Max for Live device tools")
    device_sub = device.add_subparsers(dest="device_command", required=True, metavar="ACTION")
    unpack = device_sub.add_parser("unpack", help="print or write the patcher JSON of an .amxd")
    unpack.add_argument("amxd", type=Path, help="an unfrozen .amxd file")
    unpack.add_argument("-o", "--output", type=Path, help="write the JSON here (not stdout)")
    build = device_sub.add_parser("build", help="write the rig slots .amxd and its script")
    build.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("max4live/build"),
        help="folder (default: max4live/build)",
    )
    build.add_argument("--slots", type=int, default=8, help="number of slots (default 8)")
    lint = device_sub.add_parser("lint", help="check devices and patches without Max")
    lint.add_argument(
        "files",
        nargs="*",
        type=Path,
        help=".amxd/.maxpat files (default: build rig slots and check it)",
    )
    _config_flags(device)
    takes = sub.add_parser("takes", help="the take folder: prune old sessions")
    takes_sub = takes.add_subparsers(dest="takes_command", required=True, metavar="WHAT")
    prune = takes_sub.add_parser(
        "prune",
        help="remove the oldest sessions (never the newest one, never a take a slot holds)",
    )
    prune.add_argument("--dry-run", action="store_true", help="only say what would go")
    prune.add_argument("--keep-sessions", type=int, help="default: takes.keep_sessions")
    prune.add_argument("--max-gb", type=float, help="default: takes.max_gb")
    _config_flags(takes)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rig`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        config = load_config(args.config, overrides=_overrides(args))
        return int(COMMANDS[args.command](args, config))
    except (ConfigError, ValueError, OSError, RuntimeError) as error:
        if args.verbose:  # a bug report needs the whole story
            traceback.print_exc()
        print(f"rig: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


def _cmd_loop(args: argparse.Namespace, config: Config) -> int:
    from rig.loops import make_loop, read_audio
    from rig.takes import atomic_write_wav

    audio, rate = read_audio(args.input)
    beats = args.beats_per_bar or config.music.beats_per_bar
    loop = make_loop(
        audio,
        rate,
        args.bpm,
        args.bars,
        beats,
        config.audio,
        source_bpm=args.source_bpm,
        trim=not args.no_trim,
    )
    output = args.output or args.input.with_name(f"{args.input.stem}.loop.wav")
    if output.resolve() == args.input.resolve():
        raise ValueError(f"{output} is the input file; choose another output path")
    atomic_write_wav(output, loop.audio, loop.sample_rate, config.audio.wav_subtype)
    print(
        f"{loop.bars} bars at {loop.bpm:g} BPM: {loop.audio.shape[1]} samples, "
        f"{loop.lufs:.1f} LUFS, peak {loop.peak_dbfs:.1f} dBFS",
        file=sys.stderr,
    )
    print(output)
    return 0


def _cmd_generate(args: argparse.Namespace, config: Config) -> int:
    from rig.generate import generate

    return generate(args, config)


def _cmd_companion(args: argparse.Namespace, config: Config) -> int:
    from rig.remote.run import run_companion

    return run_companion(args.url, config)


def _cmd_perform(args: argparse.Namespace, config: Config) -> int:
    from rig.show import perform

    return perform(config)


def _cmd_doctor(args: argparse.Namespace, config: Config) -> int:
    from rig.doctor import run_doctor

    return run_doctor(config)


def _cmd_bench(args: argparse.Namespace, config: Config) -> int:
    from rig.bench import run_bench

    return run_bench(args.what, config, as_json=args.json)


def _cmd_device(args: argparse.Namespace, config: Config) -> int:
    if args.device_command == "build":
        from rig.device.build import build_device

        if not 1 <= args.slots <= 32:
            raise ValueError(f"--slots {args.slots} is outside 1-32")
        print(build_device(args.output, args.slots))
        return 0
    if args.device_command == "lint":
        return _lint_devices(args.files)
    from rig.device.amxd import read_amxd

    device = read_amxd(args.amxd.read_bytes())
    device.patcher()  # refuses a payload that is not a patcher
    if args.output is None:
        sys.stdout.write(device.patcher_json.decode("utf-8"))
        return 0
    if args.output.resolve() == args.amxd.resolve():
        raise ValueError(f"{args.output} is the input file; choose another output path")
    part = args.output.with_name(f".{args.output.name}.part")
    part.write_bytes(device.patcher_json)
    part.replace(args.output)
    print(args.output)
    return 0


def _cmd_takes(args: argparse.Namespace, config: Config) -> int:
    from rig.retention import prune
    from rig.takes import SESSION_RE

    keep = config.takes.keep_sessions if args.keep_sessions is None else args.keep_sessions
    max_gb = config.takes.max_gb if args.max_gb is None else args.max_gb
    if keep < 0 or max_gb < 0:
        raise ValueError("--keep-sessions and --max-gb must be 0 (no limit) or more")
    if not keep and not max_gb:
        raise ValueError(
            "no limit to prune to: give --keep-sessions or --max-gb (or set takes.keep_sessions "
            "/ takes.max_gb)"
        )
    root = config.paths.takes
    sessions = sorted(p.name for p in root.iterdir() if p.is_dir() and SESSION_RE.match(p.name))
    newest = sessions[-1] if sessions else None  # maybe a rig running now: never pruned
    report = prune(root, keep, max_gb, current=newest, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for folder in report.sessions:
        print(f"{verb} {folder}")
    for path in report.files:
        print(f"{verb} {path}")
    for path in report.kept_for_slots:
        print(f"kept {path} (a device slot holds it)")
    print(
        f"{verb} {len(report.sessions)} sessions and {len(report.files)} files, "
        f"{report.freed_bytes / 1e6:.1f} MB",
        file=sys.stderr,
    )
    return 0


def _lint_devices(files: list[Path]) -> int:
    from rig.device.build import lint_built_device
    from rig.device.lint import lint_file

    reports = [lint_file(path) for path in files] if files else [lint_built_device()]
    for report in reports:
        for problem in report.problems:
            print(f"{report.path}: {problem}")
        verdict = "ok" if report.ok else "FAILED"
        print(
            f"{report.path}: {verdict} ({report.boxes} boxes, {len(report.parameters)} "
            f"parameters, {len(report.problems)} findings)"
        )
    return 0 if all(r.ok for r in reports) else 1


COMMANDS = {
    "loop": _cmd_loop,
    "generate": _cmd_generate,
    "perform": _cmd_perform,
    "companion": _cmd_companion,
    "doctor": _cmd_doctor,
    "bench": _cmd_bench,
    "device": _cmd_device,
    "takes": _cmd_takes,
    **TRAINING_COMMANDS,
}
