// rig slots — the device logic of the "rig slots" Max for Live instrument.
//
// One file, ES5, for Max's [js] object (Max 8 and 9, Live 11 and 12) and for Node, where the
// tests drive it (module.exports at the end). The logic is the RigSlots object: it is told what
// happens (OSC messages, transport polls, MIDI notes, buffer~ "read done" bangs, parameter
// changes) and acts through an `io` object (send OSC, load a buffer~, fade a player, set a loop
// length, show text). In Max, `io` talks to named objects in the patch; in Node, to test doubles.
//
// The contract with the rig is max4live/PROTOCOL.md (version 1). Per slot there are two players,
// "a" and "b" (a buffer~, a transport-locked phasor~, a wave~ and a line~ gain each): a load goes
// into the back player, and at the next bar the front fades out while the back fades in.

var PROTOCOL_VERSION = "1";
var DEVICE_VERSION = "rig-slots 1.0 (protocol 1)";
var TICKS_PER_QUARTER = 480; // Max's transport resolution
var SEEN_PER_SLOT = 32; // request ids remembered per slot, for duplicate retries
var QUANTIZE = ["bar", "beat", "off"];
var SPEEDS = [0.5, 1, 2];

function defaults(options) {
    var o = options || {};
    return {
        slots: o.slots || 8,
        takeFolder: o.takeFolder || "",
        fadeMs: o.fadeMs === undefined ? 20 : o.fadeMs,
        quantize: o.quantize || "bar",
        triggerNote: o.triggerNote === undefined ? 36 : o.triggerNote, // C1: slot 1
        stopNote: o.stopNote === undefined ? 48 : o.stopNote, // C2: stop slot 1
        autoplay: o.autoplay === undefined ? true : o.autoplay,
        loadTimeoutMs: o.loadTimeoutMs || 10000
    };
}

function RigSlots(options, io) {
    this.options = defaults(options);
    this.io = io;
    this.slots = [];
    for (var n = 1; n <= this.options.slots; n++) {
        this.slots.push(newSlot(n));
    }
    this.transportState = { running: false, bar: 0, beat: 0, tempo: 0, num: 4, den: 4 };
    this.lastRigMessage = null;
    this.lastStatus = null;
}

function newSlot(number) {
    return {
        number: number,
        front: null, // "a" | "b" | null: the player that is heard
        loop: null, // {path, takeId, bars, bpm, reqId} of the front player
        pending: null, // {kind, reqId, key, path, takeId, bars, bpm, side, stage, since, inflight}
        inflight: { a: 0, b: 0 }, // buffer~ loads sent and not yet answered, per player
        on: false, // triggered: plays whenever the transport runs and there is a loop
        launch: null, // {on: bool, at: "bar"|"beat"} a quantised start or stop
        audible: false, // what was last reported with /rig/playing
        reverse: false,
        speed: 1,
        seen: [], // [{reqId, key, outcome, message}], newest last
        shown: null // the text on display
    };
}

// -- helpers --------------------------------------------------------------------------------------
function isInt(x) {
    return typeof x === "number" && isFinite(x) && Math.floor(x) === x;
}

function isNum(x) {
    return typeof x === "number" && isFinite(x);
}

function baseName(path) {
    var parts = String(path).split(/[\\/]/);
    return parts[parts.length - 1].replace(/\.wav$/i, "");
}

function normalizeFolder(path) {
    var p = String(path).replace(/\\/g, "/");
    return p.charAt(p.length - 1) === "/" ? p : p + "/";
}

