// The Max double: loads a built device (.amxd or patcher JSON) and runs it object by object.
//
// What it models, and how (max4live/README.md has the list of what only Live can check):
// - every box of the patch is an object of control.js, signal.js or [js] (the real script run
//   in a vm context with Max's globals); an object it does not know is an error at load, so the
//   double can never silently skip part of the device;
// - patch cords carry messages depth-first; a fan-out goes right to left (destination x), as
//   Max orders it;
// - two threads: the scheduler (metro, transport, MIDI, edge~ reports, parameter changes) runs
//   at once; messages into [js], udpreceive's packets, buffer~'s "read done" and js Tasks go
//   through the low-priority queue and run `jsLatencyMs` later (a number, or a function for a
//   random latency) — so the tests see whether anything depends on when [js] runs;
// - MSP: every signal object processes 64-sample vectors in cord order; control messages take
//   effect between vectors; Live's transport (tempo, time signature, position in ticks, running)
//   advances per sample and feeds phasor~ @lock 1;
// - Live: parameters (types, ranges — Int holds 0-255 —, initial values), the Set's saved state
//   (parameter values and Blob parameters through getvalueof/setvalueof), live.thisdevice
//   banging after the restore, a Live Object Model double for live.path/live.observer.
"use strict";

const fs = require("node:fs");
const path = require("node:path");
const vm = require("node:vm");
const control = require("./control.js");
const signal = require("./signal.js");
const { readWav } = require("./wav.js");

const UI_CLASSES = new Set(["message", "comment", "live.comment", "textedit", "live.text",
    "live.numbox", "live.dial", "live.tab", "waveform~"]);

// Read an .amxd (32-byte ampf/meta/ptch header + JSON + NUL) or a .maxpat / JSON patcher.
function readPatcher(file) {
    const data = fs.readFileSync(file);
    const json = data.toString("ascii", 0, 4) === "ampf" ? data.subarray(32) : data;
    return JSON.parse(json.toString("utf8").replace(/\0+$/, ""));
}

class Live {
    constructor() {
        this.running = false;
        this.tempo = 120;
        this.ticks = 0;
        this.num = 4;
        this.den = 4;
        this.lom = new LiveObjectModel();
    }
}

// The Live Object Model as far as the device uses it: live_set's clip_trigger_quantization
// (live.path/live.observer), and for the clip mode live_app's version and the Session View —
// tracks (audio or MIDI, named), scenes, clip slots and the clips made in them — through
// LiveAPI in [js]. Every get, set and call is recorded (`calls`). Like Live, a wrong request is
// not an exception in [js]: Live posts an error to the Max window and changes nothing; the
// double does the same with the messages Live posts (`posts` of the device).
class LiveObjectModel {
    constructor() {
        this.properties = { clip_trigger_quantization: 4 }; // Live's default: 1 Bar
        this.observers = [];
        this.version = [12, 1, 10];
        this.tracks = [{ name: "1-Audio", audio: true, slots: [null, null, null, null] },
            { name: "2-MIDI", audio: false, slots: [null, null, null, null] }];
        this.calls = []; // {path, op: "get"|"set"|"call"|"getcount", name, args}
        this.post = () => {};
    }

    idOf(lomPath) {
        if (lomPath !== "live_set") {
            throw new Error("the LOM double knows live_set only, not " + lomPath);
        }
        return 1;
    }

    observe(id, property, callback) {
        if (!(property in this.properties)) {
            throw new Error("the LOM double has no property " + property);
        }
        this.observers.push({ property, callback });
        callback(this.properties[property]);
    }

    set(property, value) {
        this.properties[property] = value;
        this.observers.filter((o) => o.property === property).forEach((o) => o.callback(value));
    }

    // -- LiveAPI --------------------------------------------------------------------------------
    // What a canonical path points at: {kind, track, slot} or null.
    resolve(lomPath) {
        const p = String(lomPath).trim().split(/\s+/);
        if (p.join(" ") === "live_set" || p.join(" ") === "live_app") {
            return { kind: p[0] };
        }
        if (p[0] !== "live_set" || p[1] !== "tracks" || !/^\d+$/.test(p[2] || "")) {
            return null;
        }
        const track = this.tracks[Number(p[2])];
        if (!track) {
            return null;
        }
        if (p.length === 3) {
            return { kind: "track", track };
        }
        if (p[3] !== "clip_slots" || !/^\d+$/.test(p[4] || "") || Number(p[4]) >= track.slots.length) {
            return null;
        }
        const slot = Number(p[4]);
        if (p.length === 5) {
            return { kind: "clip_slot", track, slot };
        }
        if (p.length === 6 && p[5] === "clip" && track.slots[slot]) {
            return { kind: "clip", track, slot, clip: track.slots[slot] };
        }
        return null;
    }

