// On a production broker (the page is configured with its credential), the
// browser library follows the broker's public URL (URL frames, 0x05):
// a port mapping made, moved and lost after the page's services attached.
// On a production broker: the page is configured with its credential.
// web/publicurl_test.go runs it: the broker's PublicURL hook is moved
// through SWITCHBOARD_CONTROL (POST /map?ext=HOST:PORT; POST /map drops
// the mapping), as the port mapper moves it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, libraryPage, waitFor, BROKER, WS_BROKER } from '../browser/harness.mjs';

const CONTROL = process.env.SWITCHBOARD_CONTROL;
const CREDENTIAL = process.env.SWITCHBOARD_CREDENTIAL; // the production broker's, owning "/"
if (!CONTROL) throw new Error('SWITCHBOARD_CONTROL is set by `go test ./web/ -run TestBrowserPublicURL`');

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

/** map moves the broker's public address (ext empty: the mapping is lost) and returns how many services were told. */
async function map(ext) {
  const res = await fetch(CONTROL + '/map' + (ext ? '?ext=' + ext : ''), { method: 'POST' });
  assert.equal(res.status, 200);
  return (await res.text()).length;
}

test('WebSocketListener, BrowserSocket and registerService follow the public URL with urlchange', async () => {
  const page = await libraryPage(browser.ctx, BROKER);
  const local = await page.evaluate(async (credential) => {
    sb.configure({ credential });
    window.changes = { named: [], bs: [], reg: [] };
    window.named = new sb.WebSocketListener('/pub/');
    named.onurlchange = () => changes.named.push([named.url, named.port]);
    window.bs = new sb.BrowserSocket(() => ({}), { scope: '/pubbs/' });
    bs.onurlchange = () => changes.bs.push([bs.url, bs.port]);
    window.reg = sb.registerService('/pubsvc/');
    reg.onurlchange = () => changes.reg.push([reg.url]);
    await Promise.all([named.ready, bs.ready, reg.ready]);
    return { named: named.url, bs: bs.url, reg: reg.url };
  }, CREDENTIAL);
  assert.deepEqual(local, { named: WS_BROKER + '/pub/', bs: WS_BROKER + '/pubbs/', reg: WS_BROKER + '/pubsvc/' });

  const steps = [
    ['203.0.113.9:40123', 'ws://203.0.113.9:40123', 40123], // a mapping made
    ['198.51.100.4:8443', 'ws://198.51.100.4:8443', 8443],  // moved
    ['', WS_BROKER, Number(new URL(BROKER).port)],          // lost: back to the local URL
  ];
  for (const [i, [ext, base, port]] of steps.entries()) {
    assert.equal(await map(ext), 3, `services told of ${ext || 'the lost mapping'}`);
    await waitFor(`urlchange ${i + 1} on every service`, () => page.evaluate((n) =>
      Object.values(changes).every((c) => c.length === n), i + 1));
    const now = await page.evaluate(() => ({ changes, named: named.url, bs: bs.url, reg: reg.url }));
    assert.deepEqual(now.changes.named[i], [base + '/pub/', port]);
    assert.deepEqual(now.changes.bs[i], [base + '/pubbs/', port]);
    assert.deepEqual(now.changes.reg[i], [base + '/pubsvc/']);
    assert.deepEqual([now.named, now.bs, now.reg], [base + '/pub/', base + '/pubbs/', base + '/pubsvc/']);
  }
  // An unchanged URL tells nobody and fires nothing.
  assert.equal(await map(''), 0);
  assert.deepEqual(await page.evaluate(() => Object.values(changes).map((c) => c.length)), [3, 3, 3]);
  assert.deepEqual(page.errors, []);
  await page.close();
});
