"""The device's signal graph: where every bar- and beat-exact decision is made.

``[js]`` runs in Max's low-priority thread, so it only *sets* values (``sig~`` boxes named
``on-N``, ``front-N``, ``launch-N`` and per player ``len-N-P``, ``step-N-P``, ``dir-N-P``,
``flip-N-P``); the graph *latches* them with ``sah~`` at the next boundary, sample-accurately,
whatever the JS latency. Boundaries are found in the signal domain: the transport position in
quarter notes ``B`` (a ``phasor~ @lock 1`` over 2²⁰ quarter notes), divided by the bar (or the
launch quantum) and wrapped; a wrap of more than half a cycle is a boundary impulse.

Per slot::

    launch trigger = quantum impulse + click~ launch-now-N (JS: "at once", stopped or unquantised)
    swap trigger   = bar impulse     + click~ swap-now-N (JS: "at once", stopped or slot silent)
    on             = sah~(on-N, launch trigger)           the slot starts or stops on the boundary
    origin         = sah~(B, launch trigger × armed)      armed once per launch-N change
                     (armed = launch-N ≠ its value at the previous trigger, delay~ 1 sample)
    front          = sah~(front-N, swap trigger) → rampsmooth~ 20 ms → player gains 1−x, x
    gate           = on × transport moving (delta~ B ≠ 0) → rampsmooth~ 20 ms
    out            = (player a·(1−x) + player b·x) · gate · gain (line~) → lores~ (line~ cutoff)

Each player plays its loop at the take's own rate whatever Live's tempo, sliced on Live's
sixteenths like Live's Beats warp mode: two heads take turns, one per sixteenth; at the start of
its sixteenth (or at a launch) a head latches the loop position the transport asks for,
``phase = ((B − origin) mod len) / len`` (mirrored when reversed), and reads on at the take's rate
(``step`` = 1 / the take's length in seconds, times the seconds since the latch, from a free
``phasor~`` clock); the heads crossfade over 4 % of two sixteenths (10 ms at 120 BPM). So every
sixteenth starts exactly on Live's grid, and inside it the audio is the take itself: its pitch
and transients are untouched (0 cents). At the take's tempo both heads read the transport's own
position and the output is the loop, sample for sample. Reverse and speed change what the next
slice latches: a crossfade, no click. ``edge~`` reports each swap (``front N a|b``) and each
gate change (``gate N 0|1``) to JS.
"""

from __future__ import annotations

from dataclasses import dataclass

from rig.device.patcher import Patcher

QUARTERS = 2**20  # the transport phasor's span in quarter notes (≈145 h at 120 BPM)
TICKS_PER_QUARTER = 480  # Max's transport resolution
SLICE_QUARTERS = 0.25  # one sixteenth per head: two heads take turns
SLICE_FADE = 0.04  # crossfade between heads, as a fraction of two slices (10 ms at 120 BPM)
CLOCK_S = 10_000  # the free clock's period in seconds (a phasor~ at 1/CLOCK_S Hz)
FADE_SAMPLES = 882  # 20 ms at 44.1 kHz; JS resets it from dspstate~ at other rates


@dataclass(frozen=True)
class Clock:
    """Device-wide signals (box ids): the transport in quarter notes, whether it moves, the bar
    and launch boundary impulses, a free clock (a phase over CLOCK_S seconds), and per head its
    slice-start impulse and its window."""

    quarters: str
    moving: str
    bar: str
    launch: str
    seconds: str
    slice_start: tuple[str, str]
    window: tuple[str, str]


@dataclass(frozen=True)
class SlotOut:
    """A slot's stereo output boxes and its edge~ reporters."""

    left: str
    right: str