    api() {
        const lom = this;
        return function LiveAPI(lomPath) {
            const target = lom.resolve(lomPath);
            this.path = String(lomPath);
            this.id = target ? 1 : 0;
            const log = (op, name, args) => lom.calls.push({ path: this.path, op, name, args });
            this.get = (name) => {
                log("get", name, []);
                return target ? [lom.read(target, name)] : [];
            };
            this.set = (name, value) => {
                log("set", name, [value]);
                if (target) {
                    lom.write(target, name, value);
                }
            };
            this.getcount = (child) => {
                log("getcount", child, []);
                if (target && target.kind === "live_set") {
                    return child === "tracks" ? lom.tracks.length : lom.scenes();
                }
                return 0;
            };
            this.call = (name, ...args) => {
                log("call", name, args);
                return target ? lom.invoke(target, name, args) : lom.error("invalid path " + this.path);
            };
        };
    }

    scenes() {
        return this.tracks.reduce((n, t) => Math.max(n, t.slots.length), 0);
    }

    error(text) {
        this.post("Live API: " + text);
        return undefined;
    }

    read(target, name) {
        if (target.kind === "track") {
            return { name: target.track.name, has_audio_input: target.track.audio ? 1 : 0,
                has_midi_input: target.track.audio ? 0 : 1 }[name];
        }
        if (target.kind === "clip_slot") {
            return name === "has_clip" ? (target.track.slots[target.slot] ? 1 : 0) : undefined;
        }
        if (target.kind === "clip") {
            return target.clip[name];
        }
        return undefined;
    }

    write(target, name, value) {
        if (target.kind !== "clip") {
            return this.error("cannot set " + name);
        }
        const clip = target.clip;
        if (name === "loop_start" && value >= clip.loop_end) {
            return this.error("loop_start must be before loop_end");
        }
        clip[name] = value;
    }

    invoke(target, name, args) {
        if (target.kind === "live_app" && /^get_(major|minor|bugfix)_version$/.test(name)) {
            return this.version[["major", "minor", "bugfix"].indexOf(name.split("_")[1])];
        }
        if (target.kind === "clip_slot" && name === "create_audio_clip") {
            return this.createAudioClip(target, args);
        }
        if (target.kind === "clip_slot" && name === "fire") {
            target.track.slots[target.slot].fired = (target.track.slots[target.slot].fired || 0) + 1;
            return undefined;
        }
        if (target.kind === "clip" && name === "add_warp_marker") {
            const marker = args[0] && args[0].entries ? args[0].entries : {};
            const markers = target.clip.warp_markers;
            if (markers.some((m) => m.beat_time === marker.beat_time)) {
                return this.error("add_warp_marker: a warp marker exists at that beat");
            }
            markers.push({ beat_time: marker.beat_time, sample_time: marker.sample_time });
            markers.sort((x, y) => x.beat_time - y.beat_time);
            return undefined;
        }
        return this.error("invalid function " + name);
    }

    createAudioClip(target, args) {
        if (this.version[0] < 12 || (this.version[0] === 12 && this.version[1] === 0 && this.version[2] < 5)) {
            return this.error("invalid function create_audio_clip");
        }
        if (!target.track.audio) {
            return this.error("create_audio_clip: Only audio tracks can contain audio clips");
        }
        if (target.track.slots[target.slot]) {
            return this.error("create_audio_clip: Clip slot is not empty");
        }
        const file = String(args[0] || "");
        if (!fs.existsSync(file)) {
            return this.error("create_audio_clip: invalid file " + file);
        }
        const wav = readWav(file);
        const seconds = wav.channels[0].length / wav.rate;
        // Live's own warping of a new short loop: a whole number of bars at a guessed tempo.
        target.track.slots[target.slot] = { file, name: path.basename(file, ".wav"), color: 0,
            warping: 1, looping: 0, loop_start: 0, loop_end: 8, start_marker: 0, end_marker: 8,
            warp_markers: [{ beat_time: 0, sample_time: 0 }], seconds, fired: 0 };
        return undefined;
    }
}

// A Max Dict as [js] sees one: set and get by key.
function MaxDict() {
    this.entries = {};
    this.set = (key, value) => { this.entries[key] = value; };
    this.get = (key) => this.entries[key];
}