// Why a path may not be loaded, or "" when it may.
function pathProblem(path, takeFolder) {
    if (typeof path !== "string" || path === "") {
        return "the path is empty";
    }
    var p = path.replace(/\\/g, "/");
    if (!(p.charAt(0) === "/" || /^[A-Za-z]:\//.test(p))) {
        return "the path is not absolute: " + path;
    }
    if (/(^|\/)\.\.(\/|$)/.test(p)) {
        return "the path contains '..': " + path;
    }
    if (!/\.wav$/i.test(p)) {
        return "not a WAV file: " + path;
    }
    if (takeFolder && p.indexOf(normalizeFolder(takeFolder)) !== 0) {
        return "outside the take folder " + takeFolder + ": " + path;
    }
    return "";
}

// -- requests from the rig ----------------------------------------------------------------------
RigSlots.prototype.hello = function () {
    this.io.send("/rig/hello", [DEVICE_VERSION, this.options.slots], "si");
    if (this.transportState.tempo) {
        this.io.send("/rig/tempo", [this.transportState.tempo], "f");
    }
    this.showAll();
};

// An OSC message from [udpreceive]: address and argument list. Never throws.
RigSlots.prototype.osc = function (address, args) {
    args = args || [];
    this.lastRigMessage = this.io.now();
    if (address === "/rig/load") {
        return this.onLoad(args);
    }
    if (address === "/rig/clear") {
        return this.onClear(args);
    }
    if (address === "/rig/ping") {
        if (args.length !== 1 || !isInt(args[0])) {
            return this.drop(address, args, "expects one int token");
        }
        return this.io.send("/rig/pong", [args[0]], "i");
    }
    return this.drop(address, args, "unknown address");
};

RigSlots.prototype.drop = function (address, args, why) {
    this.io.log("dropped " + address + " " + JSON.stringify(args) + ": " + why);
};

RigSlots.prototype.slotAt = function (number) {
    return isInt(number) && number >= 1 && number <= this.slots.length
        ? this.slots[number - 1]
        : null;
};

RigSlots.prototype.onLoad = function (args) {
    var a = args;
    if (a.length !== 6 || !isInt(a[0]) || typeof a[1] !== "string" || !isNum(a[2]) ||
            !isInt(a[3]) || typeof a[4] !== "string" || !isInt(a[5])) {
        return this.drop("/rig/load", a, "expects slot:i path:s bpm:f bars:i take_id:s req_id:i");
    }
    var slot = this.slotAt(a[0]);
    if (!slot) {
        return this.drop("/rig/load", a, "no slot " + a[0] + " (1-" + this.slots.length + ")");
    }
    var request = {
        kind: "load", reqId: a[5], key: "load " + a[1] + " " + a[4], path: a[1],
        takeId: a[4], bpm: a[2], bars: a[3]
    };
    if (this.repeatAnswer(slot, request)) {
        return;
    }
    var problem = pathProblem(request.path, this.options.takeFolder);
    if (!problem && !(request.bpm >= 20 && request.bpm <= 999)) {
        problem = "tempo " + request.bpm + " is outside 20-999 BPM";
    }
    if (!problem && !(request.bars >= 1 && request.bars <= 256)) {
        problem = "bars " + request.bars + " is outside 1-256";
    }
    if (!problem && !this.io.fileExists(request.path)) {
        problem = "no readable file at " + request.path;
    }
    if (problem) {
        return this.fail(slot, request, problem);
    }
    this.supersede(slot);
    var side = slot.front === "a" ? "b" : "a";
    request.side = side;
    request.stage = "loading";
    request.since = this.io.now();
    slot.pending = request;
    this.remember(slot, request, "loading", "");
    slot.inflight[side] += 1;
    this.io.setLoop(slot.number, side, this.loopTicks(request.bars, slot.speed));
    this.io.loadBuffer(slot.number, side, request.path);
    this.show(slot);
};

RigSlots.prototype.onClear = function (args) {
    if (args.length !== 2 || !isInt(args[0]) || !isInt(args[1])) {
        return this.drop("/rig/clear", args, "expects slot:i req_id:i");
    }
    var slot = this.slotAt(args[0]);
    if (!slot) {
        return this.drop("/rig/clear", args, "no slot " + args[0]);
    }
    var request = { kind: "clear", reqId: args[1], key: "clear" };
    if (this.repeatAnswer(slot, request)) {
        return;
    }
    this.supersede(slot);
    request.stage = "ready";
    slot.pending = request;
    this.remember(slot, request, "loaded", "");
    this.io.send("/rig/loaded", [slot.number, "", request.reqId], "isi");
    this.scheduleSwap(slot);
};

// A retry of a request already seen (same req_id and same content) is answered as before and
// never loaded twice. The same req_id with other content is a new request (the rig restarted).
RigSlots.prototype.repeatAnswer = function (slot, request) {
    for (var i = slot.seen.length - 1; i >= 0; i--) {
        var seen = slot.seen[i];
        if (seen.reqId !== request.reqId || seen.key !== request.key) {
            continue;
        }
        if (seen.outcome === "loaded") {
            var takeId = request.kind === "clear" ? "" : request.takeId;
            this.io.send("/rig/loaded", [slot.number, takeId, request.reqId], "isi");
        } else if (seen.outcome === "failed") {
            this.io.send("/rig/error", [slot.number, request.reqId, seen.message], "iis");
        }
        return true; // "loading" answers when done; "superseded" is never answered
    }
    return false;
};

RigSlots.prototype.remember = function (slot, request, outcome, message) {
    for (var i = 0; i < slot.seen.length; i++) {
        if (slot.seen[i].reqId === request.reqId && slot.seen[i].key === request.key) {
            slot.seen[i].outcome = outcome;
            slot.seen[i].message = message;
            return;
        }
    }
    slot.seen.push({ reqId: request.reqId, key: request.key, outcome: outcome, message: message });
    if (slot.seen.length > SEEN_PER_SLOT) {
        slot.seen.shift();
    }
};

RigSlots.prototype.supersede = function (slot) {
    if (slot.pending) {
        this.remember(slot, slot.pending, "superseded", "");
        slot.pending = null;
    }
};

RigSlots.prototype.fail = function (slot, request, message) {
    this.remember(slot, request, "failed", message);
    this.io.send("/rig/error", [slot.number, request.reqId, message], "iis");
    this.io.log("slot " + slot.number + ": " + message);
    this.show(slot);
};

// -- buffer~ answers and time-outs ---------------------------------------------------------------
// A buffer~ finished reading (its right outlet banged) for player `side` of slot `number`.
RigSlots.prototype.bufferLoaded = function (number, side) {
    var slot = this.slotAt(number);
    if (!slot || (side !== "a" && side !== "b")) {
        return this.io.log("ignored a buffer answer for slot " + number + " player " + side);
    }
    slot.inflight[side] = Math.max(0, slot.inflight[side] - 1);
    var p = slot.pending;
    if (!p || p.kind !== "load" || p.side !== side || p.stage !== "loading" ||
            slot.inflight[side] > 0) {
        return; // an answer to a load that a newer one replaced
    }
    p.stage = "ready";
    this.remember(slot, p, "loaded", "");
    this.io.send("/rig/loaded", [slot.number, p.takeId, p.reqId], "isi");
    this.scheduleSwap(slot);
};

// Called on every transport poll: loads that never answered fail, the slot keeps its loop.
RigSlots.prototype.checkTimeouts = function () {
    var now = this.io.now();
    for (var i = 0; i < this.slots.length; i++) {
        var slot = this.slots[i];
        var p = slot.pending;
        if (p && p.stage === "loading" && now - p.since > this.options.loadTimeoutMs) {
            slot.pending = null;
            this.fail(slot, p, "the file did not load within " +
                Math.round(this.options.loadTimeoutMs / 1000) + " s");
        }
    }
};

// -- swaps on the bar ------------------------------------------------------------------------------
RigSlots.prototype.scheduleSwap = function (slot) {
    if (!this.transportState.running) {
        this.swap(slot); // nothing is heard: no need to wait for the bar
    } else {
        slot.pending.swapOnNextBar = true;
        this.show(slot);
    }
};

RigSlots.prototype.swap = function (slot) {
    var p = slot.pending;
    var fade = this.options.fadeMs;
    slot.pending = null;
    if (slot.front) {
        this.io.setFade(slot.number, slot.front, 0, fade);
    }
    if (p.kind === "clear") {
        slot.front = null;
        slot.loop = null;
    } else {
        if (!slot.loop && this.options.autoplay) {
            slot.on = true; // a first loop in an idle slot starts playing
        }
        slot.front = p.side;
        slot.loop = { path: p.path, takeId: p.takeId, bars: p.bars, bpm: p.bpm, reqId: p.reqId };
        this.io.setReverse(slot.number, p.side, slot.reverse);
    }
    this.updateAudible(slot, true);
};

// Fade the front player in or out to match what should be heard, and report changes.
RigSlots.prototype.updateAudible = function (slot, force) {
    var audible = slot.on && this.transportState.running && slot.front !== null;
    if (slot.front && (force || audible !== slot.audible)) {
        this.io.setFade(slot.number, slot.front, audible ? 1 : 0, this.options.fadeMs);
    }
    if (audible !== slot.audible) {
        slot.audible = audible;
        this.io.send("/rig/playing", [slot.number, audible ? 1 : 0], "ii");
    }
    this.show(slot);
};

// -- transport --------------------------------------------------------------------------------
// A poll of Live's transport: bar and beat (from 1), tempo (BPM), running (0/1).
RigSlots.prototype.transport = function (bar, beat, tempo, running) {
    var t = this.transportState;
    var newBar = bar !== t.bar;
    var newBeat = newBar || beat !== t.beat;
    var wasRunning = t.running;
    t.bar = bar;
    t.beat = beat;
    t.running = !!running;
    if (isNum(tempo) && tempo >= 20 && tempo <= 999 && Math.abs(tempo - t.tempo) > 1e-3) {
        t.tempo = tempo;
        this.io.send("/rig/tempo", [tempo], "f");
        this.io.status(this.statusText());
    }
    for (var i = 0; i < this.slots.length; i++) {
        var slot = this.slots[i];
        if (t.running && wasRunning) {
            this.onTime(slot, newBar, newBeat);
        } else if (slot.pending && slot.pending.swapOnNextBar && !t.running) {
            this.swap(slot);
        }
        if (slot.launch && (!t.running || this.options.quantize === "off")) {
            this.applyLaunch(slot);
        }
        this.updateAudible(slot, false);
    }
    this.checkTimeouts();
    if (this.lastStatus === null || this.io.now() - this.lastStatus >= 1000) {
        this.lastStatus = this.io.now();
        this.io.status(this.statusText());
    }
};

RigSlots.prototype.onTime = function (slot, newBar, newBeat) {
    if (newBar && slot.pending && slot.pending.swapOnNextBar) {
        this.swap(slot);
    }
    if (slot.launch && (newBar || (newBeat && slot.launch.at === "beat"))) {
        this.applyLaunch(slot);
    }
};

RigSlots.prototype.timesig = function (num, den) {
    if (isInt(num) && isInt(den) && num > 0 && den > 0) {
        this.transportState.num = num;
        this.transportState.den = den;
        for (var i = 0; i < this.slots.length; i++) {
            this.refreshLoopLength(this.slots[i]);
        }
    }
};

// Transport ticks of one pass of a loop of `bars` bars at `speed` (0.5, 1 or 2).
RigSlots.prototype.loopTicks = function (bars, speed) {
    var t = this.transportState;
    return Math.round(bars * t.num * TICKS_PER_QUARTER * 4 / t.den / speed);
};

RigSlots.prototype.refreshLoopLength = function (slot) {
    if (slot.loop) {
        this.io.setLoop(slot.number, slot.front, this.loopTicks(slot.loop.bars, slot.speed));
    }
    if (slot.pending && slot.pending.kind === "load") {
        this.io.setLoop(slot.number, slot.pending.side,
            this.loopTicks(slot.pending.bars, slot.speed));
    }
};

// -- MIDI notes and parameters ---------------------------------------------------------------
// A note from the track: trigger notes start slots, stop notes stop them (quantised).
RigSlots.prototype.note = function (pitch, velocity) {
    if (!isInt(pitch) || !isNum(velocity) || velocity <= 0) {
        return; // note-offs do nothing: slots are triggered, not held
    }
    var o = this.options;
    var start = pitch - o.triggerNote;
    var stop = pitch - o.stopNote;
    var number = start >= 0 && start < this.slots.length ? start + 1 :
        stop >= 0 && stop < this.slots.length ? stop + 1 : 0;
    if (!number) {
        return;
    }
    var slot = this.slots[number - 1];
    slot.launch = { on: number === start + 1, at: o.quantize };
    if (!this.transportState.running || o.quantize === "off") {
        this.applyLaunch(slot);
        this.updateAudible(slot, false);
    } else {
        this.show(slot);
    }
};

// A control change on the track: forwarded to the rig, which maps it (midi.toml).
RigSlots.prototype.cc = function (number, value) {
    if (isInt(number) && isInt(value) && number >= 0 && number <= 127 && value >= 0 &&
            value <= 127) {
        this.io.send("/rig/cc", [number, value], "ii");
    }
};

RigSlots.prototype.applyLaunch = function (slot) {
    slot.on = slot.launch.on;
    slot.launch = null;
};

// A device setting or per-slot parameter: name, then values.
RigSlots.prototype.set = function (name, a, b) {
    var slot;
    if (name === "reverse" || name === "speed") {
        slot = this.slotAt(a);
        if (!slot || !isNum(b)) {
            return this.io.log("ignored " + name + " " + a + " " + b);
        }
        if (name === "reverse") {
            slot.reverse = b !== 0;
            if (slot.front) {
                this.io.setReverse(slot.number, slot.front, slot.reverse);
            }
        } else {
            slot.speed = SPEEDS[Math.max(0, Math.min(SPEEDS.length - 1, Math.round(b)))];
            this.refreshLoopLength(slot);
        }
        return this.show(slot);
    }
    if (name === "takes") {
        this.options.takeFolder = typeof a === "string" ? a : "";
    } else if (name === "quantize" && isNum(a)) {
        this.options.quantize = QUANTIZE[Math.max(0, Math.min(2, Math.round(a)))];
    } else if (name === "trigger_note" && isInt(a)) {
        this.options.triggerNote = a;
    } else if (name === "stop_note" && isInt(a)) {
        this.options.stopNote = a;
    } else if (name === "autoplay" && isNum(a)) {
        this.options.autoplay = a !== 0;
    } else {
        return this.io.log("ignored setting " + name + " " + a);
    }
    this.io.status(this.statusText());
};

// -- presentation ------------------------------------------------------------------------------
RigSlots.prototype.slotText = function (slot) {
    var state = slot.audible ? "playing" : slot.on && slot.loop ? "armed" :
        slot.loop ? "stopped" : "empty";
    var text = slot.number + " " + state;
    if (slot.loop) {
        text += ": " + baseName(slot.loop.path) + " (" + slot.loop.bars + " bars)";
    }
    if (slot.pending) {
        text += slot.pending.stage === "loading" ? " · loading " + baseName(slot.pending.path || "") :
            slot.pending.kind === "clear" ? " · clears on the bar" : " · next bar: " +
            baseName(slot.pending.path);
    }
    if (slot.launch) {
        text += slot.launch.on ? " · starts on the " + slot.launch.at : " · stops on the " +
            slot.launch.at;
    }
    if (slot.reverse || slot.speed !== 1) {
        text += " ·" + (slot.reverse ? " reverse" : "") + (slot.speed !== 1 ? " ×" + slot.speed : "");
    }
    return text;
};

RigSlots.prototype.statusText = function () {
    var t = this.transportState;
    var heard = this.lastRigMessage === null ? "rig: not heard from yet" :
        "rig: heard " + Math.round((this.io.now() - this.lastRigMessage) / 1000) + " s ago";
    return (t.tempo ? t.tempo.toFixed(2) + " BPM" : "tempo: -") + " · " + heard + " · takes: " +
        (this.options.takeFolder || "any folder (set one)");
};

RigSlots.prototype.show = function (slot) {
    var text = this.slotText(slot);
    if (text !== slot.shown) {
        slot.shown = text;
        this.io.display(slot.number, text);
    }
};

RigSlots.prototype.showAll = function () {
    for (var i = 0; i < this.slots.length; i++) {
        this.show(this.slots[i]);
    }
    this.io.status(this.statusText());
};

// -- Max glue ------------------------------------------------------------------------------------
// In Max: one inlet (everything arrives as messages), one outlet (to [udpsend]).
// Messages in: "init", OSC ("/rig/load ..."), "transport bar beat units tempo running",
// "timesig n d", "note pitch velocity", "cc number value", "loaded slot side",
// "param name args...".
var maxThis = this;
var core = null;
var earlyParams = []; // Live restores parameters before the device is ready: applied at init

function maxIo() {
    return {
        send: function (address, args) {
            outlet(0, [address].concat(args));
        },
        loadBuffer: function (slot, side, path) {
            named("buf-" + slot + "-" + side).message("replace", path);
        },
        setFade: function (slot, side, gain, ms) {
            named("fade-" + slot + "-" + side).message("list", gain, ms);
        },
        setLoop: function (slot, side, ticks) {
            named("phasor-" + slot + "-" + side).message("list", ticks, "ticks");
        },
        setReverse: function (slot, side, on) {
            named("direction-" + slot + "-" + side).message("int", on ? 2 : 1);
        },
        display: function (slot, text) {
            named("label-" + slot).message("set", text);
        },
        status: function (text) {
            named("status").message("set", text);
        },
        fileExists: function (path) {
            var f = new File(path, "read");
            var ok = f.isopen;
            f.close();
            return ok;
        },
        now: function () {
            return new Date().getTime();
        },
        log: function (text) {
            post("rig slots: " + text + "\n");
        }
    };
}

function named(name) {
    var box = maxThis.patcher.getnamed(name);
    if (!box) {
        throw new Error("the patch has no object named " + name);
    }
    return box;
}

function init() {
    var slots = typeof jsarguments !== "undefined" && jsarguments.length > 1 ? jsarguments[1] : 8;
    core = new RigSlots({ slots: slots }, maxIo());
    for (var i = 0; i < earlyParams.length; i++) {
        core.set(earlyParams[i][0], earlyParams[i][1], earlyParams[i][2]);
    }
    earlyParams = [];
    core.hello();
}

function anything() {
    var args = Array.prototype.slice.call(arguments);
    if (core && typeof messagename === "string" && messagename.indexOf("/") === 0) {
        core.osc(messagename, args);
    }
}

function transport(bar, beat, units, tempo, running) {
    if (core) {
        core.transport(bar, beat, tempo, running);
    }
}

function timesig(num, den) {
    if (core) {
        core.timesig(num, den);
    }
}

function note(pitch, velocity) {
    if (core) {
        core.note(pitch, velocity);
    }
}

function cc(number, value) {
    if (core) {
        core.cc(number, value);
    }
}

function loaded(slot, side) {
    if (core) {
        core.bufferLoaded(slot, side);
    }
}

function param(name, a, b) {
    if (core) {
        core.set(name, a, b);
    } else {
        earlyParams.push([name, a, b]);
    }
}

if (typeof module !== "undefined" && module.exports) {
    module.exports = {
        RigSlots: RigSlots,
        pathProblem: pathProblem,
        PROTOCOL_VERSION: PROTOCOL_VERSION,
        DEVICE_VERSION: DEVICE_VERSION
    };
} else {
    inlets = 1;
    outlets = 1;
    autowatch = 0;
}
