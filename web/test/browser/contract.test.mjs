// The link contract from a page (docs/PROTOCOL.md, "The link"): a page
// service that sends far more in one tick than the largest link message
// keeps its link, and every client gets its message.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, libraryPage, nodeClient, waitFor } from './harness.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('a page sends 250 KB to each of 5 clients in one tick: all arrive, the link stays up', async () => {
  const page = await libraryPage(browser.ctx);
  const url = await page.evaluate(async () => {
    const l = new sb.WebSocketListener();
    window.listener = l;
    window.events = [];
    l.onerror = (e) => events.push('error: ' + e.message);
    l.onclose = () => events.push('close');
    await l.ready;
    return l.url;
  });
  const clients = [];
  for (let i = 0; i < 5; i++) {
    const c = nodeClient(url + 'c' + i);
    await c.open;
    clients.push(c);
  }
  await waitFor('5 sockets in the page', () => page.evaluate(() => listener.sockets.size === 5));
  for (let round = 0; round < 3; round++) {
    await page.evaluate((round) => {
      // One tick: 5 × 250 KB = 1.25 MB queued on the link at once.
      let i = 0;
      for (const s of listener.sockets) {
        const b = new Uint8Array(250 << 10).fill(round * 16 + i++);
        s.send(b);
      }
    }, round);
    await waitFor(`round ${round} at every client`, () => clients.every((c) => c.messages.length === round + 1 || c.closed), 20000);
  }
  const fills = new Set();
  for (const c of clients) {
    assert.equal(c.closed, null, 'a client was closed');
    for (const m of c.messages) {
      assert.equal(m.length, 250 << 10);
      fills.add(m[0]);
    }
  }
  assert.equal(fills.size, 15, 'every message is distinct and whole');
  assert.deepEqual(await page.evaluate(() => [listener.readyState, events]), [1, []]);
  // A message larger than the broker relays is refused in the page, at once.
  const tooBig = await page.evaluate(() => {
    const s = [...listener.sockets][0];
    try { s.send(new Uint8Array((1 << 20) + 1)); return 'sent'; } catch (e) { return e.name; }
  });
  assert.equal(tooBig, 'RangeError');
  assert.deepEqual(page.errors, []);
  await page.close();
});
