// Switchboard for pages and workers: the four seeds' APIs as thin clients of
// the service protocol (docs/PROTOCOL.md).
//
//   import { WebSocketListener } from 'http://BROKER/.switchboard/web/switchboard.js';
//   const l = new WebSocketListener();            // a fresh private scope
//   l.onconnection = ({ socket }) => { socket.onmessage = (e) => socket.send(e.data); };
//
// Exports (docs/ORIGINS.md says where each seed's ideas went): configure, WebSocketListener (seed 002), BrowserSocket (seed 001),
// connect and registerService with ServicePort, CrossOriginClient and
// ServiceRegistration (seed 003), AppSocket and setMessageHandler
// (seed 000). Types: switchboard.d.ts. The module finds the broker from its
// own URL (import.meta.url) unless configure({broker}) says otherwise.

import { LinkError } from './link.js';
import { configure, newLink, portOf, settings } from './config.js';
import { ServerWebSocket } from './socket.js';
import {
  handlerAttributes, ConnectionEvent, SwitchboardErrorEvent, StateChangeEvent, closeEvent, messageEvent,
  socketData, bytesOf, encodeValue, decodeValue,
} from './events.js';

export { LinkError };
export { encodeValue, decodeValue } from './events.js';

export { configure };

export { ServerWebSocket };

// ---------------------------------------------------------------- seed 002

/**
 * WebSocketListener registers for incoming connections (seed 002). With no
 * URL it gets a fresh private scope from the broker.
 */
export class WebSocketListener extends EventTarget {
  static OPENING = 0;
  static LISTENING = 1;
  static CLOSED = 2;

  /**
   * @param {string|null} [scopeUrl] the scope to listen on, e.g. "/chat/" or "ws://host/chat/"
   * @param {string|string[]} [protocol] subprotocol(s) the listener accepts
   * @param {{label?: string, origins?: string[], credential?: string, broker?: string}} [options]
   */
  constructor(scopeUrl = null, protocol = undefined, options = {}) {
    super();
    if (typeof scopeUrl === 'number') {
      // Seed 002's form: new WebSocketListener(port, protocol). Clients reach
      // a page through the broker, so the broker's port is the only one.
      const broker = options.broker ?? settings.broker;
      if (scopeUrl !== portOf(broker)) {
        throw new DOMException(`port ${scopeUrl}: a page listens through the broker at ${broker}, whose port is ${portOf(broker)}; ` +
          `pass that port, no port (a fresh private scope), or a scope URL such as "/chat/"`, 'NotSupportedError');
      }
      scopeUrl = null;
    }
    this._state = 0;
    this._protocols = protocol == null ? [] : [].concat(protocol);
    this._url = '';
    this._port = 0;
    /** The open connections. */
    this.sockets = new Set();
    this._link = newLink(this, scopeUrl, { ...options, protocols: this._protocols });
    /** Resolves when the listener is LISTENING; rejects if it fails to. */
    this.ready = this._link.start().then((w) => {
      if (this._state === 1) return this; // attached after retries: linkState said so already
      this._state = 1;
      this._url = w.publicURL;
      this._port = portOf(w.publicURL);
      this._scope = w.scope;
      this.dispatchEvent(new Event('listening'));
      return this;
    }, (err) => { this._failed(err); throw err; });
    this.ready.catch(() => {});
  }

  get OPENING() { return 0; }
  get LISTENING() { return 1; }
  get CLOSED() { return 2; }
  get readyState() { return this._state; }
  /** The port clients connect to (the mapped external port where port mapping is on). */
  get port() { return this._port; }
  /** The URL clients connect to. */
  get url() { return this._url; }
  /** The scope as the broker registered it (e.g. "/~k3x9.../"). */
  get scope() { return this._scope ?? ''; }
  /** Whether this instance is the active one of its registration. */
  get active() { return this._link.active; }
  /**
   * Where the service link is: 'attaching' (the first attach; retried with
   * backoff while the broker cannot be reached, ready waiting), 'attached',
   * 'reattaching' (lost; attaching again by itself, its clients kept) or
   * 'closed'. Changes fire statechange, and so does a first attach that
   * failed ('attaching', with the error).
   */
  get state() { return this._link.state; }

