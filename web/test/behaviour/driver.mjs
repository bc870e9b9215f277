// The JS library's echo service for the shared behaviour suite
// (internal/testkit/behaviour): `node driver.mjs SCOPE_URL` attaches a Link of
// web/link.js (what WebSocketListener, BrowserSocket and registerService
// are built on) and sends every message back, until it is killed. The Go
// harness plays the broker. Node's WebSocket is the npm ws package.
import WebSocket from 'ws';

globalThis.WebSocket ??= WebSocket;
const { Link } = await import('../../link.js');

const scope = process.argv[2];
const link = new Link({
  broker: new URL('/', scope).href,
  scope,
  owner: {
    connectRequest: () => ({ accept: { protocol: '' } }),
    channelOpened(ch) { ch.onmessage = (payload, binary) => { ch.send(payload, binary); }; },
    stateChanged() {},
    linkState() {},
    linkClosed(err) { if (err) console.error('link closed:', err.message); },
  },
});
link.start().catch((err) => { console.error('attach failed:', err.message); process.exit(1); });
