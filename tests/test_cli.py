"""The ``rig`` command as a performer runs it: loop, generate, doctor, bench, perform."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
from conftest import free_udp_port, step_p95, wrap_jump
from tiny_models import write_tiny_model

from rig import cli
from rig.bench import bench_train
from rig.config import Config
from rig.engines import base
from rig.loops import loop_length
from rig.testing.signals import drum_signal
from rig.testing.standin import StandInDevice

RIG = [sys.executable, "-m", "rig"]


def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    return subprocess.run(
        [*RIG, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=300,
    )


@pytest.mark.parametrize("fmt", ["WAV", "FLAC", "OGG"])
def test_rig_loop_on_audio_files(tmp_path: Path, fmt: str) -> None:
    source = tmp_path / f"in.{fmt.lower()}"
    soundfile.write(source, drum_signal(3.3, 48000).T, 48000, format=fmt)
    out = run("loop", str(source), "--bpm", "107", "--bars", "2", "-o", str(tmp_path / "o.wav"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == str(tmp_path / "o.wav")
    audio, rate = soundfile.read(tmp_path / "o.wav", always_2d=True)
    assert (rate, audio.shape) == (44100, (loop_length(107, 2, 4, 44100), 2))
    assert (wrap_jump(audio.T) <= step_p95(audio.T)).all()


def test_rig_loop_refuses_bad_input_and_writes_nothing(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunk")
    out = run("loop", str(corrupt), "--bpm", "120", "--bars", "2")
    assert out.returncode == 1
    assert "not a readable audio file" in out.stderr
    nan = tmp_path / "nan.wav"
    audio = drum_signal(2.0, 44100)
    audio[0, 100] = np.nan
    soundfile.write(nan, audio.T, 44100, subtype="FLOAT")
    out = run("loop", str(nan), "--bpm", "120", "--bars", "1")
    assert out.returncode == 1 and "1 NaN or infinite" in out.stderr
    out = run("loop", str(tmp_path / "missing.wav"), "--bpm", "120", "--bars", "1")
    assert out.returncode == 1 and "no such file" in out.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corrupt.wav", "nan.wav"]


def test_generate_without_models_says_so(tmp_path: Path) -> None:
    out = run("generate", "dark pad", "--no-send", "--takes", str(tmp_path), cwd=tmp_path)
    assert out.returncode == 1
    assert "the gan engine found no loadable loop model in models" in out.stderr
    assert "Traceback" not in out.stderr


def test_generate_with_a_gan_model_folder(tmp_path: Path) -> None:
    folder = write_tiny_model(tmp_path / "elsewhere" / "drums", name="drums")
    out = run(
        "generate",
        "very complex drums, Tempo: 125, Bars: 1",
        "--engine",
        "gan",
        "--model",
        str(folder),
        "--seed",
        "9",
        "--set",
        "variation=0",
        "--set",
        "gan.truncation=1.2",
        "--no-send",
        "--takes",
        str(tmp_path / "takes"),
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    wav = Path(out.stdout.strip().splitlines()[-1])
    assert soundfile.info(wav).frames == loop_length(125, 1, 4, 44100)
    sidecar = json.loads(wav.with_suffix(".json").read_text())
    info = sidecar["engine_info"]
    assert info["model"] == "drums" and info["directions"] == {"complexity": 3.0}
    assert sidecar["recipe"]["controls"] == {"variation": 0.0, "truncation": 1.2}


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["variation=2"], "variation = '2' is outside 0 to 1"),
        (["variation=nan"], "variation = 'nan' is outside 0 to 1"),
        (["variation=loud"], "variation must be a number, got 'loud'"),
        (["wobble=1"], "unknown control(s) wobble; known: "),
        (["variation"], "--set 'variation': write NAME=VALUE"),
        (["sao.guidance=2"], "--set 'sao.guidance=2': sao.guidance is not a control of gan"),
    ],
)
def test_set_names_the_control_and_its_range(
    config: Config, items: list[str], message: str
) -> None:
    from rig.generate import control_settings
    from rig.params import ParamError

    with pytest.raises(ParamError) as caught:
        control_settings(items, "gan", config)
    assert message in str(caught.value)
    assert control_settings(["gan.morph=1", "spread=0"], "gan", config) == {
        "morph": 1.0,
        "spread": 0.0,
    }


def test_generate_end_to_end(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setitem(base.ENGINES, "word", "fake_engines:WORD")
    with StandInDevice(rig_port=free_udp_port()) as device:
        code = cli.main(
            [
                "generate",
                "dusty loop, Tempo: 90, Bars: 1",
                "--engine",
                "word",
                "--seed",
                "3",
                "--slot",
                "2",
                "--takes",
                str(tmp_path),
                "--osc-port",
                str(device.port),
                "--listen-port",
                str(device.rig_port),
            ]
        )
        captured = capsys.readouterr()
        assert code == 0, captured.err
        wav = Path(captured.out.strip().splitlines()[-1])
        assert wav.is_file() and wav.parent.parent == tmp_path.resolve()
        assert soundfile.info(wav).frames == loop_length(90, 1, 4, 44100)
        (args,) = device.wait_for("/rig/load")
        assert args[:4] == (2, str(wav), 90.0, 1)
        assert "loaded take" in captured.err
        assert json.loads(wav.with_suffix(".json").read_text())["recipe"]["seed"] == 3


def test_bad_prompt_is_one_clear_line(tmp_path: Path) -> None:
    out = run("generate", "pad, Tempo: 500", "--takes", str(tmp_path))
    assert out.returncode == 1
    assert (
        out.stderr.strip()
        == "rig: error: Tempo: '500' is not valid; accepted: a tempo of 40-240 BPM"
    )
    verbose = run("-v", "generate", "pad, Tempo: 500", "--takes", str(tmp_path))
    assert "Traceback (most recent call last)" in verbose.stderr and "PromptError" in verbose.stderr
    assert verbose.stderr.strip().endswith("accepted: a tempo of 40-240 BPM")


def test_doctor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {
        "RIG_TAKES": str(tmp_path / "takes"),
        "RIG_LISTEN_PORT": str(free_udp_port()),
        "RIG_OSC_PORT": str(free_udp_port()),
        "HF_HOME": str(tmp_path / "hf"),  # an empty hub cache
    }
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        env["RIG_UI_PORT"] = str(probe.getsockname()[1])
    out = run("doctor", env=env, cwd=tmp_path)  # the console command once, in its own process
    assert out.returncode == 0, out.stdout
    assert "take folder" in out.stdout and "torch" in out.stdout
    assert "web UI" in out.stdout and "midi" in out.stdout
    assert (
        "Stable Audio Open 1.0: stabilityai/stable-audio-open-1.0 is not downloaded" in out.stdout
    )
    monkeypatch.chdir(tmp_path)  # the failures in this process: no second start-up
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with socket.socket() as busy:  # another rig already serves the UI port: a real problem
        busy.bind(("127.0.0.1", int(env["RIG_UI_PORT"])))
        busy.listen()
        assert cli.main(["doctor"]) == 1
    assert "FAIL  web UI" in capsys.readouterr().out
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("RIG_TAKES", str(blocker / "takes"))
    assert cli.main(["doctor"]) == 1
    assert "FAIL  take folder" in capsys.readouterr().out


def test_bench_json(tmp_path: Path) -> None:
    out = run("bench", "loops", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures["loop_tools_ms"] > 0 and figures["osc_rtt_ms"] > 0
    assert figures["osc_lost"] == 0


def test_bench_gan_json(tmp_path: Path) -> None:
    out = run("bench", "gan", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    for name in (
        "realtime_factor",
        "seconds_per_loop",
        "peak_rss_mb",
        "synthesis_ms",
        "vocoder_ms",
        "mix_ms",
        "tiny_realtime_factor",
        "plain_melgan_vocoder_ms",
    ):
        assert figures[name] > 0, name  # figures are printed, never compared in a test
    assert figures["generator_mparams"] > figures["tiny_generator_mparams"]


def test_bench_train_figures(config: Config) -> None:
    figures = bench_train(config, repeats=1)  # in-process: the CLI path is tested by bench gan
    for name in (
        "stylegan2_step_s",
        "stylegan2_r1_step_s",
        "vocoder_step_s",
        "vocoder_adversarial_step_s",
    ):
        assert figures[name] > 0, name  # figures are printed, never compared in a test


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_perform_starts_says_what_is_missing_and_stops_cleanly(tmp_path: Path, stop) -> None:
    port = free_udp_port()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        ui_port = probe.getsockname()[1]
    env = {
        **os.environ,
        "RIG_TAKES": str(tmp_path / "takes"),
        "RIG_LISTEN_PORT": str(port),
        "RIG_OSC_PORT": str(free_udp_port()),
        "RIG_UI_PORT": str(ui_port),
    }
    proc = subprocess.Popen(
        [*RIG, "perform"],
        env=env,
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as in a terminal
    )
    lines = []
    assert proc.stderr is not None
    for line in proc.stderr:
        lines.append(line)
        if "Ctrl-C stops the rig" in line:
            break
    text = "".join(lines)
    assert f"listening on UDP {port}" in text
    assert "missing: no loop models in models" in text
    assert f"performer page: http://127.0.0.1:{ui_port}/" in text
    assert f"stage view (projector): http://127.0.0.1:{ui_port}/stage" in text
    time.sleep(3.0)  # the worker process is up and warming
    os.killpg(proc.pid, stop)  # Ctrl-C (or a SIGTERM) reaches the whole group
    assert proc.wait(timeout=20) == 0
    rest = proc.stderr.read()
    assert "rig perform: stopping" in rest
    assert "Traceback" not in rest
    assert "restart" not in rest and "died" not in rest  # the worker is stopped, not mourned
    assert not group_alive(proc.pid, within=5.0)  # no orphan worker or helper is left
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("0.0.0.0", port))  # the port was released
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ui_port))  # and the web UI's


def group_alive(pgid: int, within: float) -> bool:
    """True if processes of group ``pgid`` still exist after ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        time.sleep(0.1)
    return True
