// Uses every export of switchboard.js through its declarations
// (switchboard.d.ts): `tsc --noEmit -p web/tsconfig.json` fails when a
// declaration is missing, wrong, or no longer matches how pages use it.
// test/exports.test.mjs checks that the module exports what is declared.
import {
  configure, LinkError, ServerWebSocket, WebSocketListener, BrowserSocket, ServicePort, connect,
  CrossOriginClient, ServiceRegistration, registerService, AppSocket, setMessageHandler, encodeValue, decodeValue,
} from '../../switchboard.js';
import type {
  Settings, ServiceOptions, SwitchboardErrorEvent, ConnectionEvent, Handshake, ConnectionHandler,
  CrossOriginConnectEvent, CrossOriginMessageEvent, CrossOriginClients, AppConnectRequest,
  ServiceState, StateChangeEvent,
} from '../../switchboard.js';

const settings: Settings = configure({ broker: 'ws://127.0.0.1:8080/', credential: '' });
const opts: ServiceOptions = { label: 'v2', origins: ['https://a.example'], credential: settings.credential, broker: settings.broker, window: 0 };

function onError(ev: SwitchboardErrorEvent): string {
  return ev.error instanceof LinkError ? `${ev.error.code}: ${ev.message}` : ev.message;
}

// Seed 002.
const listener = new WebSocketListener(null, ['chat'], opts);
const state: 0 | 1 | 2 = listener.readyState;
const constants: number[] = [WebSocketListener.OPENING, listener.LISTENING, listener.CLOSED, state];
listener.onconnection = (ev: ConnectionEvent) => {
  const s: ServerWebSocket = ev.socket;
  s.binaryType = 'arraybuffer';
  s.onmessage = (m: MessageEvent) => s.send(typeof m.data === 'string' ? m.data : new Uint8Array(m.data as ArrayBuffer));
  s.onclose = (c: CloseEvent) => console.log(c.code, s.readyState === ServerWebSocket.CLOSED, s.origin, s.app, s.channel, s.remoteAddress);
  const info: [string, string, string, number] = [s.protocol, s.url, s.extensions, s.bufferedAmount];
  if (s.readyState === s.OPEN) s.close(4000, String(info));
};
listener.onlistening = () => console.log(listener.url, listener.port, listener.scope, listener.active, listener.sockets.size);
listener.onerror = (ev) => console.log(onError(ev));
listener.onclose = () => console.log('closed');
listener.onstatechange = (ev: StateChangeEvent) => {
  const st: ServiceState = ev.state;
  if (st === 'reattaching' && ev.error) console.log(ev.error.code, listener.state, listener.readyState);
};
listener.push('hello', '/room/');
listener.ready.then((l: WebSocketListener) => l.close());

// Seed 001.
class Handler implements ConnectionHandler {
  handshakeResponseLoop(res: Handshake): Handshake | null {
    res.headers['X-Served-By'] = 'page';
    return res.firstLine.length > 0 ? res : null;
  }
  onmessage = (ev: MessageEvent<string | ArrayBuffer>) => { this.send?.(ev.data); };
  send?(data: string | ArrayBufferLike | ArrayBufferView | Blob): boolean;
}
const bs = new BrowserSocket((req: Handshake) => (req.body.length >= 0 ? new Handler() : {}), { ...opts, scope: '/bs/' });
bs.onerror = (ev) => console.log(onError(ev));
bs.onstatechange = (ev) => console.log(ev.state, bs.state);
bs.ready.then((b: BrowserSocket) => { console.log(b.port, b.resourcePrefix, b.url); b.stop(); });

// Seed 003.
const reg: ServiceRegistration = registerService('/services/echo/', opts);
reg.oncrossoriginconnect = (ev: CrossOriginConnectEvent) => ev.acceptConnection(ev.client.origin !== '' || Promise.resolve(true));
reg.oncrossoriginmessage = (ev: CrossOriginMessageEvent) => {
  const c: CrossOriginClient = ev.source;
  c.postMessage({ echo: ev.data, from: ev.origin, ports: ev.ports.length, id: c.id, app: c.app, target: c.targetUrl });
  if (ev.data === 'bye') c.close(1000, 'bye');
};
reg.oncrossorigindisconnect = (ev) => console.log(ev.client.id, ev.code, ev.reason);
reg.onerror = (ev) => console.log(onError(ev));
reg.onstatechange = (ev) => console.log(ev.state === reg.state);
const clients: CrossOriginClients = reg.crossOriginClients;
reg.ready.then(async (r) => {
  const all: CrossOriginClient[] = await clients.getAll();
  console.log(r.scope, r.url, r.active, all.length);
  r.unregister(true);
});
connect('/services/echo/', ['v1']).then((port: ServicePort) => {
  port.onmessage = (ev: MessageEvent) => console.log(ev.data, port.url);
  port.onmessageerror = () => port.close();
  port.onclose = (ev) => console.log(ev.code, ev.reason);
  port.start();
  port.postMessage(new Map([[1, 'one']]));
}, (err: DOMException) => console.log(err.name));

// Seed 000.
const app = new AppSocket('wsapp://chat/', ['talk']);
app.onopen = () => app.send(app.peerUrl);
setMessageHandler('wsconnect', (req: AppConnectRequest) => {
  const v = req.value;
  if (v.clientProtocols.includes('talk')) v.accept('talk');
  v.onmessage = (m) => v.send(String(m.data) + v.peerUrl + v.origin + v.url);
  v.onopen = null;
  v.onclose = null;
  v.onerror = null;
  if (v.clientProtocols.length === 0) v.close(1000, 'none');
}, { ...opts, scope: '/chatapp/' }).then(() => setMessageHandler('wsconnect', null, { scope: '/chatapp/' }));

// Values on the wire.
const enc = encodeValue({ a: 1 });
const decode = ([p, binary]: [Uint8Array, boolean]): unknown => decodeValue(p, binary);
const value: unknown = enc instanceof Promise ? enc.then(decode) : decode(enc);
console.log(value, constants);
