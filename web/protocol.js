// Switchboard service protocol v1: frame types and the binary codec.
//
// This is the JavaScript twin of the Go package `protocol` (docs/PROTOCOL.md).
// Both pass protocol/testdata/vectors.json, so they cannot drift apart.
//
// A frame is `type:u8 length:uvarint body`. One link message holds one or
// more frames back to back. Frames are plain objects `{type, ...fields}`
// whose field names are the Go struct's with a lower-case first letter
// (`PublicURL` → `publicURL`); integers are Numbers (exact up to 2^53),
// byte fields are Uint8Array, u8 booleans are booleans.

export const VERSION = 1;
export const SUBPROTOCOL = 'switchboard.v1';
export const RESERVED_PREFIX = '/.switchboard/';
export const LINK_PATH = RESERVED_PREFIX + 'v1/link';
export const MAX_FRAME_BODY = 64 << 20;
/**
 * LINK_OVERHEAD is how many bytes a link message may carry beyond the
 * largest relayed message (Welcome.maxMessage); see maxLinkMessage.
 */
export const LINK_OVERHEAD = 64 << 10;

/**
 * maxLinkMessage is the largest link message in either direction on a link
 * to a broker that relays messages of up to maxMessage bytes: every writer
 * cuts its batches at it (docs/PROTOCOL.md, "The link").
 */
export function maxLinkMessage(maxMessage) { return Math.min(maxMessage, MAX_FRAME_BODY) + LINK_OVERHEAD; }

/** Data and Push flag: the message is binary (otherwise UTF-8 text). */
export const FLAG_BINARY = 1;
/** Hello flag: ask for a fresh private scope. */
export const HELLO_PRIVATE = 1;
/** Hello flag: the service understands url frames (the public URL changed). */
export const HELLO_URL_UPDATES = 2;

/** Error frame codes. */
export const ErrorCode = Object.freeze({
  protocol: 1, version: 2, unauthorized: 3, scope: 4, limit: 5, shutdown: 6, internal: 7,
});

// Field kinds: uv (uvarint), u8 (byte), bool (u8), str (string), bytes
// (length-prefixed), strs ([string]), hdrs ([header]), infos ([channelInfo]),
// rest (every byte left).
const CHANNEL_INFO = [['channel', 'uv'], ['origin', 'str'], ['target', 'str'], ['protocol', 'str'],
  ['app', 'str'], ['remote', 'str'], ['since', 'uv']];

/** Frame layouts by name; the order of fields is the wire order. */
export const FRAMES = Object.freeze({
  hello: [0x01, [['version', 'uv'], ['scope', 'str'], ['label', 'str'], ['credential', 'str'],
    ['protocols', 'strs'], ['origins', 'strs'], ['window', 'uv'], ['flags', 'uv'], ['hold', 'tail-uv']]],
  welcome: [0x02, [['version', 'uv'], ['instance', 'uv'], ['scope', 'str'], ['publicURL', 'str'],
    ['active', 'bool'], ['window', 'uv'], ['maxMessage', 'uv']]],
  error: [0x03, [['code', 'uv'], ['message', 'str']]],
  state: [0x04, [['active', 'bool']]],
  url: [0x05, [['publicURL', 'str']]],
  connect: [0x10, [['channel', 'uv'], ['remote', 'str'], ['origin', 'str'], ['target', 'str'],
    ['protocols', 'strs'], ['app', 'str'], ['firstLine', 'str'], ['headers', 'hdrs'], ['body', 'bytes']]],
  accept: [0x11, [['channel', 'uv'], ['protocol', 'str'], ['headers', 'hdrs']]],
  respond: [0x12, [['channel', 'uv'], ['status', 'uv'], ['headers', 'hdrs'], ['body', 'bytes']]],
  reject: [0x13, [['channel', 'uv']]],
  open: [0x14, CHANNEL_INFO],
  data: [0x20, [['channel', 'uv'], ['seq', 'uv'], ['flags', 'u8'], ['payload', 'rest']]],
  ack: [0x21, [['channel', 'uv'], ['seq', 'uv']]],
  credit: [0x22, [['channel', 'uv'], ['bytes', 'uv']]],
  close: [0x23, [['channel', 'uv'], ['code', 'uv'], ['reason', 'str']]],
  push: [0x24, [['flags', 'u8'], ['prefix', 'str'], ['payload', 'rest']]],
  list: [0x30, [['request', 'uv']]],
  clients: [0x31, [['request', 'uv'], ['clients', 'infos']]],
});

