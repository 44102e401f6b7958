"""``rig doctor``: what this machine offers the rig, and what stands in its way.

Each check prints ``ok``, ``warn`` or ``FAIL`` with what it found. Only a FAIL (the rig cannot run
as configured) makes the exit code non-zero.
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rig.config import Config
from rig.engines import ENGINES
from rig.link import Link, LinkEvent, RetryPolicy
from rig.takes import TakeError, TakeStore

OK, WARN, FAIL = "ok", "warn", "FAIL"
OPTIONAL_TOOLS = {  # programs rig itself runs (time-stretching is pedalboard's own Rubber Band)
    "chromium": "the browser tests",
    "node": "the device logic tests",
}


@dataclass(frozen=True)
class Finding:
    """One line of the report."""

    status: str  # ok | warn | FAIL
    what: str
    detail: str


def check_python(config: Config) -> Finding:
    version = ".".join(map(str, sys.version_info[:3]))
    good = sys.version_info >= (3, 11)
    return Finding(OK if good else FAIL, "python", f"{version} ({sys.executable})")


def check_takes(config: Config) -> Finding:
    folder = config.paths.takes.resolve()
    try:
        TakeStore(folder).check()
    except TakeError as error:
        return Finding(FAIL, "take folder", str(error))
    free_gb = shutil.disk_usage(folder).free / 1e9
    status = OK if free_gb > 1.0 else WARN
    return Finding(status, "take folder", f"{folder} (writable, {free_gb:.1f} GB free)")


def check_listen_port(config: Config) -> Finding:
    port = config.osc.listen_port
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind(("0.0.0.0", port))
    except OSError as error:
        return Finding(
            FAIL,
            "listen port",
            f"UDP {port} is taken ({error.strerror}); is a rig "
            "already running? set RIG_LISTEN_PORT",
        )
    finally:
        sock.close()
    return Finding(OK, "listen port", f"UDP {port} is free")


def check_device(config: Config) -> Finding:
    answered = threading.Event()

    def on_event(event: LinkEvent) -> None:
        if event.kind == "pong":
            answered.set()

    where = f"{config.osc.host}:{config.osc.port}"
    try:
        with Link(config.osc, config.paths.takes, RetryPolicy()) as link:
            link.subscribe(on_event)
            link.ping(1)
            answered.wait(0.5)
    except OSError as error:
        return Finding(WARN, "device", f"cannot ping {where}: {error}")
    if answered.is_set():
        return Finding(OK, "device", f"the rig slots device answered at {where}")
    return Finding(
        WARN,
        "device",
        f"no answer at {where} (Live with the rig slots device "
        "not running? takes are still written)",
    )


def check_models(config: Config) -> Finding:
    from rig.loop_model import load_loop_model
    from rig.release import CheckpointError, find_model_folders

    folders = ", ".join(str(f) for f in config.paths.models)
    found = find_model_folders(config.paths.models)
    if not found:
        return Finding(
            WARN,
            "models",
            f"no loop model folders (with config.json) in {folders}: put release folders there "
            "or train the defaults with `make train-defaults`",
        )
    loaded, broken = [], []
    for folder in found:
        try:
            model = load_loop_model(folder)
        except (CheckpointError, OSError) as error:
            broken.append(str(error))
            continue
        loaded.append(
            f"{model.name} ({model.material or 'no material'}, {len(model.directions)} directions)"
        )
    text = f"{len(loaded)} in {folders}: {', '.join(loaded) or 'none loads'}"
    if broken:
        return Finding(WARN, "models", text + "; broken: " + "; ".join(broken))
    return Finding(OK, "models", text)


def check_engines(config: Config) -> Finding:
    return Finding(OK, "engines", ", ".join(sorted(ENGINES)))


def check_torch(config: Config) -> Finding:
    try:
        import torch
    except ImportError as error:
        return Finding(FAIL, "torch", f"cannot import torch: {error}; run `make run` to install")
    if torch.cuda.is_available():
        device = f"cuda ({torch.cuda.get_device_name(0)})"
    elif torch.backends.mps.is_available():
        device = "mps (Apple GPU)"
    else:
        device = "cpu"
    threads = config.session.threads or torch.get_num_threads()
    return Finding(OK, "torch", f"{torch.__version__}, device {device}, {threads} CPU threads")


def check_tools(config: Config) -> list[Finding]:
    findings = []
    for tool, purpose in OPTIONAL_TOOLS.items():
        path = shutil.which(tool)
        findings.append(
            Finding(OK, tool, path) if path else Finding(WARN, tool, f"not found (for {purpose})")
        )
    findings.append(check_corpus_tools())
    for package, purpose in {"gradio": "the web UI", "diffusers": "diffusion engines"}.items():
        present = importlib.util.find_spec(package) is not None
        findings.append(
            Finding(
                OK if present else WARN,
                package,
                "installed" if present else f"not installed (for {purpose})",
            )
        )
    return findings


def check_corpus_tools() -> Finding:
    """What ``rig data demo`` needs: fluidsynth, the FluidR3 GM font and sonic-pi-samples."""
    from rig.train.demo import MATERIALS, DemoError
    from rig.train.demo import check_tools as check_demo_tools

    try:
        check_demo_tools(MATERIALS)
    except DemoError as error:
        return Finding(WARN, "demo corpus", str(error))
    return Finding(OK, "demo corpus", "fluidsynth, FluidR3_GM and sonic-pi-samples installed")


def check_ui_port(config: Config) -> Finding:
    where = f"{config.ui.host}:{config.ui.port}"
    with socket.socket() as sock:
        try:
            sock.bind((config.ui.host, config.ui.port))
        except OSError as error:
            return Finding(
                FAIL,
                "web UI",
                f"cannot serve on {where}: {error.strerror} "
                "(another rig running? set ui.port / RIG_UI_PORT)",
            )
    return Finding(OK, "web UI", f"http://{where}/ and /stage are free to serve")


def check_diffusion(config: Config) -> list[Finding]:
    """Where the diffusion engines' weights are (a local folder or the hub cache), or what to do."""
    from rig.engines.diffusion import NAMES, is_local

    findings = []
    for kind, name in NAMES.items():
        model = getattr(config.diffusion, f"{kind}_model")
        setting = f"diffusion.{kind}_model"
        if is_local(model):
            folder = Path(model).expanduser()
            ok = (folder / "model_index.json").is_file()
            detail = (
                f"{name}: local folder {folder}"
                if ok
                else f"{name}: {folder} has no model_index.json — put the diffusers folder "
                f"there or set {setting}"
            )
        else:
            from huggingface_hub import try_to_load_from_cache

            ok = isinstance(try_to_load_from_cache(model, "model_index.json"), str)
            detail = (
                f"{name}: {model} is in the hub cache"
                if ok
                else f"{name}: {model} is not downloaded (huggingface-cli login, accept its "
                f"licence, huggingface-cli download {model}) or set {setting} to a folder"
            )
        findings.append(Finding(OK if ok else WARN, kind, detail))
    return findings