class MaxDevice {
    constructor(options = {}) {
        this.sampleRate = options.sampleRate || 44100;
        this.vector = 64;
        this.jsLatencyMs = options.jsLatencyMs === undefined ? 10 : options.jsLatencyMs;
        this.readMs = options.readMs || 5;
        this.scriptDir = options.scriptDir || path.join(__dirname, "..");
        this.udpOut = options.udpOut || (() => {});
        this.uid = options.uid || "017"; // what Max puts for "---"
        this.live = options.live || new Live();
        this.live.lom.post = (text) => this.post(text); // Live's errors go to the Max window
        this.time = 0; // samples
        this.events = []; // {time, seq, fn}
        this.seq = 0;
        this.objects = {};
        this.boxes = {};
        this.cords = {}; // "id:outlet" → [{id, inlet}]
        this.buffers = {};
        this.udpIn = new Map();
        this.sent = []; // every OSC message udpsend sent
        this.reads = []; // every buffer~ read
        this.posts = []; // the Max window
        this.undoSteps = 0; // notifyclients() calls: a Blob change Live stores (and can undo)
        this.dialogAnswer = null;
        this.recorded = [[], []];
        this.quarters = []; // Live's position in quarter notes at each recorded sample
        this.after = [];
        this.constants = new Map();
    }

    // -- loading ----------------------------------------------------------------------------
    load(patcher, saved = null) {
        const p = patcher.patcher;
        p.boxes.forEach((entry) => this.create(entry.box));
        p.lines.forEach((entry) => {
            const line = entry.patchline;
            const key = line.source[0] + ":" + line.source[1];
            (this.cords[key] = this.cords[key] || []).push({ id: line.destination[0],
                inlet: line.destination[1] });
        });
        for (const key of Object.keys(this.cords)) { // right to left, as Max orders a fan-out
            this.cords[key].sort((a, b) => this.boxes[b.id].patching_rect[0] -
                this.boxes[a.id].patching_rect[0]);
        }
        this.compileSignals(p.lines);
        this.restore(saved);
        for (const id of Object.keys(this.objects)) {
            if (this.objects[id].constructor.name === "DspState") {
                this.objects[id].report(); // audio is on in Live
            }
        }
        this.thisDevice();
        return this;
    }

    create(box) {
        this.boxes[box.id] = box;
        let object;
        if (box.maxclass === "newobj") {
            const text = this.substitute(box.text);
            const tokens = control.parseAtoms(text.replace(/@.*$/, ""));
            const name = String(tokens[0]);
            const args = tokens.slice(1);
            const attrs = {};
            (text.match(/@\S+\s+\S+/g) || []).forEach((pair) => {
                const [key, value] = pair.slice(1).split(/\s+/);
                attrs[key] = value;
            });
            object = name === "js" ? new JsBox(this, box, args) :
                signal.create(this, box, name, args, attrs) || control.create(this, box, name, args);
        } else if (UI_CLASSES.has(box.maxclass)) {
            object = control.create(this, box, box.maxclass, []);
        }
        if (!object) {
            throw new Error("the Max double has no model of " + (box.text || box.maxclass) +
                " (" + box.id + ")");
        }
        this.objects[box.id] = object;
    }

    // "---name" becomes "<uid>name", as Max does per device instance.
    substitute(text) {
        return String(text).replace(/(^|\s)---/g, "$1" + this.uid);
    }

    compileSignals(lines) {
        const isSignal = (id) => typeof this.objects[id].perform === "function";
        const ids = Object.keys(this.objects).filter(isSignal);
        this.inputs = {};
        this.outputs = {};
        const incoming = {};
        ids.forEach((id) => {
            incoming[id] = new Set();
            this.inputs[id] = [];
            const count = Math.max(1, this.objects[id].signalOutlets);
            this.outputs[id] = Array.from({ length: count }, () => new Float64Array(this.vector));
        });
        this.signalCords = lines.map((e) => e.patchline).filter((l) =>
            isSignal(l.source[0]) && isSignal(l.destination[0]));
        this.signalCords.forEach((l) => incoming[l.destination[0]].add(l.source[0]));
        this.order = [];
        const done = new Set();
        const visit = (id, stack) => {
            if (done.has(id)) {
                return;
            }
            if (stack.has(id)) {
                throw new Error("a signal loop through " + this.boxes[id].text);
            }
            stack.add(id);
            incoming[id].forEach((source) => visit(source, stack));
            stack.delete(id);
            done.add(id);
            this.order.push(id);
        };
        ids.forEach((id) => visit(id, new Set()));
        this.feeds = {}; // id → inlet → [[source, outlet]]
        this.signalCords.forEach((l) => {
            const inlets = (this.feeds[l.destination[0]] = this.feeds[l.destination[0]] || {});
            (inlets[l.destination[1]] = inlets[l.destination[1]] || []).push(l.source);
        });
    }

