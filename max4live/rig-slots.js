// rig slots — the control logic of the "rig slots" Max for Live instrument.
//
// One ES5 file for Max's [js] object (Max 8 and 9, Live 11 and 12) and for Node, where the tests
// drive it (module.exports at the end). It decides *what* plays — which file goes into which
// player, which player a slot should hear, whether a slot should play, where its loop starts —
// and never *when*: [js] runs in Max's low-priority thread, so every bar- or beat-exact change
// happens in the signal graph (rig/device/dsp.py), which latches the values set here at the
// next boundary, sample-accurately, with [sah~]. The logic is told what happens (OSC messages,
// transport polls, MIDI notes, buffer~ "read done" bangs, the signal graph's reports of a swap
// or a slot falling silent, parameter changes, Live's saved state) and acts through an `io`
// object (send OSC, read a buffer~, set a signal value, show text, persist the state). In Max,
// `io` talks to named objects in the patch; in Node, to the Max double or to test recorders.
//
// The contract with the rig is max4live/PROTOCOL.md (version 2).

var PROTOCOL_VERSION = "2";
var DEVICE_VERSION = "rig-slots 2.0 (protocol 2)";
var SEEN_PER_SLOT = 32; // request ids remembered per slot, for duplicate retries
var QUANTIZE = ["bar", "beat", "off", "global"]; // the Launch Quantize enum, in order
var SPEEDS = [0.5, 1, 2]; // the Slot N Speed enum: ½, 1, 2
var FADE_MS = 20; // crossfades: swaps, starts and stops, transport stop
var SETTLE_MS = 60; // after a swap, the old player's fade is over well within this
// Live's clip_trigger_quantization (LOM Song) → quarter notes; "bar" entries are × bar length.
var GLOBAL_QUANT = [0, { bars: 8 }, { bars: 4 }, { bars: 2 }, { bars: 1 }, 2, 4 / 3, 1, 2 / 3,
    0.5, 1 / 3, 0.25, 1 / 6, 0.125];

function defaults(options) {
    var o = options || {};
    return {
        slots: o.slots || 8,
        takeFolder: o.takeFolder || "",
        quantize: o.quantize || "bar",
        globalQuant: o.globalQuant === undefined ? 4 : o.globalQuant, // Live's default: 1 Bar
        triggerNote: o.triggerNote === undefined ? 36 : o.triggerNote, // C1: start slot 1
        stopNote: o.stopNote === undefined ? 48 : o.stopNote, // C2: stop slot 1
        generateNote: o.generateNote === undefined ? 60 : o.generateNote, // C3: generate slot 1
        evolveNote: o.evolveNote === undefined ? 72 : o.evolveNote, // C4: slot 1 evolves (or not)
        autoplay: o.autoplay === undefined ? true : o.autoplay,
        pair: o.pair === 1 ? 1 : 0, // Output Pair: 0 front, 1 rear (of a quad take)
        port: o.port || 7400,
        loadTimeoutMs: o.loadTimeoutMs || 10000,
        sampleRate: o.sampleRate || 44100
    };
}

function RigSlots(options, io) {
    this.options = defaults(options);
    this.io = io;
    this.slots = [];
    for (var n = 1; n <= this.options.slots; n++) {
        this.slots.push(newSlot(n));
    }
    this.transportState = { running: false, tempo: 0, num: 4, den: 4, lastBeat: null };
    this.lastRigMessage = null;
    this.lastStatus = null;
    this.clipAnswers = []; // [{reqId, address, args}] of /rig/clip requests, newest last
}

