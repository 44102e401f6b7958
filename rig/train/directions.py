"""``rig train directions MODEL``: named and principal directions in a loop model's w space.

- Principal directions (GANSpace, Härkönen et al. 2020): PCA of w over ``samples`` mapped latents;
  the top ``components`` become ``pc1 …`` with a range of ±2 standard deviations along each.
- Named directions: loops are generated for the same latents and measured (onset density →
  ``complexity``, energy below 150 Hz → ``bass``, spectral centroid → ``brightness``,
  :mod:`rig.train.features`); a ridge regression of each feature on w, its strength chosen by
  leave-one-out cross-validation, gives its direction, with a range of ±2 standard deviations of
  w along it.
- Every direction is then checked on fresh latents: the loops are rendered at five amounts across
  the range and the feature is measured at each; the mean change from the low to the high end and
  the share of latents on which it rises are stored with the direction (``config.json``), so a
  card can say whether "brightness" really brightens.

The model folder's ``directions.safetensors`` and the ``directions`` section of its ``config.json``
are replaced; everything else is left as it is.

``--check`` keeps the stored directions and checks them again, as the model now plays (after it
was moved to another vocoder, say), on the latents a fit of ``samples`` would check them on: a
performer's knobs keep doing what they did, and the card says how well they still do it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rig.latents import measurement_latents
from rig.loop_model import DIRECTIONS_FILE, LoopModel, load_loop_model
from rig.release import update_config, write_tensors
from rig.train.card import refresh_card
from rig.train.features import NAMED_FEATURES
from rig.train.run import TrainError

Renderer = Callable[[torch.Tensor], np.ndarray]  # [B, w_dim] → [B, samples] mono audio
Feature = Callable[[np.ndarray, int], float]
RANGE_SIGMAS = 2.0
CHECK_LATENTS = 96  # a share of 24 had a standard error of 9 points at 75 %: too coarse
# for issue #16's bar (organic's complexity: 67 % of 24, 74 % of 96, the same vector)
CHECK_AMOUNTS = 5
RIDGE_GRID = np.logspace(-4.0, 2.0, 25)  # ridge strengths, × mean squared singular value of w


@dataclass
class FittedDirection:
    """A unit direction in w, its suggested range, and what moving along it did."""

    vector: torch.Tensor  # [w_dim], unit length
    low: float
    high: float
    description: str
    feature: str = ""  # the feature checked along it ("" for principal directions)
    change: float = 0.0  # mean feature change from low to high
    rises: float = 0.0  # share of checked latents whose feature rose from low to high
    checked: int = 0  # how many latents the check moved


def principal_directions(ws: torch.Tensor, count: int) -> list[tuple[torch.Tensor, float, float]]:
    """Top ``count`` principal axes of ``[N, w_dim]`` latents: (unit vector, std along it,
    share of the variance)."""
    centred = ws - ws.mean(dim=0)
    _, singular, vh = torch.linalg.svd(centred, full_matrices=False)
    variance = singular**2 / max(1, len(ws) - 1)
    share = variance / variance.sum()
    return [
        (vh[i] / vh[i].norm(), float(variance[i].sqrt()), float(share[i]))
        for i in range(min(count, len(vh)))
    ]


def ridge_errors(
    x: torch.Tensor, y: torch.Tensor, ridges: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-out squared error of ridge regressions of ``y`` ``[N]`` on centred ``x``
    ``[N, D]``, one per strength in ``ridges``: (mean ``[R]``, its standard error ``[R]``).

    Closed form from one SVD: the held-out residual is ``r_i / (1 − H_ii)`` with the hat matrix
    ``H = U diag(s² / (s² + λ)) Uᵀ`` (Hastie, Tibshirani & Friedman, ESL 2nd ed., §7.10)."""
    u, s, _ = torch.linalg.svd(x, full_matrices=False)
    uty = u.T @ y
    means, errors = [], []
    for ridge in ridges:
        shrink = s**2 / (s**2 + float(ridge))
        hat = (u**2 * shrink).sum(dim=1)
        held_out = (y - u @ (shrink * uty)) / (1 - hat).clamp_min(1e-9)
        squared = held_out**2
        means.append(float(squared.mean()))
        errors.append(float(squared.std()) / np.sqrt(len(y)))
    return np.array(means), np.array(errors)


