// The start page in Chromium: the live dashboard follows the broker, the
// demo turns the tab into a server with one click, and screenshots at laptop
// and phone width go to artifacts/screenshots/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { launch, libraryPage, nodeClient, waitFor, BROKER, WS_BROKER, artifactsDir } from './harness.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

// traffic gives the dashboard something to show: a service page with clients.
async function traffic() {
  const svc = await libraryPage(browser.ctx);
  await svc.evaluate(async () => {
    const reg = sb.registerService('/chat/', { label: 'v2' });
    reg.oncrossoriginconnect = (e) => e.acceptConnection(true);
    reg.oncrossoriginmessage = (e) => e.source.postMessage(e.data);
    await reg.ready;
  });
  const clients = [nodeClient(WS_BROKER + '/chat/lobby'), nodeClient(WS_BROKER + '/chat/room-2?user=ana')];
  await Promise.all(clients.map((c) => c.open));
  const timer = setInterval(() => { for (const c of clients) c.ws.send('tick ' + Date.now()); }, 50);
  return { svc, clients, stop() { clearInterval(timer); for (const c of clients) c.ws.close(); } };
}

async function startDemo(page) {
  await page.goto(BROKER + '/');
  await page.waitForSelector('#live[data-state=live]');
  await page.click('#start');
  await page.waitForSelector('#demo-on:not([hidden])');
  const url = await page.textContent('#url');
  const cmd = await page.textContent('#cmd');
  assert.match(url, /^ws:\/\/127\.0\.0\.1:\d+\/[^/]+\/$/);
  assert.equal(cmd, `switchboard connect ${url}`);
  return url;
}

test('the demo echoes and chats; the dashboard is live; screenshots', async () => {
  const t = await traffic();
  const page = await browser.ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  try {
    const url = await startDemo(page);
    const a = nodeClient(url);
    await a.open;
    await waitFor('the greeting', () => a.messages.length === 1);
    a.ws.send('hello tab');
    await waitFor('the echo', () => a.messages.length === 2);
    assert.equal(a.messages[1], 'hello tab');
    await page.waitForSelector('#log li.in');
    assert.match(await page.textContent('#peer-count'), /1 client connected/);

    await page.check('input[value=chat]');
    const b = nodeClient(url + 'phone');
    await b.open;
    await waitFor('the join notice', () => a.messages.some((m) => /joined/.test(m)));
    b.ws.send('hi all');
    await waitFor('the chat line at a', () => a.messages.includes('client 2: hi all'));
    await page.fill('#say-text', 'welcome, both of you');
    await page.click('#say button');
    await waitFor('the host line at b', () => b.messages.includes('host: welcome, both of you'));

    // The dashboard shows the registrations, their instances and channels, and rates.
    await page.waitForSelector('[data-scope="/chat/"] tbody tr:nth-child(2)');
    const demoScope = new URL(url).pathname;
    await page.waitForSelector(`[data-scope="${demoScope}"] tbody tr:nth-child(2)`);
    assert.match(await page.textContent('[data-scope="/chat/"] .chips'), /active · #\d+ v2/);

    const dir = artifactsDir();
    await page.screenshot({ path: join(dir, 'start-desktop.png'), fullPage: true });
    await page.locator('#demo').screenshot({ path: join(dir, 'demo-desktop.png') });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: join(dir, 'start-phone.png'), fullPage: true });
    await page.screenshot({ path: join(dir, 'start-phone-screen.png') });
    await page.locator('.dash').screenshot({ path: join(dir, 'dashboard-phone.png') });

    // Rates come from the status counters (messages_in, …) of the broker.
    const status = await (await fetch(BROKER + '/.switchboard/v1/status')).json();
    for (const k of ['messages_in', 'messages_out', 'bytes_in', 'bytes_out', 'connections']) {
      assert.equal(typeof status.counters?.[k], 'number', `GET /.switchboard/v1/status has no counters.${k}: the dashboard cannot show rates`);
    }
    await waitFor('a message rate on the dashboard', async () => Number(await page.textContent('#s-min')) > 0);

    // Stop: clients are told, the page goes back to its start button.
    await page.click('#stop');
    await waitFor('the demo clients to be closed', () => a.closed && b.closed);
    assert.equal(a.closed.code, 1001);
    assert.ok(await page.isVisible('#start'));
    assert.deepEqual(errors, []);
  } finally {
    t.stop();
    await page.close();
    await t.svc.close();
  }
});

test('the dashboard says so when the broker is gone, keeping its figures marked stale', async () => {
  const page = await browser.ctx.newPage();
  await page.goto(BROKER + '/');
  await page.waitForSelector('#live[data-state=live]');
  const figures = await page.textContent('#s-conn');
  await page.route('**/.switchboard/v1/status', (route) => route.abort());
  await page.waitForSelector('#live[data-state=down]');
  await page.waitForSelector('#dash.stale');
  await waitFor('the stale notice', async () => /broker unreachable · figures from \d\d:\d\d:\d\d/.test(await page.textContent('#live-text')));
  assert.equal(await page.textContent('#s-conn'), figures, 'the last figures stay on screen');
  await page.unroute('**/.switchboard/v1/status');
  await page.waitForSelector('#live[data-state=live]');
  assert.equal(await page.isVisible('#dash.stale'), false);
  await page.close();
});

test('"no clients yet" only before the first client', async () => {
  const page = await browser.ctx.newPage();
  try {
    const url = await startDemo(page);
    assert.equal(await page.textContent('#peer-count'), 'no clients yet');
    const a = nodeClient(url);
    await a.open;
    await page.waitForFunction(() => document.getElementById('peer-count').textContent === '1 client connected');
    a.ws.close();
    await page.waitForFunction(() => document.getElementById('peer-count').textContent === 'no clients connected');
  } finally {
    await page.close();
  }
});
