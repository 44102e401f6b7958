"""Pictures and HTML for the UI: spectrogram and waveform images of a take, the slot grid, the
stage view. Pure functions of their inputs (numpy + Pillow), cached per take file."""

from __future__ import annotations

import base64
import functools
import html
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile
from PIL import Image, ImageDraw

from rig.evolve import Evolution
from rig.link import LinkState
from rig.pictures import PALETTE, mel_image
from rig.session import Job
from rig.takes import Take


def _mono(path: Path) -> tuple[np.ndarray, int]:
    audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    return audio.mean(axis=1), rate


@functools.lru_cache(maxsize=64)
def spectrogram_image(path: Path, width: int = 640, height: int = 200) -> Image.Image:
    """Log-magnitude spectrogram (0-11 kHz, 80 dB range) of a WAV as a ``width × height`` image."""
    mono, rate = _mono(path)
    n_fft, hop = 1024, 256
    if mono.size < n_fft:
        mono = np.pad(mono, (0, n_fft - mono.size))
    frames = np.lib.stride_tricks.sliding_window_view(mono, n_fft)[::hop] * np.hanning(n_fft)
    magnitude = np.abs(np.fft.rfft(frames, axis=1)).T  # [bins, frames]
    top = max(1, int(11025 / (rate / 2) * magnitude.shape[0]))
    db = 20 * np.log10(magnitude[:top] + 1e-9)
    level = np.clip((db - (db.max() - 80.0)) / 80.0, 0.0, 1.0)
    pixels = PALETTE[(level[::-1] * 255).astype(np.uint8)]
    return Image.fromarray(pixels).resize((width, height), Image.Resampling.BILINEAR)


def take_spectrogram(take: Take, width: int = 640, height: int = 200) -> Image.Image:
    """The engine's own spectrogram of a take when it made one, else one computed from the WAV."""
    if take.spectrogram is not None:
        return mel_image(take.spectrogram, width, height)
    return spectrogram_image(take.wav, width, height)


QUAD_LANES = ("FL", "FR", "RL", "RR")
LANE_COLOURS = ((251, 136, 97), (224, 96, 154), (127, 212, 255), (123, 224, 106))


@functools.lru_cache(maxsize=64)
def waveform_image(path: Path, width: int = 640, height: int = 120) -> Image.Image:
    """Min/max envelope of a WAV, one column per pixel, as a ``width × height`` image: the
    channels' mean, or for a quad take one labelled lane per channel (FL, FR, RL, RR)."""
    audio, _ = soundfile.read(str(path), dtype="float32", always_2d=True)
    lanes = audio.T if audio.shape[1] == 4 else audio.mean(axis=1)[None]
    picture = np.zeros((height, width, 3), dtype=np.uint8)
    lane_height = height // len(lanes)
    for index, lane in enumerate(lanes):
        top = index * lane_height
        _envelope(picture[top : top + lane_height], lane, LANE_COLOURS[index])
    image = Image.fromarray(picture)
    if len(lanes) == 4:
        draw = ImageDraw.Draw(image)
        for index, label in enumerate(QUAD_LANES):
            draw.text((4, index * lane_height + 1), label, fill=(255, 255, 255))
    return image


def _envelope(lane: np.ndarray, samples: np.ndarray, colour: tuple[int, int, int]) -> None:
    """Draw ``samples``' min/max envelope into the ``[h, w, 3]`` pixels of ``lane``."""
    height, width = lane.shape[:2]
    middle = height / 2
    for x, chunk in enumerate(np.array_split(samples, width)):
        if chunk.size:
            top = int(middle - chunk.max() * middle * 0.95)
            bottom = int(middle - chunk.min() * middle * 0.95)
            lane[max(0, top) : min(height, bottom + 1), x] = colour


def slot_grid(state: LinkState, slots: int = 8) -> str:
    """The device's slots as an HTML table: number, take, status, playing."""
    rows = []
    for number in range(1, slots + 1):
        slot = state.slots.get(number)
        take = html.escape(slot.take_id or "—") if slot else "—"
        status = html.escape(slot.status) if slot else "empty"
        if slot and slot.error:
            status += f": {html.escape(slot.error)}"
        playing = "▶" if slot and slot.playing else ""
        rows.append(f"<tr><td>{number}</td><td>{playing}</td><td>{take}</td><td>{status}</td></tr>")
    device = (
        f"device {html.escape(state.device_version)}"
        if state.device_version
        else "no device heard yet"
    )
    tempo = f"{state.tempo:g} BPM" if state.tempo else "tempo: —"
    return (
        f'<div class="rig-slots"><p>{device} · Live {tempo}</p><table>'
        "<tr><th>slot</th><th></th><th>take</th><th>status</th></tr>"
        + "".join(rows)
        + "</table></div>"
    )