def choose_ridge(x: torch.Tensor, y: torch.Tensor) -> float:
    """The ridge strength for regressing ``y`` ``[N]`` on centred ``x`` ``[N, D]``: the strongest
    on :data:`RIDGE_GRID` (scaled by the mean of ``x``'s squared singular values) whose
    leave-one-out error is within one standard error of the best — ESL's "one-standard-error
    rule" (§7.10).

    A noisy feature on a few hundred latents otherwise gives a direction dominated by noise in
    w's low-variance axes, along which the ±2 σ range is short and the sound barely moves."""
    scale = float((x**2).sum()) / min(x.shape)  # mean squared singular value
    ridges = RIDGE_GRID * scale
    means, errors = ridge_errors(x, y, ridges)
    best = int(np.argmin(means))
    within = np.flatnonzero(means <= means[best] + errors[best])
    return float(ridges[within.max()])


def regression_direction(ws: torch.Tensor, values: np.ndarray) -> torch.Tensor:
    """The unit direction in w ``[N, w_dim]`` along which ``values`` ``[N]`` grow: ridge
    regression on centred w with the strength from :func:`choose_ridge`."""
    x = (ws - ws.mean(dim=0)).double()
    y = torch.from_numpy(np.asarray(values, dtype=np.float64))
    y = (y - y.mean()) / (y.std() + 1e-12)
    ridge = choose_ridge(x, y)
    eye = torch.eye(x.shape[1], dtype=torch.float64)
    beta = torch.linalg.solve(x.T @ x + ridge * eye, x.T @ y)
    return (beta / (beta.norm() + 1e-12)).float()


def measure(render: Renderer, ws: torch.Tensor, feature: Feature, rate: int) -> np.ndarray:
    """``feature`` of the loop rendered for each of ``[N, w_dim]`` latents → ``[N]``."""
    audio = render(ws)
    return np.array([feature(loop, rate) for loop in audio])


def check_direction(
    render: Renderer,
    ws: torch.Tensor,
    direction: FittedDirection,
    feature: Feature,
    rate: int,
) -> tuple[float, float]:
    """Move each of ``[N, w_dim]`` latents across the direction's range; returns (mean feature
    change from low to high, share of latents whose feature rose)."""
    amounts = np.linspace(direction.low, direction.high, CHECK_AMOUNTS)
    values = np.stack(
        [measure(render, ws + float(a) * direction.vector, feature, rate) for a in amounts]
    )  # [amounts, N]
    change = values[-1] - values[0]
    return float(change.mean()), float((change > 0).mean())


def checked(
    direction: FittedDirection, render: Renderer, ws: torch.Tensor, feature: Feature, rate: int
) -> FittedDirection:
    """``direction`` with the check of ``feature`` on ``[N, w_dim]`` latents recorded in it
    (:func:`check_direction`: the feature, its mean change, the share that rose, and N)."""
    direction.feature = feature.__name__
    direction.change, direction.rises = check_direction(render, ws, direction, feature, rate)
    direction.checked = len(ws)
    return direction


def fit_named(
    render: Renderer, ws: torch.Tensor, check_ws: torch.Tensor, rate: int
) -> dict[str, FittedDirection]:
    """Feature-labelled directions from ``[N, w_dim]`` latents, checked on ``check_ws``."""
    audio = render(ws)
    fitted = {}
    for name, (feature, text) in NAMED_FEATURES.items():
        values = np.array([feature(loop, rate) for loop in audio])
        vector = regression_direction(ws, values)
        spread = float(((ws - ws.mean(dim=0)) @ vector).std())
        direction = FittedDirection(
            vector, -RANGE_SIGMAS * spread, RANGE_SIGMAS * spread, f"raises the {text}"
        )
        fitted[name] = checked(direction, render, check_ws, feature, rate)
    return fitted


