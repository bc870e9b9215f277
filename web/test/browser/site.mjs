// Pages on other origins for the suites that run against the production
// broker (started from a config file, without --dev, by
// web/production_test.go): Chromium is served an empty page at the origin
// by the test (a Playwright route), so it is a real origin to the browser
// and to the broker; the page imports the library from the broker.
export const PROD = process.env.SWITCHBOARD_PROD_URL?.replace(/\/$/, '');
if (!PROD) throw new Error('SWITCHBOARD_PROD_URL is not set: run through `go test ./web/`');
export const WS_PROD = PROD.replace(/^http/, 'ws');

// The pages' origins are not on this machine's loopback, the test broker
// is: Chromium's Local Network Access checks would stop a public page from
// reaching it. A real deployment has the broker public too.
export const SITE_ARGS = ['--disable-features=LocalNetworkAccessChecks'];

/** sitePage opens an empty page on origin and imports the module from the broker as window.sb. */
export async function sitePage(ctx, origin, broker = PROD) {
  const page = await ctx.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  await page.route(origin + '/**', (route) => route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>site</title><p>site</p>' }));
  await page.goto(origin + '/');
  await importModule(page, broker);
  return page;
}

/** importModule imports the library from the broker into the page as window.sb. */
export async function importModule(page, broker = PROD) {
  await page.evaluate(async (m) => { window.sb = await import(m); }, broker + '/.switchboard/web/switchboard.js');
}