def check_midi(config: Config) -> Finding:
    from rig.midi import MidiError, MidiMapping

    mapping = None
    if config.midi.mapping.is_file():
        try:
            mapping = MidiMapping.load(config.midi.mapping)
        except MidiError as error:
            return Finding(WARN, "midi", str(error))
    wanted = config.midi.port or (mapping.port if mapping else "")
    try:
        import mido

        ports = mido.get_input_names()
    except Exception as error:  # rtmidi raises its own error types
        return Finding(
            WARN,
            "midi",
            f"no MIDI system here ({error})" + (f"; {wanted!r} cannot be opened" if wanted else ""),
        )
    listed = ", ".join(repr(p) for p in ports) or "none"
    if wanted and not any(wanted in p for p in ports):
        return Finding(WARN, "midi", f"port {wanted!r} not found; inputs: {listed}")
    mapped = f"mapping {config.midi.mapping}" if mapping else "no mapping file"
    return Finding(OK, "midi", f"{mapped}; inputs: {listed}")


CHECKS: list[Callable[[Config], Finding]] = [
    check_python,
    check_takes,
    check_listen_port,
    check_device,
    check_models,
    check_engines,
    check_torch,
    check_ui_port,
    check_midi,
]


def run_doctor(config: Config) -> int:
    """Print every finding; return 1 if any check failed, else 0."""
    findings = [check(config) for check in CHECKS] + check_diffusion(config) + check_tools(config)
    for finding in findings:
        print(f"{finding.status:>4}  {finding.what:<12} {finding.detail}")
    failed = [f for f in findings if f.status == FAIL]
    print(f"{len(failed)} problem(s)" if failed else "no problems found")
    return 1 if failed else 0
