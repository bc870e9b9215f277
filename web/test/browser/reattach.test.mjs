// Reattach in the browser library: the broker process is killed and started
// again on the same port under a page's WebSocketListener (named and
// private scope), registerService and BrowserSocket. The page is told
// through statechange, each service comes back at the same URL by itself,
// and Node ws clients reconnect to them. Each test runs against a --dev
// broker and against a production one (a config file whose credential the
// page is configured with; no --dev).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { launch, libraryPage, nodeClient, waitFor } from './harness.mjs';

const BIN = process.env.SWITCHBOARD_BIN;
if (!BIN) throw new Error('SWITCHBOARD_BIN is set by `go test ./web/`');

let browser;
// prod: the production broker's config file and the credential (owning
// "/") its pages use.
const prod = {};
before(async () => {
  browser = await launch();
  // `credential new --json`: the config entry on stdout, the secret on stderr.
  const made = spawnSync(BIN, ['credential', 'new', '--json', '--name', 'page', '--scope', '/'], { encoding: 'utf8' });
  if (made.status !== 0) throw new Error('credential new: ' + made.stderr);
  prod.credential = /sb_[a-z0-9]+/.exec(made.stderr)?.[0];
  if (!prod.credential) throw new Error('credential new printed no secret: ' + made.stderr);
  prod.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-reattach-'));
  prod.config = path.join(prod.dir, 'switchboard.json');
  fs.writeFileSync(prod.config, JSON.stringify({ credentials: [JSON.parse(made.stdout)] }));
});
after(async () => {
  await browser?.close();
  if (prod.dir) fs.rmSync(prod.dir, { recursive: true, force: true });
});

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
    srv.on('error', reject);
  });
}

/**
 * serve starts `switchboard serve` on addr, with --dev or (mode
 * 'production') the config file of prod, and resolves once it listens.
 */
function serve(addr, mode) {
  const how = mode === 'production' ? ['--config', prod.config] : ['--dev'];
  const p = spawn(BIN, ['serve', ...how, '--listen', addr], { stdio: ['ignore', 'ignore', 'pipe'] });
  p.log = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('broker did not listen within 20 s:\n' + p.log)), 20000);
    p.stderr.on('data', (d) => {
      p.log += d;
      if (p.log.includes('switchboard: listening on http://')) { clearTimeout(timer); resolve(p); }
    });
    p.on('exit', (code) => reject(new Error(`broker exited (${code}):\n${p.log}`)));
  });
}

function kill(p) {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => { p.on('exit', resolve); p.kill('SIGKILL'); });
}

/** echo opens a Node ws client, sends text and resolves with the reply. */
async function echo(url, text) {
  const c = nodeClient(url);
  await c.open;
  c.ws.send(text);
  await waitFor(`the echo from ${url}`, () => c.messages.length > 0 || c.closed);
  c.ws.close();
  return c.messages[0];
}

