// The manifest holds on every route, on a production broker (config file,
// no --dev): a page whose origin belongs to an app is held to the app
// manifests on a plain ws:// URL of an app's scope exactly where it is on
// wsapp://. chat listens on /chatapp/ and admits notes; camera lists no
// server. Pages of http://notes.localhost and http://camera.localhost are
// those apps by origin.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, pythonClient } from './harness.mjs';
import { WS_PROD, SITE_ARGS, sitePage } from './site.mjs';

const SECRET = JSON.parse(process.env.SWITCHBOARD_APP_SECRETS ?? '{}');
if (!SECRET.chat) throw new Error('SWITCHBOARD_APP_SECRETS is set by `go test ./web/`');

let browser;
before(async () => { browser = await launch(SITE_ARGS); });
after(async () => { await browser?.close(); });

// tryBoth opens wsapp://chat/ and ws://BROKER/chatapp/x from a page and reports each.
const tryBoth = (wsBroker) => Promise.all([
  new Promise((resolve) => {
    const ws = new sb.AppSocket('wsapp://chat/', ['talk']);
    ws.onopen = () => ws.send('via wsapp');
    ws.onmessage = (e) => { ws.close(); resolve('echo: ' + e.data); };
    ws.onclose = () => resolve('refused');
  }),
  new Promise((resolve) => {
    const ws = new WebSocket(wsBroker + '/chatapp/x');
    ws.onopen = () => ws.send('via ws');
    ws.onmessage = (e) => { ws.close(); resolve('echo: ' + e.data); };
    ws.onclose = () => resolve('refused');
  }),
]);

test('the manifest refuses the plain ws:// route where it refuses wsapp://', async () => {
  // chat's page serves both routes: wsapp connections and plain clients.
  const chat = await sitePage(browser.ctx, 'http://chat.localhost');
  await chat.evaluate(async (secret) => {
    sb.configure({ credential: secret });
    await sb.setMessageHandler('wsconnect', (request) => {
      const ws = request.value;
      ws.accept(ws.clientProtocols.includes('talk') ? 'talk' : undefined);
      ws.onmessage = (e) => ws.send(e.data);
    }); // no scope: the broker says where chat listens (its manifest: /chatapp/)
  }, SECRET.chat);

  const camera = await sitePage(browser.ctx, 'http://camera.localhost');
  assert.deepEqual(await camera.evaluate(tryBoth, WS_PROD), ['refused', 'refused']);

  const notes = await sitePage(browser.ctx, 'http://notes.localhost');
  assert.deepEqual(await notes.evaluate(tryBoth, WS_PROD), ['echo: via wsapp', 'echo: via ws']);

  // A client that is no app (no origin of one) is not the manifests' business.
  const py = await pythonClient(WS_PROD + '/chatapp/py', ['plain']);
  assert.deepEqual(py.got, ['plain']);
  for (const p of [chat, camera, notes]) await p.close();
});
