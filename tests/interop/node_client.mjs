#!/usr/bin/env node
// Interop client: the npm package ws (version pinned in package.json)
// against a WebSocket echo endpoint. Same flags, scenario and output as
// py_client.py:
//
// Scenario (default): connect, check the negotiated subprotocol, send text
// and binary messages (unicode, empty, a large one) one at a time and expect
// exact echoes, then close with 4001 "bye" and report the close frame
// received. --expect-status N: the handshake must be rejected with HTTP
// status N. --expect-close CODE: send the --send texts, then wait for the
// server to close with CODE; report its code and reason.
//
// Prints one JSON line on stdout; exits 0 when everything matched, 1 on a
// mismatch (the JSON has ok=false and error), 2 on bad arguments.

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';

const CLIENT = 'node-ws';
const VERSION = JSON.parse(
  readFileSync(new URL('./node_modules/ws/package.json', import.meta.url), 'utf8'),
).version;

class Mismatch extends Error {}

function usage(msg) {
  process.stderr.write(`${CLIENT}: ${msg}\n`);
  process.exit(2);
}

function parse(argv) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        url: { type: 'string' },
        protocol: { type: 'string', multiple: true, default: [] },
        'expect-protocol': { type: 'string' },
        header: { type: 'string', multiple: true, default: [] },
        'expect-status': { type: 'string' },
        'expect-close': { type: 'string' },
        send: { type: 'string', multiple: true, default: [] },
        'print-response-header': { type: 'string', multiple: true, default: [] },
        'large-size': { type: 'string', default: String(100 * 1024) },
        timeout: { type: 'string', default: '10' },
      },
      strict: true,
    }));
  } catch (e) {
    usage(e.message);
  }
  if (!values.url) usage('--url is required');
  const int = (name) => {
    const v = values[name];
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n)) usage(`--${name} ${v}: want a number`);
    return n;
  };
  const headers = {};
  for (const h of values.header) {
    const i = h.indexOf(':');
    if (i <= 0) usage(`--header ${h}: want K:V`);
    headers[h.slice(0, i).trim()] = h.slice(i + 1).trim();
  }
  return {
    url: values.url,
    protocols: values.protocol,
    expectProtocol: values['expect-protocol'],
    headers,
    expectStatus: int('expect-status'),
    expectClose: int('expect-close'),
    send: values.send,
    printHeaders: values['print-response-header'],
    largeSize: int('large-size'),
    timeout: int('timeout'),
  };
}

// The messages the default scenario sends, in order: [isBinary, data].
function messages(largeSize) {
  const largeText = '0123456789abcdef'.repeat(Math.floor(largeSize / 16) + 1).slice(0, largeSize);
  const largeBinary = Buffer.alloc(largeSize);
  for (let i = 0; i < largeSize; i++) largeBinary[i] = (i * 7 + (i >> 8)) & 0xff;
  return [
    [false, 'hello'],
    [false, 'héllo wörld — κόσμε 😀 日本語'],
    [false, ''],
    [true, Buffer.from(Array.from({ length: 256 }, (_, i) => i))],
    [true, Buffer.alloc(0)],
    [false, largeText],
    [true, largeBinary],
  ];
}

function describe(isBinary, data) {
  const n = isBinary ? data.length : Buffer.byteLength(data);
  return `${isBinary ? 'binary' : 'text'} message of ${n} bytes`;
}

function pickHeaders(headers, names) {
  const out = {};
  for (const n of names) {
    const v = headers[n.toLowerCase()];
    out[n] = v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

// Connection wraps a ws client in promises: the next message, the close.
class Connection {
  constructor(ws) {
    this.ws = ws;
    this.queue = [];
    this.waiting = null;
    this.closeInfo = null;
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString('utf8') };
        resolve(this.closeInfo);
        if (this.waiting) this.waiting.reject(this.closedError());
      });
    });
    ws.on('message', (data, isBinary) => {
      const m = { isBinary, data: isBinary ? data : data.toString('utf8') };
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = null;
        w.resolve(m);
      } else this.queue.push(m);
    });
  }

  closedError() {
    const { code, reason } = this.closeInfo;
    return new Mismatch(`connection closed with ${code} ${JSON.stringify(reason)} while waiting for a message`);
  }

  next() {
    if (this.queue.length) return Promise.resolve(this.queue.shift());
    if (this.closeInfo) return Promise.reject(this.closedError());
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
  }
}

