// Control objects of the Max double: what each sends, message by message, as the Max reference
// documents it. A message is (selector, args): a bang is ("bang", []), a number ("int"|"float",
// [x]), a list ("list", [...]) and anything else (symbol, [...]).
"use strict";

const osc = require("./osc.js");

// Atoms → a message, as Max forms one from a list of atoms.
function message(atoms) {
    if (!atoms.length) {
        return ["bang", []];
    }
    if (typeof atoms[0] === "number") {
        if (atoms.length === 1) {
            return [Number.isInteger(atoms[0]) ? "int" : "float", [atoms[0]]];
        }
        return ["list", atoms];
    }
    return [atoms[0], atoms.slice(1)];
}

// A message → its atoms (the selector included unless it is int/float/list/bang).
function atoms(sel, args) {
    return sel === "int" || sel === "float" || sel === "list" ? args.slice() :
        sel === "bang" ? [] : [sel].concat(args);
}

// Text in a box → atoms (numbers parsed, like Max's atomizer).
function parseAtoms(text) {
    return String(text).trim().split(/\s+/).filter((t) => t !== "").map((t) =>
        (/^-?(\d+\.?\d*|\.\d+)(e-?\d+)?$/.test(t) ? Number(t) : t));
}

class Control {
    constructor(device, box, args) {
        this.device = device;
        this.box = box;
        this.args = args;
    }

    out(outlet, sel, args) {
        this.device.output(this.box.id, outlet, sel, args);
    }

    outAtoms(outlet, list) {
        const [sel, args] = message(list);
        this.out(outlet, sel, args);
    }
}

// message box: sends its content ($1..$9 from the incoming atoms); "set ..." replaces it.
class MessageBox extends Control {
    constructor(device, box) {
        super(device, box, []);
        this.content = parseAtoms(device.substitute(box.text || ""));
    }

    message(inlet, sel, args) {
        if (sel === "set") {
            this.content = args.slice();
            return;
        }
        if (inlet !== 0) {
            return;
        }
        const input = atoms(sel, args);
        const filled = this.content.map((a) => {
            const m = typeof a === "string" && /^\$(\d)$/.exec(a);
            return m ? (input[Number(m[1]) - 1] !== undefined ? input[Number(m[1]) - 1] : 0) : a;
        });
        this.outAtoms(0, filled);
    }
}

// prepend X...: the input with X... in front.
class Prepend extends Control {
    message(inlet, sel, args) {
        this.outAtoms(0, this.args.concat(atoms(sel, args)));
    }
}

// route A B ...: a message whose selector (or first atom) matches goes out that outlet without
// it; anything else goes out the last outlet unchanged.
class Route extends Control {
    message(inlet, sel, args) {
        const list = atoms(sel, args);
        const index = this.args.findIndex((a) => a === list[0]);
        if (index >= 0) {
            return this.outAtoms(index, list.slice(1));
        }
        this.out(this.args.length, sel, args);
    }
}

// t b i f l s: right to left, each outlet its conversion of the input.
class Trigger extends Control {
    message(inlet, sel, args) {
        const list = atoms(sel, args);
        for (let i = this.args.length - 1; i >= 0; i--) {
            const kind = this.args[i];
            if (kind === "b") {
                this.out(i, "bang", []);
            } else if (kind === "i") {
                this.out(i, "int", [Math.trunc(Number(list[0]) || 0)]);
            } else if (kind === "f") {
                this.out(i, "float", [Number(list[0]) || 0]);
            } else {
                this.outAtoms(i, list);
            }
        }
    }
}

// pack: right inlets store, the left inlet stores and sends the list.
class Pack extends Control {
    constructor(device, box, args) {
        super(device, box, args);
        this.values = args.map((a) => (typeof a === "number" ? a : 0));
    }

    message(inlet, sel, args) {
        if (sel !== "bang") {
            this.values[inlet] = atoms(sel, args)[0];
        }
        if (inlet === 0) {
            this.out(0, "list", this.values.slice());
        }
    }
}