  /** push sends one message to every client whose URL path starts with prefix. */
  push(data, prefix = '') {
    const b = bytesOf(data);
    if (b instanceof Promise) { b.then(([p, bin]) => this._link.push(p, bin, prefix)); return; }
    this._link.push(b[0], b[1], prefix);
  }

  /** close stops listening and closes every connection (1001). */
  close() {
    if (this._state === 2) return;
    this._link.close(true);
  }

  connectRequest(req) {
    const protocol = this._protocols.find((p) => req.protocols.includes(p)) ?? '';
    // A listener made with a protocol serves only clients that offer it (seed 002).
    if (this._protocols.length > 0 && protocol === '') return { reject: true };
    return { accept: { protocol } };
  }

  channelOpened(ch) {
    const socket = new ServerWebSocket(ch);
    this.sockets.add(socket);
    socket.addEventListener('close', () => this.sockets.delete(socket));
    this.dispatchEvent(new ConnectionEvent('connection', socket));
    socket._open();
  }

  handlerError(err) { this.dispatchEvent(new SwitchboardErrorEvent(err)); }

  _failed(err) {
    if (this._state === 2) return;
    this._state = 2;
    if (err) this.dispatchEvent(new SwitchboardErrorEvent(err));
    this.dispatchEvent(new Event('close'));
  }

  linkClosed(err) {
    this._failed(err);
    this.dispatchEvent(new StateChangeEvent('closed', err));
  }

  publicURLChanged(url) {
    this._url = url;
    this._port = portOf(url);
    this.dispatchEvent(new Event('urlchange'));
  }

  linkState(state, info) {
    if (state === 'attached') {
      this._state = 1;
      this._url = info.publicURL;
      this._port = portOf(info.publicURL);
      this._scope = info.scope;
      this.dispatchEvent(new StateChangeEvent(state));
      this.dispatchEvent(new Event('listening'));
    } else {
      this._state = 0; // OPENING again until the broker is back
      this.dispatchEvent(new StateChangeEvent(state, info));
    }
  }
}
handlerAttributes(WebSocketListener, ['connection', 'listening', 'error', 'close', 'statechange', 'urlchange']);

// ---------------------------------------------------------------- seed 001

const BROKER_HEADERS = /^(upgrade|connection|sec-websocket-.*|content-length|transfer-encoding)$/i;

function headerDict(list) {
  const d = {};
  for (const { name, value } of list) d[name] = name in d ? d[name] + ', ' + value : value;
  return d;
}

function headerList(dict) {
  const out = [];
  for (const [name, value] of Object.entries(dict ?? {})) {
    for (const v of [].concat(value)) out.push({ name, value: String(v) });
  }
  return out;
}

function construct(factory, arg) {
  return factory.prototype ? new factory(arg) : factory(arg);
}

/**
 * BrowserSocket receives connections for a fresh scope (seed 001): the
 * factory makes one ConnectionHandler per connect request; the handler's
 * handshakeResponseLoop may change the response or return null to cancel.
 */
export class BrowserSocket extends EventTarget {
  /**
   * @param {(handshake: object) => object} connectionHandlerFactory
   * @param {{scope?: string, label?: string, credential?: string, broker?: string}} [options]
   */
  constructor(connectionHandlerFactory, options = {}) {
    super();
    if (typeof connectionHandlerFactory !== 'function') throw new TypeError('BrowserSocket needs a connection handler factory');
    this._factory = connectionHandlerFactory;
    this._pending = new Map();
    this._port = 0;
    this._prefix = '';
    this._url = '';
    this._link = newLink(this, options.scope ?? null, options);
    this.ready = this._link.start().then((w) => {
      this._port = portOf(w.publicURL);
      this._prefix = new URL(w.publicURL).pathname;
      this._url = w.publicURL;
      return this;
    }, (err) => { this._error(err); throw err; });
    this.ready.catch(() => {});
  }

  /** _error fires error once per failure (the refusal rejects ready and closes the link: one event). */
  _error(err) {
    if (err && err === this._lastError) return;
    this._lastError = err;
    this.dispatchEvent(new SwitchboardErrorEvent(err));
  }

