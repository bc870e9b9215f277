// A production broker that serves TLS (config file, no --dev, --tls-cert
// with a certificate for 127.0.0.1 from a test CA; web/production_test.go
// starts it): pages on its https:// origin, Node `ws` clients that trust
// the CA. The seed's `targetUrl === 'https://…'` check holds for a client
// that passed the https:// form, and failures fire `error` once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { launch, libraryPage, waitFor } from './harness.mjs';
import { mintGrant } from '../../examples/mint-grant.mjs';

const TLS = process.env.SWITCHBOARD_TLS_URL?.replace(/\/$/, '');
const CA = process.env.SWITCHBOARD_TLS_CA;
if (!TLS?.startsWith('https://') || !CA) throw new Error('SWITCHBOARD_TLS_URL and SWITCHBOARD_TLS_CA are not set: run through `go test ./web/`');
const WSS = TLS.replace(/^https:/, 'wss:');
const grant = (scopes) => mintGrant(readFileSync(process.env.SWITCHBOARD_GRANT_KEY, 'utf8'), 'site-1', { scopes });

/** wssClient opens a Node ws client that trusts the test CA (and nothing else). */
function wssClient(url) {
  const ws = new WebSocket(url, { ca: readFileSync(CA) });
  const c = { ws, messages: [], closed: null };
  ws.on('message', (d) => c.messages.push(d.toString()));
  ws.on('close', (code) => { c.closed = code; });
  c.open = new Promise((resolve, reject) => { ws.on('open', resolve); ws.on('error', reject); });
  return c;
}

let browser;
// Chromium cannot be given a CA file; the Node clients verify the chain.
before(async () => { browser = await launch(['--ignore-certificate-errors']); });
after(async () => { await browser?.close(); });

test('on a TLS broker a tab service sees the https:// or wss:// target its client passed', async () => {
  const scope = TLS + '/site/tls/';
  const service = await libraryPage(browser.ctx, TLS);
  const reg = await service.evaluate(async ({ scope, token }) => {
    sb.configure({ token });
    window.reg = sb.registerService(scope); // an https:// scope URL: the link is wss://
    window.seedCheck = [];
    reg.addEventListener('crossoriginconnect', (event) => {
      seedCheck.push(event.client.targetUrl === scope + 'from-seed'); // the seed's check, on https://
      event.acceptConnection(true);
    });
    reg.oncrossoriginmessage = (e) => e.source.postMessage({ echo: e.data, target: e.source.targetUrl });
    await reg.ready;
    return { url: reg.url, scope: reg.scope };
  }, { scope, token: await grant(['/site/tls/']) });
  assert.equal(reg.url, WSS + '/site/tls/');

  const client = await libraryPage(browser.ctx, TLS);
  const got = await client.evaluate(async (urls) => {
    const out = [];
    for (const u of urls) {
      const port = await sb.connect(u);
      out.push(await new Promise((resolve) => { port.onmessage = (e) => resolve(e.data); port.postMessage('hi'); }));
      port.close();
    }
    return out;
  }, [scope + 'from-seed', WSS + '/site/tls/as-wss']);
  assert.deepEqual(got, [
    { echo: 'hi', target: scope + 'from-seed' },
    { echo: 'hi', target: WSS + '/site/tls/as-wss' },
  ]);
  assert.deepEqual(await service.evaluate(() => seedCheck), [true, false]);

  // A plain WebSocket client over wss://, verifying the broker's certificate.
  const plain = wssClient(WSS + '/site/tls/plain');
  await plain.open;
  plain.ws.send('just text');
  await waitFor('a reply over wss://', () => plain.messages.length === 1);
  assert.deepEqual(JSON.parse(plain.messages[0].slice(1)), { echo: 'just text', target: WSS + '/site/tls/plain' });
  plain.ws.close();
  assert.deepEqual(service.errors, []);
  await client.close();
  await service.close();
});

test('BrowserSocket fires error once per failure: a refused socket, a connection lost', async () => {
  // A refused socket: no grant, and this origin may not create private scopes.
  const refused = await libraryPage(browser.ctx, TLS);
  const r = await refused.evaluate(async () => {
    const bs = new sb.BrowserSocket(() => ({}));
    const errors = [];
    const states = [];
    bs.onerror = (e) => errors.push(e.message);
    bs.onstatechange = (e) => states.push(e.state);
    const ready = await bs.ready.then(() => 'listening', (e) => e.message);
    // Both of a refusal's paths (the link's end, ready's rejection) have run now.
    return { errors, states, ready, state: bs.state };
  });
  assert.equal(r.errors.length, 1, JSON.stringify(r));
  assert.match(r.errors[0], /^private scopes without a credential or grant are not open to https:\/\/127\.0\.0\.1:\d+/);
  assert.equal(r.ready, r.errors[0]);
  assert.deepEqual(r.states, ['closed']);
  assert.equal(r.state, 'closed');

  // A connection lost (its client's TCP connection dropped without a
  // close frame): the handler's onerror once, then onclose, not clean;
  // the socket itself has no error.
  const page = await libraryPage(browser.ctx, TLS);
  const url = await page.evaluate(async (token) => {
    sb.configure({ token });
    window.events = [];
    window.socketErrors = 0;
    const bs = new sb.BrowserSocket(() => ({
      onopen() { events.push('open'); },
      onmessage(e) { this.send('bs:' + e.data); },
      onerror() { events.push('error'); },
      onclose(e) { events.push(`close ${e.code} ${e.wasClean}`); },
    }), { scope: '/site/bs-errors/' });
    bs.onerror = () => { socketErrors++; };
    await bs.ready;
    return bs.url;
  }, await grant(['/site/bs-errors/']));
  assert.ok(url.startsWith(WSS + '/site/bs-errors/'), url);
  const c = wssClient(url + 'x');
  await c.open;
  c.ws.send('hi');
  await waitFor('the echo', () => c.messages.length === 1);
  assert.equal(c.messages[0], 'bs:hi');
  c.ws.terminate();
  await waitFor('the handler told of the lost connection', async () => (await page.evaluate(() => events)).some((e) => e.startsWith('close')));
  assert.deepEqual(await page.evaluate(() => events), ['open', 'error', 'close 1006 false']);
  assert.equal(await page.evaluate(() => socketErrors), 0);
  await refused.close();
  await page.close();
});
