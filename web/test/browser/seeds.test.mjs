// The seeds' own code in Chromium against the production broker (config
// file, no --dev), each page on another origin with the library imported
// from the broker. The seed's lines are kept as written; what differs is
// said at each test (docs/ORIGINS.md lists every seed example).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, pythonClient, nodeClient, waitFor } from './harness.mjs';
import { readFileSync } from 'node:fs';
import { PROD, SITE_ARGS, sitePage } from './site.mjs';
import { mintGrant } from '../../examples/mint-grant.mjs';

const SITE = 'http://site.localhost';
const PORT = Number(new URL(PROD).port);

let browser;
before(async () => { browser = await launch(SITE_ARGS); });
after(async () => { await browser?.close(); });

test('seed 003: navigator.connect and the echo service worker, with a Map through postMessage', async () => {
  // The service: the seed's serviceworker.js, `this` being the registration of
  // the exact URL 'BROKER/site/services/echo' (the seed's https://example.com/
  // is this broker's http:// URL here; https:// is routed as wss:// the same
  // way). On this production broker the page listens with a listen grant.
  const service = await sitePage(browser.ctx, SITE);
  const target = PROD + '/site/services/echo';
  const token = await mintGrant(readFileSync(process.env.SWITCHBOARD_GRANT_KEY, 'utf8'), 'site-1', { scopes: ['/site/services/'] });
  await service.evaluate(async ({ target, token }) => {
    const { registerService, configure } = sb; // import { registerService } from '…/switchboard.js'
    configure({ token });
    const reg = registerService(target);
    window.reg = reg;
    (function () {
      // ---- seed 003, unchanged but for the URL ----
      this.addEventListener('crossoriginconnect', function(event) {
        // Optionally check event.client.origin to determine if that origin should be
        // allowed access to this service.
        event.acceptConnection(event.client.targetUrl === target);
      });

      this.addEventListener('crossoriginmessage', function(event) {
        event.source.postMessage(event.data, event.ports);
      });
      // ---- end of seed 003 ----
    }).call(reg);
    await reg.ready;
  }, { target, token });

  const client = await sitePage(browser.ctx, 'http://other.localhost');
  const got = await client.evaluate(async (target) => {
    const navigator = sb; // import * as navigator from '…/switchboard.js'
    const seen = [];
    await new Promise((done) => {
      // ---- seed 003, unchanged but for the URL ----
      navigator.connect(target).then(
        function(port) {
          port.postMessage('hello');
          port.onmessage = function(event) {
            // Handle reply from the service.
            seen.push(event.data);
            if (seen.length === 1) port.postMessage(new Map([['k', new Set([1n, new Date(7)])], ['self', null]]));
            else done();
          };
        }
      );
      // ---- end of seed 003 ----
    });
    const m = seen[1];
    // What cannot cross throws as the platform does.
    const port = await navigator.connect(target);
    let fnError = '', portError = '';
    try { port.postMessage({ f() {} }); } catch (e) { fnError = e.name; }
    try { port.postMessage('x', [new MessageChannel().port1]); } catch (e) { portError = e.name; }
    return {
      first: seen[0], isMap: m instanceof Map, set: [...m.get('k')].map(String), date: [...m.get('k')][1] instanceof Date,
      fnError, portError,
    };
  }, target);
  assert.deepEqual(got, { first: 'hello', isMap: true, set: ['1', String(new Date(7))], date: true, fnError: 'DataCloneError', portError: 'DataCloneError' });

  // The exact URL: a path under it is not this service (AbortError, like no service).
  const under = await client.evaluate((u) => sb.connect(u).then(() => 'open', (e) => e.name), target + '/more');
  assert.equal(under, 'AbortError');
  // getAll lists the clients connected now.
  const n = await service.evaluate(async () => (await reg.crossOriginClients.getAll()).length);
  assert.equal(n, 2);
  await client.close();
  await service.close();
});

