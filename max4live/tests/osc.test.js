// The Node OSC codec used by the UDP stand-in, against bytes python-osc produces.
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const osc = require("../harness/osc.js");

// python-osc: OscMessageBuilder("/rig/loaded") with 3, "take-1", 7
const LOADED = "2f7269672f6c6f61646564002c697369000000000000000374616b652d31000000000007";

test("encodes like python-osc", () => {
    assert.equal(osc.encode("/rig/loaded", [3, "take-1", 7], "isi").toString("hex"), LOADED);
});

test("decodes ints, floats, strings and padding", () => {
    assert.deepEqual(osc.decode(Buffer.from(LOADED, "hex")),
        { address: "/rig/loaded", args: [3, "take-1", 7], types: "isi" });
    const tempo = osc.decode(osc.encode("/rig/tempo", [126.5], "f"));
    assert.deepEqual(tempo.args, [126.5]);
    const empty = osc.decode(osc.encode("/rig/loaded", [1, "", 2], "isi"));
    assert.deepEqual(empty.args, [1, "", 2]);
});

test("malformed packets throw, so the caller can log and drop them", () => {
    assert.throws(() => osc.decode(Buffer.from("no-address")), /unterminated/);
    assert.throws(() => osc.decode(Buffer.from("#bundle\0\0\0\0\0\0\0\0\0")), /bundles/);
    assert.throws(() => osc.decode(Buffer.from("rig\0")), /not an OSC address/);
    const ping = osc.encode("/rig/ping", [1], "i");
    assert.throws(() => osc.decode(ping.subarray(0, ping.length - 2)), RangeError);
    assert.throws(() => osc.decode(Buffer.from("/x\0\0,q\0\0")), /unknown OSC type q/);
});