const BY_CODE = new Map(Object.entries(FRAMES).map(([name, [code, fields]]) => [code, [name, fields]]));

/** ProtocolError is a malformed frame or link message. */
export class ProtocolError extends Error {
  constructor(message) { super('switchboard protocol: ' + message); this.name = 'ProtocolError'; }
}

const utf8 = new TextEncoder();
const utf8dec = new TextDecoder('utf-8', { fatal: true });

// ---------------------------------------------------------------- encoding

class Writer {
  constructor() { this.buf = new Uint8Array(64); this.n = 0; }
  grow(k) {
    if (this.n + k <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.n + k) size *= 2;
    const b = new Uint8Array(size);
    b.set(this.buf.subarray(0, this.n));
    this.buf = b;
  }
  byte(v) { this.grow(1); this.buf[this.n++] = v & 0xff; }
  uvarint(v) {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`switchboard protocol: ${v} is not an unsigned integer below 2^53`);
    this.grow(10);
    while (v >= 0x80) { this.buf[this.n++] = (v % 0x80) | 0x80; v = Math.floor(v / 0x80); }
    this.buf[this.n++] = v;
  }
  raw(b) { this.grow(b.length); this.buf.set(b, this.n); this.n += b.length; }
  bytes(b) { this.uvarint(b.length); this.raw(b); }
  string(s) { this.bytes(utf8.encode(s ?? '')); }
  result() { return this.buf.subarray(0, this.n); }
}

function toBytes(v) {
  if (v == null) return new Uint8Array(0);
  if (v instanceof Uint8Array) return v;
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  if (typeof v === 'string') return utf8.encode(v);
  throw new TypeError('switchboard protocol: expected bytes');
}

function writeField(w, kind, v) {
  switch (kind) {
    case 'uv': w.uvarint(v ?? 0); break;
    case 'tail-uv': if (v) w.uvarint(v); break; // optional last field: absent means 0
    case 'u8': w.byte(v ?? 0); break;
    case 'bool': w.byte(v ? 1 : 0); break;
    case 'str': w.string(v); break;
    case 'bytes': w.bytes(toBytes(v)); break;
    case 'rest': w.raw(toBytes(v)); break;
    case 'strs': w.uvarint((v ?? []).length); for (const s of v ?? []) w.string(s); break;
    case 'hdrs': w.uvarint((v ?? []).length); for (const h of v ?? []) { w.string(h.name); w.string(h.value); } break;
    case 'infos':
      w.uvarint((v ?? []).length);
      for (const c of v ?? []) for (const [name, k] of CHANNEL_INFO) writeField(w, k, c[name]);
      break;
    default: throw new Error('unknown field kind ' + kind);
  }
}

/** Appends one frame to writer w (or a new one) and returns the bytes. */
function encodeInto(w, frame) {
  const spec = FRAMES[frame.type];
  if (!spec) throw new TypeError(`switchboard protocol: unknown frame type ${frame.type}`);
  const body = new Writer();
  for (const [name, kind] of spec[1]) writeField(body, kind, frame[name]);
  const b = body.result();
  w.byte(spec[0]);
  w.bytes(b);
}

/** encodeFrames encodes frames into one link message. */
export function encodeFrames(frames) {
  const w = new Writer();
  for (const f of frames) encodeInto(w, f);
  return w.result().slice();
}

/**
 * encodeBatches encodes frames into link messages of whole frames, each at
 * most limit bytes (a single larger frame goes alone), in order.
 */
export function encodeBatches(frames, limit) {
  const w = new Writer();
  const cuts = [0];
  for (const f of frames) {
    const at = w.n;
    encodeInto(w, f);
    if (w.n - cuts[cuts.length - 1] > limit && at > cuts[cuts.length - 1]) cuts.push(at);
  }
  const all = w.result();
  const out = [];
  for (let i = 0; i < cuts.length; i++) {
    const end = i + 1 < cuts.length ? cuts[i + 1] : all.length;
    if (end > cuts[i]) out.push(all.slice(cuts[i], end));
  }
  return out;
}