def progress_text(job: Job | None) -> str:
    """One line about the current job: queued, step k of N, done, failed."""
    if job is None:
        return "ready"
    if job.status == "running":
        step = f"step {job.step} of {job.total}" if job.total else "starting"
        return f"generating #{job.request.id} — {step}" + (f": {job.note}" if job.note else "")
    if job.status == "failed":
        return f"#{job.request.id} failed: {job.error}"
    return f"#{job.request.id} {job.status}"


def data_url(image: Image.Image) -> str:
    """A PNG as a ``data:`` URL for an ``<img>``."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


_PICTURES: dict[str, str] = {}  # take id → its <img> tags (the stage redraws twice a second)


def take_pictures(take: Take) -> str:
    """Spectrogram and waveform of a take as two ``<img>`` tags (cached per take)."""
    if take.id not in _PICTURES:
        if len(_PICTURES) > 16:
            _PICTURES.clear()
        spectrogram = data_url(take_spectrogram(take, 960, 260))
        waveform = data_url(waveform_image(take.wav, 960, 110 if take.loop.channels == 2 else 200))
        _PICTURES[take.id] = (
            f'<img id="stage-spectrogram" src="{spectrogram}" alt="spectrogram">'
            f'<img id="stage-waveform" src="{waveform}" alt="waveform">'
        )
    return _PICTURES[take.id]


def evolving_html(evolutions: Sequence[Evolution]) -> str:
    """One line per evolving slot: how often, where its latent is going, the next swap."""
    lines = []
    for e in evolutions:
        when = f"next at bar {e.swap_bar}" if e.swap_bar is not None else "waiting for Live to play"
        late = f" · {e.late} late" if e.late else ""
        lines.append(f"slot {e.slot} evolves every {e.every} bar{'s' if e.every > 1 else ''} · "
                     f"{html.escape(e.heading())} · {when}{late}")  # fmt: skip
    return f'<div id="stage-evolving">{"<br>".join(lines)}</div>'


def stage_html(
    prompt: str,
    progress: str,
    about: str,
    state: LinkState,
    take: Take | None,
    evolutions: Sequence[Evolution] = (),
) -> str:
    """The projector page: large, high-contrast, no controls."""
    pictures = take_pictures(take) if take is not None else ""
    return (
        '<div id="stage">'
        f'<div id="stage-prompt">{html.escape(prompt) or "…"}</div>'
        f'<div id="stage-progress">{html.escape(progress)}</div>'
        f'<div id="stage-about">{html.escape(about)}</div>'
        f'<div id="stage-pictures">{pictures}</div>'
        f"{evolving_html(evolutions)}{slot_grid(state)}</div>"
    )


STAGE_CSS = """
body, .gradio-container, .main, .wrap, .prose { background: #000 !important; }
#stage, #stage * { font-family: Helvetica, Arial, sans-serif; color: #fff !important; }
#stage-prompt { font-size: 4.4vw; font-weight: 700; line-height: 1.12; margin: .6vw 0; }
#stage-progress, #stage-progress * { font-size: 2.4vw; color: #fb8861 !important; }
#stage-about, #stage-about * { font-size: 1.8vw; color: #e0609a !important; margin-bottom: .6vw; }
#stage-evolving, #stage-evolving * { font-size: 1.6vw; color: #7fd4ff !important; }
#stage-pictures { display: flex; gap: 1vw; }
#stage-pictures img { flex: 1 1 0; min-width: 0; height: 13vw; object-fit: fill; }
#stage table { font-size: 1.5vw; border-collapse: collapse; width: 100%; margin-top: .6vw; }
#stage td, #stage th { padding: .15vw 1vw; border: none; border-bottom: 1px solid #444; }
#stage .rig-slots p { font-size: 1.4vw; }
footer { display: none !important; }
"""