function newSlot(number) {
    return {
        number: number,
        players: { a: null, b: null }, // {path, takeId, bars, beats, bpm, reqId} per player
        front: "a", // the player the signal graph hears (confirmed by its swap report)
        target: "a", // the player it was asked to hear: a swap is armed while they differ
        settling: false, // the old player is still fading out after a swap
        pending: null, // a load reading into the back player: {request, side, since, inflight}
        queued: null, // a load waiting for an armed swap to finish (latest wins)
        inflight: { a: 0, b: 0 }, // buffer~ reads sent and not yet answered, per player
        on: false, // asked to play (latched by the graph at the next launch boundary)
        launches: 0, // the graph restarts the loop from its start when this changes
        audible: false, // reported by the graph (and a loop is there)
        reverse: false,
        speed: 1,
        missing: "", // a saved take whose file is gone
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

function other(side) {
    return side === "a" ? "b" : "a";
}

function baseName(path) {
    var parts = String(path).split(/[\\/]/);
    return parts[parts.length - 1].replace(/\.wav$/i, "");
}

function normalizeFolder(path) {
    var p = String(path).replace(/\\/g, "/");
    return p.charAt(p.length - 1) === "/" ? p : p + "/";
}

function isAbsolute(p) {
    return p.charAt(0) === "/" || /^[A-Za-z]:\//.test(p);
}

// Why a path may not be loaded, or "" when it may. Nothing loads while no take folder is set.
function pathProblem(path, takeFolder) {
    if (typeof path !== "string" || path === "") {
        return "the path is empty";
    }
    if (!takeFolder) {
        return "no take folder is set: choose one in the device (or start the rig, which " +
            "sends its own)";
    }
    var p = path.replace(/\\/g, "/");
    if (!isAbsolute(p)) {
        return "the path is not absolute: " + path;
    }
    if (/(^|\/)\.\.(\/|$)/.test(p)) {
        return "the path contains '..': " + path;
    }
    if (!/\.wav$/i.test(p)) {
        return "not a WAV file: " + path;
    }
    if (p.indexOf(normalizeFolder(takeFolder)) !== 0) {
        return "outside the take folder " + takeFolder + ": " + path;
    }
    return "";
}

// Why a folder may not be the take folder, or "".
function folderProblem(folder) {
    if (typeof folder !== "string" || folder === "") {
        return "empty";
    }
    var p = folder.replace(/\\/g, "/");
    if (!isAbsolute(p)) {
        return "not an absolute path: " + folder;
    }
    if (/(^|\/)\.\.(\/|$)/.test(p)) {
        return "contains '..': " + folder;
    }
    return "";
}

// -- the rig's requests ---------------------------------------------------------------------------
RigSlots.prototype.hello = function () {
    this.hellos = (this.hellos || 0) + 1;
    this.io.send("/rig/hello", [DEVICE_VERSION, this.options.slots, this.options.port]);
    var t = this.transportState;
    if (t.tempo) {
        this.io.send("/rig/tempo", [t.tempo]);
    }
    this.io.send("/rig/timesig", [t.num, t.den]);
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
    if (address === "/rig/folder") {
        return this.onFolder(args);
    }
    if (address === "/rig/clip") {
        return this.onClip(args);
    }
    if (address === "/rig/ping") {
        if (args.length !== 1 || !isInt(args[0])) {
            return this.drop(address, args, "expects one int token");
        }
        return this.io.send("/rig/pong", [args[0]]);
    }
    return this.drop(address, args, "unknown address");
};

RigSlots.prototype.drop = function (address, args, why) {
    this.io.log("dropped " + address + " " + JSON.stringify(args) + ": " + why);
};

RigSlots.prototype.slotAt = function (number) {
    return isInt(number) && number >= 1 && number <= this.slots.length ?
        this.slots[number - 1] : null;
};

RigSlots.prototype.onLoad = function (a) {
    if ((a.length !== 7 && a.length !== 8) || !isInt(a[0]) || typeof a[1] !== "string" ||
            !isNum(a[2]) || !isInt(a[3]) || !isInt(a[4]) || typeof a[5] !== "string" ||
            !isInt(a[6]) || (a.length === 8 && a[7] !== 2 && a[7] !== 4)) {
        return this.drop("/rig/load", a,
            "expects slot:i path:s bpm:f bars:i beats:i take_id:s req_id:i [channels:i 2|4]");
    }
    var slot = this.slotAt(a[0]);
    if (!slot) {
        return this.drop("/rig/load", a, "no slot " + a[0] + " (1-" + this.slots.length + ")");
    }
    var request = {
        kind: "load", reqId: a[6], key: "load " + a[1] + " " + a[5], path: a[1],
        takeId: a[5], bpm: a[2], bars: a[3], beats: a[4], channels: a.length === 8 ? a[7] : 2
    };
    if (this.repeatAnswer(slot, request)) {
        return;
    }
    var problem = pathProblem(request.path, this.options.takeFolder) ||
        loopProblem(request) || (this.io.fileExists(request.path) ? "" :
        "no readable file at " + request.path);
    if (problem) {
        return this.fail(slot, request, problem);
    }
    this.supersede(slot);
    slot.missing = "";
    if (slot.target !== slot.front || slot.settling) {
        slot.queued = request; // the back player is busy swapping in: load once it is done
        this.remember(slot, request, "loading", "");
        return this.show(slot);
    }
    this.read(slot, request);
};

function loopProblem(request) {
    if (!(request.bpm >= 20 && request.bpm <= 999)) {
        return "tempo " + request.bpm + " is outside 20-999 BPM";
    }
    if (!(request.bars >= 1 && request.bars <= 256)) {
        return "bars " + request.bars + " is outside 1-256";
    }
    if (!(request.beats >= 1 && request.beats <= 4096)) {
        return "beats " + request.beats + " is outside 1-4096";
    }
    return "";
}

// Read the request's file into the back player (not heard: no click whatever the timing), or
// into `side` when the device has just been opened and nothing plays.
RigSlots.prototype.read = function (slot, request, side) {
    side = side || other(slot.front);
    slot.pending = { request: request, side: side, since: this.io.now() };
    if (request.reqId >= 0) {
        this.remember(slot, request, "loading", "");
    }
    slot.inflight[side] += 1;
    this.io.readBuffer(slot.number, side, request.path);
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
    this.remember(slot, request, "loaded", "");
    this.io.send("/rig/loaded", [slot.number, "", request.reqId]);
    slot.players = { a: null, b: null };
    slot.target = slot.front; // disarm a swap still waiting for its bar
    this.io.signal("front-" + slot.number, slot.front === "a" ? 0 : 1);
    slot.missing = "";
    this.launch(slot, false); // silent from the next launch boundary on
};

RigSlots.prototype.onFolder = function (args) {
    if (args.length !== 1 || typeof args[0] !== "string" || folderProblem(args[0])) {
        return this.drop("/rig/folder", args, "expects one absolute folder path");
    }
    if (!this.options.takeFolder) { // the performer's own choice is never overridden
        this.setFolder(args[0]);
    }
};

RigSlots.prototype.setFolder = function (folder) {
    var problem = folderProblem(folder);
    if (problem) {
        return this.io.log("take folder refused: " + problem);
    }
    this.options.takeFolder = folder;
    this.io.showFolder(folder);
    this.io.status(this.statusText());
    this.persist();
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
            this.io.send("/rig/loaded", [slot.number, takeId, request.reqId]);
        } else if (seen.outcome === "failed") {
            this.io.send("/rig/error", [slot.number, request.reqId, seen.message]);
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
        this.remember(slot, slot.pending.request, "superseded", "");
        slot.pending = null;
    }
    if (slot.queued) {
        this.remember(slot, slot.queued, "superseded", "");
        slot.queued = null;
    }
};

RigSlots.prototype.fail = function (slot, request, message) {
    this.remember(slot, request, "failed", message);
    this.io.send("/rig/error", [slot.number, request.reqId, message]);
    this.io.log("slot " + slot.number + ": " + message);
    this.show(slot);
};

// -- clip mode: a take as a Session View clip (Live 12.0.5+) ------------------------------------
// /rig/clip track scene path bpm bars beats name color fire req_id puts the take into an audio
// track's clip slot (scene 0: the first empty one) with ClipSlot.create_audio_clip, names and
// colours it, warps it onto Live's grid (beat 0 at 0 s, beat `beats` at the loop's end), loops the
// whole loop and, with fire 1, launches it (Live's own launch quantization). Answered
// /rig/clipped track scene req_id, or /rig/error 0 req_id message; a repeated req_id gets
// the same answer and makes no second clip. The buffer slots never depend on it.
var CLIP_ANSWERS = 32;
var CLIP_LIVE = [12, 0, 5]; // the first Live with ClipSlot.create_audio_clip

RigSlots.prototype.onClip = function (a) {
    if (a.length !== 10 || !isInt(a[0]) || !isInt(a[1]) || typeof a[2] !== "string" ||
            !isNum(a[3]) || !isInt(a[4]) || !isInt(a[5]) || typeof a[6] !== "string" ||
            !isInt(a[7]) || !isInt(a[8]) || !isInt(a[9])) {
        return this.drop("/rig/clip", a, "expects track:i scene:i path:s bpm:f bars:i beats:i " +
            "name:s color:i fire:i req_id:i");
    }
    var request = { track: a[0], scene: a[1], path: a[2], bpm: a[3], bars: a[4], beats: a[5],
        name: a[6], color: a[7], fire: a[8] === 1, reqId: a[9] };
    for (var i = 0; i < this.clipAnswers.length; i++) {
        if (this.clipAnswers[i].reqId === request.reqId) { // a retry: the same answer again
            return this.io.send(this.clipAnswers[i].address, this.clipAnswers[i].args);
        }
    }
    var problem = pathProblem(request.path, this.options.takeFolder) || loopProblem(request) ||
        (this.io.fileExists(request.path) ? "" : "no readable file at " + request.path);
    var placed = problem ? null : this.placeClip(request);
    var answer = placed && placed.scene ?
        { address: "/rig/clipped", args: [request.track, placed.scene, request.reqId] } :
        { address: "/rig/error", args: [0, request.reqId, problem || placed.problem] };
    answer.reqId = request.reqId;
    this.clipAnswers.push(answer);
    if (this.clipAnswers.length > CLIP_ANSWERS) {
        this.clipAnswers.shift();
    }
    if (answer.address === "/rig/error") {
        this.io.log("clip: " + answer.args[2]);
    }
    this.io.send(answer.address, answer.args);
};

// Put the clip in place: {scene} (from 1), or {problem} in words, checked before Live is asked
// (Live only posts its own errors to the Max window).
RigSlots.prototype.placeClip = function (r) {
    var live = this.io.live;
    var version = live.version();
    if (compareVersions(version, CLIP_LIVE) < 0) {
        return { problem: "clips need Live " + CLIP_LIVE.join(".") + " or newer (this is Live " +
            version.join(".") + "); the slots keep working" };
    }
    var tracks = live.count("live_set", "tracks");
    if (r.track < 1 || r.track > tracks) {
        return { problem: "there is no track " + r.track + " (the Set has " + tracks + ")" };
    }
    var track = "live_set tracks " + (r.track - 1);
    var trackName = "track " + r.track + " (" + live.get(track, "name") + ")";
    if (live.get(track, "has_audio_input") !== 1) {
        return { problem: trackName + " is not an audio track: choose one for the clips" };
    }
    var scenes = live.count("live_set", "scenes");
    var index = r.scene > 0 ? r.scene - 1 : -1;
    if (r.scene > scenes) {
        return { problem: "there is no scene " + r.scene + " (the Set has " + scenes + ")" };
    }
    for (var m = 0; index < 0 && m < scenes; m++) {
        if (live.get(track + " clip_slots " + m, "has_clip") === 0) {
            index = m;
        }
    }
    if (index < 0) {
        return { problem: trackName + " has no empty clip slot: add a scene" };
    }
    var slot = track + " clip_slots " + index;
    if (live.get(slot, "has_clip") === 1) {
        return { problem: trackName + " scene " + (index + 1) + " already holds a clip" };
    }
    live.call(slot, "create_audio_clip", [r.path]);
    if (live.get(slot, "has_clip") !== 1) {
        return { problem: "Live did not make the clip in " + trackName + " scene " + (index + 1) +
            " (see the Max window)" };
    }
    this.shapeClip(slot + " clip", r);
    if (r.fire) {
        live.call(slot, "fire", []);
    }
    return { scene: index + 1 };
};

// Name, colour, warp and loop the whole clip. Live's first warp marker of a new clip is beat 0 at
// 0 s (the take starts on its downbeat); the second pins beat `beats` to the loop's end, so the
// clip plays at Live's tempo whatever tempo Live guessed for it.
RigSlots.prototype.shapeClip = function (clip, r) {
    var live = this.io.live;
    var seconds = r.beats * 60 / r.bpm;
    live.set(clip, "name", r.name);
    live.set(clip, "color", r.color);
    live.set(clip, "warping", 1);
    live.call(clip, "add_warp_marker", [live.dict({ beat_time: r.beats, sample_time: seconds })]);
    live.set(clip, "looping", 1);
    live.set(clip, "loop_end", r.beats);
    live.set(clip, "loop_start", 0);
    live.set(clip, "end_marker", r.beats);
    live.set(clip, "start_marker", 0);
};

function compareVersions(a, b) {
    for (var i = 0; i < b.length; i++) {
        if ((a[i] || 0) !== b[i]) {
            return (a[i] || 0) < b[i] ? -1 : 1;
        }
    }
    return 0;
}

// -- buffer~ answers, the graph's reports, time-outs ------------------------------------------
// A buffer~ finished reading (its right outlet banged) for player `side` of slot `number`.
RigSlots.prototype.bufferLoaded = function (number, side) {
    var slot = this.slotAt(number);
    if (!slot || (side !== "a" && side !== "b")) {
        return this.io.log("ignored a buffer answer for slot " + number + " player " + side);
    }
    slot.inflight[side] = Math.max(0, slot.inflight[side] - 1);
    var p = slot.pending;
    if (!p || p.side !== side || slot.inflight[side] > 0) {
        return; // an answer to a read that a newer one replaced
    }
    slot.pending = null;
    var r = p.request;
    if (r.reqId >= 0) { // a restored take is nobody's request
        this.remember(slot, r, "loaded", "");
        this.io.send("/rig/loaded", [slot.number, r.takeId, r.reqId]);
    }
    var hadLoop = !!slot.players[slot.front];
    slot.players[side] = {
        path: r.path, takeId: r.takeId, bars: r.bars, beats: r.beats, bpm: r.bpm, reqId: r.reqId,
        channels: r.channels || 2
    };
    this.tunePlayer(slot, side);
    slot.target = side; // heard from the next bar on (the graph latches it there)
    this.io.signal("front-" + slot.number, side === "a" ? 0 : 1);
    if (!this.transportState.running || (!slot.on && !slot.audible)) {
        this.io.click(slot.number, "swap"); // nothing is heard: swap now
    }
    if (r.restoreOn || (!slot.on && !hadLoop && this.options.autoplay)) {
        this.launch(slot, true); // a first loop in an idle slot starts playing
    }
    this.persist();
    this.show(slot);
};

// The graph swapped slot `number` to player `side` (its [edge~] on the latched front signal).
RigSlots.prototype.swapped = function (number, side) {
    var slot = this.slotAt(number);
    if (!slot || (side !== "a" && side !== "b")) {
        return this.io.log("ignored a swap report for slot " + number + " player " + side);
    }
    slot.front = side;
    if (side !== slot.target) {
        return this.show(slot); // a report of an older flip; the armed one follows
    }
    slot.settling = true; // the old player fades out for FADE_MS: leave its buffer alone
    var self = this;
    this.io.later(SETTLE_MS, function () {
        slot.settling = false;
        if (slot.queued && slot.target === slot.front) {
            var next = slot.queued;
            slot.queued = null;
            self.read(slot, next);
        }
    });
    this.persist();
    this.show(slot);
};

// The graph's gate for slot `number` opened (1) or closed (0): transport running and launched.
RigSlots.prototype.playing = function (number, state) {
    var slot = this.slotAt(number);
    if (!slot) {
        return;
    }
    var audible = !!state && !!slot.players[slot.front];
    if (audible !== slot.audible) {
        slot.audible = audible;
        this.io.send("/rig/playing", [slot.number, audible ? 1 : 0]);
    }
    this.show(slot);
};

// Called on every transport poll: reads that never answered fail, the slot keeps its loop.
RigSlots.prototype.checkTimeouts = function () {
    var now = this.io.now();
    for (var i = 0; i < this.slots.length; i++) {
        var slot = this.slots[i];
        var p = slot.pending;
        if (p && now - p.since > this.options.loadTimeoutMs) {
            slot.pending = null;
            this.fail(slot, p.request, "the file did not load within " +
                Math.round(this.options.loadTimeoutMs / 1000) + " s");
        }
    }
};

// -- what the graph plays ----------------------------------------------------------------------
// The loop length, reading rate and direction of player `side`: set while it is not heard (a
// load) or crossfaded by the next slice (reverse, speed), so nothing here needs to be on time.
RigSlots.prototype.tunePlayer = function (slot, side) {
    var loop = slot.players[side];
    if (!loop) {
        return;
    }
    var id = slot.number + "-" + side;
    var seconds = loop.beats * 60 / loop.bpm; // the take's own length
    this.io.signal("len-" + id, loop.beats / slot.speed); // quarter notes per pass
    this.io.signal("step-" + id, 1 / seconds); // loops per second at the take's own rate
    this.io.signal("dir-" + id, slot.reverse ? -1 : 1);
    this.io.signal("flip-" + id, slot.reverse ? 1 : 0);
    // Output Pair Rear plays channels 3-4 of a quad take; a stereo take plays its pair there too.
    this.io.signal("rear-" + id, this.options.pair === 1 && loop.channels === 4 ? 1 : 0);
};

// Ask the graph to start (from the loop's start) or stop a slot at the next launch boundary,
// or now when nothing is heard or launches are not quantised.
RigSlots.prototype.launch = function (slot, on) {
    slot.on = on;
    if (on) {
        slot.launches += 1;
        this.io.signal("launch-" + slot.number, slot.launches);
    }
    this.io.signal("on-" + slot.number, on ? 1 : 0);
    if (!this.transportState.running || this.quarters() === 0) {
        this.io.click(slot.number, "launch");
    }
    this.persist();
    this.show(slot);
};

// Quarter notes between launch boundaries (0: launch at once).
RigSlots.prototype.quarters = function () {
    var o = this.options;
    var bar = this.barQuarters();
    if (o.quantize === "bar") {
        return bar;
    }
    if (o.quantize === "beat") {
        return 1;
    }
    if (o.quantize === "off") {
        return 0;
    }
    var q = GLOBAL_QUANT[o.globalQuant] || 0;
    return typeof q === "object" ? q.bars * bar : q;
};

RigSlots.prototype.barQuarters = function () {
    return this.transportState.num * 4 / this.transportState.den;
};

RigSlots.prototype.applyQuantize = function () {
    var q = this.quarters();
    this.io.signal("quant", q || 1);
    this.io.signal("quant-on", q ? 1 : 0);
    this.io.signal("barlen", this.barQuarters());
};

// -- transport ---------------------------------------------------------------------------------
// A poll of Live's transport: tempo (BPM) and running (0/1); for reports and display only.
// Each poll of Live's transport (every 50 ms): tempo changes go to the rig, and while Live plays
// so does the position at each new beat (/rig/position bar beat bpm: the beat of the bar from 1,
// with how far into it the poll came, in the meter's beats), the clock of evolving slots.
RigSlots.prototype.transport = function (tempo, running, bar, beat, units) {
    var t = this.transportState;
    t.running = !!running;
    if (isNum(tempo) && tempo >= 20 && tempo <= 999 && Math.abs(tempo - t.tempo) > 1e-3) {
        t.tempo = tempo;
        this.io.send("/rig/tempo", [tempo]);
        this.io.status(this.statusText());
    }
    this.position(bar, beat, units);
    this.checkTimeouts();
    if (this.lastStatus === null || this.io.now() - this.lastStatus >= 1000) {
        this.lastStatus = this.io.now();
        this.io.status(this.statusText());
    }
};

RigSlots.prototype.position = function (bar, beat, units) {
    var t = this.transportState;
    if (!t.running || !isInt(bar) || !isInt(beat) || beat < 1 || !(t.tempo > 0)) {
        t.lastBeat = null; // a stop, or no position: the next beat is said again
        return;
    }
    var key = bar + ":" + beat;
    if (key === t.lastBeat) {
        return;
    }
    t.lastBeat = key;
    var ticksPerBeat = 1920 / t.den; // Max's transport counts 480 ticks a quarter note
    var into = isNum(units) && units > 0 ? Math.min(units / ticksPerBeat, 0.999) : 0;
    this.io.send("/rig/position", [bar, beat + into, t.tempo]);
};

RigSlots.prototype.timesig = function (num, den) {
    var t = this.transportState;
    if (!isInt(num) || !isInt(den) || num < 1 || den < 1 || (num === t.num && den === t.den)) {
        return;
    }
    t.num = num;
    t.den = den;
    this.applyQuantize();
    this.io.send("/rig/timesig", [num, den]);
};

RigSlots.prototype.sampleRate = function (sr) {
    if (isNum(sr) && sr > 0) {
        this.options.sampleRate = sr;
        this.io.ramps(Math.round(FADE_MS / 1000 * sr));
    }
};

// -- MIDI notes, buttons and parameters ----------------------------------------------------------
// A note on the track: trigger notes start slots, stop notes stop them (at the next launch
// boundary), generate notes ask the rig for a new loop. Note-offs do nothing.
RigSlots.prototype.note = function (pitch, velocity) {
    if (!isInt(pitch) || !isNum(velocity) || velocity <= 0) {
        return;
    }
    var o = this.options;
    var n = this.slots.length;
    var start = pitch - o.triggerNote;
    var stop = pitch - o.stopNote;
    var generate = pitch - o.generateNote;
    var evolve = pitch - o.evolveNote;
    if (start >= 0 && start < n) {
        return this.launch(this.slots[start], true);
    }
    if (stop >= 0 && stop < n) {
        return this.launch(this.slots[stop], false);
    }
    if (generate >= 0 && generate < n) {
        return this.generate(generate + 1);
    }
    if (evolve >= 0 && evolve < n) { // the rig starts or stops the slot evolving (every 4 bars)
        return this.io.send("/rig/action", ["evolve", evolve + 1]);
    }
};

// A control change on the track: forwarded to the rig, which maps it (midi.toml).
RigSlots.prototype.cc = function (number, value) {
    if (isInt(number) && isInt(value) && number >= 0 && number <= 127 && value >= 0 &&
            value <= 127) {
        this.io.send("/rig/cc", [number, value]);
    }
};

// A slot's Generate button or generate note: the rig makes a new loop for it.
RigSlots.prototype.generate = function (number) {
    if (this.slotAt(number)) {
        this.io.send("/rig/action", ["generate", number]);
    }
};

// A device setting or per-slot parameter: name, then values.
RigSlots.prototype.set = function (name, a, b) {
    if (name === "reverse" || name === "speed") {
        return this.setSlot(name, a, b);
    }
    var o = this.options;
    if (name === "quantize" && isNum(a)) {
        o.quantize = QUANTIZE[Math.max(0, Math.min(QUANTIZE.length - 1, Math.round(a)))];
        this.applyQuantize();
    } else if (name === "globalquant" && isInt(isInt(a) ? a : b) &&
            (isInt(a) ? a : b) >= 0 && (isInt(a) ? a : b) < GLOBAL_QUANT.length) {
        o.globalQuant = isInt(a) ? a : b; // live.observer may send "property value"
        this.applyQuantize();
    } else if ((name === "trigger_note" || name === "stop_note" || name === "generate_note" ||
            name === "evolve_note") && isNum(a)) {
        var key = { trigger_note: "triggerNote", stop_note: "stopNote",
            generate_note: "generateNote", evolve_note: "evolveNote" }[name];
        o[key] = Math.max(0, Math.min(127, Math.round(a)));
    } else if (name === "autoplay" && isNum(a)) {
        o.autoplay = a !== 0;
    } else if (name === "pair" && isNum(a)) {
        o.pair = a >= 0.5 ? 1 : 0; // 0 front (channels 1-2), 1 rear (channels 3-4)
        for (var i = 0; i < this.slots.length; i++) {
            this.tunePlayer(this.slots[i], "a");
            this.tunePlayer(this.slots[i], "b");
        }
    } else if (name === "port" && isNum(a)) {
        if (Math.round(a) !== o.port) {
            o.port = Math.round(a);
            this.hello(); // the rig learns where the device listens now
        }
    } else {
        return this.io.log("ignored setting " + name + " " + a);
    }
    this.io.status(this.statusText());
};

RigSlots.prototype.setSlot = function (name, number, value) {
    var slot = this.slotAt(number);
    if (!slot || !isNum(value)) {
        return this.io.log("ignored " + name + " " + number + " " + value);
    }
    if (name === "reverse") {
        slot.reverse = value !== 0;
    } else {
        slot.speed = SPEEDS[Math.max(0, Math.min(SPEEDS.length - 1, Math.round(value)))];
    }
    this.tunePlayer(slot, "a");
    this.tunePlayer(slot, "b");
    this.show(slot);
};

// -- Live's saved state (the [js] box is a Blob parameter: getvalueof/setvalueof) ----------------
RigSlots.prototype.snapshot = function () {
    var slots = [];
    for (var i = 0; i < this.slots.length; i++) {
        var slot = this.slots[i];
        var loop = slot.players[slot.target];
        if (loop) {
            slots.push({ n: slot.number, path: loop.path, takeId: loop.takeId, bars: loop.bars,
                beats: loop.beats, bpm: loop.bpm, channels: loop.channels, on: slot.on,
                front: slot.target });
        }
    }
    return JSON.stringify({ v: 1, folder: this.options.takeFolder, slots: slots });
};

// Reopening a Set: the take folder and every slot's loop, read from disk even without the rig.
RigSlots.prototype.restore = function (text) {
    var state;
    try {
        state = JSON.parse(text);
    } catch (error) {
        return this.io.log("ignored a saved state that is not JSON");
    }
    if (!state || state.v !== 1) {
        return this.io.log("ignored a saved state of another version");
    }
    if (typeof state.folder === "string" && !folderProblem(state.folder)) {
        this.options.takeFolder = state.folder;
        this.io.showFolder(state.folder);
    }
    var saved = state.slots || [];
    for (var i = 0; i < saved.length; i++) {
        this.restoreSlot(saved[i]);
    }
    this.showAll();
};

RigSlots.prototype.restoreSlot = function (entry) {
    var slot = this.slotAt(entry && entry.n);
    if (!slot) {
        return;
    }
    var request = { kind: "load", reqId: -1, key: "restore", path: entry.path,
        takeId: String(entry.takeId || ""), bpm: entry.bpm, bars: entry.bars, beats: entry.beats,
        channels: entry.channels === 4 ? 4 : 2, restoreOn: !!entry.on };
    var problem = pathProblem(request.path, this.options.takeFolder) || loopProblem(request);
    if (!problem && !this.io.fileExists(request.path)) {
        problem = "missing: " + baseName(request.path);
    }
    if (problem) {
        slot.missing = problem;
        return this.show(slot);
    }
    var side = entry.front === "b" ? "b" : "a";
    slot.front = slot.target = side; // the graph is told below, when the file is in
    this.read(slot, request, side);
};

RigSlots.prototype.persist = function () {
    this.io.persist();
};

// -- presentation ------------------------------------------------------------------------------
RigSlots.prototype.slotText = function (slot) {
    var loop = slot.players[slot.front];
    var state = slot.audible ? "playing" : slot.on && loop ? "armed" : loop ? "stopped" : "empty";
    var text = slot.number + " " + state;
    if (loop) {
        text += ": " + baseName(loop.path) + " (" + loop.bars + " bars)";
    }
    if (slot.missing) {
        text += " · " + slot.missing;
    }
    if (slot.pending) {
        text += " · loading " + baseName(slot.pending.request.path);
    } else if (slot.target !== slot.front) {
        text += " · next bar: " + baseName(slot.players[slot.target].path);
    }
    if (slot.queued) {
        text += " · then " + baseName(slot.queued.path);
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
        (this.options.takeFolder || "none set (loads are refused)");
};

RigSlots.prototype.show = function (slot) {
    var text = this.slotText(slot);
    if (text !== slot.shown) {
        slot.shown = text;
        this.io.display(slot.number, text);
        this.io.showWave(slot.number, slot.front);
    }
};

RigSlots.prototype.showAll = function () {
    for (var i = 0; i < this.slots.length; i++) {
        this.show(this.slots[i]);
    }
    this.io.status(this.statusText());
};

// -- Max glue ------------------------------------------------------------------------------------
// In Max: one inlet (everything arrives as messages), one outlet (to [udpsend]). The box is a
// Blob parameter (Stored Only): Live saves getvalueof() with the Set and restores it through
// setvalueof(), before or after live.thisdevice bangs "init" (both orders are handled).
var maxThis = this;
var core = null;
var early = []; // parameters and saved state restored before the device is ready
var persistTask = null;

function maxIo() {
    return {
        send: function (address, args) {
            outlet(0, [address].concat(args));
        },
        readBuffer: function (slot, side, path) {
            named("buf-" + slot + "-" + side).message("replace", path);
        },
        signal: function (name, value) {
            named(name).message("float", value);
        },
        click: function (slot, what) {
            named(what + "-now-" + slot).message("bang");
        },
        ramps: function (samples) {
            for (var s = 1; core && s <= core.slots.length; s++) {
                var boxes = ["xf-" + s, "gate-" + s, "rearxf-" + s + "-a", "rearxf-" + s + "-b"];
                for (var i = 0; i < boxes.length; i++) {
                    named(boxes[i]).message("rampup", samples);
                    named(boxes[i]).message("rampdown", samples);
                }
            }
        },
        display: function (slot, text) {
            named("label-" + slot).message("set", text);
        },
        showWave: function (slot, side) {
            named("show-" + slot + "-" + side).message("bang");
        },
        showFolder: function (folder) {
            named("takes-edit").message("set", folder);
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
        persist: function () {
            if (!persistTask) { // at most one Live undo step per second of changes
                persistTask = new Task(function () {
                    persistTask = null;
                    notifyclients();
                });
                persistTask.schedule(1000);
            }
        },
        later: function (ms, fn) {
            new Task(fn).schedule(ms);
        },
        live: maxLive(),
        now: function () {
            return new Date().getTime();
        },
        log: function (text) {
            post("rig slots: " + text + "\n");
        }
    };
}

// The Live Object Model through LiveAPI, as the clip mode uses it: one value per get, a list
// of arguments per call, dictionaries as Max Dicts.
function maxLive() {
    function single(value) {
        return Array.isArray(value) && value.length === 1 ? value[0] : value;
    }
    return {
        version: function () {
            var app = new LiveAPI("live_app");
            return [single(app.call("get_major_version")), single(app.call("get_minor_version")),
                single(app.call("get_bugfix_version"))];
        },
        count: function (path, child) {
            return new LiveAPI(path).getcount(child);
        },
        get: function (path, property) {
            return single(new LiveAPI(path).get(property));
        },
        set: function (path, property, value) {
            new LiveAPI(path).set(property, value);
        },
        call: function (path, name, args) {
            var api = new LiveAPI(path);
            return api.call.apply(api, [name].concat(args));
        },
        dict: function (entries) {
            var d = new Dict();
            for (var key in entries) {
                if (Object.prototype.hasOwnProperty.call(entries, key)) {
                    d.set(key, entries[key]);
                }
            }
            return d;
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

// live.thisdevice bangs "init" when the device is ready, and again when a preset is loaded or
// the device saved: only the first creates the logic; later ones say hello again. The settings
// Live restored before it (a saved OSC In Port says hello itself) are applied first, and the
// device says hello once: each hello makes the rig send every slot's take again.
function init() {
    if (core) {
        return core.hello();
    }
    var slots = typeof jsarguments !== "undefined" && jsarguments.length > 1 ? jsarguments[1] : 8;
    core = new RigSlots({ slots: slots }, maxIo());
    for (var i = 0; i < early.length; i++) {
        early[i]();
    }
    early = [];
    core.applyQuantize();
    if (!core.hellos) {
        core.hello();
    }
}

function whenReady(fn) {
    if (core) {
        fn();
    } else {
        early.push(fn);
    }
}

function anything() {
    var args = arrayfromargs(arguments);
    if (core && typeof messagename === "string" && messagename.indexOf("/") === 0) {
        core.osc(messagename, args);
    }
}

function transport(bar, beat, units, tempo, running) {
    if (core) {
        core.transport(tempo, running, bar, beat, units);
    }
}

function timesig(num, den) {
    whenReady(function () { core.timesig(num, den); });
}

function samplerate(sr) {
    whenReady(function () { core.sampleRate(sr); });
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

function generate(number) {
    if (core) {
        core.generate(number);
    }
}

function loaded(slot, side) {
    if (core) {
        core.bufferLoaded(slot, side);
    }
}

function front(slot, side) {
    if (core) {
        core.swapped(slot, side);
    }
}

function gate(slot, state) {
    if (core) {
        core.playing(slot, state);
    }
}

function folder() {
    var path = arrayfromargs(arguments).join(" ");
    whenReady(function () { core.setFolder(path); });
}

function param(name, a, b) {
    whenReady(function () { core.set(name, a, b); });
}

function getvalueof() {
    return core ? core.snapshot() : "";
}

function setvalueof(value) {
    if (typeof value === "string" && value) {
        whenReady(function () { core.restore(value); });
    }
}

if (typeof module !== "undefined" && module.exports) {
    module.exports = {
        RigSlots: RigSlots,
        pathProblem: pathProblem,
        folderProblem: folderProblem,
        PROTOCOL_VERSION: PROTOCOL_VERSION,
        DEVICE_VERSION: DEVICE_VERSION,
        FADE_MS: FADE_MS,
        GLOBAL_QUANT: GLOBAL_QUANT
    };
} else {
    inlets = 1;
    outlets = 1;
    autowatch = 0;
}