/** encodeFrame encodes a single frame. */
export function encodeFrame(frame) { return encodeFrames([frame]); }

// ---------------------------------------------------------------- decoding

class Reader {
  constructor(b, what) { this.b = b; this.i = 0; this.what = what; }
  left() { return this.b.length - this.i; }
  short() { return new ProtocolError(`${this.what}: truncated frame`); }
  byte() { if (this.i >= this.b.length) throw this.short(); return this.b[this.i++]; }
  uvarint() {
    let v = 0, mul = 1;
    for (let k = 0; k < 10; k++) {
      if (this.i >= this.b.length) throw this.short();
      const c = this.b[this.i++];
      if (k === 9 && c > 1) throw new ProtocolError(`${this.what}: varint overflows`);
      v += (c & 0x7f) * mul;
      if (c < 0x80) {
        if (!Number.isSafeInteger(v)) throw new ProtocolError(`${this.what}: integer beyond 2^53`);
        return v;
      }
      mul *= 0x80;
    }
    throw new ProtocolError(`${this.what}: varint overflows`);
  }
  bytes() {
    const n = this.uvarint();
    if (n > this.left()) throw this.short();
    const v = this.b.subarray(this.i, this.i + n);
    this.i += n;
    return v;
  }
  string() {
    try { return utf8dec.decode(this.bytes()); } catch (e) {
      if (e instanceof ProtocolError) throw e;
      throw new ProtocolError(`${this.what}: invalid UTF-8 in a string`);
    }
  }
  count() {
    const n = this.uvarint();
    if (n > this.left()) throw new ProtocolError(`${this.what}: list count ${n} larger than the frame`);
    return n;
  }
  rest() { const v = this.b.subarray(this.i); this.i = this.b.length; return v; }
}

function readField(r, kind) {
  switch (kind) {
    case 'uv': return r.uvarint();
    case 'tail-uv': return r.left() > 0 ? r.uvarint() : 0;
    case 'u8': return r.byte();
    case 'bool': return r.byte() !== 0;
    case 'str': return r.string();
    case 'bytes': return r.bytes();
    case 'rest': return r.rest();
    case 'strs': { const n = r.count(), out = []; for (let i = 0; i < n; i++) out.push(r.string()); return out; }
    case 'hdrs': {
      const n = r.count(), out = [];
      for (let i = 0; i < n; i++) out.push({ name: r.string(), value: r.string() });
      return out;
    }
    case 'infos': {
      const n = r.count(), out = [];
      for (let i = 0; i < n; i++) {
        const c = {};
        for (const [name, k] of CHANNEL_INFO) c[name] = readField(r, k);
        out.push(c);
      }
      return out;
    }
  }
  throw new Error('unknown field kind ' + kind);
}

/** decodeBody decodes the body of a frame of the given type code. */
export function decodeBody(code, body) {
  const spec = BY_CODE.get(code);
  if (!spec) throw new ProtocolError(`unknown frame type 0x${code.toString(16).padStart(2, '0')}`);
  const [name, fields] = spec;
  const r = new Reader(body, name);
  const frame = { type: name };
  for (const [field, kind] of fields) frame[field] = readField(r, kind);
  if (r.left() !== 0) throw new ProtocolError(`${name}: trailing bytes in frame body`);
  return frame;
}

/**
 * decodeFrames splits a link message into frames and decodes each. Byte
 * fields are views into msg.
 * @param {Uint8Array|ArrayBuffer} msg
 */
export function decodeFrames(msg) {
  const b = toBytes(msg);
  const r = new Reader(b, 'frame');
  const out = [];
  while (r.left() > 0) {
    const code = r.byte();
    const n = r.uvarint();
    if (n > MAX_FRAME_BODY) throw new ProtocolError('frame too large');
    if (n > r.left()) throw r.short();
    out.push(decodeBody(code, b.subarray(r.i, r.i + n)));
    r.i += n;
  }
  return out;
}
