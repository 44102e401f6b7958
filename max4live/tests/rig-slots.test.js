// Node tests of the device logic (node --test max4live/tests/). No npm packages.
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const { RigSlots, pathProblem, DEVICE_VERSION } = require("../rig-slots.js");

const TAKES = "/show/takes";
const WAV = TAKES + "/s1/0001_dusty_120bpm_2bars.wav";
const WAV2 = TAKES + "/s1/0002_pad_120bpm_4bars.wav";

// Records what the logic asks of Max; files "exist" when listed.
function fakeIo(files) {
    const io = {
        calls: [],
        clock: 0,
        files: new Set(files || [WAV, WAV2]),
        send: (address, args, types) => io.calls.push(["send", address, args, types]),
        loadBuffer: (slot, side, path) => io.calls.push(["load", slot, side, path]),
        setFade: (slot, side, gain, ms) => io.calls.push(["fade", slot, side, gain, ms]),
        setLoop: (slot, side, ticks) => io.calls.push(["loop", slot, side, ticks]),
        setReverse: (slot, side, on) => io.calls.push(["reverse", slot, side, on]),
        display: (slot, text) => io.calls.push(["display", slot, text]),
        status: (text) => io.calls.push(["status", text]),
        fileExists: (path) => io.files.has(path),
        now: () => io.clock,
        log: (text) => io.calls.push(["log", text]),
    };
    io.take = (kind) => {
        const taken = io.calls.filter((c) => !kind || c[0] === kind);
        io.calls = [];
        return taken;
    };
    io.sent = () => io.take("send").map((c) => [c[1], ...c[2]]);
    return io;
}

function device(options) {
    const io = fakeIo();
    const slots = new RigSlots(Object.assign({ takeFolder: TAKES }, options), io);
    return { slots, io };
}

function load(slots, slot, path, reqId, bars) {
    slots.osc("/rig/load", [slot, path, 120.0, bars || 2, "take-" + reqId, reqId]);
}

function running(slots, bar, beat) {
    slots.transport(bar, beat || 1, 120.0, 1);
}

test("hello announces the device and its slots", () => {
    const { slots, io } = device();
    slots.hello();
    assert.deepEqual(io.sent(), [["/rig/hello", DEVICE_VERSION, 8]]);
});

test("a load reads into the back player and acknowledges only after the file is read", () => {
    const { slots, io } = device();
    load(slots, 3, WAV, 5);
    const calls = io.take();
    assert.deepEqual(calls.filter((c) => c[0] === "load"), [["load", 3, "a", WAV]]);
    assert.deepEqual(calls.filter((c) => c[0] === "loop"), [["loop", 3, "a", 3840]]);
    assert.equal(calls.filter((c) => c[0] === "send").length, 0);
    slots.bufferLoaded(3, "a");
    assert.deepEqual(io.sent(), [["/rig/loaded", 3, "take-5", 5]]);
    assert.equal(slots.slots[2].front, "a");
    load(slots, 3, WAV2, 6, 4);
    assert.deepEqual(io.take("load"), [["load", 3, "b", WAV2]]); // the other player
});

test("the swap waits for the next bar while the transport runs, then crossfades", () => {
    const { slots, io } = device();
    running(slots, 1);
    load(slots, 1, WAV, 1);
    slots.bufferLoaded(1, "a");
    running(slots, 2); // first loop: starts at the bar (autoplay)
    assert.equal(slots.slots[0].front, "a");
    assert.deepEqual(io.sent().filter((m) => m[0] === "/rig/playing"), [["/rig/playing", 1, 1]]);
    load(slots, 1, WAV2, 2, 4);
    slots.bufferLoaded(1, "b");
    io.take();
    running(slots, 2, 2);
    running(slots, 2, 3);
    assert.equal(slots.slots[0].front, "a", "no swap inside the bar");
    assert.deepEqual(io.take("fade"), []);
    running(slots, 3, 1);
    assert.equal(slots.slots[0].front, "b");
    assert.deepEqual(io.take("fade"), [["fade", 1, "a", 0, 20], ["fade", 1, "b", 1, 20]]);
});

test("retries of one request load once and are answered again", () => {
    const { slots, io } = device();
    load(slots, 1, WAV, 7);
    load(slots, 1, WAV, 7); // retry while reading: no second read, no answer yet
    assert.equal(io.take("load").length, 1);
    slots.bufferLoaded(1, "a");
    load(slots, 1, WAV, 7); // retry after the answer was lost
    assert.deepEqual(io.sent(), [["/rig/loaded", 1, "take-7", 7], ["/rig/loaded", 1, "take-7", 7]]);
    assert.equal(io.take("load").length, 0);
    load(slots, 1, WAV2, 7); // same id, other file: a restarted rig, a new request
    assert.deepEqual(io.take("load"), [["load", 1, "b", WAV2]]);
});

