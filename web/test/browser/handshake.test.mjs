// BrowserSocket (seed 001) handshakes and connect's rejections (seed 003):
// a rejected client cannot tell a cancel from a missing service.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, libraryPage, pythonClient, rawHandshake, BROKER, WS_BROKER } from './harness.mjs';

let browser, page;
before(async () => { browser = await launch(); page = await libraryPage(browser.ctx); });
after(async () => { await browser?.close(); });

test('handshakeResponseLoop adds a header the Python client sees', async () => {
  const info = await page.evaluate(async () => {
    window.requests = [];
    const bs = new sb.BrowserSocket(function Handler(request) {
      requests.push(request);
      this.handshakeResponseLoop = (response) => {
        response.headers['X-Served-By'] = 'a browser tab';
        response.headers['Sec-WebSocket-Protocol'] = 'notes';
        return response;
      };
      this.onmessage = (e) => this.send('bs:' + e.data);
    });
    await bs.ready;
    return { url: bs.url, port: bs.port, prefix: bs.resourcePrefix };
  });
  assert.equal(info.port, Number(new URL(BROKER).port));
  assert.match(info.prefix, /^\/.+\/$/);
  const py = await pythonClient(info.url + 'x?y=1', ['hi'], ['chat', 'notes']);
  assert.equal(py.headers['X-Served-By'], 'a browser tab');
  assert.equal(py.protocol, 'notes');
  assert.deepEqual(py.got, ['bs:hi']);
  const req = await page.evaluate(() => requests[0]);
  assert.equal(req.firstLine, `GET ${info.prefix}x?y=1 HTTP/1.1`);
  assert.equal(req.headers.Upgrade ?? req.headers.upgrade, 'websocket');
  assert.deepEqual(req.body, []);
});

test('null cancels with the same bytes as no service', async () => {
  const url = await page.evaluate(async () => {
    const bs = new sb.BrowserSocket(() => ({ handshakeResponseLoop: () => null }));
    await bs.ready;
    return bs.url;
  });
  const cancelled = await rawHandshake(url + 'anything');
  const nobody = await rawHandshake(WS_BROKER + '/no-service-here/');
  assert.match(cancelled, /^HTTP\/1\.1 404 /);
  assert.equal(cancelled, nobody);
});

test('a subprotocol the client did not offer refuses it and tells the page', async () => {
  const url = await page.evaluate(async () => {
    window.bsErrors = [];
    const bs = new sb.BrowserSocket(() => ({
      handshakeResponseLoop: (r) => { r.headers['Sec-WebSocket-Protocol'] = 'chat'; return r; },
    }));
    bs.onerror = (e) => bsErrors.push(e.message);
    await bs.ready;
    return bs.url;
  });
  const refused = await rawHandshake(url + 'x');
  const nobody = await rawHandshake(WS_BROKER + '/no-service-here/');
  assert.equal(refused, nobody);
  const errors = await page.evaluate(() => bsErrors);
  assert.equal(errors.length, 1, JSON.stringify(errors));
  assert.match(errors[0], /subprotocol "chat", which the client did not offer/);
});

test('a handler may answer with its own HTTP response', async () => {
  const url = await page.evaluate(async () => {
    const bs = new sb.BrowserSocket(() => ({
      handshakeResponseLoop: (r) => ({ firstLine: 'HTTP/1.1 401 Unauthorized', headers: { 'WWW-Authenticate': 'Basic realm="tab"' }, body: [...new TextEncoder().encode('who?')] }),
    }));
    await bs.ready;
    return bs.url;
  });
  const res = await rawHandshake(url);
  assert.match(res, /^HTTP\/1\.1 401 /);
  assert.match(res, /\r\nWww-Authenticate: Basic realm="tab"\r\n/i);
  assert.ok(res.endsWith('\r\n\r\nwho?'), res);
});

test('connect rejects with AbortError alike for a rejection and for no service', async () => {
  const got = await page.evaluate(async () => {
    const reg = sb.registerService('/picky/');
    reg.oncrossoriginconnect = (e) => e.acceptConnection(Promise.resolve(e.client.targetUrl.endsWith('/welcome')));
    await reg.ready;
    const attempt = (u) => sb.connect(u).then((p) => { p.close(); return { ok: true }; },
      (e) => ({ ok: false, isDOMException: e instanceof DOMException, name: e.name, message: e.message.replace(u, 'URL') }));
    return { rejected: await attempt('/picky/no'), none: await attempt('/nobody-home/'), accepted: await attempt('/picky/welcome') };
  });
  assert.deepEqual(got.rejected, { ok: false, isDOMException: true, name: 'AbortError', message: 'no service accepted the connection to URL' });
  assert.deepEqual(got.none, got.rejected);
  assert.deepEqual(got.accepted, { ok: true });
});
