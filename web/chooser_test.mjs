// Drives the app chooser in Debian's Chromium (playwright-core): an app's
// page on its own origin opens the chooser with window.open, the owner
// signs in (a wrong token first), picks a server app, and the opener
// receives the tokens by postMessage. Run by tests/apps (go test); it
// prints one JSON line with what the opener received.
//
// Env: BROKER (http://host:port), OPENER (the asking app's page),
// ADMIN_TOKEN, CHROMIUM, SCREENSHOTS (directory for the screenshots).
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const { BROKER, OPENER, ADMIN_TOKEN, SCREENSHOTS } = process.env;
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

function check(cond, what) {
  if (!cond) throw new Error('chooser: ' + what);
}

const dir = mkdtempSync(join(tmpdir(), 'switchboard-chooser-'));
const ctx = await chromium.launchPersistentContext(dir, {
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', headless: true, args: ARGS,
  viewport: { width: 1000, height: 760 },
});
ctx.setDefaultTimeout(15000);
const errors = [];
try {
  const opener = await ctx.newPage();
  opener.on('pageerror', (e) => errors.push('opener: ' + e));
  await opener.goto(OPENER);
  const [popup] = await Promise.all([ctx.waitForEvent('page'), opener.click('#choose')]);
  popup.on('pageerror', (e) => errors.push('chooser: ' + e));
  await popup.setViewportSize({ width: 520, height: 760 });
  await popup.waitForLoadState();
  check(popup.url().startsWith(BROKER + '/.switchboard/chooser?app=camera'), 'popup URL ' + popup.url());

  // Sign in: a wrong token is refused without detail, the right one works.
  await popup.locator('#login').waitFor({ state: 'visible' });
  await popup.fill('#token', 'not-the-token');
  await popup.click('#login-form button[type=submit]');
  await popup.locator('#login-error').waitFor({ state: 'visible' });
  await popup.fill('#token', ADMIN_TOKEN);
  await popup.click('#login-form button[type=submit]');
  await popup.locator('#choose').waitFor({ state: 'visible' });
  check(await popup.evaluate(() => document.cookie) === '', 'the session cookie is readable by scripts');

  check((await popup.textContent('#asker-name')) === 'Camera', 'asker name');
  check((await popup.textContent('#asker-id')) === 'camera', 'asker id');
  const offered = await popup.$$eval('input[name=target]', (els) => els.map((e) => e.value));
  check(JSON.stringify(offered) === JSON.stringify(['chat', 'photos']), 'offered ' + JSON.stringify(offered));
  check(await popup.isDisabled('#allow'), 'Allow is enabled with nothing picked');
  await popup.check('input[value=chat]');
  check(await popup.isEnabled('#allow'), 'Allow stays disabled after a pick');
  mkdirSync(SCREENSHOTS, { recursive: true });
  await popup.mouse.move(0, 0);
  await popup.waitForFunction(() => document.getAnimations().length === 0); // hover transitions
  await popup.screenshot({ path: join(SCREENSHOTS, 'chooser.png') });

  await popup.click('#allow');
  await popup.locator('#done').waitFor({ state: 'visible' });
  await popup.click('#tokens-box summary');
  await popup.mouse.move(0, 0);
  await popup.waitForFunction(() => document.getAnimations().length === 0);
  await popup.screenshot({ path: join(SCREENSHOTS, 'chooser-done.png') });
  const shown = await popup.$$eval('#tokens code', (els) => els.map((e) => e.textContent));

  const got = await opener.waitForFunction(() => window.received, null, { timeout: 10000 });
  const received = await got.jsonValue();
  check(JSON.stringify(received.tokens) === JSON.stringify(shown), 'the opener got other tokens than the page shows');
  check(errors.length === 0, 'page errors: ' + errors.join('; '));
  console.log(JSON.stringify({ received, shown }));
} finally {
  await ctx.close();
  rmSync(dir, { recursive: true, force: true });
}