// metro MS: bangs every MS while on (a non-zero number or "bang" starts it, 0 or "stop" stops).
class Metro extends Control {
    message(inlet, sel, args) {
        if (inlet !== 0) {
            return;
        }
        const on = sel === "bang" || ((sel === "int" || sel === "float") && args[0] !== 0);
        if (on && !this.running) {
            this.running = true;
            this.tick();
        } else if (!on || sel === "stop") {
            this.running = false;
        }
    }

    tick() {
        if (!this.running) {
            return;
        }
        this.out(0, "bang", []);
        this.device.at(Number(this.args[0] || 5), () => this.tick(), "high");
    }
}

// transport: a bang sends, right to left, ticks, state, time signature, tempo, resolution, units,
// beats and bars (from 1) of Live's transport.
class Transport extends Control {
    message(inlet, sel) {
        if (sel !== "bang") {
            return;
        }
        const live = this.device.live;
        const quarter = 480;
        const bar = live.num * quarter * 4 / live.den;
        const beat = quarter * 4 / live.den;
        const inBar = live.ticks - Math.floor(live.ticks / bar) * bar;
        this.out(7, "float", [live.ticks]);
        this.out(6, "int", [live.running ? 1 : 0]);
        this.out(5, "list", [live.num, live.den]);
        this.out(4, "float", [live.tempo]);
        this.out(3, "float", [quarter]);
        this.out(2, "float", [inBar % beat]);
        this.out(1, "int", [Math.floor(inBar / beat) + 1]);
        this.out(0, "int", [Math.floor(live.ticks / bar) + 1]);
    }
}

// live.thisdevice: bangs when the device is ready (after Live restored its parameters), and
// again when a preset is recalled or the device saved.
class ThisDevice extends Control {
    message() {}
}

// udpreceive PORT: decodes each OSC packet into a message (OSC address as the selector; types
// kept) on the low-priority thread; "port N" listens elsewhere.
class UdpReceive extends Control {
    constructor(device, box, args) {
        super(device, box, args);
        this.port = Number(args[0]);
        device.udpIn.set(this, this.port);
    }

    message(inlet, sel, args) {
        if (sel === "port") {
            this.port = Number(args[0]);
            this.device.udpIn.set(this, this.port);
        }
    }

    packet(data) {
        let decoded;
        try {
            decoded = osc.decode(data);
        } catch (error) {
            return this.device.post("udpreceive: " + error.message);
        }
        this.device.defer(() => this.out(0, decoded.address, decoded.args));
    }
}

// udpsend HOST PORT: a message becomes one OSC message (selector = address; int → i,
// float → f, symbol → s); "port N" / "host H" redirect it.
class UdpSend extends Control {
    constructor(device, box, args) {
        super(device, box, args);
        this.host = String(args[0]);
        this.port = Number(args[1]);
    }

    message(inlet, sel, args) {
        if (sel === "port" || sel === "host") {
            this[sel] = sel === "port" ? Number(args[0]) : String(args[0]);
            return;
        }
        const types = args.map((a) => (typeof a === "string" ? "s" : Number.isInteger(a) ? "i" : "f"));
        const packet = osc.encode(sel, args, types.join(""));
        this.device.sent.push({ address: sel, args: args.slice(), host: this.host, port: this.port });
        this.device.udpOut(packet, this.host, this.port);
    }
}

// buffer~ NAME: "replace PATH" reads the file (resizing the buffer), then bangs its right outlet;
// a file it cannot read gives an error in the Max window and no bang.
class Buffer extends Control {
    constructor(device, box, args) {
        super(device, box, args);
        this.name = String(args[0]);
        device.buffers[this.name] = { channels: [], rate: 0 };
    }

