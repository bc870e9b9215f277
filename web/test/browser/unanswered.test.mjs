// No unanswered request in the browser library: when the page's code for a
// connect request fails (throws, or its promise rejects), the client is
// rejected at once with the uniform 404, not left to the broker's accept
// timeout (10 s here).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, libraryPage, rawHandshake } from './harness.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

async function timed404(url) {
  const start = Date.now();
  const res = await rawHandshake(url);
  const took = Date.now() - start;
  assert.match(res, /^HTTP\/1\.1 404 /, res);
  assert.ok(took < 5000, `answered after ${took} ms, want at once`);
}

test('a failing handler rejects the client at once', async () => {
  const page = await libraryPage(browser.ctx);
  page.on('console', () => {}); // the library reports handler failures on the console
  const urls = await page.evaluate(async () => {
    const throwing = new sb.BrowserSocket(() => ({ handshakeResponseLoop() { throw new Error('boom'); } }));
    const rejecting = new sb.BrowserSocket(() => ({ handshakeResponseLoop: () => Promise.reject(new Error('later boom')) }));
    const regThrows = sb.registerService('/unanswered/throws/');
    regThrows.oncrossoriginconnect = () => { throw new Error('listener boom'); };
    const regRejects = sb.registerService('/unanswered/rejects/');
    regRejects.oncrossoriginconnect = (e) => e.acceptConnection(Promise.reject(new Error('no')));
    await Promise.all([throwing.ready, rejecting.ready, regThrows.ready, regRejects.ready]);
    return [throwing.url, rejecting.url, regThrows.url, regRejects.url];
  });
  for (const u of urls) await timed404(u + 'x');
  await page.close();
});
