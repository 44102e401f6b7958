// MSP objects of the Max double, block-processed the way MSP does: each object turns its signal
// inlets into its signal outlets one vector at a time, in the graph's order. A signal inlet with
// no cord uses the number last sent to it (or the box argument). Each class documents the
// behaviour it models, from the Max reference; where the reference is silent the choice is said.
"use strict";

// Base: `inputs[i]` is a Float64Array (the summed cords) or null (no cord: use this.value[i]).
class Signal {
    constructor(device, box, args, inlets, outlets) {
        this.device = device;
        this.box = box;
        this.args = args;
        this.value = new Array(inlets).fill(0);
        this.signalOutlets = outlets;
    }

    // A number in inlet i sets its value (ignored by MSP when a signal is connected there).
    message(inlet, sel, args) {
        if ((sel === "float" || sel === "int") && typeof args[0] === "number") {
            this.value[inlet] = args[0];
        } else {
            this.device.post("signal object " + this.box.text + " ignored " + sel);
        }
    }

    input(inputs, i, n) {
        return inputs[i] || this.device.constant(this.value[i], n);
    }
}

// Binary operators: *~ +~ -~ /~ %~ !-~ <~ >~ ==~ !=~ (right operand: argument or inlet 1).
const OPS = {
    "*~": (a, b) => a * b,
    "+~": (a, b) => a + b,
    "-~": (a, b) => a - b,
    "!-~": (a, b) => b - a,
    "/~": (a, b) => (b === 0 ? 0 : a / b), // MSP outputs 0 for a division by zero
    "%~": (a, b) => (b === 0 ? 0 : a % b), // C fmod: the sign of the dividend
    "<~": (a, b) => (a < b ? 1 : 0),
    ">~": (a, b) => (a > b ? 1 : 0),
    "==~": (a, b) => (a === b ? 1 : 0),
    "!=~": (a, b) => (a !== b ? 1 : 0),
    "minimum~": (a, b) => Math.min(a, b),
    "maximum~": (a, b) => Math.max(a, b),
};

class Binary extends Signal {
    constructor(device, box, args, name) {
        super(device, box, args, 2, 1);
        this.op = OPS[name];
        this.value[1] = args.length ? Number(args[0]) : 0;
    }

    perform(inputs, outputs, n) {
        const a = this.input(inputs, 0, n);
        const b = this.input(inputs, 1, n);
        const out = outputs[0];
        for (let i = 0; i < n; i++) {
            out[i] = this.op(a[i], b[i]);
        }
    }
}

// sig~: a float becomes a constant signal.
class Sig extends Signal {
    constructor(device, box, args) {
        super(device, box, args, 1, 1);
        this.value[0] = args.length ? Number(args[0]) : 0;
    }

    perform(inputs, outputs, n) {
        outputs[0].fill(inputs[0] ? 0 : this.value[0]);
        if (inputs[0]) {
            outputs[0].set(inputs[0]);
        }
    }
}

// phasor~ FREQ, or phasor~ N ticks @lock 1: with lock on, the phase is the transport's position
// modulo the period ((ticks mod N) / N), frozen while the transport is stopped.
class Phasor extends Signal {
    constructor(device, box, args, attrs) {
        super(device, box, args, 2, 1);
        this.lock = Number(attrs.lock || 0) === 1;
        this.ticks = args[1] === "ticks" ? Number(args[0]) : 0;
        this.value[0] = this.ticks ? 0 : Number(args[0] || 0);
        this.phase = 0;
    }

    perform(inputs, outputs, n) {
        const out = outputs[0];
        if (this.lock && this.ticks) {
            const ticks = this.device.vectorTicks;
            for (let i = 0; i < n; i++) {
                out[i] = (ticks[i] % this.ticks) / this.ticks;
            }
            return;
        }
        const freq = this.input(inputs, 0, n);
        const sr = this.device.sampleRate;
        for (let i = 0; i < n; i++) {
            out[i] = this.phase;
            this.phase += freq[i] / sr;
            this.phase -= Math.floor(this.phase);
        }
    }
}

// delta~: the difference between each sample and the one before it.
class Delta extends Signal {
    constructor(device, box, args) {
        super(device, box, args, 1, 1);
        this.last = 0;
    }

    perform(inputs, outputs, n) {
        const x = this.input(inputs, 0, n);
        for (let i = 0; i < n; i++) {
            outputs[0][i] = x[i] - this.last;
            this.last = x[i];
        }
    }
}