    message(inlet, sel, args) {
        if (sel !== "replace" && sel !== "read") {
            return;
        }
        const path = args.join(" ");
        this.device.reads.push({ name: this.name, path });
        let data;
        try {
            data = this.device.readAudio(path);
        } catch (error) {
            return this.device.post("buffer~: " + error.message);
        }
        this.device.at(this.device.readMs, () => {
            this.device.buffers[this.name] = data;
            this.device.defer(() => this.out(1, "bang", []));
        }, "low");
    }
}

// textedit: typing fills it; with keymode 1 Return sends "text ..." (outputmode 1: the whole
// text as one symbol; 0: a list of words, numbers parsed); with keymode 0 Return adds a line
// and sends nothing. "set ..." changes the text without output.
class TextEdit extends Control {
    constructor(device, box, args) {
        super(device, box, args);
        this.text = String(box.text || "");
    }

    message(inlet, sel, args) {
        if (sel === "set") {
            this.text = args.join(" ");
        } else if (sel === "bang") {
            this.send();
        }
    }

    type(text) {
        this.text += text;
    }

    clear() {
        this.text = "";
    }

    pressReturn() {
        if (Number(this.box.keymode || 0) !== 1) {
            this.text += "\n";
            return;
        }
        this.send();
    }

    send() {
        const words = Number(this.box.outputmode || 0) === 1 ? [this.text] : parseAtoms(this.text);
        this.out(0, "text", words);
    }
}

// live.* parameters: a value within the parameter's type (Int: Live holds 0-255), sent when it
// changes (a gesture, automation, a MIDI mapping, Live restoring the Set). live.text in button
// mode (mode 0) bangs; in toggle mode sends 0/1; live.tab and enums send the index.
class LiveParameter extends Control {
    constructor(device, box, args) {
        super(device, box, args);
        const value = (box.saved_attribute_attributes || {}).valueof || {};
        this.spec = value;
        this.value = value.parameter_initial_enable ? Number((value.parameter_initial || [0])[0]) : 0;
        this.value = this.constrain(this.value);
    }

    constrain(x) {
        const s = this.spec;
        const type = Number(s.parameter_type || 0);
        let low = Number(s.parameter_mmin || 0);
        let high = s.parameter_mmax === undefined ? 127 : Number(s.parameter_mmax);
        if (type === 1) { // Live's Int parameters hold 0-255
            low = Math.max(low, 0);
            high = Math.min(high, 255);
            x = Math.round(x);
        } else if (type === 2) {
            low = 0;
            high = (s.parameter_enum || ["", ""]).length - 1;
            x = Math.round(x);
        }
        return Math.max(low, Math.min(high, x));
    }

    isButton() {
        return this.box.maxclass === "live.text" && Number(this.box.mode || 0) === 0;
    }

    message(inlet, sel, args) {
        if (sel === "set" && typeof args[0] === "number") {
            this.value = this.constrain(args[0]);
        } else if ((sel === "int" || sel === "float") && inlet === 0) {
            this.change(args[0]);
        } else if (sel === "bang") {
            this.send();
        }
    }

    change(x) {
        this.value = this.constrain(x);
        this.send();
    }

    click() {
        if (this.isButton()) {
            return this.out(0, "bang", []);
        }
        this.change(this.value ? 0 : 1);
    }

    send() {
        if (this.isButton()) {
            return;
        }
        const type = Number(this.spec.parameter_type || 0);
        this.out(0, type === 0 ? "float" : "int", [this.value]);
    }
}

// comment / live.comment: "set ..." shows text.
class Comment extends Control {
    constructor(device, box, args) {
        super(device, box, args);
        this.text = String(box.text || "");
    }

    message(inlet, sel, args) {
        if (sel === "set") {
            this.text = args.join(" ");
        }
    }
}

// waveform~: "set NAME" shows that buffer.
class Waveform extends Control {
    message(inlet, sel, args) {
        if (sel === "set") {
            this.buffer = String(args[0]);
        }
    }
}

// dbtoa: decibels → amplitude.
class DbToA extends Control {
    message(inlet, sel, args) {
        this.out(0, "float", [Math.pow(10, Number(args[0]) / 20)]);
    }
}

