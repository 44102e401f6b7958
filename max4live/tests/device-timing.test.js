// The built device in the Max double: what comes out of plugout~ and when. Every boundary is
// checked to the sample; [js] latency is varied to show that nothing depends on it.
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const h = require("./helpers.js");

const BAR = 15360; // samples of one 4/4 bar at 120 BPM and 7680 Hz
const DC = () => 0.5;
const RAMP = (phase) => 0.1 + 0.8 * phase; // the loop's content tells where in the loop we are
const POS = (x) => (x - 0.1) / 0.8; // ... and this reads it back

function playing(options, loops) {
    const d = h.device(options);
    const folder = h.takeFolder();
    d.live.running = true;
    h.send(d, "/rig/folder", [folder]);
    d.run(0.3);
    const files = loops.map((fn, i) => h.writeLoop(path.join(folder, "s1", `t${i}.wav`), 2.0, fn));
    return { d, folder, files };
}

function load(d, file, reqId, slot = 1, bars = 1, beats = 4, bpm = 120.0) {
    h.send(d, "/rig/load", [slot, file, bpm, bars, beats, `take-${reqId}`, reqId]);
}

for (const [name, latency] of [["1 ms", 1], ["45 ms", 45], ["random 5-90 ms", () => 5 + 85 * Math.random()]]) {
    test(`a first loop starts on the next bar to the sample, js latency ${name}`, () => {
        const { d, files } = playing({ jsLatencyMs: latency }, [DC]);
        load(d, files[0], 1);
        d.run(2.0);
        assert.equal(h.firstWhere(h.left(d), 0, (x) => x !== 0), BAR); // bar 2, not before
        assert.deepEqual(h.sentTo(d, "/rig/loaded"), [[1, "take-1", 1]]);
        assert.deepEqual(h.sentTo(d, "/rig/playing"), [[1, 1]]);
    });

    test(`a new loop swaps in on the next bar with a 20 ms crossfade, js latency ${name}`, () => {
        const { d, files } = playing({ jsLatencyMs: latency }, [DC, () => -0.5]);
        load(d, files[0], 1);
        d.run(2.3); // plays from bar 2 (2 s)
        load(d, files[1], 2);
        d.run(2.0);
        const out = h.left(d);
        assert.ok(Math.abs(out[2 * BAR - 1] - 0.5) < 1e-3); // still the first loop
        const swap = h.firstWhere(out, BAR + 1000, (x) => x < 0.499);
        assert.equal(swap, 2 * BAR); // bar 3
        const faded = h.firstWhere(out, swap, (x) => x <= -0.499);
        assert.ok(Math.abs(faded - swap - 154) <= 2, `crossfade took ${faded - swap} samples`);
        assert.ok(h.maxStep(out, swap - 10, swap + 200) < 1.2 / 154); // a ramp, not a click
    });
}

test("renders are identical whatever the js latency (a frozen track sounds the same)", () => {
    const runs = [1, 70].map((latency) => {
        const { d, files } = playing({ jsLatencyMs: latency }, [RAMP, (p) => Math.sin(6 * Math.PI * p)]);
        load(d, files[0], 1);
        d.run(2.4);
        load(d, files[1], 2);
        d.run(1.2);
        d.midi([0x90, 48, 100]); // stop slot 1 on the next bar
        d.run(2.5);
        return h.left(d);
    });
    assert.equal(runs[0].length, runs[1].length);
    assert.ok(runs[0].every((x, i) => x === runs[1][i]));
});

test("a launch note starts the loop from its start on the next bar; a stop note stops it there", () => {
    const { d, files } = playing({ jsLatencyMs: 30 }, [RAMP]);
    d.setParameter("Autoplay", 0);
    load(d, files[0], 1);
    d.run(2.4); // loaded, not playing
    assert.ok(h.left(d).every((x) => x === 0));
    d.midi([0x90, 36, 100]); // C1: start slot 1
    d.run(2.0);
    const out = h.left(d);
    assert.equal(h.firstWhere(out, 0, (x) => x !== 0), 2 * BAR);
    const quarter = 2 * BAR + BAR / 4; // a quarter into the loop, well after the fade-in
    assert.ok(Math.abs(POS(out[quarter]) - 0.25) < 0.02, `loop position ${POS(out[quarter])}`);
    d.midi([0x90, 48, 100]); // C2: stop slot 1
    d.run(2.0);
    const stop = 3 * BAR;
    assert.ok(out.length > stop && Math.abs(h.left(d)[stop - 1]) > 0.1);
    assert.ok(Math.abs(h.left(d)[stop + 160]) < 1e-4);
    assert.deepEqual(h.sentTo(d, "/rig/playing"), [[1, 1], [1, 0]]);
});

test("Launch Quantize Beat, Off and Global (Live's own quantization, read from the Set)", () => {
    for (const [choice, clipQuantization, expected] of [[1, 4, "beat"], [2, 4, "now"], [3, 7, "beat"], [3, 4, "bar"]]) {
        const { d, files } = playing({ jsLatencyMs: 20 }, [DC]);
        d.live.lom.set("clip_trigger_quantization", clipQuantization);
        d.setParameter("Autoplay", 0);
        d.setParameter("Launch Quantize", choice);
        load(d, files[0], 1);
        d.run(0.2);
        const noteAt = d.time;
        d.midi([0x90, 36, 100]);
        d.run(2.0);
        const start = h.firstWhere(h.left(d), 0, (x) => x !== 0);
        if (expected === "now") {
            assert.ok(start > noteAt && start - noteAt < 0.03 * 7680 && start % 64 === 0);
        } else {
            const span = expected === "beat" ? BAR / 4 : BAR;
            const next = (Math.floor(noteAt / span) + 1) * span; // the first after the note
            assert.equal(start, next, `${choice}/${clipQuantization}`);
        }
    }
});