test("a newer load supersedes; late answers and late retries of the older one are ignored", () => {
    const { slots, io } = device();
    running(slots, 1);
    io.take();
    load(slots, 2, WAV, 10);
    load(slots, 2, WAV2, 11); // into the same back player
    slots.bufferLoaded(2, "a"); // the first read finishes: not the current request
    assert.deepEqual(io.sent(), []);
    load(slots, 2, WAV, 10); // a late retry of the superseded request
    assert.equal(io.take("load").length, 0);
    assert.deepEqual(io.sent(), []);
    slots.bufferLoaded(2, "a");
    assert.deepEqual(io.sent(), [["/rig/loaded", 2, "take-11", 11]]);
    running(slots, 2);
    assert.equal(slots.slots[1].loop.path, WAV2);
});

test("malformed messages are logged and dropped, never answered", () => {
    const { slots, io } = device();
    const bad = [
        ["/rig/load", [1, WAV, 120.0, 2, "t"]], // too few
        ["/rig/load", ["1", WAV, 120.0, 2, "t", 1]], // slot as text
        ["/rig/load", [1.5, WAV, 120.0, 2, "t", 1]],
        ["/rig/load", [9, WAV, 120.0, 2, "t", 1]], // no slot 9
        ["/rig/load", [0, WAV, 120.0, 2, "t", 1]],
        ["/rig/clear", [1]],
        ["/rig/ping", ["x"]],
        ["/rig/explode", [1]],
    ];
    for (const [address, args] of bad) {
        slots.osc(address, args);
    }
    const calls = io.take();
    assert.equal(calls.filter((c) => c[0] === "send" || c[0] === "load").length, 0);
    assert.equal(calls.filter((c) => c[0] === "log").length, bad.length);
    slots.osc("/rig/ping", [42]);
    assert.deepEqual(io.sent(), [["/rig/pong", 42]]);
});

