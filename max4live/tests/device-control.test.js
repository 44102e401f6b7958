// The built device in the Max double: performer gestures, the rig's messages, and the Live Set.
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const h = require("./helpers.js");
const { writeWav } = require("../harness/wav.js");

function withFolder(options = {}) {
    const d = h.device(options);
    const folder = h.takeFolder();
    const files = [0, 1, 2].map((i) =>
        h.writeLoop(path.join(folder, "s1", `take ${i}.wav`), 2.0, () => 0.25 * (i + 1)));
    return { d, folder, files };
}

function label(d, n) {
    return d.named(`label-${n}`).text;
}

function load(d, file, reqId, slot = 1) {
    h.send(d, "/rig/load", [slot, file, 120.0, 1, 4, `take-${reqId}`, reqId]);
}

test("every box of the built device is an object the double models", () => {
    const patcher = h.builtDevice();
    const d = h.device({ patcher });
    assert.equal(Object.keys(d.objects).length, patcher.patcher.boxes.length);
});

test("on load: hello with version, slots and port; Live's tempo and time signature", () => {
    const d = h.device();
    d.live.running = true;
    d.run(0.2);
    assert.deepEqual(h.sentTo(d, "/rig/hello"), [["rig-slots 2.0 (protocol 2)", 8, 7400]]);
    assert.deepEqual(h.sentTo(d, "/rig/timesig"), [[4, 4]]);
    assert.deepEqual(h.sentTo(d, "/rig/tempo"), [[120]]);
    assert.match(d.named("status").text, /takes: none set/);
});

test("with no take folder every load is refused; the rig's folder is taken, never over ours", () => {
    const { d, folder, files } = withFolder();
    d.run(0.1);
    load(d, files[0], 1);
    d.run(0.2);
    assert.match(h.sentTo(d, "/rig/error")[0][2], /no take folder is set/);
    assert.equal(d.reads.length, 0);
    h.send(d, "/rig/folder", [folder]);
    d.run(0.1);
    assert.match(d.named("status").text, new RegExp("takes: " + folder));
    assert.equal(d.named("takes-edit").text, folder);
    h.send(d, "/rig/folder", ["/somewhere/else"]);
    h.send(d, "/rig/folder", ["relative/path"]);
    d.run(0.1);
    load(d, files[0], 2);
    d.run(0.2);
    assert.deepEqual(h.sentTo(d, "/rig/loaded"), [[1, "take-2", 2]]);
    assert.equal(d.reads[0].path, files[0]); // a path with spaces, whole
});

test("the take folder typed with spaces, then Return, is the folder", () => {
    const { d, folder, files } = withFolder();
    const edit = d.named("takes-edit");
    edit.type(folder);
    edit.pressReturn();
    d.run(0.1);
    load(d, files[1], 1);
    d.run(0.2);
    assert.deepEqual(h.sentTo(d, "/rig/loaded"), [[1, "take-1", 1]]);
    load(d, "/etc/passwd.wav", 2, 2);
    d.run(0.1);
    assert.match(h.sentTo(d, "/rig/error")[0][2], /outside the take folder/);
});

test("Choose… opens a folder dialog and takes its answer", () => {
    const { d, folder, files } = withFolder();
    d.dialogAnswer = "Macintosh HD:" + folder + "/";
    d.click("Choose Folder");
    d.run(0.1);
    assert.match(d.named("status").text, new RegExp("takes: " + folder + "/"));
    load(d, files[0], 1);
    d.run(0.2);
    assert.deepEqual(h.sentTo(d, "/rig/loaded"), [[1, "take-1", 1]]);
});

test("ports are Float parameters: 9000 is kept, the device listens there and says so", () => {
    const d = h.device();
    d.setParameter("OSC In Port", 9000);
    d.setParameter("Rig Port", 9001);
    assert.equal(d.parameter("OSC In Port").value, 9000);
    d.run(0.1);
    h.send(d, "/rig/ping", [5], 7400);
    h.send(d, "/rig/ping", [6], 9000);
    d.run(0.1);
    assert.deepEqual(h.sentTo(d, "/rig/pong"), [[6]]);
    const last = d.sent[d.sent.length - 1];
    assert.equal(last.port, 9001);
    assert.deepEqual(h.sentTo(d, "/rig/hello").pop(), ["rig-slots 2.0 (protocol 2)", 8, 9000]);
});