def fit_directions(
    folder: Path, samples: int = 512, components: int = 3, seed: int = 0
) -> dict[str, str]:
    """Fit, check and store the directions of the model in ``folder``; returns one line per
    direction saying what it does."""
    model = load_loop_model(folder)
    model.directions = {}
    ws, check_ws = _latents(model, samples, seed)
    fitted = fit_named(_renderer(model), ws, check_ws, model.audio.mel.sr)
    for index, (vector, std, share) in enumerate(principal_directions(ws, components), 1):
        fitted[f"pc{index}"] = FittedDirection(
            vector,
            -RANGE_SIGMAS * std,
            RANGE_SIGMAS * std,
            f"principal component {index} of w ({100 * share:.0f} % of its variance)",
        )
    _store(folder, fitted)
    return {name: _summary(d) for name, d in fitted.items()}


def check_directions(folder: Path, samples: int = 512, seed: int = 0) -> dict[str, str]:
    """Check the named directions stored in ``folder`` again, unchanged, as the model now plays,
    on the latents :func:`fit_directions` with ``samples`` and ``seed`` checks them on; store the
    new checks. Returns one line per direction, as :func:`fit_directions` does.

    Raises:
        TrainError: the model has no directions to check.
    """
    model = load_loop_model(folder)
    if not model.directions:
        raise TrainError(f"{folder} has no directions to check: fit them first")
    _, check_ws = _latents(model, samples, seed)
    render, rate = _renderer(model), model.audio.mel.sr
    kept = {}
    for name, stored in model.directions.items():
        direction = FittedDirection(stored.vector, stored.low, stored.high, stored.description)
        if name in NAMED_FEATURES:
            direction = checked(direction, render, check_ws, NAMED_FEATURES[name][0], rate)
        kept[name] = direction
    _list(folder, kept)  # the vectors on disk stay as they are
    return {name: _summary(d) for name, d in kept.items()}


def _latents(model: LoopModel, samples: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``[samples, w_dim]`` latents a fit learns from and the ``[CHECK_LATENTS, w_dim]``
    ones after them that every check uses."""
    z = measurement_latents(model.generator.cfg.z_dim, samples + CHECK_LATENTS, seed)
    with torch.no_grad():
        all_ws = model.generator.mapping(z)
    return all_ws[:samples], all_ws[samples:]


def _renderer(model: LoopModel) -> Renderer:
    """The model's mono loops for ``[B, w_dim]`` latents, as the engine's synthesis makes them."""
    from rig.synthesis import synthesize

    @torch.no_grad()
    def render(batch: torch.Tensor) -> np.ndarray:
        return np.concatenate([synthesize(model, part).numpy() for part in batch.split(32)])

    return render


def _summary(direction: FittedDirection) -> str:
    span = f"range {direction.low:+.2f} … {direction.high:+.2f}"
    if not direction.feature:
        return f"{span}; {direction.description}"
    return (
        f"{span}; {direction.feature} changes by {direction.change:+.3g} from low to high, "
        f"rising on {100 * direction.rises:.0f} % of {direction.checked} latents"
    )


def _store(folder: Path, fitted: dict[str, FittedDirection]) -> None:
    """Replace ``directions.safetensors`` and the ``directions`` of ``config.json``; refresh the
    card."""
    write_tensors(folder, DIRECTIONS_FILE, {name: d.vector for name, d in fitted.items()})
    _list(folder, fitted)


def _list(folder: Path, fitted: dict[str, FittedDirection]) -> None:
    """Replace the ``directions`` of ``config.json`` (ranges, descriptions, checks); refresh the
    card."""
    listed = {}
    for name, d in fitted.items():
        entry: dict[str, object] = {
            "range": [round(d.low, 4), round(d.high, 4)],
            "description": d.description,
        }
        if d.feature:
            entry["check"] = {
                "feature": d.feature,
                "change": d.change,
                "rises": d.rises,
                "latents": d.checked,
            }
        listed[name] = entry
    update_config(folder, directions=listed)
    refresh_card(folder)