// opendialog fold: a bang asks the user for a folder (the test's answer) and sends its path in
// Max's form ("Macintosh HD:/Users/me/Takes/"); cancelling bangs the right outlet.
class OpenDialog extends Control {
    message(inlet, sel) {
        if (sel !== "bang") {
            return;
        }
        const answer = this.device.dialogAnswer;
        if (answer === null) {
            return this.out(1, "bang", []);
        }
        this.out(0, answer, []);
    }
}

// conformpath slash absolute: a Max path → an absolute path with slashes ("Volume:/x" → "/x").
class ConformPath extends Control {
    message(inlet, sel, args) {
        const path = atoms(sel, args).join(" ");
        this.out(0, path.replace(/^[^:/]+:(?=\/)/, ""), []);
    }
}

// dspstate~: a bang (or audio starting) sends, right to left, vector size, sample rate, DSP on.
class DspState extends Control {
    message(inlet, sel) {
        if (sel === "bang") {
            this.report();
        }
    }

    report() {
        this.out(2, "int", [this.device.vector]);
        this.out(1, "float", [this.device.sampleRate]);
        this.out(0, "int", [1]);
    }
}

// midiin: the track's MIDI bytes, one number each. midiparse: note on/off as "pitch velocity",
// control changes as "number value" (outlet 2).
class MidiIn extends Control {
    bytes(list) {
        list.forEach((b) => this.out(0, "int", [b]));
    }
}

class MidiParse extends Control {
    constructor(device, box, args) {
        super(device, box, args);
        this.status = 0;
        this.data = [];
    }

    message(inlet, sel, args) {
        const b = args[0];
        if (b >= 0x80) {
            this.status = b;
            this.data = [];
            return;
        }
        this.data.push(b);
        const kind = this.status & 0xf0;
        if (this.data.length < 2) {
            return;
        }
        if (kind === 0x90 || kind === 0x80) {
            this.out(0, "list", [this.data[0], kind === 0x80 ? 0 : this.data[1]]);
        } else if (kind === 0xb0) {
            this.out(2, "list", [this.data[0], this.data[1]]);
        }
        this.data = [];
    }
}

// live.path: "path live_set" → "id N". live.observer @property P: given an id in its right
// inlet, sends P's value now and whenever it changes (the Live Object Model double).
class LivePath extends Control {
    message(inlet, sel, args) {
        if (sel === "path") {
            this.out(0, "id", [this.device.live.lom.idOf(args.join(" "))]);
        }
    }
}

class LiveObserver extends Control {
    message(inlet, sel, args) {
        if (inlet === 1 && sel === "id") {
            const property = this.box.text.match(/@property\s+(\S+)/)[1];
            this.device.live.lom.observe(args[0], property, (value) => this.out(0, "int", [value]));
        }
    }
}

// Objects with no behaviour the device relies on: live.banks (Push banks are data), loadbang.
class Inert extends Control {
    message() {}
}

function create(device, box, name, args) {
    const classes = {
        message: MessageBox, prepend: Prepend, route: Route, t: Trigger, trigger: Trigger,
        pack: Pack, metro: Metro, transport: Transport, "live.thisdevice": ThisDevice,
        udpreceive: UdpReceive, udpsend: UdpSend, "buffer~": Buffer, textedit: TextEdit,
        "live.text": LiveParameter, "live.numbox": LiveParameter, "live.dial": LiveParameter,
        "live.tab": LiveParameter, comment: Comment, "live.comment": Comment,
        "waveform~": Waveform, dbtoa: DbToA, opendialog: OpenDialog, conformpath: ConformPath,
        "dspstate~": DspState, midiin: MidiIn, midiparse: MidiParse, "live.path": LivePath,
        "live.observer": LiveObserver, "live.banks": Inert,
    };
    const Class = classes[name];
    return Class ? new Class(device, box, args) : null;
}

module.exports = { create, message, atoms, parseAtoms };
