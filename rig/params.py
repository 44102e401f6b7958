"""The one parameter schema shared by UI sliders, MIDI CCs and OSC messages.

A :class:`Param` names a control, its range, default and the curve that maps a controller's 0..1
position onto the range. Requests carry plain ``{name: value}``; :func:`check_controls` validates
them against a schema with errors that name the parameter and its range.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

CURVES = ("linear", "square")
# The GAN engine's truncation ψ until the performer moves it; ``rig eval`` measures there too.
TRUNCATION = 0.8


class ParamError(ValueError):
    """A control value is unknown, not a number or out of its range."""


@dataclass(frozen=True)
class Param:
    """One named, bounded control."""

    name: str
    low: float
    high: float
    default: float
    curve: str = "linear"  # "linear", or "square" for finer control near ``low``
    doc: str = ""

    def __post_init__(self) -> None:
        if not self.low <= self.default <= self.high or self.curve not in CURVES:
            raise ValueError(f"bad parameter {self!r}")

    def clamp(self, value: float) -> float:
        """``value`` limited to [low, high].

        Raises:
            ParamError: not a finite number (NaN, infinity, a bool or text).
        """
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ParamError(
                f"{self.name}: {value!r:.40} is not a number in {self.low}-{self.high}"
            )
        return min(self.high, max(self.low, float(value)))

    def from_unit(self, position: float) -> float:
        """A controller position in [0, 1] (a CC value / 127) → a value in range."""
        position = min(1.0, max(0.0, float(position)))
        if self.curve == "square":
            position = position * position
        return self.low + position * (self.high - self.low)

    def to_unit(self, value: float) -> float:
        """Inverse of :meth:`from_unit` (for drawing a control at a value)."""
        position = (self.clamp(value) - self.low) / ((self.high - self.low) or 1.0)
        return math.sqrt(position) if self.curve == "square" else position

    def check(self, value: object) -> float:
        """``value`` as a float in range.

        Raises:
            ParamError: not a finite number, or outside [low, high].
        """
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ParamError(f"{self.name} must be a number, got {value!r}") from None
        if not math.isfinite(number) or not self.low <= number <= self.high:
            raise ParamError(f"{self.name} = {value!r} is outside {self.low:g} to {self.high:g}")
        return number


def check_controls(schema: Iterable[Param], controls: Mapping[str, object]) -> dict[str, float]:
    """Validate ``controls`` against ``schema``; missing names take their defaults.

    Raises:
        ParamError: an unknown name (the known ones are listed) or a bad value.
    """
    params = {p.name: p for p in schema}
    unknown = sorted(set(controls) - set(params))
    if unknown:
        raise ParamError(
            f"unknown control(s) {', '.join(unknown)}; known: {', '.join(sorted(params))}"
        )
    return {
        name: p.check(controls[name]) if name in controls else p.default
        for name, p in params.items()
    }