def clock(p: Patcher, x: float = 40.0, y: float = 1000.0) -> Clock:
    """The device-wide part of the graph."""
    ramp = p.obj(f"phasor~ {QUARTERS * TICKS_PER_QUARTER} ticks @lock 1", x, y)
    quarters = p.chain(ramp, p.obj(f"*~ {QUARTERS}", x, y + 30))
    moving = p.chain(quarters, p.obj("delta~", x, y + 60), p.obj("!=~ 0", x, y + 90))
    bar = _boundary(p, quarters, "barlen", x + 150, y)
    launch_raw = _boundary(p, quarters, "quant", x + 300, y)
    launch = p.obj("*~", x + 300, y + 180)
    p.connect(launch_raw, 0, launch, 0)
    p.connect(p.obj("sig~ 1", x + 380, y + 150, varname="quant-on"), 0, launch, 1)
    seconds = p.obj(f"phasor~ {1 / CLOCK_S}", x + 450, y)
    pair = p.chain(quarters, p.obj(f"/~ {2 * SLICE_QUARTERS}", x + 550, y + 30))
    heads = (
        p.chain(pair, p.obj("%~ 1", x + 550, y + 60)),
        p.chain(pair, p.obj("+~ 0.5", x + 610, y + 60), p.obj("%~ 1", x + 610, y + 90)),
    )
    starts = tuple(
        p.chain(
            h,
            p.obj("delta~", x + 550 + 60 * i, y + 120),
            p.obj("<~ -0.5", x + 550 + 60 * i, y + 150),
        )
        for i, h in enumerate(heads)
    )
    windows = tuple(_window(p, h, x + 700 + 150 * i, y) for i, h in enumerate(heads))
    return Clock(quarters, moving, bar, launch, seconds, starts, windows)  # type: ignore[arg-type]


def _window(p: Patcher, cycle: str, x: float, y: float) -> str:
    """A head's gain over its cycle of two slices: up over SLICE_FADE, 1 through its slice,
    down over SLICE_FADE into the other head's slice (the two always sum to 1)."""
    rise = p.chain(cycle, p.obj(f"*~ {1 / SLICE_FADE}", x, y + 30))
    fall = p.chain(
        cycle,
        p.obj(f"!-~ {0.5 + SLICE_FADE}", x + 70, y + 30),
        p.obj(f"*~ {1 / SLICE_FADE}", x + 70, y + 60),
    )
    lower = p.obj("minimum~", x, y + 90)
    p.connect(rise, 0, lower, 0)
    p.connect(fall, 0, lower, 1)
    return p.chain(lower, p.obj("clip~ 0 1", x, y + 120))


def _boundary(p: Patcher, quarters: str, span: str, x: float, y: float) -> str:
    """An impulse (1 for one sample) where ``quarters`` / the ``span`` sig~ wraps."""
    divide = p.obj("/~", x, y + 30)
    p.connect(quarters, 0, divide, 0)
    p.connect(p.obj("sig~ 4", x + 60, y, varname=span), 0, divide, 1)
    return p.chain(
        divide, p.obj("%~ 1", x, y + 60), p.obj("delta~", x, y + 90), p.obj("<~ -0.5", x, y + 120)
    )


def slot(p: Patcher, n: int, c: Clock, x: float, y: float) -> tuple[SlotOut, list[str]]:
    """Slot ``n``'s players, swap, launch and gate. Returns its output and the ids of the boxes
    whose messages go to JS (the edge~ reporters' message boxes)."""
    launch_now = p.obj("click~", x, y, varname=f"launch-now-{n}")
    swap_now = p.obj("click~", x + 60, y, varname=f"swap-now-{n}")
    launch_at = _sum(p, c.launch, launch_now, x, y + 30)
    swap_at = _sum(p, c.bar, swap_now, x + 60, y + 30)
    on = _latch(p, p.obj("sig~", x + 120, y, varname=f"on-{n}"), launch_at, x + 120, y + 60)
    origin, fire = _origin(p, n, c, launch_at, x + 180, y)
    since = p.obj("-~", x + 180, y + 150)
    p.connect(c.quarters, 0, since, 0)
    p.connect(origin, 0, since, 1)
    front = _latch(p, p.obj("sig~", x + 300, y, varname=f"front-{n}"), swap_at, x + 300, y + 60)
    fade = p.chain(
        front,
        p.obj(f"rampsmooth~ {FADE_SAMPLES} {FADE_SAMPLES}", x + 300, y + 90, varname=f"xf-{n}"),
    )
    fade_out = p.chain(fade, p.obj("!-~ 1", x + 300, y + 120))
    mixed: list[str] = []
    for channel in (0, 1):
        mixed.append(p.obj("+~", x + 60 * channel, y + 500))
    heads = (_head_clock(p, c, 0, fire, x + 600, y), _head_clock(p, c, 1, fire, x + 800, y))
    for index, (side, level) in enumerate((("a", fade_out), ("b", fade))):
        left, right = _player(p, n, side, c, since, heads, x + 400 * index, y + 200)
        for channel, source in enumerate((left, right)):
            scaled = p.obj("*~", x + 400 * index + 60 * channel, y + 470)
            p.connect(source, 0, scaled, 0)
            p.connect(level, 0, scaled, 1)
            p.connect(scaled, 0, mixed[channel], 0)
    gate = p.obj("*~", x + 120, y + 90)
    p.connect(on, 0, gate, 0)
    p.connect(c.moving, 0, gate, 1)
    smooth = p.chain(
        gate,
        p.obj(f"rampsmooth~ {FADE_SAMPLES} {FADE_SAMPLES}", x + 120, y + 120, varname=f"gate-{n}"),
    )
    gated = []
    for channel in (0, 1):
        g = p.obj("*~", x + 60 * channel, y + 530)
        p.connect(mixed[channel], 0, g, 0)
        p.connect(smooth, 0, g, 1)
        gated.append(g)
    reporters = [
        *_edges(p, front, f"front {n} b", f"front {n} a", x + 300, y + 150),
        *_edges(p, gate, f"gate {n} 1", f"gate {n} 0", x + 420, y + 150),
    ]
    return SlotOut(gated[0], gated[1]), reporters


