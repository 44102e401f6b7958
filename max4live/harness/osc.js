// Minimal OSC 1.0 message codec for the Max double's [udpreceive]/[udpsend].
// Types: i (int32), f (float32), s (string), d (float64), h (int64 as Number), T F N.
"use strict";

function pad4(n) {
    return (n + 4) & ~3;
}

function encodeString(text) {
    const bytes = Buffer.from(String(text), "utf8");
    const out = Buffer.alloc(pad4(bytes.length)); // at least one NUL, padded to 4
    bytes.copy(out);
    return out;
}

// address: "/rig/loaded"; args: values; types: "isi" (one letter per arg).
function encode(address, args, types) {
    const parts = [encodeString(address), encodeString("," + types)];
    args.forEach((value, i) => {
        const type = types[i];
        let b;
        if (type === "i") {
            b = Buffer.alloc(4);
            b.writeInt32BE(value);
        } else if (type === "f") {
            b = Buffer.alloc(4);
            b.writeFloatBE(value);
        } else if (type === "s") {
            b = encodeString(value);
        } else {
            throw new Error("cannot encode OSC type " + type);
        }
        parts.push(b);
    });
    return Buffer.concat(parts);
}

function readString(buf, offset) {
    const end = buf.indexOf(0, offset);
    if (end < 0) {
        throw new Error("unterminated OSC string");
    }
    return [buf.toString("utf8", offset, end), pad4(end)];
}

// -> {address, args, types}; throws on a malformed packet.
function decode(buf) {
    let [address, offset] = readString(buf, 0);
    if (address === "#bundle") {
        throw new Error("OSC bundles are not used by rig");
    }
    if (address.charAt(0) !== "/") {
        throw new Error("not an OSC address: " + address);
    }
    if (offset >= buf.length) {
        return { address, args: [], types: "" };
    }
    let tags;
    [tags, offset] = readString(buf, offset);
    if (tags.charAt(0) !== ",") {
        throw new Error("missing OSC type tags");
    }
    const args = [];
    for (const type of tags.slice(1)) {
        if (type === "i") {
            args.push(buf.readInt32BE(offset));
            offset += 4;
        } else if (type === "f") {
            args.push(buf.readFloatBE(offset));
            offset += 4;
        } else if (type === "d") {
            args.push(buf.readDoubleBE(offset));
            offset += 8;
        } else if (type === "h") {
            args.push(Number(buf.readBigInt64BE(offset)));
            offset += 8;
        } else if (type === "s") {
            let text;
            [text, offset] = readString(buf, offset);
            args.push(text);
        } else if (type === "T" || type === "F" || type === "N") {
            args.push(type === "T" ? 1 : type === "F" ? 0 : null);
        } else {
            throw new Error("unknown OSC type " + type);
        }
    }
    return { address, args, types: tags.slice(1) };
}

module.exports = { encode, decode };