test("bad requests get /rig/error and the slot keeps its loop", () => {
    const { slots, io } = device({ loadTimeoutMs: 5000 });
    load(slots, 1, WAV, 1);
    slots.bufferLoaded(1, "a");
    io.take();
    const cases = [
        ["/elsewhere/x.wav", "outside the take folder /show/takes"],
        ["takes/x.wav", "not absolute"],
        [TAKES + "/../etc/x.wav", "contains '..'"],
        [TAKES + "/s1/x.mp3", "not a WAV file"],
        [TAKES + "/s1/missing.wav", "no readable file"],
    ];
    cases.forEach(([path, why], i) => {
        load(slots, 1, path, 20 + i);
        const [[address, slot, reqId, message]] = io.sent();
        assert.equal(address, "/rig/error");
        assert.equal(slot, 1);
        assert.equal(reqId, 20 + i);
        assert.match(message, new RegExp(why.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
    });
    load(slots, 1, WAV2, 30); // buffer~ never answers: the load times out
    io.clock = 6000;
    slots.transport(1, 1, 120.0, 0);
    assert.deepEqual(io.sent().filter((m) => m[0] === "/rig/error"),
        [["/rig/error", 1, 30, "the file did not load within 5 s"]]);
    assert.equal(slots.slots[0].loop.path, WAV);
    load(slots, 1, TAKES + "/s1/missing.wav", 24); // a retry of a failed request: same answer
    assert.equal(io.sent()[0][0], "/rig/error");
});

test("a clear is acknowledged at once and empties the slot on the bar", () => {
    const { slots, io } = device();
    running(slots, 1);
    load(slots, 4, WAV, 1);
    slots.bufferLoaded(4, "a");
    running(slots, 2);
    io.take();
    slots.osc("/rig/clear", [4, 2]);
    assert.deepEqual(io.sent(), [["/rig/loaded", 4, "", 2]]);
    assert.equal(slots.slots[3].front, "a");
    running(slots, 3);
    assert.equal(slots.slots[3].front, null);
    const sent = io.sent();
    assert.deepEqual(sent.filter((m) => m[0] === "/rig/playing"), [["/rig/playing", 4, 0]]);
});

test("notes start and stop slots, quantised to the bar or the beat", () => {
    const { slots, io } = device({ autoplay: false });
    running(slots, 1);
    load(slots, 2, WAV, 1);
    slots.bufferLoaded(2, "a");
    running(slots, 2);
    assert.equal(slots.slots[1].audible, false, "autoplay off: waits for a note");
    io.take();
    slots.note(37, 100); // trigger note of slot 2 (36 = slot 1)
    running(slots, 2, 2);
    assert.equal(slots.slots[1].audible, false, "not before the bar");
    running(slots, 3, 1);
    assert.equal(slots.slots[1].audible, true);
    assert.deepEqual(io.sent().filter((m) => m[0] === "/rig/playing"), [["/rig/playing", 2, 1]]);
    slots.set("quantize", 1); // beat
    slots.note(49, 90); // stop note of slot 2
    running(slots, 3, 2);
    assert.equal(slots.slots[1].audible, false);
    slots.note(37, 0); // a note-off does nothing
    slots.note(90, 100); // outside the map
    running(slots, 4, 1);
    assert.equal(slots.slots[1].audible, false);
    slots.set("trigger_note", 60);
    slots.set("quantize", 2); // off: at once
    slots.note(61, 100);
    assert.equal(slots.slots[1].audible, true);
});

test("control changes on the track go on to the rig", () => {
    const { slots, io } = device();
    slots.cc(21, 64);
    slots.cc(200, 1); // not a CC
    slots.cc(21, "x");
    assert.deepEqual(io.sent(), [["/rig/cc", 21, 64]]);
});

test("transport stop silences, start resumes; tempo is reported on change", () => {
    const { slots, io } = device();
    load(slots, 1, WAV, 1);
    slots.bufferLoaded(1, "a");
    io.take();
    running(slots, 1);
    let sent = io.sent();
    assert.deepEqual(sent, [["/rig/tempo", 120.0], ["/rig/playing", 1, 1]]);
    slots.transport(1, 2, 120.0, 1);
    assert.deepEqual(io.sent(), []);
    slots.transport(1, 2, 126.5, 0);
    assert.deepEqual(io.sent(), [["/rig/tempo", 126.5], ["/rig/playing", 1, 0]]);
    assert.deepEqual(io.take("fade").pop(), undefined); // fades were taken by sent()
    slots.transport(1, 2, 126.5, 1);
    assert.deepEqual(io.sent(), [["/rig/playing", 1, 1]]);
    slots.transport(1, 2, 5000, 1); // an impossible tempo is not reported
    assert.deepEqual(io.sent(), []);
});

test("loop lengths follow the time signature and the speed; reverse reaches the player", () => {
    const { slots, io } = device();
    slots.timesig(3, 4);
    load(slots, 1, WAV, 1, 2);
    assert.deepEqual(io.take("loop"), [["loop", 1, "a", 2880]]);
    slots.bufferLoaded(1, "a");
    slots.set("speed", 1, 0); // half speed: twice the ticks
    assert.deepEqual(io.take("loop"), [["loop", 1, "a", 5760]]);
    slots.set("reverse", 1, 1);
    assert.deepEqual(io.take("reverse"), [["reverse", 1, "a", true]]);
    slots.timesig(7, 8);
    assert.deepEqual(io.take("loop"), [["loop", 1, "a", 3360 * 2]]);
    slots.set("speed", 99, 1); // no slot 99
    assert.equal(io.take("log").length, 1);
});

test("the presentation shows state, take names, tempo and the link", () => {
    const { slots, io } = device();
    slots.hello();
    io.take();
    load(slots, 1, WAV, 1);
    assert.match(io.take("display").pop()[2], /^1 empty · loading 0001_dusty_120bpm_2bars$/);
    slots.bufferLoaded(1, "a");
    running(slots, 1);
    assert.equal(slots.slotText(slots.slots[0]), "1 playing: 0001_dusty_120bpm_2bars (2 bars)");
    io.clock = 3000;
    assert.equal(slots.statusText(), "120.00 BPM · rig: heard 3 s ago · takes: /show/takes");
});

test("path rules", () => {
    assert.equal(pathProblem(WAV, TAKES), "");
    assert.equal(pathProblem(WAV, TAKES + "/"), "");
    assert.equal(pathProblem("C:\\show\\takes\\a.wav", "C:\\show\\takes"), "");
    assert.match(pathProblem("/show/takes-old/a.wav", TAKES), /outside/);
    assert.equal(pathProblem("/any/where/a.WAV", ""), "");
    assert.match(pathProblem("", ""), /empty/);
});
