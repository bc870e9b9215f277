// connect/registerService (seed 003) between two real pages: values, the
// client list, a plain WebSocket client speaking the JSON convention, and
// handover: reloading the service page loses no message.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, libraryPage, nodeClient, waitFor, WS_BROKER } from './harness.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('two pages talk through connect and registerService; getAll lists clients', async () => {
  const service = await libraryPage(browser.ctx);
  const client = await libraryPage(browser.ctx);
  await service.evaluate(async () => {
    const reg = sb.registerService('/talk/');
    window.reg = reg;
    window.connects = [];
    reg.addEventListener('crossoriginconnect', (e) => {
      connects.push({ origin: e.client.origin, targetUrl: e.client.targetUrl });
      e.acceptConnection(true);
    });
    reg.oncrossoriginmessage = (e) => {
      const d = e.data;
      e.source.postMessage(d instanceof ArrayBuffer ? new Uint8Array(d).map((b) => b + 1) : { echo: d, from: e.source.targetUrl });
    };
    await reg.ready;
  });
  const replies = await client.evaluate(async () => {
    const port = await sb.connect('/talk/room?x=1');
    window.port = port;
    const got = [];
    const done = new Promise((resolve) => {
      port.onmessage = (e) => { got.push(e.data instanceof ArrayBuffer ? [...new Uint8Array(e.data)] : e.data); if (got.length === 4) resolve(); };
    });
    port.postMessage('plain text');
    port.postMessage({ n: 1, list: [true, null] });
    port.postMessage('\u001estarts with RS');
    port.postMessage(new Uint8Array([1, 2, 3]));
    await done;
    return got;
  });
  const target = WS_BROKER + '/talk/room?x=1';
  assert.deepEqual(replies, [
    { echo: 'plain text', from: target },
    { echo: { n: 1, list: [true, null] }, from: target },
    { echo: '\u001estarts with RS', from: target },
    [2, 3, 4],
  ]);
  const connects = await service.evaluate(() => connects);
  assert.deepEqual(connects, [{ origin: new URL(WS_BROKER.replace('ws', 'http')).origin, targetUrl: target }]);

  // A plain WebSocket client speaks the same convention.
  const plain = nodeClient(WS_BROKER + '/talk/plain');
  await plain.open;
  plain.ws.send('\u001e{"a":[1,2]}');
  plain.ws.send('just text');
  await waitFor('two replies to the plain client', () => plain.messages.length === 2);
  assert.deepEqual(plain.messages.map((m) => JSON.parse(m.slice(1))), [
    { echo: { a: [1, 2] }, from: WS_BROKER + '/talk/plain' },
    { echo: 'just text', from: WS_BROKER + '/talk/plain' },
  ]);

  const all = await service.evaluate(async () => (await reg.crossOriginClients.getAll()).map((c) => c.targetUrl).sort());
  assert.deepEqual(all, [WS_BROKER + '/talk/plain', target].sort());
  plain.ws.close();
  await waitFor('getAll without the closed client', async () =>
    (await service.evaluate(async () => (await reg.crossOriginClients.getAll()).length)) === 1);
  await client.evaluate(() => port.close());
  await waitFor('getAll empty', async () => (await service.evaluate(async () => (await reg.crossOriginClients.getAll()).length)) === 0);
  await service.close();
  await client.close();
});

const SERVICE = async (label) => {
  const reg = sb.registerService('/handover/', { label });
  window.reg = reg;
  window.opened = 0;
  reg.oncrossoriginconnect = (e) => e.acceptConnection(true);
  reg.oncrossoriginmessage = (e) => e.source.postMessage({ n: e.data, by: label });
  await reg.ready;
};

test('reloading the service page loses no message', async () => {
  const service = await libraryPage(browser.ctx);
  await service.evaluate(SERVICE, 'first');
  const client = await libraryPage(browser.ctx);
  await client.evaluate(async () => {
    window.replies = new Map();
    window.port = await sb.connect('/handover/chat');
    port.onmessage = (e) => replies.set(e.data.n, e.data.by);
    window.sendRange = (from, to) => { for (let i = from; i <= to; i++) port.postMessage(i); };
    window.sendSlowly = async (from, to) => {
      for (let i = from; i <= to; i++) { port.postMessage(i); await new Promise((r) => setTimeout(r, 2)); }
    };
  });
  const count = () => client.evaluate(() => replies.size);
  await client.evaluate(() => sendRange(1, 100));
  await waitFor('the first replies', async () => (await count()) >= 20);
  // Keep sending while the service page reloads and attaches again.
  const sending = client.evaluate(() => sendSlowly(101, 400));
  await service.reload();
  await service.evaluate(async () => { window.sb = await import('/.switchboard/web/switchboard.js'); });
  await service.evaluate(SERVICE, 'second');
  await sending;
  await client.evaluate(() => sendRange(401, 500));
  await waitFor('a reply to each of 500 messages', async () => (await count()) === 500, 20000);
  const by = await client.evaluate(() => [...new Set(replies.values())].sort());
  assert.deepEqual(by, ['first', 'second']);
  const closed = await client.evaluate(() => port._ws.readyState);
  assert.equal(closed, 1, 'the client stayed connected');
  await service.close();
  await client.close();
});