test("Autoplay is a toggle: clicked off, a first loop waits for its launch note", () => {
    const { d, folder, files } = withFolder();
    d.live.running = true;
    h.send(d, "/rig/folder", [folder]);
    d.click("Autoplay");
    assert.equal(d.parameter("Autoplay").value, 0);
    d.run(0.1);
    load(d, files[0], 1);
    d.run(2.5);
    assert.ok(h.left(d).every((x) => x === 0));
    assert.match(label(d, 1), /^1 stopped: take 0/);
    d.click("Autoplay");
    load(d, files[1], 2, 2);
    d.run(2.5);
    assert.match(label(d, 2), /^2 playing: take 1/);
});

test("Generate buttons and generate notes ask the rig; CCs go on to it", () => {
    const d = h.device();
    d.run(0.1);
    d.click("Slot 3 Generate");
    d.midi([0x90, 61, 90]); // C#3: generate slot 2
    d.midi([0x90, 61, 0]); // its note-off does nothing
    d.midi([0xb0, 74, 100]);
    d.run(0.1);
    assert.deepEqual(h.sentTo(d, "/rig/action"), [["generate", 3], ["generate", 2]]);
    assert.deepEqual(h.sentTo(d, "/rig/cc"), [[74, 100]]);
    d.midi([0x90, 73, 100]); // C#4: slot 2 starts (or stops) evolving
    d.setParameter("Evolve Note", 84);
    d.run(0.1);
    d.midi([0x90, 84, 100]); // C5 now: slot 1
    d.midi([0x90, 73, 100]); // no longer an evolve note
    d.run(0.1);
    assert.deepEqual(h.sentTo(d, "/rig/action").slice(2), [["evolve", 2], ["evolve", 1]]);
});

test("a retried request is answered again, never read twice; a newer one supersedes", () => {
    const { d, folder, files } = withFolder();
    h.send(d, "/rig/folder", [folder]);
    d.run(0.1);
    load(d, files[0], 1);
    load(d, files[0], 1);
    d.run(0.2);
    load(d, files[0], 1);
    d.run(0.1);
    assert.equal(d.reads.length, 1); // the retry while reading is answered when the read is done
    assert.deepEqual(h.sentTo(d, "/rig/loaded"), [[1, "take-1", 1], [1, "take-1", 1]]);
    d.live.running = true;
    h.send(d, "/rig/clear", [2, 7]);
    load(d, files[1], 8, 2);
    load(d, files[2], 9, 2); // supersedes 8 while it reads
    d.run(0.3);
    const slot2 = h.sentTo(d, "/rig/loaded").filter((a) => a[0] === 2);
    assert.deepEqual(slot2, [[2, "", 7], [2, "take-9", 9]]);
});

test("a load while a swap waits for its bar plays after it; both are acknowledged", () => {
    const { d, folder, files } = withFolder({ jsLatencyMs: 20 });
    d.live.running = true;
    h.send(d, "/rig/folder", [folder]);
    d.run(0.3);
    load(d, files[0], 1);
    d.run(2.3); // playing from bar 2
    load(d, files[1], 2);
    d.run(0.2); // armed for bar 3
    load(d, files[2], 3);
    d.run(0.2);
    assert.match(label(d, 1), /next bar: take 1 · then take 2/);
    d.run(4.0);
    assert.deepEqual(h.sentTo(d, "/rig/loaded").map((a) => a[2]), [1, 2, 3]);
    const out = h.left(d);
    assert.ok(Math.abs(out[2 * 15360 + 2000] - 0.5) < 1e-3); // take 1 from bar 3
    assert.ok(Math.abs(out[3 * 15360 + 2000] - 0.75) < 1e-3); // take 2 from bar 4
    assert.match(label(d, 1), /1 playing: take 2 \(1 bars\)$/);
});

test("malformed, unknown and unreadable messages are dropped or refused with a reason", () => {
    const { d, folder, files } = withFolder({ jsLatencyMs: 5 });
    h.send(d, "/rig/folder", [folder]);
    d.run(0.1);
    h.send(d, "/rig/load", [1, files[0]]);
    h.send(d, "/rig/load", [99, files[0], 120.0, 1, 4, "t", 3]);
    h.send(d, "/rig/bogus", [1]);
    d.receive(Buffer.from("not osc"), 7400);
    load(d, path.join(folder, "s1", "nothing.wav"), 4);
    h.send(d, "/rig/load", [1, files[0], 120.0, 1, 0, "t", 5]);
    fs.writeFileSync(path.join(folder, "s1", "text.wav"), "not a wave file");
    load(d, path.join(folder, "s1", "text.wav"), 6);
    d.run(11.0); // buffer~ never answers a file it cannot read
    const errors = h.sentTo(d, "/rig/error");
    assert.match(errors[0][2], /no readable file/);
    assert.match(errors[1][2], /beats 0 is outside/);
    assert.match(errors[2][2], /did not load within 10 s/);
    assert.equal(d.posts.filter((p) => /dropped/.test(p)).length, 3);
});

