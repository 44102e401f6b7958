#!/usr/bin/env node
// A stand-in for the rig slots device, for tests without Max: the real device logic
// (../rig-slots.js) wired to real UDP sockets the way the patch wires it to Max objects.
//
//   [udpreceive PORT]  -> a dgram socket on 127.0.0.1:PORT, decoded OSC -> core.osc()
//   [udpsend HOST RIG] <- core's sends, OSC-encoded with the logic's type tags
//   [buffer~] replace  -> reads the file; a RIFF/WAVE file "loads" after a short delay and
//                         answers like buffer~'s right outlet; anything else never answers
//                         (as buffer~ posts an error and stays silent)
//   [transport]        -> a clock at --bpm, polled every 10 ms like [metro 10]
//
// Every action is printed as one JSON line on stdout for the tests to read.
"use strict";

const dgram = require("node:dgram");
const fs = require("node:fs");
const { RigSlots } = require("../rig-slots.js");
const osc = require("./osc.js");

function options(argv) {
    const o = { port: 7400, rigPort: 7401, host: "127.0.0.1", takes: "", bpm: 120, slots: 8,
                loadTimeoutMs: 10000, running: 1 };
    for (let i = 2; i < argv.length; i += 2) {
        const key = argv[i].replace(/^--/, "").replace(/-(\w)/g, (_, c) => c.toUpperCase());
        o[key] = key === "takes" || key === "host" ? argv[i + 1] : Number(argv[i + 1]);
    }
    return o;
}

function emit(event) {
    process.stdout.write(JSON.stringify(event) + "\n");
}

function isWav(path) {
    try {
        const fd = fs.openSync(path, "r");
        const head = Buffer.alloc(12);
        fs.readSync(fd, head, 0, 12, 0);
        fs.closeSync(fd);
        return head.toString("ascii", 0, 4) === "RIFF" && head.toString("ascii", 8, 12) === "WAVE";
    } catch (error) {
        return false;
    }
}

function main() {
    const o = options(process.argv);
    const socket = dgram.createSocket("udp4");
    const started = Date.now();
    let core = null;
    const io = {
        send: (address, args, types) => {
            socket.send(osc.encode(address, args, types), o.rigPort, o.host);
            emit({ event: "send", address, args });
        },
        loadBuffer: (slot, side, path) => {
            emit({ event: "load", slot, side, path });
            if (isWav(path)) {
                setTimeout(() => core.bufferLoaded(slot, side), 20);
            }
        },
        setFade: (slot, side, gain, ms) => emit({ event: "fade", slot, side, gain, ms }),
        setLoop: (slot, side, ticks) => emit({ event: "loop", slot, side, ticks }),
        setReverse: (slot, side, on) => emit({ event: "reverse", slot, side, on }),
        display: (slot, text) => emit({ event: "display", slot, text }),
        status: () => {},
        fileExists: (path) => fs.existsSync(path),
        now: () => Date.now(),
        log: (text) => emit({ event: "log", text }),
    };
    core = new RigSlots({ slots: o.slots, takeFolder: o.takes, loadTimeoutMs: o.loadTimeoutMs },
        io);
    socket.on("message", (packet) => {
        let message;
        try {
            message = osc.decode(packet);
        } catch (error) {
            return emit({ event: "log", text: "dropped a malformed packet: " + error.message });
        }
        core.osc(message.address, message.args);
    });
    socket.bind(o.port, "127.0.0.1", () => {
        emit({ event: "ready", port: socket.address().port });
        core.hello();
        setInterval(() => {
            const beats = ((Date.now() - started) / 60000) * o.bpm;
            core.transport(Math.floor(beats / 4) + 1, (Math.floor(beats) % 4) + 1, o.bpm,
                o.running);
        }, 10);
    });
    process.on("SIGTERM", () => process.exit(0));
}

main();