// open resolves with the Connection, or with {status, headers} when the
// server answers the handshake with something other than 101.
function open(args) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(args.url, args.protocols, {
      headers: args.headers,
      handshakeTimeout: args.timeout * 1000,
      maxPayload: Math.max(1 << 20, 2 * args.largeSize),
    });
    let responseHeaders = {};
    ws.on('upgrade', (res) => {
      responseHeaders = res.headers;
    });
    ws.on('unexpected-response', (req, res) => {
      resolve({ status: res.statusCode, headers: res.headers });
      res.resume();
      req.destroy();
    });
    ws.on('error', (e) => reject(e));
    ws.on('open', () => resolve({ status: 101, headers: responseHeaders, conn: new Connection(ws) }));
  });
}

async function scenario(args, result) {
  const opened = await open(args);
  result.status = opened.status;
  result.response_headers = pickHeaders(opened.headers, args.printHeaders);
  if (opened.status !== 101) {
    if (args.expectStatus === undefined) throw new Mismatch(`handshake rejected with HTTP ${opened.status}, want 101`);
    if (opened.status !== args.expectStatus) {
      throw new Mismatch(`handshake rejected with HTTP ${opened.status}, want ${args.expectStatus}`);
    }
    return;
  }
  const conn = opened.conn;
  const ws = conn.ws;
  try {
    result.protocol = ws.protocol === '' ? null : ws.protocol;
    if (args.expectStatus !== undefined) throw new Mismatch(`handshake succeeded with 101, want HTTP ${args.expectStatus}`);
    if (args.expectProtocol !== undefined && ws.protocol !== args.expectProtocol) {
      throw new Mismatch(`server picked subprotocol ${JSON.stringify(ws.protocol)}, want ${JSON.stringify(args.expectProtocol)}`);
    }
    if (args.expectClose !== undefined) {
      for (const text of args.send) ws.send(text);
      const rec = (async () => {
        for (;;) {
          const m = await conn.next();
          result.received.push(m.isBinary ? `<binary ${m.data.length} bytes>` : m.data);
        }
      })();
      rec.catch(() => {}); // ends when the connection closes
      const close = await conn.closed;
      result.close = close;
      if (close.code === 1006) throw new Mismatch(`connection ended without a close frame, want close ${args.expectClose}`);
      if (close.code !== args.expectClose) {
        throw new Mismatch(`server closed with ${close.code} ${JSON.stringify(close.reason)}, want ${args.expectClose}`);
      }
      return;
    }
    for (const [isBinary, data] of messages(args.largeSize)) {
      ws.send(data, { binary: isBinary });
      const got = await conn.next();
      const same = got.isBinary === isBinary && (isBinary ? Buffer.compare(got.data, data) === 0 : got.data === data);
      if (!same) throw new Mismatch(`${describe(isBinary, data)}: echo differs: got ${describe(got.isBinary, got.data)}`);
      result.echoed++;
    }
    ws.close(4001, 'bye');
    const close = await conn.closed;
    if (close.code === 1006) throw new Mismatch('no close frame received after closing with 4001');
    result.close = close;
  } finally {
    ws.terminate();
  }
}

async function main() {
  const args = parse(process.argv.slice(2));
  const result = {
    ok: false,
    client: CLIENT,
    version: VERSION,
    url: args.url,
    status: null,
    protocol: null,
    echoed: 0,
    received: [],
    close: null,
    response_headers: {},
    error: null,
  };
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Mismatch(`scenario timed out after ${args.timeout}s`)), args.timeout * 1000);
  });
  try {
    await Promise.race([scenario(args, result), timeout]);
    result.ok = true;
  } catch (e) {
    result.error = e instanceof Mismatch ? e.message : `${e.name}: ${e.message}`;
  } finally {
    clearTimeout(timer);
  }
  if (!result.ok) process.stderr.write(`${CLIENT}: ${result.error}\n`);
  // Exit once the line is out: a timed-out scenario may leave a socket open.
  process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(result.ok ? 0 : 1));
}

main();
