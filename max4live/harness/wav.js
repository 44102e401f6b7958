// RIFF/WAVE files for the Max double's [buffer~]: read 16/24/32-bit PCM and 32-bit float, write
// 32-bit float (for tests). Returns channels as Float64Arrays, like buffer~ holds them.
"use strict";

const fs = require("node:fs");

// -> {rate, channels: [Float64Array...]}; throws on anything buffer~ could not read.
function readWav(path) {
    const b = fs.readFileSync(path);
    if (b.length < 12 || b.toString("ascii", 0, 4) !== "RIFF" || b.toString("ascii", 8, 12) !== "WAVE") {
        throw new Error("not a WAVE file: " + path);
    }
    let offset = 12;
    let format = null;
    while (offset + 8 <= b.length) {
        const id = b.toString("ascii", offset, offset + 4);
        const size = b.readUInt32LE(offset + 4);
        const body = offset + 8;
        if (id === "fmt ") {
            let code = b.readUInt16LE(body);
            if (code === 0xfffe) {
                code = b.readUInt16LE(body + 24); // WAVE_FORMAT_EXTENSIBLE sub-format
            }
            format = { code, channels: b.readUInt16LE(body + 2), rate: b.readUInt32LE(body + 4),
                bits: b.readUInt16LE(body + 14) };
        } else if (id === "data" && format) {
            return decode(b.subarray(body, Math.min(b.length, body + size)), format);
        }
        offset = body + size + (size % 2);
    }
    throw new Error("no fmt/data chunk in " + path);
}

function decode(data, f) {
    const width = f.bits / 8;
    const frames = Math.floor(data.length / (width * f.channels));
    const channels = [];
    for (let c = 0; c < f.channels; c++) {
        channels.push(new Float64Array(frames));
    }
    const read = reader(f);
    for (let i = 0; i < frames; i++) {
        for (let c = 0; c < f.channels; c++) {
            channels[c][i] = read(data, (i * f.channels + c) * width);
        }
    }
    return { rate: f.rate, channels };
}

function reader(f) {
    if (f.code === 3 && f.bits === 32) {
        return (d, o) => d.readFloatLE(o);
    }
    if (f.code === 1 && f.bits === 16) {
        return (d, o) => d.readInt16LE(o) / 32768;
    }
    if (f.code === 1 && f.bits === 24) {
        return (d, o) => d.readIntLE(o, 3) / 8388608;
    }
    if (f.code === 1 && f.bits === 32) {
        return (d, o) => d.readInt32LE(o) / 2147483648;
    }
    throw new Error("unsupported WAVE format " + f.code + "/" + f.bits + " bits");
}

// channels: arrays of samples; writes 32-bit float.
function writeWav(path, rate, channels) {
    const frames = channels[0].length;
    const data = Buffer.alloc(frames * channels.length * 4);
    for (let i = 0; i < frames; i++) {
        for (let c = 0; c < channels.length; c++) {
            data.writeFloatLE(channels[c][i], (i * channels.length + c) * 4);
        }
    }
    const head = Buffer.alloc(44);
    head.write("RIFF", 0, "ascii");
    head.writeUInt32LE(36 + data.length, 4);
    head.write("WAVEfmt ", 8, "ascii");
    head.writeUInt32LE(16, 16);
    head.writeUInt16LE(3, 20);
    head.writeUInt16LE(channels.length, 22);
    head.writeUInt32LE(rate, 24);
    head.writeUInt32LE(rate * channels.length * 4, 28);
    head.writeUInt16LE(channels.length * 4, 32);
    head.writeUInt16LE(32, 34);
    head.write("data", 36, "ascii");
    head.writeUInt32LE(data.length, 40);
    fs.writeFileSync(path, Buffer.concat([head, data]));
}

module.exports = { readWav, writeWav };
