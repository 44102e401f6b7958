// Clip mode in the built device, against the Live Object Model double: which LiveAPI calls the
// device makes, what Live would hold afterwards, and the errors Live gives reproduced.
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const h = require("./helpers.js");

function withLoop(options = {}) {
    const d = h.device(options);
    const folder = h.takeFolder();
    h.send(d, "/rig/folder", [folder]);
    d.run(0.2);
    const file = h.writeLoop(path.join(folder, "s1", "0001_dusty-drums.wav"), 2.0, () => 0.5);
    return { d, file, lom: d.live.lom };
}

function clip(d, file, reqId, { track = 1, scene = 0, fire = 0, bpm = 120.0, beats = 4 } = {}) {
    h.send(d, "/rig/clip", [track, scene, file, bpm, 1, beats, "dusty drums · s1-0001",
        0xff8800, fire, reqId]);
    d.run(0.2);
}

function creates(lom) {
    return lom.calls.filter((c) => c.op === "call" && c.name === "create_audio_clip");
}

test("a take becomes a warped, looping, named and coloured clip in the next empty slot", () => {
    const { d, file, lom } = withLoop();
    lom.tracks[0].slots[0] = { name: "old", warp_markers: [] }; // scene 1 is taken
    clip(d, file, 7);
    assert.deepEqual(h.sentTo(d, "/rig/clipped"), [[1, 2, 7]]);
    const made = lom.tracks[0].slots[1];
    assert.equal(made.file, file);
    assert.equal(made.name, "dusty drums · s1-0001");
    assert.equal(made.color, 0xff8800);
    assert.equal(made.warping, 1);
    assert.deepEqual(made.warp_markers, [{ beat_time: 0, sample_time: 0 },
        { beat_time: 4, sample_time: 2.0 }]); // 4 quarter notes at 120 BPM = the file's 2 s
    assert.deepEqual([made.looping, made.loop_start, made.loop_end, made.start_marker,
        made.end_marker], [1, 0, 4, 0, 4]);
    assert.equal(made.fired, 0);
    assert.deepEqual(creates(lom).map((c) => [c.path, c.args]),
        [["live_set tracks 0 clip_slots 1", [file]]]);
    assert.equal(d.posts.filter((p) => p.startsWith("Live API")).length, 0); // no Live error
});

test("fire launches it; a retry of the same request makes no second clip", () => {
    const { d, file, lom } = withLoop();
    clip(d, file, 3, { fire: 1, scene: 3 });
    clip(d, file, 3, { fire: 1, scene: 3 }); // the rig re-sent it: answered again
    assert.deepEqual(h.sentTo(d, "/rig/clipped"), [[1, 3, 3], [1, 3, 3]]);
    assert.equal(creates(lom).length, 1);
    assert.equal(lom.tracks[0].slots[2].fired, 1);
    clip(d, file, 4);
    assert.deepEqual(h.sentTo(d, "/rig/clipped")[2], [1, 1, 4]); // the next empty one
});

test("a MIDI track, a full slot, no room and a missing track are refused before Live is asked", () => {
    const { d, file, lom } = withLoop();
    lom.tracks[0].slots[1] = { name: "kept", warp_markers: [] };
    clip(d, file, 1, { track: 2 });
    clip(d, file, 2, { scene: 2 });
    clip(d, file, 3, { track: 5 });
    clip(d, file, 4, { scene: 9 });
    lom.tracks[0].slots = lom.tracks[0].slots.map(() => ({ name: "x", warp_markers: [] }));
    clip(d, file, 5);
    assert.deepEqual(h.sentTo(d, "/rig/error"), [
        [0, 1, "track 2 (2-MIDI) is not an audio track: choose one for the clips"],
        [0, 2, "track 1 (1-Audio) scene 2 already holds a clip"],
        [0, 3, "there is no track 5 (the Set has 2)"],
        [0, 4, "there is no scene 9 (the Set has 4)"],
        [0, 5, "track 1 (1-Audio) has no empty clip slot: add a scene"],
    ]);
    assert.equal(creates(lom).length, 0);
    assert.equal(lom.tracks[0].slots[1].name, "x");
});

test("an older Live gets a clear message and the slots keep working", () => {
    const { d, file, lom } = withLoop();
    lom.version = [12, 0, 4];
    clip(d, file, 1);
    assert.deepEqual(h.sentTo(d, "/rig/error"),
        [[0, 1, "clips need Live 12.0.5 or newer (this is Live 12.0.4); the slots keep working"]]);
    assert.equal(creates(lom).length, 0);
    h.send(d, "/rig/load", [1, file, 120.0, 1, 4, "s1-0001", 2]);
    d.run(0.5);
    assert.deepEqual(h.sentTo(d, "/rig/loaded"), [[1, "s1-0001", 2]]);
});

test("the double answers wrong LiveAPI calls as Live does: an error posted, nothing changed", () => {
    const { d, file, lom } = withLoop();
    const LiveAPI = lom.api();
    lom.tracks[0].slots[0] = { name: "kept", warp_markers: [] };
    new LiveAPI("live_set tracks 0 clip_slots 0").call("create_audio_clip", file);
    new LiveAPI("live_set tracks 1 clip_slots 0").call("create_audio_clip", file);
    assert.deepEqual(d.posts.filter((p) => p.startsWith("Live API")), [
        "Live API: create_audio_clip: Clip slot is not empty",
        "Live API: create_audio_clip: Only audio tracks can contain audio clips",
    ]);
    assert.equal(lom.tracks[0].slots[0].name, "kept");
    assert.equal(lom.tracks[1].slots[0], null);
    assert.equal(new LiveAPI("live_set tracks 9").id, 0);
});

test("a clip outside the take folder or with a bad tempo is refused by name", () => {
    const { d, file } = withLoop();
    clip(d, "/etc/passwd.wav", 1);
    clip(d, file, 2, { bpm: 5 });
    const errors = h.sentTo(d, "/rig/error").map((e) => e[2]);
    assert.match(errors[0], /outside the take folder|not inside/);
    assert.match(errors[1], /tempo 5 is outside 20-999 BPM/);
});