def _sum(p: Patcher, a: str, b: str, x: float, y: float) -> str:
    total = p.obj("+~", x, y)
    p.connect(a, 0, total, 0)
    p.connect(b, 0, total, 1)
    return total


def _latch(p: Patcher, value: str, trigger: str, x: float, y: float) -> str:
    """``sah~``: ``value`` as it is when ``trigger`` rises through 0.5, held until the next."""
    held = p.obj("sah~ 0.5", x, y)
    p.connect(value, 0, held, 0)
    p.connect(trigger, 0, held, 1)
    return held


def _origin(p: Patcher, n: int, c: Clock, trigger: str, x: float, y: float) -> tuple[str, str]:
    """The transport position of slot ``n``'s last launch, latched once per ``launch-n``
    change: ``armed`` compares ``launch-n`` with its value at the trigger before (a one-sample
    ``delay~`` of its own latch), so later boundaries do not move the loop's start. Returns the
    origin and the launch impulse (``fire``)."""
    count = p.obj("sig~", x, y, varname=f"launch-{n}")
    seen = p.chain(_latch(p, count, trigger, x, y + 30), p.obj("delay~ 2 1", x, y + 60))
    armed = p.obj("!=~", x, y + 90)
    p.connect(count, 0, armed, 0)
    p.connect(seen, 0, armed, 1)
    fire = p.obj("*~", x + 60, y + 90)
    p.connect(trigger, 0, fire, 0)
    p.connect(armed, 0, fire, 1)
    return _latch(p, c.quarters, fire, x + 60, y + 120), fire


@dataclass(frozen=True)
class HeadClock:
    """A slot's head ``h``: when it latches (its slice start or a launch) and the seconds since."""

    trigger: str
    seconds: str


def _head_clock(p: Patcher, c: Clock, head: int, fire: str, x: float, y: float) -> HeadClock:
    trigger = _sum(p, c.slice_start[head], fire, x, y)
    since = p.obj("-~", x, y + 60)
    p.connect(c.seconds, 0, since, 0)
    p.connect(_latch(p, c.seconds, trigger, x + 60, y + 30), 0, since, 1)
    seconds = p.chain(
        since,
        p.obj("+~ 1", x, y + 90),
        p.obj("%~ 1", x, y + 120),
        p.obj(f"*~ {CLOCK_S}", x, y + 150),
    )
    return HeadClock(trigger, seconds)


