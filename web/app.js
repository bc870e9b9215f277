// Seed 000 (WebSocketOverApp, docs/ORIGINS.md): AppSocket connects to another app by
// wsapp://ID/ (or wsapp://TOKEN/ with a chooser token), subprotocols being
// intents; setMessageHandler("wsconnect", …) serves such connections.

import { settings, newLink, wsURL } from './config.js';
import { ServerWebSocket } from './socket.js';
import { LinkError } from './link.js';

/** appURL maps wsapp://ID/path to the broker's app endpoint. */
export function appURL(url, credential = settings.credential) {
  const m = /^wsapp:\/\/([^/?#]+)(\/[^?#]*)?(\?[^#]*)?$/.exec(url);
  if (!m) throw new DOMException(`${url} is not a wsapp:// URL`, 'SyntaxError');
  const u = wsURL(`/.switchboard/v1/app/${m[1]}${m[2] ?? '/'}${m[3] ?? ''}`);
  if (credential) u.searchParams.set('credential', credential);
  return u.href;
}

/**
 * AppSocket is a WebSocket to another app: new AppSocket("wsapp://ID/", ["intent"]).
 * The page is the app named by the credential given to configure().
 */
export class AppSocket extends WebSocket {
  /**
   * @param {string} url  wsapp://ID/path or wsapp://TOKEN/path
   * @param {string|string[]} [protocols] intents, in order of preference
   */
  constructor(url, protocols = []) {
    super(appURL(url), protocols);
    this._peer = url;
  }

  /** The wsapp:// URL of the peer app. */
  get peerUrl() { return this._peer; }
  /** The wsapp:// URL this socket was opened with. */
  get url() { return this._peer; }
}

/**
 * AppServerSocket is the server app's end: clientProtocols lists the
 * intents the client offered; accept(protocol) starts the connection.
 */
class AppServerSocket extends ServerWebSocket {
  constructor(ch) { super(ch); this.clientProtocols = []; this.peerUrl = ch.app ? `wsapp://${ch.app}/` : ''; }
}

/** appScope asks the broker for the listen scope of the app whose credential is configured. */
async function appScope(options) {
  const credential = options.credential ?? settings.credential;
  if (!credential) throw new TypeError('setMessageHandler needs your app\'s credential (configure({ credential })) or options.scope');
  const u = new URL('/.switchboard/v1/app-scope', options.broker ?? settings.broker);
  u.protocol = u.protocol === 'wss:' ? 'https:' : u.protocol === 'ws:' ? 'http:' : u.protocol;
  const r = await fetch(u, { method: 'POST', body: credential });
  if (!r.ok) throw new LinkError(`the broker does not know where this app listens (HTTP ${r.status}: ${(await r.text()).trim()}); pass options.scope`);
  return (await r.json()).scope;
}

class AppService {
  constructor(handler, options) {
    this.handler = handler;
    this.pending = new Map();
    this.closed = false;
    // Without a scope, the broker says where the app listens (its manifest's first listen scope).
    const scope = options.scope ? Promise.resolve(options.scope) : appScope(options);
    this.ready = scope.then((s) => {
      if (this.closed) throw new DOMException('setMessageHandler was replaced', 'AbortError');
      this.link = newLink(this, s, options);
      return this.link.start();
    });
  }

  async connectRequest(req) {
    let chosen = null;
    const request = {
      value: {
        clientProtocols: [...req.protocols],
        peerUrl: req.app ? `wsapp://${req.app}/` : '',
        origin: req.origin,
        url: req.target,
        accept(protocol) {
          // A client that offered no protocol (a plain ws:// client of the scope) is accepted with none.
          if (protocol == null || protocol === '') {
            if (req.protocols.length > 0) throw new DOMException('accept(protocol): name one of the client\'s protocols', 'SyntaxError');
            chosen = '';
            return;
          }
          if (!req.protocols.includes(protocol)) throw new DOMException(`${protocol} is not one of the client's protocols`, 'SyntaxError');
          chosen = protocol;
        },
        onopen: null, onmessage: null, onclose: null, onerror: null,
      },
    };
    await this.handler(request);
    if (chosen === null) return { reject: true };
    this.pending.set(req.channel, request.value);
    return { accept: { protocol: chosen } };
  }

  channelOpened(ch) {
    const stub = this.pending.get(ch.id);
    this.pending.delete(ch.id);
    const ws = new AppServerSocket(ch);
    if (stub) {
      ws.clientProtocols = stub.clientProtocols;
      for (const k of ['onopen', 'onmessage', 'onclose', 'onerror']) if (stub[k]) ws[k] = stub[k];
      // What the handler set later on request.value reaches the socket too.
      for (const k of ['onopen', 'onmessage', 'onclose', 'onerror', 'binaryType']) {
        Object.defineProperty(stub, k, { configurable: true, get: () => ws[k], set: (v) => { ws[k] = v; } });
      }
      stub.send = (d) => ws.send(d);
      stub.close = (c, r) => ws.close(c, r);
    }
    ws._open();
  }

  linkClosed() {}
}

let appService = null;

/**
 * setMessageHandler("wsconnect", handler) makes this page serve wsapp://
 * connections for its app. request.value is the server-side socket:
 * clientProtocols, accept(protocol), onopen/onmessage/onclose, send, close.
 * @param {"wsconnect"} type
 * @param {(request: {value: object}) => void|Promise<void>} handler
 * @param {{scope: string, credential?: string, broker?: string}} options  scope: one your app's manifest lets it listen on
 * @returns {Promise<void>} resolves once the broker accepted the registration
 */
export function setMessageHandler(type, handler, options = {}) {
  if (type !== 'wsconnect') throw new TypeError(`unknown message type ${type}`);
  if (appService) { appService.closed = true; appService.link?.close(false); }
  appService = handler ? new AppService(handler, options) : null;
  return appService ? appService.ready.then(() => {}) : Promise.resolve();
}