// sah~ THRESHOLD: samples the left input when the right input rises from <= threshold to
// > threshold; holds it otherwise.
class Sah extends Signal {
    constructor(device, box, args) {
        super(device, box, args, 2, 1);
        this.threshold = args.length ? Number(args[0]) : 0;
        this.held = 0;
        this.lastTrigger = 0;
    }

    perform(inputs, outputs, n) {
        const x = this.input(inputs, 0, n);
        const t = this.input(inputs, 1, n);
        for (let i = 0; i < n; i++) {
            if (this.lastTrigger <= this.threshold && t[i] > this.threshold) {
                this.held = x[i];
            }
            this.lastTrigger = t[i];
            outputs[0][i] = this.held;
        }
    }
}

// delay~ MAX DELAY: the input DELAY samples ago.
class Delay extends Signal {
    constructor(device, box, args) {
        super(device, box, args, 2, 1);
        this.delay = Number(args[1] || 0);
        this.line = new Float64Array(Math.max(1, Number(args[0] || 1)) + 1);
        this.at = 0;
    }

    perform(inputs, outputs, n) {
        const x = this.input(inputs, 0, n);
        const size = this.line.length;
        for (let i = 0; i < n; i++) {
            this.line[this.at] = x[i];
            outputs[0][i] = this.line[(this.at - this.delay + size) % size];
            this.at = (this.at + 1) % size;
        }
    }
}

// rampsmooth~ UP DOWN: each change of the input is reached in a straight line over UP (rising)
// or DOWN (falling) samples; "rampup N" / "rampdown N" set them.
class Rampsmooth extends Signal {
    constructor(device, box, args) {
        super(device, box, args, 3, 1);
        this.up = Number(args[0] || 0);
        this.down = Number(args[1] || 0);
        this.y = 0;
        this.target = 0;
        this.step = 0;
        this.left = 0;
    }

    message(inlet, sel, args) {
        if (sel === "rampup" || sel === "rampdown") {
            this[sel === "rampup" ? "up" : "down"] = Number(args[0]);
        } else {
            super.message(inlet, sel, args);
        }
    }

    perform(inputs, outputs, n) {
        const x = this.input(inputs, 0, n);
        for (let i = 0; i < n; i++) {
            if (x[i] !== this.target) {
                this.target = x[i];
                const span = this.target > this.y ? this.up : this.down;
                this.left = Math.max(1, span);
                this.step = (this.target - this.y) / this.left;
            }
            if (this.left > 0) {
                this.y += this.step;
                this.left -= 1;
                if (this.left === 0) {
                    this.y = this.target;
                }
            }
            outputs[0][i] = this.y;
        }
    }
}

// cos~: cos(2π x).
class Cos extends Signal {
    constructor(device, box, args) {
        super(device, box, args, 1, 1);
    }

    perform(inputs, outputs, n) {
        const x = this.input(inputs, 0, n);
        for (let i = 0; i < n; i++) {
            outputs[0][i] = Math.cos(2 * Math.PI * x[i]);
        }
    }
}

// clip~ LOW HIGH: the input limited to [LOW, HIGH].
class Clip extends Signal {
    constructor(device, box, args) {
        super(device, box, args, 3, 1);
        this.value[1] = Number(args[0] || 0);
        this.value[2] = Number(args[1] || 0);
    }

    perform(inputs, outputs, n) {
        const x = this.input(inputs, 0, n);
        const low = this.input(inputs, 1, n);
        const high = this.input(inputs, 2, n);
        for (let i = 0; i < n; i++) {
            outputs[0][i] = Math.max(low[i], Math.min(high[i], x[i]));
        }
    }
}

// click~: a bang makes a one-sample impulse of 1 at the start of the next vector.
class Click extends Signal {
    constructor(device, box, args) {
        super(device, box, args, 1, 1);
        this.armed = false;
    }

    message(inlet, sel) {
        if (sel === "bang") {
            this.armed = true;
        }
    }

    perform(inputs, outputs) {
        outputs[0].fill(0);
        if (this.armed) {
            outputs[0][0] = 1;
            this.armed = false;
        }
    }
}

// wave~ BUFFER START END CHANNELS: reads the buffer at the phase (0-1 over START..END ms; 0 0:
// the whole buffer), with linear interpolation, wrapping around the end.
class Wave extends Signal {
    constructor(device, box, args) {
        super(device, box, args, 3, Number(args[3] || 1));
        this.name = String(args[0]);
        this.channels = Number(args[3] || 1);
    }

