// Shared by the device tests: the built device in the Max double, OSC in, test loops on disk,
// and measurements of what comes out of plugout~.
"use strict";

const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { MaxDevice, readPatcher } = require("../harness/device.js");
const osc = require("../harness/osc.js");
const { writeWav } = require("../harness/wav.js");

const BUILD = path.join(__dirname, "..", "build");
const DEVICE = path.join(BUILD, "rig-slots.amxd");

function builtDevice() {
    const script = path.join(BUILD, "rig-slots.js");
    const source = path.join(__dirname, "..", "rig-slots.js");
    if (!fs.existsSync(DEVICE) || !fs.existsSync(script) ||
            fs.readFileSync(script, "utf8") !== fs.readFileSync(source, "utf8")) {
        throw new Error(BUILD + " is missing or older than the source: run `make device` " +
            "(rig device build) first");
    }
    return readPatcher(DEVICE);
}

// The built device in the double; 7680 Hz at 120 BPM makes a tick exactly 1/8 sample, so bar
// lines fall on whole samples (bar n starts at sample 15360 · (n − 1) in 4/4).
function device(options = {}) {
    const d = new MaxDevice({ sampleRate: 7680, scriptDir: BUILD, ...options });
    return d.load(options.patcher || builtDevice(), options.saved || null);
}

function send(d, address, args, port = 7400) {
    const types = args.map((a) => (typeof a === "string" ? "s" : Number.isInteger(a) ? "i" : "f"));
    d.receive(osc.encode(address, args, types.join("")), port);
}

function sentTo(d, address) {
    return d.sent.filter((m) => m.address === address).map((m) => m.args);
}

function takeFolder() {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "rig slots "));
    return path.join(root, "My Takes");
}

// A stereo loop of `seconds` at `rate` whose every sample is fn(i / length) (its phase).
function writeLoop(file, seconds, fn, rate = 7680) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const n = Math.round(seconds * rate);
    const left = new Float64Array(n);
    for (let i = 0; i < n; i++) {
        left[i] = fn(i / n);
    }
    writeWav(file, rate, [left, left]);
    return file;
}

function left(d) {
    return d.recorded[0];
}

// The first sample index at or after `from` where `predicate(x)` holds, or -1.
function firstWhere(samples, from, predicate) {
    for (let i = from; i < samples.length; i++) {
        if (predicate(samples[i])) {
            return i;
        }
    }
    return -1;
}

function maxStep(samples, from, to) {
    let step = 0;
    for (let i = Math.max(1, from); i < Math.min(to, samples.length); i++) {
        step = Math.max(step, Math.abs(samples[i] - samples[i - 1]));
    }
    return step;
}

// Frequency (Hz) of the strongest partial of samples[from, from+n) by a Hann-windowed DFT
// scanned around `guess` in 0.05 Hz steps.
function frequency(samples, from, n, rate, guess) {
    let best = 0;
    let bestPower = -1;
    for (let f = guess * 0.9; f <= guess * 1.1; f += 0.05) {
        let re = 0;
        let im = 0;
        for (let i = 0; i < n; i++) {
            const w = 0.5 - 0.5 * Math.cos(2 * Math.PI * i / (n - 1));
            const x = samples[from + i] * w;
            re += x * Math.cos(2 * Math.PI * f * i / rate);
            im -= x * Math.sin(2 * Math.PI * f * i / rate);
        }
        const power = re * re + im * im;
        if (power > bestPower) {
            bestPower = power;
            best = f;
        }
    }
    return best;
}

// Frequencies measured inside Live's sixteenths where one head plays alone (the take at its own
// rate), `count` of them from sample `from` on.
function sliceFrequencies(d, from, count, guess) {
    const out = d.recorded[0];
    const q = d.quarters;
    const found = [];
    for (let i = from; i < out.length - 1 && found.length < count; i++) {
        const x = (q[i] * 2) % 1;
        if (x >= 0.06 && (q[i - 1] * 2) % 1 < 0.06) { // 6 % into a slice of head A
            let end = i;
            while (end < out.length && (q[end] * 2) % 1 < 0.48 && (q[end] * 2) % 1 >= 0.06) {
                end++;
            }
            found.push(frequency(out, i, end - i, d.sampleRate, guess));
            i = end;
        }
    }
    return found;
}

function cents(f, reference) {
    return 1200 * Math.log2(f / reference);
}

module.exports = { builtDevice, device, send, sentTo, takeFolder, writeLoop, left, firstWhere,
    maxStep, frequency, sliceFrequencies, cents, BUILD };
