// The browser side on a production broker: started from a config file,
// without --dev (web/production_test.go writes it). Pages live on other
// origins (http://site.localhost, http://other.localhost, served to Chromium
// by the test), import the module from the broker, and listen with listen
// grants that a real HTTP test backend mints (examples/mint-grant.mjs), or
// with a private scope that the operator's policy allows.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { launch, nodeClient, pythonClient, rawHandshake, waitFor } from './harness.mjs';
import { mintGrant } from '../../examples/mint-grant.mjs';
import { PROD, WS_PROD, SITE_ARGS, sitePage, importModule } from './site.mjs';

const KEY = process.env.SWITCHBOARD_GRANT_KEY;
if (!KEY) throw new Error('SWITCHBOARD_GRANT_KEY is not set: run through `go test ./web/`');
const SITE = 'http://site.localhost';
const OTHER = 'http://other.localhost';
const MODULE = PROD + '/.switchboard/web/switchboard.js';

let browser, backend, BACKEND;
before(async () => {
  browser = await launch(SITE_ARGS);
  // The site's backend: mints a grant per request with the site's key.
  const secret = readFileSync(KEY, 'utf8');
  backend = http.createServer(async (req, res) => {
    const q = new URL(req.url, 'http://x').searchParams;
    const claims = JSON.parse(q.get('claims') ?? '{}');
    const kid = q.get('kid') ?? 'site-1';
    const key = q.get('forge') ? 'not-the-site-key-not-the-site-key-xx' : secret;
    const token = await mintGrant(key, kid, claims);
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Access-Control-Allow-Origin': '*', 'Cache-Control': 'no-store' }).end(token);
  });
  await new Promise((r) => backend.listen(0, '127.0.0.1', r));
  BACKEND = `http://127.0.0.1:${backend.address().port}`;
});
after(async () => { backend?.close(); await browser?.close(); });

