"""``rig eval MODEL --report DIR``: a listening page, so a person hears a model before it ships.

``DIR/index.html`` with ``audio/*.wav`` (16-bit, at the vocoder's rate) and ``img/*.png``
(full-band mel spectrograms, 128 bands up to the Nyquist frequency, all on one scale so that
brightness compares across the page):
- held-out loops next to their reconstructions: the vocoder as the engine runs it, the network
  alone, and Griffin-Lim;
- for a loop model, loops from random latents, and the first of them re-timed to other tempos
  (the engine's tempo-true rendering);
- with ``--recorded``, the same reconstructions of recorded loops no training set holds;
- the metrics the folder's config holds.

Self-contained: plain HTML and relative links; open it from disk or serve the folder.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile
import torch

from rig.latents import measurement_latents
from rig.pictures import mel_image
from rig.release import read_config
from rig.synthesis import synthesize, vocode_loops
from rig.train.gan import griffin_lim
from rig.train.vocoder import full_band_mel, log_mel_frames

if TYPE_CHECKING:
    from rig.train.evaluate import Subject

SHOWN = 4  # loops per row set
GENERATED = 8
OTHER_TEMPOS = (90.0, 140.0)
GRIFFIN_LIM_ITERATIONS = 64
RANGE_NATS = 11.0  # the pictures show this far below the page's loudest band (~96 dB)


@dataclass
class Clip:
    """One player on the page: ``audio`` ``[samples]`` at the page's rate."""

    name: str
    caption: str
    audio: torch.Tensor


def write_report(
    out: Path,
    folder: Path,
    subject: Subject,
    heldout: torch.Tensor | None,
    recorded: torch.Tensor | None,
    seed: int = 0,
) -> Path:
    """Write the page for the model or vocoder in ``folder`` into ``out``; returns the page.

    ``heldout`` and ``recorded``: ``[N, samples]`` real audio at ``subject.rate`` (or None)."""
    rows: list[tuple[str, list[list[Clip]]]] = []
    with torch.no_grad():
        if heldout is not None:
            rows.append(("Held-out loops", _reconstructions("heldout", heldout, subject)))
        if subject.model is not None:
            rows.append(("Generated loops", _generated(subject, seed)))
        if recorded is not None:
            picked = recorded[:: max(1, len(recorded) // SHOWN)][:SHOWN]
            rows.append(("Recorded loops", _reconstructions("recorded", picked, subject)))
    clips = [clip for _, table in rows for row in table for clip in row]
    _write_media(out, clips, subject.rate)
    page = out / "index.html"
    page.write_text(_html(folder, rows, subject.rate), encoding="utf-8")
    return page


def _reconstructions(name: str, real: torch.Tensor, subject: Subject) -> list[list[Clip]]:
    """Rows of [real, vocoder, network alone, Griffin-Lim] for the first :data:`SHOWN` loops."""
    real = real[:SHOWN]
    mel = log_mel_frames(subject.front, real)
    made = {
        "vocoder (as the engine runs it)": vocode_loops(subject.vocoder, subject.front, mel),
        "network alone": vocode_loops(subject.vocoder, subject.front, mel, match_iterations=0),
        "Griffin-Lim": griffin_lim(mel, subject.front, GRIFFIN_LIM_ITERATIONS),
    }
    rows = []
    for i, loop in enumerate(real):
        row = [Clip(f"{name}-{i}-real", "real", loop)]
        row += [
            Clip(f"{name}-{i}-{n}", caption, audio[i])
            for n, (caption, audio) in enumerate(made.items())
        ]
        rows.append(row)
    return rows


def _generated(subject: Subject, seed: int) -> list[list[Clip]]:
    """Loops from :data:`GENERATED` random latents (ψ = 1), four to a row, and the first latent
    at :data:`OTHER_TEMPOS`."""
    model = subject.model
    assert model is not None
    z = measurement_latents(model.generator.cfg.z_dim, GENERATED, seed)
    ws = model.generator.mapping(z)
    loops = synthesize(model, ws)
    clips = [Clip(f"generated-{i}", f"latent {i}", loop) for i, loop in enumerate(loops)]
    rows = [clips[i : i + SHOWN] for i in range(0, len(clips), SHOWN)]
    tempos = [Clip("generated-0-model", f"latent 0 at {model.audio.bpm:g} BPM", loops[0])]
    for bpm in OTHER_TEMPOS:
        timed = synthesize(model, ws[:1], bpm=bpm)[0]
        tempos.append(Clip(f"generated-0-{bpm:g}", f"latent 0 at {bpm:g} BPM", timed))
    return [*rows, tempos]


def _write_media(out: Path, clips: list[Clip], rate: int) -> None:
    """``audio/NAME.wav`` and ``img/NAME.png`` for every clip; pictures on one scale."""
    (out / "audio").mkdir(parents=True, exist_ok=True)
    (out / "img").mkdir(exist_ok=True)
    front = full_band_mel(rate)
    mels = [front(clip.audio[None].float())[0].numpy() for clip in clips]
    high = max(float(m.max()) for m in mels)
    for clip, mel in zip(clips, mels, strict=True):
        audio = clip.audio.numpy().astype(np.float32)
        audio = audio / max(1.0, float(np.abs(audio).max()))
        soundfile.write(out / "audio" / f"{clip.name}.wav", audio, rate, subtype="PCM_16")
        picture = mel_image(mel, 320, 128, (high - RANGE_NATS, high))
        picture.save(out / "img" / f"{clip.name}.png")


def _html(folder: Path, rows: list[tuple[str, list[list[Clip]]]], rate: int) -> str:
    config = read_config(folder)
    title = f"rig listening report: {config.get('name', folder.name)}"
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;background:#111;color:#eee;margin:2em}"
        "table{border-collapse:collapse}td{padding:6px;vertical-align:top}"
        "figure{margin:0}img{display:block}figcaption{font-size:13px;margin:2px 0}"
        "audio{width:320px}.m td{border-bottom:1px solid #333;font-size:13px}</style>",
        "</head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{rate} Hz audio; spectrograms: 128 mel bands up to {rate // 2000} kHz, one scale "
        "for the whole page (brighter is louder).</p>",
    ]
    for heading, table in rows:
        parts += [f"<h2>{html.escape(heading)}</h2>", "<table>"]
        for row in table:
            parts.append("<tr>" + "".join(f"<td>{_figure(clip)}</td>" for clip in row) + "</tr>")
        parts.append("</table>")
    metrics = config.get("metrics", {})
    if metrics:
        parts += ["<h2>Metrics (rig eval)</h2>", '<table class="m">']
        parts += [
            f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
            for k, v in metrics.items()
        ]
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _figure(clip: Clip) -> str:
    name = html.escape(clip.name)
    return (
        f"<figure><figcaption>{html.escape(clip.caption)}</figcaption>"
        f'<img src="img/{name}.png" width="320" height="128" alt="{name}">'
        f'<audio controls preload="none" src="audio/{name}.wav"></audio></figure>'
    )