test('seed 002: new WebSocketListener(port, protocol) on the broker\'s port; its protocol is required', async () => {
  const page = await sitePage(browser.ctx, SITE);
  const url = await page.evaluate(async (port) => {
    const { WebSocketListener } = sb; // import { WebSocketListener } from '…/switchboard.js'
    const listener = new WebSocketListener(port, 'chat');
    const states = [listener.readyState];
    listener.onconnection = ({ socket }) => { socket.onmessage = (e) => socket.send('chat:' + e.data); };
    await listener.ready;
    states.push(listener.readyState, listener.port === port);
    window.states = states;
    let other = '';
    try { new WebSocketListener(port + 1, 'chat'); } catch (e) { other = `${e.name}: ${e.message}`; }
    window.other = other;
    return listener.url;
  }, PORT);
  assert.deepEqual(await page.evaluate(() => states), [0, 1, true]);
  assert.match(await page.evaluate(() => other), new RegExp(`^NotSupportedError: port ${PORT + 1}: a page listens through the broker at .*whose port is ${PORT}; pass that port`));
  const py = await pythonClient(url, []).catch((e) => e.message);
  assert.match(String(py), /python websockets client failed/); // no protocol offered: refused
  const c = nodeClient(url, ['chat']);
  await c.open;
  c.ws.send('hi');
  await waitFor('the chat echo', () => c.messages.length === 1);
  assert.equal(c.messages[0], 'chat:hi');
  await page.close();
});

test('seed 003: getAll gives every version the same list, a superseded one until it detaches', async () => {
  // "The getAll method returns the same list of clients for all service
  // workers that are part of the same service worker registration": here
  // every instance (page) of a registration. The first version asks for
  // the list again and again while a second one takes over; each answer,
  // those after it learned it was superseded included, is the
  // registration's list, and once it has detached getAll says so.
  const target = PROD + '/site/versions/';
  const token = await mintGrant(readFileSync(process.env.SWITCHBOARD_GRANT_KEY, 'utf8'), 'site-1', { scopes: ['/site/versions/'] });
  const register = async ({ target, token }) => {
    sb.configure({ token });
    window.reg = sb.registerService(target);
    reg.oncrossoriginconnect = (e) => e.acceptConnection(true);
    reg.oncrossoriginmessage = (e) => e.source.postMessage(e.data);
    await reg.ready;
  };
  const v1 = await sitePage(browser.ctx, SITE);
  await v1.evaluate(register, { target, token });
  const client = await sitePage(browser.ctx, 'http://other.localhost');
  await client.evaluate(async (u) => { window.port = await sb.connect(u); }, target + 'room');

  await v1.evaluate(() => {
    window.seen = [];
    window.looping = (async () => {
      const end = Date.now() + 30000;
      while (Date.now() < end) {
        try {
          const all = await reg.crossOriginClients.getAll();
          seen.push({ active: reg.active, paths: all.map((c) => new URL(c.targetUrl).pathname) });
        } catch (e) {
          return e.message;
        }
      }
      return 'still attached after 30 s';
    })();
  });
  await waitFor('a first list on the first version', async () => (await v1.evaluate(() => seen.length)) > 0);
  const v2 = await sitePage(browser.ctx, SITE);
  await v2.evaluate(register, { target, token });
  const ended = await v1.evaluate(() => looping);
  const seen = await v1.evaluate(() => seen);
  assert.match(ended, /^this instance was superseded by a newer one of its registration and has detached/);
  assert.ok(seen.some((s) => !s.active), 'no getAll was answered on the superseded instance');
  for (const s of seen) assert.deepEqual(s.paths, ['/site/versions/room']);
  assert.deepEqual(await v2.evaluate(async () => (await reg.crossOriginClients.getAll()).map((c) => new URL(c.targetUrl).pathname)),
    ['/site/versions/room']);
  // The client goes on with the new version.
  const echo = await client.evaluate(() => new Promise((resolve) => { port.onmessage = (e) => resolve(e.data); port.postMessage('after'); }));
  assert.equal(echo, 'after');
  await client.close();
  await v1.close();
  await v2.close();
});