    // Live restores the saved parameter values (each parameter sends it), then Blob states,
    // then live.thisdevice bangs.
    restore(saved) {
        const values = (saved && saved.parameters) || {};
        for (const object of this.parameters()) {
            const name = object.spec.parameter_longname;
            if (name in values) {
                object.value = object.constrain(values[name]);
            }
            object.send();
        }
        for (const js of this.scripts()) {
            const name = js.parameterName();
            if (saved && name && saved.blobs && name in saved.blobs) {
                js.setvalueof(saved.blobs[name]);
            }
        }
    }

    thisDevice() {
        for (const id of Object.keys(this.objects)) {
            if (this.objects[id].constructor.name === "ThisDevice") {
                this.output(id, 0, "bang", []);
            }
        }
    }

    // -- Live: the Set, parameters, transport --------------------------------------------------
    saveSet() {
        const parameters = {};
        for (const object of this.parameters()) {
            if (Number(object.spec.parameter_invisible || 0) !== 2) { // Hidden is not stored
                parameters[object.spec.parameter_longname] = object.value;
            }
        }
        const blobs = {};
        for (const js of this.scripts()) {
            if (js.parameterName()) {
                blobs[js.parameterName()] = js.getvalueof();
            }
        }
        return JSON.parse(JSON.stringify({ parameters, blobs }));
    }

    parameters() {
        return Object.values(this.objects).filter((o) => o.spec && o.spec.parameter_longname);
    }

    scripts() {
        return Object.values(this.objects).filter((o) => o instanceof JsBox);
    }

    parameter(longname) {
        const found = this.parameters().find((o) => o.spec.parameter_longname === longname);
        if (!found) {
            throw new Error("no parameter named " + longname);
        }
        return found;
    }

    setParameter(longname, value) {
        this.parameter(longname).change(value);
    }

    presetRecalled() {
        this.thisDevice();
    }

    // -- gestures ------------------------------------------------------------------------------
    named(varname) {
        const id = Object.keys(this.boxes).find((k) => this.boxes[k].varname === varname);
        if (!id) {
            throw new Error("no box named " + varname);
        }
        return this.objects[id];
    }

    click(longnameOrVarname) {
        const byParam = this.parameters().find((o) => o.spec.parameter_longname === longnameOrVarname);
        (byParam || this.named(longnameOrVarname)).click();
    }

    midi(bytes) {
        Object.values(this.objects).filter((o) => o.constructor.name === "MidiIn")
            .forEach((o) => o.bytes(bytes));
    }

    receive(packet, port) {
        for (const [receiver, p] of this.udpIn) {
            if (p === port) {
                receiver.packet(packet);
            }
        }
    }

    // -- messages --------------------------------------------------------------------------
    output(id, outlet, sel, args) {
        for (const cord of this.cords[id + ":" + outlet] || []) {
            this.deliver(cord.id, cord.inlet, sel, args);
        }
    }

    deliver(id, inlet, sel, args) {
        const object = this.objects[id];
        if (object instanceof JsBox) {
            return this.defer(() => object.handle(inlet, sel, args));
        }
        object.message(inlet, sel, args);
    }

    post(text) {
        this.posts.push(text);
    }

    // -- time --------------------------------------------------------------------------------
    nowMs() {
        return this.time / this.sampleRate * 1000;
    }

    at(ms, fn) {
        this.events.push({ time: this.time + ms / 1000 * this.sampleRate, seq: this.seq++, fn });
    }

    // The low-priority queue is first in, first out: a late item delays those behind it.
    defer(fn) {
        const latency = typeof this.jsLatencyMs === "function" ? this.jsLatencyMs() : this.jsLatencyMs;
        const time = Math.max(this.time + latency / 1000 * this.sampleRate, this.lastDeferred || 0);
        this.lastDeferred = time;
        this.events.push({ time, seq: this.seq++, fn });
    }

    afterVector(fn) {
        this.after.push(fn);
    }

    // Run for `seconds` of audio time (events between vectors, as Max does).
    run(seconds) {
        const end = this.time + seconds * this.sampleRate;
        while (this.time < end) {
            this.dispatch();
            this.processVector();
        }
        this.dispatch();
        return this;
    }

    dispatch() {
        for (;;) {
            let next = -1;
            for (let i = 0; i < this.events.length; i++) {
                const e = this.events[i];
                if (e.time <= this.time && (next < 0 || e.time < this.events[next].time ||
                        (e.time === this.events[next].time && e.seq < this.events[next].seq))) {
                    next = i;
                }
            }
            if (next < 0) {
                return;
            }
            this.events.splice(next, 1)[0].fn();
        }
    }