/** echoOnce connects a Node ws client, sends one message, and resolves with the reply. */
function echoOnce(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const timer = setTimeout(() => { ws.terminate(); reject(new Error('no echo within 15 s')); }, 15000);
    ws.on('open', () => ws.send('ping'));
    ws.on('message', (d) => { clearTimeout(timer); ws.close(); resolve(d.toString()); });
    ws.on('unexpected-response', (_, res) => { clearTimeout(timer); reject(new Error(`refused: HTTP ${res.statusCode}`)); });
    ws.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

test('a page on another origin imports the module, listens with a grant from its backend, and serves Python', async () => {
  const page = await sitePage(browser.ctx, SITE);
  // The module's answer: public, typed, revalidated by a content ETag.
  const r = await fetch(MODULE, { headers: { Origin: SITE } });
  assert.equal(r.headers.get('access-control-allow-origin'), '*');
  assert.equal(r.headers.get('content-type'), 'text/javascript; charset=utf-8');
  assert.equal(r.headers.get('cache-control'), 'no-cache');
  const etag = r.headers.get('etag');
  assert.match(etag ?? '', /^"[\w-]{16}"$/);
  const again = await fetch(MODULE, { headers: { Origin: SITE, 'If-None-Match': etag } });
  assert.equal(again.status, 304);

  const url = await page.evaluate(async ({ backend }) => {
    let calls = 0;
    sb.configure({ token: async () => { calls++; return (await fetch(backend + '/grant?claims=' + encodeURIComponent(JSON.stringify({ scopes: ['/site/shop/'], origin: location.origin })))).text(); } });
    const l = new sb.WebSocketListener('/site/shop/');
    window.errors = [];
    l.onerror = (e) => errors.push(e.message);
    l.onconnection = ({ socket }) => { socket.onmessage = (e) => socket.send('site:' + e.data); };
    await l.ready;
    window.calls = calls;
    return l.url;
  }, { backend: BACKEND });
  assert.match(url, /\/site\/shop\/$/);
  const py = await pythonClient(url + 'py', ['hello']);
  assert.deepEqual(py.got, ['site:hello']);
  assert.equal(await page.evaluate(() => calls), 1);

  // A grant with a prefix: new WebSocketListener() makes its private scope there.
  const priv = await page.evaluate(async ({ backend }) => {
    sb.configure({ token: () => fetch(backend + '/grant?claims=' + encodeURIComponent(JSON.stringify({ prefix: '/site/tabs/' }))).then((r) => r.text()) });
    const l = new sb.WebSocketListener();
    l.onconnection = ({ socket }) => { socket.onmessage = (e) => socket.send('tab:' + e.data); };
    await l.ready;
    sb.configure({ token: null });
    return l.url;
  }, { backend: BACKEND });
  assert.match(priv, /\/site\/tabs\/~[a-z0-9]+\/$/);
  const c = nodeClient(priv);
  await c.open;
  c.ws.send('x');
  await waitFor('the echo from the private scope', () => c.messages.length === 1);
  assert.equal(c.messages[0], 'tab:x');
  assert.deepEqual(page.errors, []);
  await page.close();
});

/** refusal listens with the grant the backend mints for q and returns the page's errors. */
async function refusal(origin, q) {
  const page = await sitePage(browser.ctx, origin);
  const out = await page.evaluate(async ({ backend, q }) => {
    const token = await (await fetch(backend + '/grant?' + q)).text();
    sb.configure({ token });
    const l = new sb.WebSocketListener('/site/refused/');
    const errors = [];
    l.onerror = (e) => errors.push(e.message);
    // ready rejects after the link's end has fired its events: a second
    // error event would be in errors by now.
    const ready = await l.ready.then(() => 'listening', (e) => e.message);
    return { errors, ready, state: l.readyState };
  }, { backend: BACKEND, q });
  await page.close();
  return out;
}

test('an expired grant, a forged one, and one bound to another origin are each refused with one clear error', async () => {
  const claims = (c) => 'claims=' + encodeURIComponent(JSON.stringify(c));
  const expired = await refusal(SITE, claims({ scopes: ['/site/'], ttl: Math.floor(Date.now() / 1000) - 60 }));
  assert.equal(expired.errors.length, 1, JSON.stringify(expired));
  assert.match(expired.errors[0], /^listen grant expired at \S+: ask your backend for a fresh one$/);
  assert.equal(expired.ready, expired.errors[0]);
  assert.equal(expired.state, 2);

  const forged = await refusal(SITE, claims({ scopes: ['/site/'] }) + '&forge=1');
  assert.equal(forged.errors.length, 1, JSON.stringify(forged));
  assert.match(forged.errors[0], /signature does not verify with key "site-1"/);

  const bound = await refusal(OTHER, claims({ scopes: ['/site/'], origin: SITE }));
  assert.equal(bound.errors.length, 1, JSON.stringify(bound));
  assert.equal(bound.errors[0], 'listen grant refused: it is bound to origin http://site.localhost, and this link\'s origin is http://other.localhost');

  const unknown = await refusal(SITE, claims({ scopes: ['/site/'] }) + '&kid=retired');
  assert.match(unknown.errors[0], /key id "retired" is not one this broker knows/);
});

test('private scopes without a grant: allowed by policy for one origin, refused for another', async () => {
  const site = await sitePage(browser.ctx, SITE);
  const url = await site.evaluate(async () => {
    const l = new sb.WebSocketListener();
    l.onconnection = ({ socket }) => { socket.onmessage = (e) => socket.send('anon:' + e.data); };
    await l.ready;
    return l.url;
  });
  assert.match(url, /^ws:\/\/127\.0\.0\.1:\d+\/~[a-z0-9]+\/$/);
  const py = await pythonClient(url, ['hi']);
  assert.deepEqual(py.got, ['anon:hi']);

  const other = await sitePage(browser.ctx, OTHER);
  const refused = await other.evaluate(async () => {
    const l = new sb.WebSocketListener();
    const errors = [];
    l.onerror = (e) => errors.push(e.message);
    await l.ready.catch(() => {});
    return errors;
  });
  assert.deepEqual(refused, ['private scopes without a credential or grant are not open to http://other.localhost on this broker (private_scopes.origins)']);
  await site.close();
  await other.close();
});

test('a service page reloads while clients connect, and none is refused (hold)', async () => {
  const page = await sitePage(browser.ctx, SITE);
  const listen = () => page.evaluate(async ({ backend }) => {
    sb.configure({ token: () => fetch(backend + '/grant?claims=' + encodeURIComponent(JSON.stringify({ scopes: ['/site/reload/'], origin: location.origin }))).then((r) => r.text()) });
    const l = new sb.WebSocketListener('/site/reload/', undefined, { hold: 8000 });
    l.onconnection = ({ socket }) => { socket.onmessage = (e) => socket.send('served:' + e.data); };
    await l.ready;
    return l.url;
  }, { backend: BACKEND });
  const url = await listen();
  let served = 0, stop = false;
  const refused = [];
  const loop = async () => {
    while (!stop) {
      try {
        assert.equal(await echoOnce(url + 'c'), 'served:ping');
        served++;
      } catch (e) {
        refused.push(String(e));
      }
      await new Promise((r) => setTimeout(r, 20)); // pacing of the client loop
    }
  };
  const loops = [loop(), loop(), loop()];
  await waitFor('clients served before the reload', () => served >= 10, 15000);
  await page.reload();
  await importModule(page);
  assert.equal(await listen(), url);
  const after = served;
  await waitFor('clients served after the reload', () => served >= after + 15, 20000);
  stop = true;
  await Promise.all(loops);
  assert.deepEqual(refused, [], `${refused.length} of ${served + refused.length} connects refused across the reload`);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('a grant that expires is renewed through the token function; the listener keeps serving', async () => {
  const page = await sitePage(browser.ctx, SITE);
  const url = await page.evaluate(async ({ backend }) => {
    window.grants = 0;
    sb.configure({ token: async () => { grants++; return (await fetch(backend + '/grant?claims=' + encodeURIComponent(JSON.stringify({ scopes: ['/site/renew/'], ttl: '2s' })))).text(); } });
    const l = new sb.WebSocketListener('/site/renew/');
    window.renewErrors = [];
    l.onerror = (e) => renewErrors.push(e.message);
    l.onconnection = ({ socket }) => { socket.onmessage = (e) => socket.send('renewed:' + e.data); };
    await l.ready;
    sb.configure({ token: null });
    return l.url;
  }, { backend: BACKEND });
  const c = nodeClient(url + 'kept');
  await c.open;
  await waitFor('two renewals of a 2 s grant', () => page.evaluate(() => grants >= 3), 15000);
  c.ws.send('after');
  await waitFor('the kept client served after the renewals', () => c.messages.length === 1, 15000);
  assert.equal(c.messages[0], 'renewed:after');
  const py = await pythonClient(url + 'new', ['x']);
  assert.deepEqual(py.got, ['renewed:x']);
  assert.deepEqual(await page.evaluate(() => renewErrors), []);
  await page.close();
});

test('the dashboard on a production broker: sign in with the admin token, then live', async () => {
  const page = await browser.ctx.newPage();
  try {
    await page.goto(PROD + '/');
    await page.waitForSelector('#signin:not([hidden])');
    assert.match(await page.textContent('#live-text'), /sign in with the admin token/);
    await page.fill('#signin-token', 'not-the-admin-token');
    await page.click('#signin button');
    await page.waitForFunction(() => /rejected/.test(document.getElementById('signin-error').textContent));
    await page.fill('#signin-token', process.env.SWITCHBOARD_PROD_ADMIN_TOKEN);
    await page.click('#signin button');
    await page.waitForSelector('#live[data-state=live]');
    assert.equal(await page.isHidden('#signin'), true);
    // The session is an HttpOnly cookie: the page's scripts never see it.
    assert.equal(await page.evaluate(() => document.cookie), '');
    assert.match(await page.textContent('#node'), /^node /);
  } finally {
    await page.close();
  }
});

test('a BrowserSocket handler that picks a subprotocol the client did not offer refuses it, as no service would, and tells the page once', async () => {
  const page = await sitePage(browser.ctx, SITE);
  const url = await page.evaluate(async ({ backend }) => {
    sb.configure({ token: () => fetch(backend + '/grant?claims=' + encodeURIComponent(JSON.stringify({ prefix: '/site/tabs/' }))).then((r) => r.text()) });
    window.bsErrors = [];
    const bs = new sb.BrowserSocket(() => ({
      handshakeResponseLoop: (r) => { r.headers['Sec-WebSocket-Protocol'] = 'chat'; return r; },
    }));
    bs.onerror = (e) => bsErrors.push(e.message);
    await bs.ready;
    sb.configure({ token: null });
    return bs.url;
  }, { backend: BACKEND });
  const refused = await rawHandshake(url + 'x');
  const nobody = await rawHandshake(WS_PROD + '/site/nobody-here/');
  assert.match(refused, /^HTTP\/1\.1 404 /);
  assert.equal(refused, nobody);
  const errors = await page.evaluate(() => bsErrors);
  assert.equal(errors.length, 1, JSON.stringify(errors));
  assert.match(errors[0], /subprotocol "chat", which the client did not offer/);
  await page.close();
});
