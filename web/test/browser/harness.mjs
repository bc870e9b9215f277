// Shared helpers of the browser tests: Debian's Chromium through
// playwright-core, real clients (Node ws, Python websockets, raw TCP), and
// polling with a deadline. The broker is started by web/browser_test.go and
// named in SWITCHBOARD_URL.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import net from 'node:net';
import WebSocket from 'ws';

export const BROKER = process.env.SWITCHBOARD_URL?.replace(/\/$/, '');
if (!BROKER) throw new Error('SWITCHBOARD_URL is not set: run these tests through `go test ./web/`');
export const WS_BROKER = BROKER.replace(/^http/, 'ws');
export const ARTIFACTS = process.env.SWITCHBOARD_ARTIFACTS ?? join(process.cwd(), '..', 'artifacts', 'screenshots');

const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/**
 * launch starts Chromium with a fresh profile; close() removes it. extraArgs
 * are more command-line flags.
 */
export async function launch(extraArgs = []) {
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-chromium-'));
  const ctx = await chromium.launchPersistentContext(dir, {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [...ARGS, ...extraArgs],
    viewport: { width: 1280, height: 800 },
  });
  ctx.setDefaultTimeout(15000);
  return {
    ctx,
    async close() {
      closeClients();
      await ctx.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * page opens a page on the broker's origin with the library imported as
 * window.sb, and collects its console errors into page.errors.
 */
export async function libraryPage(ctx, broker = BROKER) {
  const page = await ctx.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  await page.goto(broker + '/healthz');
  await page.evaluate(async () => { window.sb = await import('/.switchboard/web/switchboard.js'); });
  return page;
}

/** waitFor polls f until it returns a truthy value or the deadline passes. */
export async function waitFor(what, f, timeout = 10000, every = 25) {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

/** nodeClient opens a Node `ws` client and collects its messages. */
const clients = new Set();

/** closeClients terminates every node client a test left open. */
export function closeClients() {
  for (const ws of clients) ws.terminate();
  clients.clear();
}

export function nodeClient(url, protocols) {
  const ws = new WebSocket(url, protocols);
  clients.add(ws);
  ws.on('close', () => clients.delete(ws));
  const c = { ws, messages: [], upgrade: null, closed: null };
  ws.on('upgrade', (res) => { c.upgrade = res; });
  ws.on('message', (d, isBinary) => c.messages.push(isBinary ? d : d.toString()));
  ws.on('close', (code, reason) => { c.closed = { code, reason: reason.toString() }; });
  c.error = new Promise((resolve) => ws.on('error', resolve));
  c.open = new Promise((resolve, reject) => { ws.on('open', resolve); ws.on('error', reject); });
  return c;
}

const PY = `
import asyncio, json, sys
import websockets

async def main():
    url, sends, offered = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
    async with websockets.connect(url, open_timeout=10, subprotocols=offered or None) as ws:
        out = {"headers": dict(ws.response_headers.raw_items()), "protocol": ws.subprotocol, "got": []}
        for s in sends:
            await ws.send(s)
            out["got"].append(await asyncio.wait_for(ws.recv(), 10))
        print(json.dumps(out))

asyncio.run(main())
`;

/**
 * pythonClient runs a Python `websockets` client (offering subprotocols, if
 * given) that sends each message, waits for one reply to each, and reports
 * the response headers and the chosen subprotocol.
 */
export function pythonClient(url, sends, subprotocols = []) {
  return new Promise((resolve, reject) => {
    execFile('/usr/bin/python3', ['-c', PY, url, JSON.stringify(sends), JSON.stringify(subprotocols)], { timeout: 20000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`python websockets client failed: ${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout));
    });
  });
}

/**
 * rawHandshake sends a WebSocket handshake over plain TCP and returns the
 * response bytes as text with the Date header blanked out.
 */
export function rawHandshake(url) {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(u.port), u.hostname);
    const chunks = [];
    const timer = setTimeout(() => { sock.destroy(); reject(new Error('raw handshake: no complete answer in 10 s')); }, 10000);
    sock.on('connect', () => sock.write(
      `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'));
    sock.on('data', (d) => {
      chunks.push(d);
      const text = Buffer.concat(chunks).toString('latin1');
      const head = text.indexOf('\r\n\r\n');
      if (head < 0) return;
      const len = Number(/\r\ncontent-length: *(\d+)/i.exec(text)?.[1] ?? 0);
      if (text.length >= head + 4 + len) {
        clearTimeout(timer);
        sock.destroy();
        resolve(text.replace(/\r\nDate: [^\r]*/i, '\r\nDate: -'));
      }
    });
    sock.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

export function artifactsDir() {
  mkdirSync(ARTIFACTS, { recursive: true });
  return ARTIFACTS;
}
