#!/usr/bin/env node
// The built rig slots device, run in real time by the Max double (../harness/) on real UDP
// sockets: for tests of the rig's link against the device without Max, and for trying the rig
// without Live.
//
//   node max4live/tools/udp-device.js [--port P] [--rig-port R] [--takes FOLDER] [--bpm B]
//                                     [--running 0|1] [--sample-rate SR]
//
// --port and --rig-port are the device's OSC In Port and Rig Port parameters, restored as from a
// saved Live Set (they rebind its [udpreceive] and redirect its [udpsend]); --takes is typed
// into the take-folder field and entered with Return. Every OSC message the
// device sends and every buffer~ read is printed as one JSON line on stdout.
"use strict";

const dgram = require("node:dgram");
const path = require("node:path");
const { MaxDevice, readPatcher } = require("../harness/device.js");

const BUILD = path.join(__dirname, "..", "build");

function options(argv) {
    const o = { port: 7400, rigPort: 7401, takes: "", bpm: 120, running: 1, sampleRate: 7680 };
    for (let i = 2; i < argv.length; i += 2) {
        const key = argv[i].replace(/^--/, "").replace(/-(\w)/g, (_, c) => c.toUpperCase());
        o[key] = key === "takes" ? argv[i + 1] : Number(argv[i + 1]);
    }
    return o;
}

function emit(event) {
    process.stdout.write(JSON.stringify(event) + "\n");
}

function main() {
    const o = options(process.argv);
    const out = dgram.createSocket("udp4");
    const sockets = new Map(); // port → bound socket
    const device = new MaxDevice({
        sampleRate: o.sampleRate,
        scriptDir: BUILD,
        udpOut: (packet, host, port) => out.send(packet, port, host),
    });
    device.live.tempo = o.bpm;
    device.live.running = !!o.running;
    const bind = () => { // follow the device's [udpreceive] ports
        for (const port of new Set(device.udpIn.values())) {
            if (!sockets.has(port)) {
                const socket = dgram.createSocket("udp4");
                socket.on("message", (packet) => device.receive(packet, port));
                socket.on("error", (error) => emit({ event: "log", text: String(error) }));
                socket.bind(port, "127.0.0.1");
                sockets.set(port, socket);
            }
        }
    };
    let sent = 0;
    let reads = 0;
    let posts = 0;
    const report = () => {
        for (; sent < device.sent.length; sent++) {
            emit({ event: "send", address: device.sent[sent].address, args: device.sent[sent].args });
        }
        for (; reads < device.reads.length; reads++) {
            emit({ event: "read", buffer: device.reads[reads].name, path: device.reads[reads].path });
        }
        for (; posts < device.posts.length; posts++) {
            emit({ event: "log", text: device.posts[posts] });
        }
    };
    const saved = { parameters: { "OSC In Port": o.port, "Rig Port": o.rigPort } };
    device.load(readPatcher(path.join(BUILD, "rig-slots.amxd")), saved);
    if (o.takes) {
        const edit = device.named("takes-edit");
        edit.type(o.takes);
        edit.pressReturn();
    }
    bind();
    const started = Date.now();
    setInterval(() => {
        const due = (Date.now() - started) / 1000 - device.time / device.sampleRate;
        if (due > 0) {
            device.run(due);
        }
        bind();
        report();
    }, 5);
    emit({ event: "ready", port: o.port });
    process.on("SIGTERM", () => process.exit(0));
}

main();