for (const mode of ['dev', 'production']) {
test(`${mode}: page services come back after a broker restart, at the same URL, and clients reconnect`, async () => {
  const addr = `127.0.0.1:${await freePort()}`;
  let broker = await serve(addr, mode);
  try {
    const page = await libraryPage(browser.ctx, `http://${addr}`);
    const urls = await page.evaluate(async (credential) => {
      if (credential) sb.configure({ credential });
      window.states = { named: [], priv: [], reg: [], bs: [] };
      const note = (k) => (e) => states[k].push(e.state);
      const serveEcho = (l) => { l.onconnection = ({ socket }) => { socket.onmessage = (e) => socket.send(e.data); }; };
      window.named = new sb.WebSocketListener('/named/');
      window.priv = new sb.WebSocketListener();
      serveEcho(named);
      serveEcho(priv);
      named.onstatechange = note('named');
      priv.onstatechange = note('priv');
      window.reg = sb.registerService('/svc/');
      reg.oncrossoriginconnect = (e) => e.acceptConnection(true);
      reg.oncrossoriginmessage = (e) => e.source.postMessage(e.data);
      reg.onstatechange = note('reg');
      window.bs = new sb.BrowserSocket(() => ({ onmessage(e) { this.send(e.data); } }), { scope: '/bs/' });
      bs.onstatechange = note('bs');
      await Promise.all([named.ready, priv.ready, reg.ready, bs.ready]);
      return { named: named.url, priv: priv.url, reg: reg.url, bs: bs.url };
    }, mode === 'production' ? prod.credential : '');
    const targets = { named: urls.named + 'x', priv: urls.priv + 'x', reg: urls.reg + 'x', bs: urls.bs + 'x' };
    for (const [k, u] of Object.entries(targets)) assert.equal(await echo(u, 'before ' + k), 'before ' + k);

    // A client connected across the restart: its connection is lost with
    // the broker, and it reconnects.
    const held = nodeClient(targets.named);
    await held.open;

    await kill(broker);
    await waitFor('every service reattaching', () => page.evaluate(() =>
      [named, priv, reg, bs].every((s) => s.state === 'reattaching')), 20000);
    assert.equal(await page.evaluate(() => named.readyState), 0, 'OPENING while reattaching');
    await waitFor('the held client to see the broker go', () => held.closed, 20000);

    broker = await serve(addr, mode);
    await waitFor('every service attached again', () => page.evaluate(() =>
      [named, priv, reg, bs].every((s) => s.state === 'attached')), 30000);
    const after = await page.evaluate(() => ({
      urls: { named: named.url, priv: priv.url, reg: reg.url, bs: bs.url }, states, ready: named.readyState,
    }));
    assert.deepEqual(after.urls, urls, 'the same URLs after the restart');
    assert.equal(after.ready, 1);
    for (const k of Object.keys(after.states)) assert.deepEqual(after.states[k], ['reattaching', 'attached'], k);
    for (const [k, u] of Object.entries(targets)) assert.equal(await echo(u, 'after ' + k), 'after ' + k);
    // The page learnt that its old clients are gone (the broker restarted).
    await waitFor('the lost sockets closed in the page', () => page.evaluate(() => named.sockets.size === 0));
    assert.deepEqual(page.errors, []);
    await page.close();
  } finally {
    await kill(broker);
  }
});

test(`${mode}: a broker down at page load: the first attach is retried with backoff, told by statechange, and ready resolves once it is up`, async () => {
  // The page (and the library) come from one broker; the services attach to
  // another, which is not running yet.
  const pageAddr = `127.0.0.1:${await freePort()}`;
  const addr = `127.0.0.1:${await freePort()}`;
  const pageBroker = await serve(pageAddr, 'dev'); // serves the page and the library only
  let broker = null;
  try {
    const page = await libraryPage(browser.ctx, `http://${pageAddr}`);
    await page.evaluate(([addr, credential]) => {
      sb.configure({ broker: `ws://${addr}`, credential });
      window.states = { named: [], reg: [], bs: [] };
      window.errors = [];
      window.settled = {};
      const note = (k) => (e) => { states[k].push(e.state); if (e.state === 'attaching') errors.push(e.error?.message ?? ''); };
      window.named = new sb.WebSocketListener('/first/');
      named.onconnection = ({ socket }) => { socket.onmessage = (e) => socket.send(e.data); };
      named.onstatechange = note('named');
      window.reg = sb.registerService('/firstsvc/');
      reg.oncrossoriginconnect = (e) => e.acceptConnection(true);
      reg.oncrossoriginmessage = (e) => e.source.postMessage(e.data);
      reg.onstatechange = note('reg');
      window.bs = new sb.BrowserSocket(() => ({ onmessage(e) { this.send(e.data); } }), { scope: '/firstbs/' });
      bs.onstatechange = note('bs');
      for (const k of ['named', 'reg', 'bs']) window[k].ready.then(() => { settled[k] = 'ready'; }, (e) => { settled[k] = 'rejected: ' + e.message; });
    }, [addr, mode === 'production' ? prod.credential : '']);
    // Failing attempts: each service says so once, stays 'attaching', and
    // its ready neither resolves nor rejects.
    await waitFor('every service told its first attach failed', () => page.evaluate(() =>
      Object.values(states).every((s) => s.length === 1)), 20000);
    let now = await page.evaluate(() => ({ states, errors, settled, state: [named.state, reg.state, bs.state], ready: named.readyState }));
    for (const k of Object.keys(now.states)) assert.deepEqual(now.states[k], ['attaching'], k);
    for (const e of now.errors) assert.match(e, /refused the service link|cannot open|closed/);
    assert.deepEqual(now.state, ['attaching', 'attaching', 'attaching']);
    assert.deepEqual(now.settled, {}, 'ready waits while the broker is down');
    assert.equal(now.ready, 0, 'OPENING while attaching');

    broker = await serve(addr, mode);
    await waitFor('every service attached', () => page.evaluate(() =>
      [named, reg, bs].every((s) => s.state === 'attached')), 30000);
    await waitFor('every ready resolved', () => page.evaluate(() => Object.keys(settled).length === 3));
    now = await page.evaluate(() => ({ states, settled, ready: named.readyState, urls: [named.url, reg.url, bs.url] }));
    assert.deepEqual(now.settled, { named: 'ready', reg: 'ready', bs: 'ready' });
    for (const k of Object.keys(now.states)) assert.deepEqual(now.states[k], ['attaching', 'attached'], k);
    assert.equal(now.ready, 1);
    for (const u of now.urls) assert.ok(u.startsWith(`ws://${addr}/`), u);
    for (const u of now.urls) assert.equal(await echo(u + 'x', 'up ' + u), 'up ' + u);
    assert.deepEqual(page.errors, []);
    await page.close();
  } finally {
    await kill(pageBroker);
    if (broker) await kill(broker);
  }
});
}