test("a Live Set round trip: folder, takes, which is front, playing state and parameters", () => {
    const { d, folder, files } = withFolder({ jsLatencyMs: 15 });
    d.live.running = true;
    h.send(d, "/rig/folder", [folder]);
    d.run(0.3);
    load(d, files[0], 1, 1);
    load(d, files[1], 2, 2);
    d.run(2.5);
    load(d, files[2], 3, 1); // slot 1: a second take, on its other player
    d.run(2.5);
    d.setParameter("Slot 2 Gain", -12);
    d.click("Slot 2 Reverse");
    d.setParameter("OSC In Port", 7410);
    d.run(1.5);
    assert.ok(d.undoSteps >= 1 && d.undoSteps <= 6, `${d.undoSteps} undo steps`);
    const saved = d.saveSet();
    assert.equal(saved.parameters["OSC In Port"], 7410);
    assert.equal(saved.parameters["Slot 2 Gain"], -12);

    const again = h.device({ saved, jsLatencyMs: 15 }); // the rig is not running
    again.run(0.3);
    assert.deepEqual(again.reads.map((r) => r.path).sort(), [files[1], files[2]].sort());
    assert.deepEqual(again.reads.map((r) => r.name).sort(), ["017rig1a", "017rig2b"]);
    assert.match(label(again, 1), /^1 armed: take 2/);
    assert.match(label(again, 2), /^2 armed: take 1 \(1 bars\) · reverse/);
    assert.equal(again.parameter("Slot 2 Reverse").value, 1);
    assert.match(again.named("status").text, new RegExp("takes: " + folder));
    assert.deepEqual(h.sentTo(again, "/rig/loaded"), []); // restored takes are nobody's request
    again.live.running = true;
    again.run(2.5);
    assert.ok(Math.abs(again.recorded[0][again.recorded[0].length - 100]) > 0.1);
    assert.deepEqual(h.sentTo(again, "/rig/hello").pop()[2], 7410);

    fs.unlinkSync(files[2]);
    const missing = h.device({ saved });
    missing.run(0.3);
    assert.match(label(missing, 1), /1 empty · missing: take 2/);
    assert.match(label(missing, 2), /2 armed: take 1/);
});

test("a Set restored with its own OSC In Port says hello once, with that port", () => {
    // Live sends the saved port before live.thisdevice bangs; two hellos made the rig send
    // every slot's take twice.
    const d = h.device({ saved: { parameters: { "OSC In Port": 7410 } } });
    d.run(0.2);
    assert.deepEqual(h.sentTo(d, "/rig/hello"), [["rig-slots 2.0 (protocol 2)", 8, 7410]]);
});

test("live.thisdevice banging again (preset recall, device saved) keeps every slot", () => {
    const { d, folder, files } = withFolder();
    h.send(d, "/rig/folder", [folder]);
    d.run(0.1);
    load(d, files[0], 1);
    d.run(0.3);
    const before = label(d, 1);
    d.presetRecalled();
    d.run(0.2);
    assert.equal(label(d, 1), before);
    assert.equal(h.sentTo(d, "/rig/hello").length, 2);
    assert.match(d.named("status").text, new RegExp("takes: " + folder));
});

test("two instances keep their own buffers and ports", () => {
    const first = h.device({ uid: "017" });
    const second = h.device({ uid: "023" });
    second.setParameter("OSC In Port", 7410);
    assert.ok("017rig1a" in first.buffers && "023rig1a" in second.buffers);
    second.run(0.1);
    assert.equal(second.sent.filter((m) => m.address === "/rig/hello").pop().args[2], 7410);
});

