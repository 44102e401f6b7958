// The Max side of rig-slots.js, run the way Max's [js] runs it: the whole file as a global
// script with Max's globals (outlet, post, messagename, jsarguments, File, this.patcher).
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const vm = require("node:vm");

const SOURCE = fs.readFileSync(path.join(__dirname, "..", "rig-slots.js"), "utf8");

function maxEnvironment(files) {
    const record = { outlets: [], messages: [], posts: [] };
    const context = {
        jsarguments: ["rig-slots.js", 4],
        messagename: "",
        outlet: (index, list) => record.outlets.push([index].concat(list)),
        post: (text) => record.posts.push(text),
        File: function File(p) {
            this.isopen = files.includes(p);
            this.close = () => {};
        },
        patcher: {
            getnamed: (name) => ({
                message: (...args) => record.messages.push([name].concat(args)),
            }),
        },
    };
    vm.createContext(context);
    vm.runInContext(SOURCE, context, { filename: "rig-slots.js" });
    return { context, record };
}

test("Max sees one inlet and one outlet and no Node exports", () => {
    const { context } = maxEnvironment([]);
    assert.equal(context.inlets, 1);
    assert.equal(context.outlets, 1);
    assert.equal(context.module, undefined);
});

test("init says hello with the slot count from the box's argument", () => {
    const { context, record } = maxEnvironment([]);
    context.param("quantize", 1); // restored by Live before the device is ready
    context.init();
    assert.deepEqual(record.outlets[0], [0, "/rig/hello", "rig-slots 1.0 (protocol 1)", 4]);
    assert.equal(context.core.options.quantize, "beat");
    assert.ok(record.messages.some((m) => m[0] === "label-4" && m[1] === "set"));
});

test("OSC in, buffer~ replace, the read-done bang, /rig/loaded out", () => {
    const wav = "/show/takes/a.wav";
    const { context, record } = maxEnvironment([wav]);
    context.init();
    context.messagename = "/rig/load";
    context.anything(2, wav, 120.0, 2, "s-0001", 9);
    assert.deepEqual(record.messages.filter((m) => m[0] === "buf-2-a"), [["buf-2-a", "replace", wav]]);
    assert.deepEqual(record.messages.filter((m) => m[0] === "phasor-2-a"),
        [["phasor-2-a", "list", 3840, "ticks"]]);
    context.loaded(2, "a");
    assert.deepEqual(record.outlets.pop(), [0, "/rig/loaded", 2, "s-0001", 9]);
    context.transport(1, 1, 0, 120.0, 0);
    assert.ok(record.messages.some((m) => m[0] === "status" && m[1] === "set"));
    context.messagename = "not-osc";
    context.anything(1, 2); // not an OSC address: ignored
    context.note(36, 100);
    context.timesig(3, 4);
});