  /** The TCP port clients connect to. */
  get port() { return this._port; }
  /** The path prefix mapped to this socket; starts and ends with "/". */
  get resourcePrefix() { return this._prefix; }
  /** The URL clients connect to. */
  get url() { return this._url; }

  /** Where the service link is ('attaching', 'attached', 'reattaching', 'closed'); see WebSocketListener.state. */
  get state() { return this._link.state; }

  /** stop closes the socket and every connection. */
  stop() { this._link.close(true); }

  async connectRequest(req) {
    const request = { firstLine: req.firstLine, headers: headerDict(req.headers), body: Array.from(req.body) };
    const handler = construct(this._factory, request);
    if (!handler || typeof handler !== 'object') return { reject: true };
    let response = {
      firstLine: 'HTTP/1.1 101 Switching Protocols',
      headers: { Upgrade: 'websocket', Connection: 'Upgrade' },
      body: [],
    };
    if (typeof handler.handshakeResponseLoop === 'function') {
      response = await handler.handshakeResponseLoop(response);
      if (response == null) return { reject: true };
    }
    const status = Number(/^\S+\s+(\d{3})/.exec(response.firstLine ?? '')?.[1] ?? 101);
    const headers = headerList(response.headers);
    if (status !== 101) {
      return { respond: { status, headers, body: Uint8Array.from(response.body ?? []) } };
    }
    const chosen = headers.find((h) => /^sec-websocket-protocol$/i.test(h.name))?.value ?? '';
    if (chosen !== '' && !req.protocols.includes(chosen)) {
      // A client fails a handshake that names a subprotocol it did not offer
      // (RFC 6455 section 4.1), so it is refused here, loudly, rather than
      // accepted with another subprotocol than the handler chose.
      this.handlerError(new Error(`BrowserSocket: the handler chose the subprotocol "${chosen}", ` +
        `which the client did not offer (it offered ${JSON.stringify(req.protocols)}); the client was refused`));
      return { reject: true };
    }
    this._pending.set(req.channel, handler);
    return {
      accept: {
        protocol: chosen,
        headers: headers.filter((h) => !BROKER_HEADERS.test(h.name)),
      },
    };
  }

  channelOpened(ch) {
    const handler = this._pending.get(ch.id) ?? construct(this._factory, { firstLine: '', headers: {}, body: [] });
    this._pending.delete(ch.id);
    let open = true;
    handler.send = (data) => {
      if (!open) return false;
      const b = bytesOf(data);
      if (b instanceof Promise) b.then(([p, bin]) => ch.send(p, bin)); else ch.send(b[0], b[1]);
      return true;
    };
    handler.close = (code = 1000, reason = '') => { open = false; ch.close(code, reason); };
    ch.onmessage = (payload, binary) => handler.onmessage?.(messageEvent(socketData(payload, binary, 'arraybuffer'), ch.origin));
    ch.onclose = (code, reason) => {
      open = false;
      if (code === 1006) handler.onerror?.(new Event('error'));
      handler.onclose?.(closeEvent(code, reason, code !== 1006));
    };
    handler.onopen?.(new Event('open'));
  }

  handlerError(err) { this.dispatchEvent(new SwitchboardErrorEvent(err)); }
  linkClosed(err) {
    if (err) this._error(err);
    this.dispatchEvent(new StateChangeEvent('closed', err));
  }

  publicURLChanged(url) {
    this._port = portOf(url);
    this._url = url;
    this.dispatchEvent(new Event('urlchange'));
  }

  linkState(state, info) {
    if (state === 'attached') {
      this._port = portOf(info.publicURL);
      this._prefix = new URL(info.publicURL).pathname;
      this._url = info.publicURL;
    }
    this.dispatchEvent(new StateChangeEvent(state, state === 'attached' ? null : info));
  }
}
handlerAttributes(BrowserSocket, ['error', 'statechange', 'urlchange']);

export { connect, registerService, ServicePort, CrossOriginClient, ServiceRegistration } from './service.js';
export { AppSocket, setMessageHandler } from './app.js';
