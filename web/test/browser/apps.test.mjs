// AppSocket and setMessageHandler (seed 000) against a broker with apps:
// chat (server, admits notes and token holders), notes (lists chat in its
// servers), camera (lists nothing: needs a chooser token). The Go driver
// starts that broker and passes its URL and the apps' secrets.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { launch, libraryPage } from './harness.mjs';

const URL_ = process.env.SWITCHBOARD_APPS_URL;
const BIN = process.env.SWITCHBOARD_BIN;
const SECRET = JSON.parse(process.env.SWITCHBOARD_APP_SECRETS ?? '{}');
if (!URL_ || !BIN || !SECRET.chat) throw new Error('SWITCHBOARD_APPS_URL, SWITCHBOARD_BIN and SWITCHBOARD_APP_SECRETS are set by `go test ./web/`');

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

function issueToken(holder, target) {
  return new Promise((resolve, reject) => {
    execFile(BIN, ['token', 'issue', '--broker', URL_, '--holder', holder, '--target', target, '--ttl', '1h'], { timeout: 10000 },
      (err, stdout, stderr) => (err ? reject(new Error(`token issue: ${err.message}\n${stderr}`)) : resolve(stdout.trim())));
  });
}

// appPage is a page of one app: the library configured with its credential.
async function appPage(app) {
  const page = await libraryPage(browser.ctx, URL_);
  await page.evaluate((secret) => sb.configure({ credential: secret }), SECRET[app]);
  return page;
}

// attempt opens an AppSocket, sends one message and reports what happened.
const attempt = (url) => new Promise((resolve) => {
  const ws = new sb.AppSocket(url, ['photos', 'talk']);
  const r = { opened: false, protocol: '', url: ws.url, got: null };
  ws.onopen = () => { r.opened = true; r.protocol = ws.protocol; ws.send('hello'); };
  ws.onmessage = (e) => { r.got = e.data; ws.close(); };
  ws.onclose = () => resolve(r);
});

test('AppSocket is refused where the manifest says so and accepted with a token', async () => {
  const chat = await appPage('chat');
  await chat.evaluate(async () => {
    window.requests = [];
    await sb.setMessageHandler('wsconnect', (request) => {
      const ws = request.value;
      requests.push({ protocols: ws.clientProtocols, peer: ws.peerUrl });
      if (!ws.clientProtocols.includes('talk')) return; // not an intent chat serves
      ws.accept('talk');
      ws.onmessage = (e) => ws.send(`chat got ${e.data} from ${ws.peerUrl}`);
    }, { scope: '/chatapp/' });
  });

  const notes = await appPage('notes');
  const listed = await notes.evaluate(attempt, 'wsapp://chat/');
  assert.deepEqual(listed, { opened: true, protocol: 'talk', url: 'wsapp://chat/', got: 'chat got hello from wsapp://notes/' });

  const camera = await appPage('camera');
  const refused = await camera.evaluate(attempt, 'wsapp://chat/');
  assert.equal(refused.opened, false, 'camera is not in chat\'s admit list nor has chat in its servers');

  const token = await issueToken('camera', 'chat');
  const withToken = await camera.evaluate(attempt, `wsapp://${token}/`);
  assert.equal(withToken.opened, true);
  assert.equal(withToken.got, 'chat got hello from wsapp://camera/');

  const stolen = await notes.evaluate(attempt, `wsapp://${token}/`);
  assert.equal(stolen.opened, false, 'a token is useless to another holder');

  const seen = await chat.evaluate(() => requests);
  assert.deepEqual(seen.map((r) => r.peer), ['wsapp://notes/', 'wsapp://camera/'], 'the server saw only admitted callers, never the token');
  for (const p of [chat, notes, camera]) await p.close();
});

test('a refused listener is told in the page\'s words: configure({ credential }), not a CLI flag', async () => {
  const page = await libraryPage(browser.ctx, URL_);
  const err = await page.evaluate(async () => {
    const l = new sb.WebSocketListener('/chatapp/');
    const events = [];
    l.onerror = (e) => events.push(e.message ?? String(e.error));
    try { await l.ready; return 'listening'; } catch (e) { return { name: e.name, code: e.code, message: e.message, events }; }
  });
  assert.equal(err.code, 3, JSON.stringify(err));
  assert.match(err.message, /configure\(\{ credential \}\)/);
  assert.doesNotMatch(err.message, /--credential|--dev/);
  await page.close();
});