test("transport stop fades out in 20 ms, start fades in on the grid: no clicks", () => {
    const { d, files } = playing({ jsLatencyMs: 25 }, [(p) => 0.8 * Math.sin(2 * Math.PI * 40 * p)]);
    load(d, files[0], 1);
    d.run(2.5);
    const stopAt = d.time;
    d.live.running = false;
    d.run(0.5);
    const out = h.left(d);
    assert.ok(h.maxStep(out, stopAt - 100, stopAt + 400) < 0.06); // the sine's own slope
    assert.ok(out.slice(stopAt + 160, stopAt + 3000).every((x) => Math.abs(x) < 1e-4));
    const startAt = d.time;
    d.live.running = true;
    d.run(0.5);
    assert.ok(h.maxStep(h.left(d), startAt - 10, startAt + 400) < 0.06);
    assert.deepEqual(h.sentTo(d, "/rig/playing"), [[1, 1], [1, 0], [1, 1]]);
});

test("a tempo change keeps the pitch (within 5 cents) and the loop on Live's grid", () => {
    const rate = 16000;
    const d = h.device({ sampleRate: rate, jsLatencyMs: 15 });
    const folder = h.takeFolder();
    d.live.running = true;
    h.send(d, "/rig/folder", [folder]);
    const tone = h.writeLoop(path.join(folder, "s1", "tone.wav"), 2.0,
        (p) => 0.5 * Math.sin(2 * Math.PI * 880 * p), rate); // 440 Hz, 880 cycles a loop
    d.run(0.2);
    load(d, tone, 1);
    d.run(2.5);
    d.live.tempo = 126; // 5 % faster: resampling would raise it 84 cents
    d.run(3.0);
    const measured = h.sliceFrequencies(d, h.left(d).length - 2 * rate, 8, 440);
    assert.equal(measured.length, 8);
    for (const f of measured) { // resampling would play 462 Hz (+84 cents)
        assert.ok(Math.abs(h.cents(f, 440)) < 5, `${f.toFixed(2)} Hz: ${h.cents(f, 440).toFixed(1)} cents`);
    }

    const grid = h.device({ jsLatencyMs: 15 });
    grid.live.running = true;
    h.send(grid, "/rig/folder", [folder]);
    const ramp = h.writeLoop(path.join(folder, "s1", "ramp.wav"), 2.0, RAMP);
    grid.run(0.2);
    load(grid, ramp, 1);
    grid.run(1.0);
    grid.live.tempo = 126;
    grid.run(4.0);
    const q = grid.quarters; // Live's position in quarter notes at each sample
    const at = q.findIndex((x, i) => i > 0 && x >= 9 + 0.5 && q[i - 1] < 9.5); // 1½ beats into bar 3
    const position = POS(h.left(grid)[at]);
    const expected = ((q[at] - 4) % 4) / 4; // the loop started on bar 2 (quarter 4)
    assert.ok(Math.abs(position - expected) < 0.01, `loop at ${position}, grid at ${expected}`);
});

test("in 3/4 a loop holds the beats its load says, and swaps on 3/4 bar lines", () => {
    const d = h.device({ jsLatencyMs: 15 });
    const folder = h.takeFolder();
    d.live.num = 3;
    d.live.running = true;
    h.send(d, "/rig/folder", [folder]);
    const file = h.writeLoop(path.join(folder, "s1", "waltz.wav"), 6.0, RAMP); // 4 bars of 3/4
    d.run(0.3);
    assert.deepEqual(h.sentTo(d, "/rig/timesig").pop(), [3, 4]);
    load(d, file, 1, 1, 4, 12);
    d.run(8.0);
    const bar = BAR * 3 / 4;
    const out = h.left(d);
    assert.equal(h.firstWhere(out, 0, (x) => x !== 0), bar);
    const quarterIn = bar + 3 * bar; // one 12-beat pass later plus 3 bars: 3/4 of the loop
    assert.ok(Math.abs(POS(out[quarterIn]) - 0.75) < 0.02, `position ${POS(out[quarterIn])}`);
});

test("Reverse and Speed are toggles that crossfade, with no click", () => {
    const { d, files } = playing({ jsLatencyMs: 30 }, [RAMP]);
    load(d, files[0], 1);
    d.run(2.5);
    const at = d.time;
    d.click("Slot 1 Reverse");
    assert.equal(d.parameter("Slot 1 Reverse").value, 1);
    d.run(1.0);
    const out = h.left(d);
    const later = at + 2000;
    assert.ok(out[later + 500] < out[later], "plays backwards");
    assert.ok(h.maxStep(out, at, at + 1500) < 0.02, "the turn is crossfaded");
    d.click("Slot 1 Reverse");
    d.setParameter("Slot 1 Speed", 0); // ½: the loop spans two bars, at its own pitch
    d.run(6.0);
    const q = d.quarters;
    const probe = q.length - 1000;
    const expected = ((q[probe] - 4) % 8) / 8; // started on bar 2, now 8 quarter notes a pass
    const position = POS(h.left(d)[probe]);
    assert.ok(Math.abs(position - expected) < 0.03, `loop at ${position}, expected ${expected}`);
});

test("gain and filter changes are smoothed", () => {
    const { d, files } = playing({ jsLatencyMs: 10 }, [DC]);
    load(d, files[0], 1);
    d.run(2.5);
    const at = d.time;
    d.setParameter("Slot 1 Gain", -70);
    d.run(0.2);
    const out = h.left(d);
    assert.ok(h.maxStep(out, at, at + 400) < 0.5 / 100, "a 20 ms ramp, not a step");
    assert.ok(Math.abs(out[out.length - 1]) < 0.5 * 0.001);
});
