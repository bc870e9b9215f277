// A service in a browser tab that refuses every client: Debian's Chromium
// (playwright-core) opens a page on the broker, whose BrowserSocket on
// $SCOPE cancels every handshake (handshakeResponseLoop returns null).
// Started by bench/refusal.go (go run ./bench/cmd/refusaltiming); prints
// "ready" once it listens and closes the browser when stdin ends.
// Environment: SWITCHBOARD_URL (http://host:port), SWITCHBOARD_CREDENTIAL,
// SCOPE (e.g. /tab/).
import { launch, libraryPage } from '../test/browser/harness.mjs';

const browser = await launch();
try {
  const page = await libraryPage(browser.ctx);
  await page.evaluate(async ({ scope, credential }) => {
    const bs = new window.sb.BrowserSocket(() => ({ handshakeResponseLoop: () => null }), { scope, credential });
    await bs.ready;
  }, { scope: process.env.SCOPE ?? '/tab/', credential: process.env.SWITCHBOARD_CREDENTIAL ?? '' });
  process.stdout.write('ready\n');
  process.stdin.resume();
  await new Promise((resolve) => process.stdin.on('end', resolve));
} finally {
  await browser.close();
}
