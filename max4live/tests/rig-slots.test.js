// The device logic's pure rules, called directly (the harness tests drive it through the patch).
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const { RigSlots, pathProblem, folderProblem, GLOBAL_QUANT } = require("../rig-slots.js");

function logic(options) {
    const record = { sent: [], logs: [], signals: {} };
    const io = {
        send: (address, args) => record.sent.push([address].concat(args)),
        readBuffer: () => {}, signal: (name, v) => { record.signals[name] = v; },
        click: () => {}, ramps: () => {}, display: () => {}, showWave: () => {},
        showFolder: () => {}, status: () => {}, fileExists: () => true, persist: () => {},
        later: () => {}, now: () => 0, log: (text) => record.logs.push(text),
    };
    return { core: new RigSlots(options, io), record };
}

test("path rules: absolute, no '..', a .wav, inside the take folder; nothing without one", () => {
    const folder = "/show/My Takes";
    assert.equal(pathProblem("/show/My Takes/s1/a b.wav", folder), "");
    assert.equal(pathProblem("C:/show/My Takes/a.WAV", "C:\\show\\My Takes\\"), "");
    assert.match(pathProblem("/show/My Takes/a.wav", ""), /no take folder is set/);
    assert.match(pathProblem("rel/a.wav", folder), /not absolute/);
    assert.match(pathProblem("/show/My Takes/../a.wav", folder), /'\.\.'/);
    assert.match(pathProblem("/show/My Takes/a.aiff", folder), /not a WAV/);
    assert.match(pathProblem("/show/My Takes2/a.wav", folder), /outside the take folder/);
    assert.equal(folderProblem("/x/y z"), "");
    assert.match(folderProblem("x/y"), /not an absolute/);
    assert.match(folderProblem("/x/../y"), /'\.\.'/);
});

test("launch quantum in quarter notes for every choice, Live's global ones included", () => {
    const { core, record } = logic();
    core.timesig(6, 8); // a bar of 3 quarters
    const expected = { 0: 0, 1: 24, 2: 12, 3: 6, 4: 3, 5: 2, 7: 1, 9: 0.5, 11: 0.25, 13: 0.125 };
    core.set("quantize", 3);
    for (const [value, quarters] of Object.entries(expected)) {
        core.set("globalquant", Number(value));
        assert.equal(core.quarters(), quarters, `global ${value}`);
    }
    core.set("globalquant", "clip_trigger_quantization", 7); // live.observer's "name value" form
    assert.equal(core.quarters(), 1);
    assert.equal(GLOBAL_QUANT.length, 14);
    core.set("quantize", 2);
    assert.equal(core.quarters(), 0);
    assert.deepEqual([record.signals.quant, record.signals["quant-on"]], [1, 0]);
    assert.equal(record.signals.barlen, 3);
});

test("a saved state that is not JSON or of another version is ignored, with a log line", () => {
    const { core, record } = logic();
    core.restore("{not json");
    core.restore(JSON.stringify({ v: 99 }));
    assert.deepEqual(record.logs, ["ignored a saved state that is not JSON",
        "ignored a saved state of another version"]);
    assert.equal(core.snapshot(), JSON.stringify({ v: 1, folder: "", slots: [] }));
});