    perform(inputs, outputs, n) {
        const phase = this.input(inputs, 0, n);
        const buffer = this.device.buffers[this.name];
        for (let c = 0; c < this.channels; c++) {
            const data = buffer && buffer.channels[Math.min(c, buffer.channels.length - 1)];
            const out = outputs[c];
            if (!data || !data.length) {
                out.fill(0);
                continue;
            }
            const size = data.length;
            for (let i = 0; i < n; i++) {
                let p = phase[i] - Math.floor(phase[i]);
                const at = p * size;
                const k = Math.floor(at);
                const f = at - k;
                out[i] = data[k % size] * (1 - f) + data[(k + 1) % size] * f;
            }
        }
    }
}

// line~: "TARGET MS" ramps there; a number alone jumps.
class Line extends Signal {
    constructor(device, box, args) {
        super(device, box, args, 2, 2);
        this.y = Number(args[0] || 0);
        this.step = 0;
        this.left = 0;
        this.target = this.y;
    }

    message(inlet, sel, args) {
        if (inlet !== 0) {
            return;
        }
        const values = sel === "list" ? args : [args[0]];
        if (values.length >= 2 && values[1] > 0) {
            this.target = Number(values[0]);
            this.left = Math.max(1, Math.round(values[1] / 1000 * this.device.sampleRate));
            this.step = (this.target - this.y) / this.left;
        } else {
            this.y = this.target = Number(values[0]);
            this.left = 0;
        }
    }

    perform(inputs, outputs, n) {
        for (let i = 0; i < n; i++) {
            if (this.left > 0) {
                this.y += this.step;
                if (--this.left === 0) {
                    this.y = this.target;
                }
            }
            outputs[0][i] = this.y;
        }
    }
}

// lores~ CUTOFF RESONANCE: modelled as a two-pole low-pass (bilinear, Q = 0.5 + 10 × resonance)
// whose cutoff follows the signal in inlet 1 per sample; Max's own coefficients are not
// published, so level and smoothness are what the tests rely on, not exact sample values.
class Lores extends Signal {
    constructor(device, box, args) {
        super(device, box, args, 3, 1);
        this.value[1] = Number(args[0] || 20000);
        this.value[2] = Number(args[1] || 0);
        this.x1 = this.x2 = this.y1 = this.y2 = 0;
    }

    perform(inputs, outputs, n) {
        const x = this.input(inputs, 0, n);
        const cutoff = this.input(inputs, 1, n);
        const q = 0.5 + 10 * Math.max(0, Math.min(0.99, this.value[2]));
        const sr = this.device.sampleRate;
        for (let i = 0; i < n; i++) {
            const w = 2 * Math.PI * Math.max(1, Math.min(cutoff[i], 0.49 * sr)) / sr;
            const alpha = Math.sin(w) / (2 * q);
            const cos = Math.cos(w);
            const a0 = 1 + alpha;
            const b0 = (1 - cos) / 2 / a0;
            const y = b0 * x[i] + 2 * b0 * this.x1 + b0 * this.x2 +
                (2 * cos / a0) * this.y1 - ((1 - alpha) / a0) * this.y2;
            this.x2 = this.x1;
            this.x1 = x[i];
            this.y2 = this.y1;
            this.y1 = y;
            outputs[0][i] = y;
        }
    }
}

// edge~: bangs its left outlet when the signal goes from 0 to non-zero, its right outlet when
// it goes back to 0 — at control rate, after the vector in which it happened.
class Edge extends Signal {
    constructor(device, box, args) {
        super(device, box, args, 1, 0);
        this.last = 0;
    }

    perform(inputs, outputs, n) {
        const x = this.input(inputs, 0, n);
        for (let i = 0; i < n; i++) {
            const now = x[i] !== 0 ? 1 : 0;
            if (now !== this.last) {
                const outlet = now ? 0 : 1;
                this.device.afterVector(() => this.device.output(this.box.id, outlet, "bang", []));
            }
            this.last = now;
        }
    }
}

// plugout~: Live's audio input of the track (left, right), recorded for the tests.
class Plugout extends Signal {
    constructor(device, box, args) {
        super(device, box, args, 2, 0);
    }

    perform(inputs, outputs, n) {
        this.device.record(this.input(inputs, 0, n), this.input(inputs, 1, n), n);
    }
}

function create(device, box, name, args, attrs) {
    if (OPS[name]) {
        return new Binary(device, box, args, name);
    }
    const classes = {
        "sig~": Sig, "phasor~": Phasor, "delta~": Delta, "sah~": Sah, "delay~": Delay,
        "rampsmooth~": Rampsmooth, "cos~": Cos, "click~": Click, "wave~": Wave, "line~": Line,
        "lores~": Lores, "edge~": Edge, "plugout~": Plugout, "clip~": Clip,
    };
    const Class = classes[name];
    return Class ? new Class(device, box, args, attrs) : null;
}

module.exports = { create };