def _player(
    p: Patcher,
    n: int,
    side: str,
    c: Clock,
    since: str,
    heads: tuple[HeadClock, HeadClock],
    x: float,
    y: float,
) -> tuple[str, str]:
    """One player of slot ``n``: its buffer~, the loop phase and two heads. Returns the left and
    right sums of the heads."""
    name = f"---rig{n}{side}"
    tag = f"{n}-{side}"
    buffer = p.obj(f"buffer~ {name}", x, y, varname=f"buf-{tag}")
    p.connect(buffer, 1, p.message(f"loaded {n} {side}", x, y + 25, varname=f"done-{tag}"), 0)
    length = p.obj("sig~ 8", x + 100, y, varname=f"len-{tag}")
    wrapped = p.obj("%~", x, y + 60)
    p.connect(since, 0, wrapped, 0)
    p.connect(length, 0, wrapped, 1)
    phase = p.obj("/~", x, y + 90)
    p.connect(wrapped, 0, phase, 0)
    p.connect(length, 0, phase, 1)
    direction = p.obj("sig~ 1", x + 160, y, varname=f"dir-{tag}")
    mirrored = p.obj("*~", x, y + 120)  # reversed: 1 − phase = flip + dir · phase
    p.connect(phase, 0, mirrored, 0)
    p.connect(direction, 0, mirrored, 1)
    flipped = p.obj("+~", x, y + 150)
    p.connect(mirrored, 0, flipped, 0)
    p.connect(p.obj("sig~ 0", x + 220, y, varname=f"flip-{tag}"), 0, flipped, 1)
    step = p.obj("sig~ 0.5", x + 280, y, varname=f"step-{tag}")  # loops per second
    # Output Pair: 1 plays channels 3-4 of a quad take (the js sets it; faded like a swap)
    rear = p.chain(
        p.obj("sig~ 0", x + 340, y, varname=f"rear-{tag}"),
        p.obj(f"rampsmooth~ {FADE_SAMPLES} {FADE_SAMPLES}", x + 340, y + 30,
              varname=f"rearxf-{tag}"),
    )  # fmt: skip
    sums = [p.obj("+~", x + 60 * ch, y + 240) for ch in (0, 1)]
    for head in (0, 1):
        hx = x + 180 * head
        start = _latch(p, flipped, heads[head].trigger, hx, y + 180)
        heading = _latch(p, direction, heads[head].trigger, hx + 60, y + 180)
        advance = p.obj("*~", hx + 120, y + 180)
        p.connect(heads[head].seconds, 0, advance, 0)
        p.connect(step, 0, advance, 1)
        signed = p.obj("*~", hx + 120, y + 210)
        p.connect(advance, 0, signed, 0)
        p.connect(heading, 0, signed, 1)
        at = p.obj("+~", hx, y + 210)
        p.connect(start, 0, at, 0)
        p.connect(signed, 0, at, 1)
        read = p.chain(
            at,
            p.obj("+~ 2", hx, y + 240),
            p.obj("%~ 1", hx, y + 270),
            p.obj(f"wave~ {name} 0 0 4", hx, y + 300),
        )
        for channel in (0, 1):
            chosen = _pair_choice(p, read, channel, rear, hx + 60 * channel, y + 330)
            windowed = p.obj("*~", hx + 60 * channel, y + 420)
            p.connect(chosen, 0, windowed, 0)
            p.connect(c.window[head], 0, windowed, 1)
            p.connect(windowed, 0, sums[channel], 0)
    return sums[0], sums[1]


def _pair_choice(p: Patcher, read: str, channel: int, rear: str, x: float, y: float) -> str:
    """Channel ``channel`` of the front pair, or of the rear pair (``channel + 2``) as ``rear``
    goes from 0 to 1: ``front + rear · (back − front)``."""
    apart = p.obj("-~", x, y)
    p.connect(read, channel + 2, apart, 0)
    p.connect(read, channel, apart, 1)
    scaled = p.obj("*~", x, y + 30)
    p.connect(apart, 0, scaled, 0)
    p.connect(rear, 0, scaled, 1)
    chosen = p.obj("+~", x, y + 60)
    p.connect(read, channel, chosen, 0)
    p.connect(scaled, 0, chosen, 1)
    return chosen


def _edges(p: Patcher, signal: str, rising: str, falling: str, x: float, y: float) -> list[str]:
    """``edge~`` on ``signal`` → a message box each for its rise and its fall."""
    edge = p.obj("edge~", x, y)
    p.connect(signal, 0, edge, 0)
    up = p.message(rising, x, y + 30)
    down = p.message(falling, x + 80, y + 30)
    p.connect(edge, 0, up, 0)
    p.connect(edge, 1, down, 0)
    return [up, down]
