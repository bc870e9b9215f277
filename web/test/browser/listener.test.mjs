// WebSocketListener (seed 002) in a real Chromium page and in a dedicated
// worker, serving real clients: Python `websockets` and Node `ws`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, libraryPage, nodeClient, pythonClient, waitFor, BROKER } from './harness.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('a page listener serves a Python websockets client and a Node ws client', async () => {
  const page = await libraryPage(browser.ctx);
  const info = await page.evaluate(async () => {
    const l = new sb.WebSocketListener();
    window.listener = l;
    window.seen = [];
    const states = [l.readyState];
    l.onconnection = ({ socket }) => {
      socket.onmessage = (e) => { seen.push(e.data); socket.send('page:' + e.data); };
    };
    await l.ready;
    states.push(l.readyState);
    return { url: l.url, port: l.port, states, consts: [l.OPENING, l.LISTENING, l.CLOSED] };
  });
  assert.deepEqual(info.states, [0, 1]);
  assert.deepEqual(info.consts, [0, 1, 2]);
  assert.equal(info.port, Number(new URL(BROKER).port));
  assert.match(info.url, /^ws:\/\/127\.0\.0\.1:\d+\/[^/]+\/$/);

  const py = await pythonClient(info.url + 'py', ['hello from python', 'ünïcode ✓']);
  assert.deepEqual(py.got, ['page:hello from python', 'page:ünïcode ✓']);

  const c = nodeClient(info.url + 'node');
  await c.open;
  c.ws.send('hello from node');
  await waitFor('the echo to node', () => c.messages.length === 1);
  assert.equal(c.messages[0], 'page:hello from node');
  const socketUrl = await page.evaluate(() => [...listener.sockets].map((s) => s.url).sort());
  assert.ok(socketUrl.some((u) => u.endsWith('/node')), `socket urls ${socketUrl}`);

  // close() ends the listener and closes its clients with 1001.
  await page.evaluate(() => listener.close());
  await waitFor('the node client to be closed', () => c.closed);
  assert.equal(c.closed.code, 1001);
  assert.equal(await page.evaluate(() => listener.readyState), 2);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('a socket is WebSocket-like: binary, close code and reason, onclose', async () => {
  const page = await libraryPage(browser.ctx);
  const url = await page.evaluate(async () => {
    const l = new sb.WebSocketListener(null, 'chat.v1');
    window.closes = [];
    l.addEventListener('connection', (ev) => {
      const s = ev.socket;
      s.binaryType = 'arraybuffer';
      s.addEventListener('message', (e) => {
        if (e.data instanceof ArrayBuffer) s.send(new Uint8Array(e.data).reverse());
        else if (e.data === 'bye') s.close(4001, 'see you');
      });
      s.onclose = (e) => closes.push([e.code, e.reason, s.readyState, s.protocol]);
    });
    await l.ready;
    return l.url;
  });
  const c = nodeClient(url, ['other', 'chat.v1']);
  await c.open;
  assert.equal(c.ws.protocol, 'chat.v1');
  c.ws.send(Buffer.from([1, 2, 3]));
  await waitFor('binary echo', () => c.messages.length === 1);
  assert.deepEqual([...c.messages[0]], [3, 2, 1]);
  c.ws.send('bye');
  await waitFor('close from the page', () => c.closed);
  assert.deepEqual(c.closed, { code: 4001, reason: 'see you' });
  const closes = await waitFor('onclose in the page', () => page.evaluate(() => closes.length && closes));
  assert.equal(closes[0][2], 3);
  assert.equal(closes[0][3], 'chat.v1');
  await page.close();
});

test('a dedicated worker can use the module', async () => {
  const page = await libraryPage(browser.ctx);
  const url = await page.evaluate(() => new Promise((resolve, reject) => {
    const src = `
      import { WebSocketListener } from '${location.origin}/.switchboard/web/switchboard.js';
      const l = new WebSocketListener();
      l.onconnection = ({ socket }) => { socket.onmessage = (e) => socket.send('worker:' + e.data); };
      l.ready.then(() => postMessage({ url: l.url }), (e) => postMessage({ error: e.message }));
    `;
    const w = new Worker(URL.createObjectURL(new Blob([src], { type: 'text/javascript' })), { type: 'module' });
    w.onmessage = (e) => (e.data.url ? resolve(e.data.url) : reject(new Error(e.data.error)));
    w.onerror = (e) => reject(new Error('worker failed: ' + e.message));
  }));
  const c = nodeClient(url);
  await c.open;
  c.ws.send('ping');
  await waitFor('the worker echo', () => c.messages.length === 1);
  assert.equal(c.messages[0], 'worker:ping');
  c.ws.close();
  await page.close();
});

test('sending to a client is limited by credit: 4 MiB to a client reach it whole', async () => {
  const page = await libraryPage(browser.ctx);
  const url = await page.evaluate(async () => {
    const l = new sb.WebSocketListener();
    l.onconnection = ({ socket }) => {
      socket.onmessage = () => {
        // Far more than the window (256 KiB): the library waits for Credit.
        const chunk = new Uint8Array(64 * 1024);
        for (let i = 0; i < 64; i++) { chunk.fill(i); socket.send(chunk); }
        window.peak = socket.bufferedAmount;
        socket.send('done');
      };
    };
    await l.ready;
    return l.url;
  });
  const c = nodeClient(url);
  await c.open;
  c.ws.send('go');
  await waitFor('all 64 chunks and the end marker', () => c.messages.length === 65, 20000);
  c.messages.slice(0, 64).forEach((m, i) => {
    assert.equal(m.length, 64 * 1024);
    assert.equal(m[0], i, `chunk ${i} in order`);
  });
  assert.equal(c.messages[64], 'done');
  assert.ok(await page.evaluate(() => window.peak) > 0, 'bufferedAmount showed the wait for credit');
  await page.close();
});

test('closing the page closes the clients of its private listener at once (1001)', async () => {
  const page = await libraryPage(browser.ctx);
  const url = await page.evaluate(async () => {
    const l = new sb.WebSocketListener();
    await l.ready;
    return l.url;
  });
  const c = nodeClient(url);
  await c.open;
  const start = Date.now();
  await page.close({ runBeforeUnload: false });
  await waitFor('the client to be closed', () => c.closed, 5000);
  assert.equal(c.closed.code, 1001);
  assert.ok(Date.now() - start < 5000);
});