test("while Live plays the device says each beat once: /rig/position bar beat bpm", () => {
    const d = h.device({ jsLatencyMs: 45 });
    d.live.running = true;
    d.run(2.2); // 120 BPM: beats at 0, 0.5, 1, 1.5 s, bar 2 at 2 s
    const said = h.sentTo(d, "/rig/position");
    assert.deepEqual(said.map(([bar, beat]) => [bar, Math.floor(beat)]),
        [[1, 1], [1, 2], [1, 3], [1, 4], [2, 1]]);
    for (const [, beat, bpm] of said) {
        assert.equal(bpm, 120);
        assert.ok(beat - Math.floor(beat) < 0.2, `a beat said ${beat}: late by more than a poll`);
    }
    d.live.running = false;
    d.run(1.0);
    assert.equal(h.sentTo(d, "/rig/position").length, 5); // silent while stopped
    d.live.tempo = 180;
    d.live.num = 3;
    d.live.running = true;
    d.run(1.05); // 180 BPM in 3/4 from where it stopped: a bar of three beats is 1 s
    const more = h.sentTo(d, "/rig/position").slice(5);
    assert.ok(more.length >= 3 && more.every(([, beat, bpm]) => beat < 4 && bpm === 180), String(more));
});

// Two instances of the device (two tracks), Output Pair Front and Rear, given the same loads.
function quadPair() {
    const folder = h.takeFolder();
    const devices = [0, 1].map((pair) => {
        const d = h.device();
        d.live.running = true;
        d.setParameter("Output Pair", pair);
        h.send(d, "/rig/folder", [folder]);
        return d;
    });
    const n = 15360; // one bar at 120 BPM and 7680 Hz
    const channel = (x) => new Float64Array(n).fill(x);
    const quad = path.join(folder, "s1", "quad.wav");
    const stereo = path.join(folder, "s1", "stereo.wav");
    fs.mkdirSync(path.dirname(quad), { recursive: true });
    writeWav(quad, 7680, [channel(0.5), channel(0.25), channel(-0.5), channel(-0.25)]);
    writeWav(stereo, 7680, [channel(0.3), channel(0.1)]);
    return { devices, n, quad, stereo };
}

function heard(d, at) {
    return [d.recorded[0][at], d.recorded[1][at]].map((x) => Math.round(x * 1000) / 1000);
}

test("quad: Front plays channels 1-2, Rear channels 3-4, both swapping on the same bar", () => {
    const { devices, n, quad, stereo } = quadPair();
    for (const d of devices) {
        d.run(0.3);
        h.send(d, "/rig/load", [1, quad, 120.0, 1, 4, "quad-1", 1, 4]);
        d.run(2.0);
    }
    const [front, rear] = devices;
    assert.deepEqual(heard(front, n + 2000), [0.5, 0.25]);
    assert.deepEqual(heard(rear, n + 2000), [-0.5, -0.25]);
    const starts = devices.map((d) => h.firstWhere(d.recorded[0], 0, (x) => x !== 0));
    assert.deepEqual(starts, [n, n]); // both from bar 2
    for (const d of devices) { // a stereo take: its pair on both devices
        h.send(d, "/rig/load", [1, stereo, 120.0, 1, 4, "stereo-1", 2]);
        d.run(2.0);
    }
    assert.deepEqual(heard(front, 2 * n + 1000), [0.3, 0.1]);
    assert.deepEqual(heard(rear, 2 * n + 1000), [0.3, 0.1]);
    const swaps = devices.map((d) => h.firstWhere(d.recorded[0], 2 * n - 100, (x) => Math.abs(x - 0.3) < 1e-3));
    assert.equal(swaps[0], swaps[1]); // the same sample on both tracks
    assert.deepEqual(h.sentTo(rear, "/rig/loaded"), [[1, "quad-1", 1], [1, "stereo-1", 2]]);
});

test("quad: switching the Output Pair while playing fades, and the Set remembers channels", () => {
    const { devices, n, quad } = quadPair();
    const [front] = devices;
    front.run(0.3);
    h.send(front, "/rig/load", [1, quad, 120.0, 1, 4, "quad-1", 1, 4]);
    front.run(2.0);
    const at = front.recorded[0].length;
    front.setParameter("Output Pair", 1);
    front.run(0.5);
    const out = front.recorded[0];
    assert.deepEqual(heard(front, out.length - 10), [-0.5, -0.25]);
    const step = h.maxStep(out, at, out.length);
    assert.ok(step < 1.2 / 154, `a 20 ms ramp, not a click: largest step ${step}`);
    const saved = front.saveSet();
    assert.equal(saved.parameters["Output Pair"], 1);
    assert.equal(JSON.parse(saved.blobs["rig slots state"]).slots[0].channels, 4);
    h.send(front, "/rig/load", [1, quad, 120.0, 1, 4, "quad-2", 3, 3]); // 3 channels: dropped
    front.run(0.2);
    assert.ok(front.posts.some((p) => p.includes("[channels:i 2|4]")));
});
