// The JS codec against the shared vectors that the Go codec also passes
// (protocol/testdata/vectors.json), plus the malformed-frame rules of
// docs/PROTOCOL.md. Run: node --test web/test/codec.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { encodeFrame, encodeFrames, encodeBatches, decodeFrames, maxLinkMessage, FRAMES, ProtocolError } from '../protocol.js';

const vectorsPath = fileURLToPath(new URL('../../protocol/testdata/vectors.json', import.meta.url));
const vectors = JSON.parse(readFileSync(vectorsPath, 'utf8'));

// bytesFields are the Go []byte fields: JSON carries them as base64.
const bytesFields = new Set(['Body', 'Payload']);

// fromGo turns Go's JSON of a frame struct into the JS frame object.
function fromGo(type, fields) {
  const conv = (name, v) => {
    if (bytesFields.has(name)) return new Uint8Array(Buffer.from(v ?? '', 'base64'));
    if (v === null) return [];
    if (Array.isArray(v)) return v.map((e) => (typeof e === 'object' ? obj(e) : e));
    return v;
  };
  const obj = (o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k[0].toLowerCase() + k.slice(1), conv(k, v)]));
  return { type, ...obj(fields) };
}

const hex = (b) => Buffer.from(b).toString('hex');
// plain makes frames comparable: byte fields become hex strings.
const plain = (v) => {
  if (v instanceof Uint8Array) return hex(v);
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, e]) => [k, plain(e)]));
  return v;
};

test('vectors file covers every frame type', () => {
  assert.ok(vectors.length > 0, 'no vectors read');
  const seen = new Set(vectors.map((v) => v.type));
  for (const name of Object.keys(FRAMES)) assert.ok(seen.has(name), `no vector for ${name}`);
});

for (const v of vectors) {
  test(`vector ${v.name}: encode`, () => {
    assert.equal(hex(encodeFrame(fromGo(v.type, v.fields))), v.hex);
  });
  test(`vector ${v.name}: decode`, () => {
    const frames = decodeFrames(Buffer.from(v.hex, 'hex'));
    assert.equal(frames.length, 1);
    assert.deepEqual(plain(frames[0]), plain(fromGo(v.type, v.fields)));
  });
}

test('several frames in one link message', () => {
  const fs = vectors.map((v) => fromGo(v.type, v.fields));
  const msg = encodeFrames(fs);
  assert.equal(hex(msg), vectors.map((v) => v.hex).join(''));
  assert.deepEqual(decodeFrames(msg).map(plain), fs.map(plain));
});

const malformed = {
  'unknown type': '7f00',
  'truncated header': '20',
  'body longer than message': '2005012c',
  'truncated field': '210101',
  'trailing bytes': '2103010203',
  'list count beyond body': '3003097f00',
  'varint overflow': '2110ffffffffffffffffff7f00',
  'invalid utf-8 string': '23040101 01ff'.replace(' ', ''),
  'body over 64 MiB': '20' + 'ffffffff7f',
};
for (const [name, h] of Object.entries(malformed)) {
  test(`malformed: ${name}`, () => {
    assert.throws(() => decodeFrames(Buffer.from(h, 'hex')), ProtocolError);
  });
}

test('integers up to 2^53 round-trip; larger are refused', () => {
  const f = { type: 'ack', channel: Number.MAX_SAFE_INTEGER, seq: 1 };
  assert.deepEqual(decodeFrames(encodeFrame(f))[0], f);
  assert.throws(() => encodeFrame({ type: 'ack', channel: 2 ** 60, seq: 1 }), RangeError);
});

test('encodeBatches cuts at the link contract, in order, whole frames only', () => {
  const limit = maxLinkMessage(1 << 20);
  assert.equal(limit, (1 << 20) + (64 << 10));
  const frames = [];
  for (let i = 0; i < 5; i++) frames.push({ type: 'data', channel: i + 1, seq: 0, flags: 1, payload: new Uint8Array(250 << 10).fill(i) });
  frames.push({ type: 'ack', channel: 9, seq: 3 });
  frames.push({ type: 'data', channel: 7, seq: 0, flags: 0, payload: new Uint8Array(limit + 10) }); // alone, larger
  frames.push({ type: 'ack', channel: 9, seq: 4 });
  const msgs = encodeBatches(frames, limit);
  const back = [];
  for (const m of msgs) {
    const fs = decodeFrames(m);
    assert.ok(m.length <= limit || fs.length === 1, `a ${m.length}-byte message of ${fs.length} frames`);
    back.push(...fs);
  }
  assert.equal(msgs.length, 4);
  assert.deepEqual(back.map((f) => [f.type, f.channel, f.seq]), frames.map((f) => [f.type, f.channel, f.seq]));
  assert.deepEqual(encodeBatches([], limit), []);
  assert.deepEqual(encodeBatches([frames[5]], limit), [encodeFrame(frames[5])]);
});