    processVector() {
        const n = this.vector;
        const live = this.live;
        const ticks = (this.vectorTicks = this.vectorTicks || new Float64Array(n));
        const perSample = live.running ? live.tempo / 60 * 480 / this.sampleRate : 0;
        for (let i = 0; i < n; i++) {
            ticks[i] = live.ticks;
            this.quarters.push(live.ticks / 480);
            live.ticks += perSample;
        }
        for (const id of this.order) {
            const feeds = this.feeds[id] || {};
            const inputs = this.inputs[id];
            const object = this.objects[id];
            for (let inlet = 0; inlet < object.value.length; inlet++) {
                const sources = feeds[inlet];
                if (!sources) {
                    inputs[inlet] = null;
                    continue;
                }
                const sum = inputs[inlet] || new Float64Array(n);
                sum.set(this.outputs[sources[0][0]][sources[0][1]]);
                for (let s = 1; s < sources.length; s++) {
                    const other = this.outputs[sources[s][0]][sources[s][1]];
                    for (let i = 0; i < n; i++) {
                        sum[i] += other[i];
                    }
                }
                inputs[inlet] = sum;
            }
            object.perform(inputs, this.outputs[id], n);
        }
        this.time += n;
        const after = this.after;
        this.after = [];
        after.forEach((fn) => fn());
    }

    constant(value, n) {
        let c = this.constants.get(value);
        if (!c) {
            c = new Float64Array(n).fill(value);
            this.constants.set(value, c);
        }
        return c;
    }

    record(left, right, n) {
        for (let i = 0; i < n; i++) {
            this.recorded[0].push(left[i]);
            this.recorded[1].push(right[i]);
        }
    }

    readAudio(file) {
        return readWav(file);
    }
}

// [js]: the real script in a vm context with Max's globals. Each message calls the function of
// its name (int → msg_int, float → msg_float, list → list), else anything() with messagename.
class JsBox {
    constructor(device, box, args) {
        this.device = device;
        this.box = box;
        const file = path.join(device.scriptDir, String(args[0]));
        const context = this.globals(device, args); // typed atoms, as Max passes them
        vm.createContext(context);
        vm.runInContext(fs.readFileSync(file, "utf8"), context, { filename: file });
        this.context = context;
        this.value = [0];
        this.signalOutlets = 0;
    }

    globals(device, args) {
        const self = this;
        function HarnessDate() {
            this.getTime = () => 1.7e12 + device.nowMs();
        }
        function Task(fn) {
            this.schedule = (ms) => device.at(ms || 0, () => device.defer(fn));
            this.cancel = () => {};
        }
        function File(file) {
            this.isopen = fs.existsSync(file) && fs.statSync(file).isFile();
            this.close = () => {};
        }
        return {
            jsarguments: args,
            messagename: "",
            Date: HarnessDate,
            Task,
            File,
            LiveAPI: device.live.lom.api(),
            Dict: MaxDict,
            JSON,
            Math,
            post: (...text) => device.post(text.join(" ")),
            outlet: (index, ...values) => {
                const list = Array.from( // arrays of this realm, not the script's
                    values.length === 1 && Array.isArray(values[0]) ? values[0] : values);
                const [sel, rest] = control.message(list);
                device.output(self.box.id, index, sel, rest);
            },
            arrayfromargs: (a) => Array.prototype.slice.call(a),
            notifyclients: () => { device.undoSteps += 1; },
            patcher: {
                getnamed: (name) => {
                    const id = Object.keys(device.boxes).find((k) => device.boxes[k].varname === name);
                    return id && {
                        message: (sel, ...rest) => device.deliver(id, 0, sel, Array.from(rest)),
                    };
                },
            },
        };
    }

    handle(inlet, sel, args) {
        const c = this.context;
        const name = { int: "msg_int", float: "msg_float", list: "list" }[sel] || sel;
        c.messagename = sel;
        c.inlet = inlet;
        if (typeof c[name] === "function") {
            return c[name].apply(c, args);
        }
        if (typeof c.anything === "function") {
            return c.anything.apply(c, args);
        }
        this.device.post("js: no function " + sel);
    }

    parameterName() {
        const enabled = (this.box.saved_object_attributes || {}).parameter_enable;
        return enabled ? this.box.saved_attribute_attributes.valueof.parameter_longname : null;
    }

    getvalueof() {
        return this.context.getvalueof();
    }

    setvalueof(value) {
        this.device.defer(() => this.context.setvalueof(value));
    }

    message() {}
}

module.exports = { MaxDevice, Live, readPatcher };
