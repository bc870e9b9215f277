// Seed 003 (navigator.connect, docs/ORIGINS.md): connect(url) for clients, registerService
// for services, with values encoded as README "Values on the wire" says.

import { newLink, wsURL } from './config.js';
import { checkTransfer } from './clone.js';
import { handlerAttributes, SwitchboardErrorEvent, StateChangeEvent, messageEvent, encodeValue, decodeValue } from './events.js';

/** The subprotocol that tells the service the client wrote an http(s) URL. */
export const TARGET_SCHEME = 'switchboard.target.';

/** targetOf returns the URL the client wrote and its real subprotocols. */
function targetOf(req) {
  const marker = req.protocols.find((p) => p.startsWith(TARGET_SCHEME));
  const protocols = req.protocols.filter((p) => p !== marker);
  const scheme = marker?.slice(TARGET_SCHEME.length);
  const target = scheme === 'http' || scheme === 'https' ? (req.target ?? '').replace(/^wss?:/, scheme + ':') : req.target;
  return { target, protocols, marker };
}

function abortError(url) {
  // The same error for "no service" and "rejected": the two must not be told apart.
  return new DOMException(`no service accepted the connection to ${url}`, 'AbortError');
}

/**
 * ServicePort is the client's end of a connection made by connect(): a
 * MessagePort-like object. Messages are held until start() or until
 * onmessage is set, as with MessagePort.
 */
export class ServicePort extends EventTarget {
  constructor(ws) {
    super();
    this._ws = ws;
    this._started = false;
    this._held = [];
    this._chain = null;
    ws.binaryType = 'arraybuffer';
    ws.onmessage = (ev) => {
      let data;
      try {
        data = typeof ev.data === 'string'
          ? decodeValue(new TextEncoder().encode(ev.data), false) : ev.data;
      } catch {
        this._deliver(new Event('messageerror'));
        return;
      }
      this._deliver(messageEvent(data, ws.url));
    };
    ws.onclose = (ev) => this._deliver(Object.assign(new Event('close'), { code: ev.code, reason: ev.reason }));
  }

  /** The URL this port is connected to. */
  get url() { return this._ws.url; }

  _deliver(ev) {
    if (this._started) this.dispatchEvent(ev); else this._held.push(ev);
  }

  /** start delivers held messages and the ones that follow. */
  start() {
    if (this._started) return;
    this._started = true;
    const held = this._held;
    this._held = [];
    for (const ev of held) this.dispatchEvent(ev);
  }

  /** postMessage sends a value as structured clone allows (README "Values on the wire"); DataCloneError for what cannot cross. */
  postMessage(value, transfer) {
    checkTransfer(transfer);
    if (this._ws.readyState !== 1) return;
    const enc = this._chain ? null : encodeValue(value);
    if (enc && !(enc instanceof Promise)) { this._ws.send(enc[1] ? enc[0] : new TextDecoder().decode(enc[0])); return; }
    const ws = this._ws;
    const mine = (this._chain ?? Promise.resolve()).then(() => enc ?? encodeValue(value))
      .then(([p, bin]) => ws.send(bin ? p : new TextDecoder().decode(p)));
    this._chain = mine;
    mine.finally(() => { if (this._chain === mine) this._chain = null; });
  }

  /** close disconnects from the service. */
  close() { this._ws.close(1000); }
}
handlerAttributes(ServicePort, ['message', 'messageerror', 'close']);
Object.defineProperty(ServicePort.prototype, 'onmessage', (() => {
  const base = Object.getOwnPropertyDescriptor(ServicePort.prototype, 'onmessage');
  return {
    configurable: true, enumerable: true, get: base.get,
    set(fn) { base.set.call(this, fn); this.start(); },
  };
})());

/**
 * connect opens a connection to the service whose scope matches url. It
 * rejects with a DOMException named "AbortError" alike when no service owns
 * the URL and when the service rejects.
 * @param {string} url  ws(s)/http(s) URL or a path on the broker
 * @param {string|string[]} [protocols]
 * @returns {Promise<ServicePort>}
 */
export function connect(url, protocols = []) {
  return new Promise((resolve, reject) => {
    let ws;
    try {
      // The service sees the URL as the client wrote it (targetUrl): an
    // http(s) URL, routed as ws(s), is marked by one more offered
    // subprotocol that the service's library takes off again.
    const scheme = /^(https?):/i.exec(String(url))?.[1]?.toLowerCase();
    const offered = [].concat(protocols);
    if (scheme) offered.push(TARGET_SCHEME + scheme);
    ws = new WebSocket(wsURL(url).href, offered);
    } catch (err) {
      reject(new DOMException(`cannot connect to ${url}: ${err.message}`, 'SyntaxError'));
      return;
    }
    let settled = false;
    ws.onopen = () => { settled = true; resolve(new ServicePort(ws)); };
    ws.onerror = () => {};
    ws.onclose = () => { if (!settled) { settled = true; reject(abortError(url)); } };
  });
}

/**
 * CrossOriginClient is one connected client as the service sees it.
 */
export class CrossOriginClient {
  constructor(info) {
    /** The Origin of the client ("" when it sent none). */
    this.origin = info.origin ?? '';
    /** The URL the client connected to. */
    this.targetUrl = info.target ?? '';
    /** The broker's channel id. */
    this.id = info.channel;
    /** The verified app id of the client, "" if anonymous. */
    this.app = info.app ?? '';
    this._ch = null;
    this._chain = null;
  }

  /** postMessage sends a value to this client; DataCloneError for what cannot cross. */
  postMessage(value, transfer) {
    checkTransfer(transfer);
    if (!this._ch || this._ch.closed) throw new DOMException('this client is not connected', 'InvalidStateError');
    const ch = this._ch;
    const enc = this._chain ? null : encodeValue(value);
    if (enc && !(enc instanceof Promise)) { ch.send(enc[0], enc[1]); return; }
    const mine = (this._chain ?? Promise.resolve()).then(() => enc ?? encodeValue(value)).then(([p, b]) => ch.send(p, b));
    this._chain = mine;
    mine.finally(() => { if (this._chain === mine) this._chain = null; });
  }

  /** close disconnects this client. */
  close(code = 1000, reason = '') { this._ch?.close(code, reason); }
}

/** The crossoriginconnect event. */
export class CrossOriginConnectEvent extends Event {
  constructor(client) {
    super('crossoriginconnect');
    this.client = client;
    this._answer = null;
  }

  /** acceptConnection answers with a boolean or a Promise of one; the first call counts. */
  acceptConnection(shouldAccept) {
    if (this._answer === null) this._answer = Promise.resolve(shouldAccept);
  }
}

/** The crossoriginmessage event: data and the client that sent it. */
export class CrossOriginMessageEvent extends Event {
  constructor(data, source) {
    super('crossoriginmessage');
    this.data = data;
    this.source = source;
    this.origin = source.origin;
    this.ports = [];
  }
}

/**
 * ServiceRegistration is what registerService returns: an EventTarget with
 * crossoriginconnect and crossoriginmessage events and crossOriginClients.
 */
export class ServiceRegistration extends EventTarget {
  constructor(scopeUrl, options) {
    super();
    this._clients = new Map();
    this._pending = new Map();
    // A URL without a final "/" names one service URL (seed 003's
    // registerService('/services/echo')): the scope "/services/echo/",
    // which the broker matches for that URL too, limited here to it.
    const u = new URL(scopeUrl, 'ws://x');
    if (!u.pathname.endsWith('/')) {
      this._exact = u.pathname;
      scopeUrl = String(scopeUrl).replace(u.pathname, u.pathname + '/');
    }
    this._link = newLink(this, scopeUrl, options);
    this.crossOriginClients = {
      /** getAll resolves with every client connected to this registration. */
      getAll: () => this._link.list().then((infos) => infos.map((i) => this._clients.get(i.channel) ?? new CrossOriginClient(i))),
    };
    this.ready = this._link.start().then((w) => { this.scope = w.scope; this.url = w.publicURL; return this; });
    this.ready.catch((err) => this.dispatchEvent(new SwitchboardErrorEvent(err)));
  }

  /** Whether this instance is the active one of its registration. */
  get active() { return this._link.active; }
  /** Where the service link is ('attaching', 'attached', 'reattaching', 'closed'); changes fire statechange. */
  get state() { return this._link.state; }

  /** unregister detaches this instance; with closeClients, clients are closed too. */
  unregister(closeClients = false) { this._link.close(closeClients); }

  connectRequest(req) {
    const { target, protocols, marker } = targetOf(req);
    // registerService('/services/echo'): that exact URL, not the paths under it.
    if (this._exact && new URL(req.target).pathname !== this._exact) return { reject: true };
    const client = new CrossOriginClient({ ...req, target });
    const ev = new CrossOriginConnectEvent(client);
    this.dispatchEvent(ev);
    if (ev._answer === null) return { reject: true };
    return ev._answer.then((ok) => {
      if (ok !== true) return { reject: true };
      this._pending.set(req.channel, client);
      return { accept: { protocol: protocols[0] ?? marker ?? '' } };
    });
  }

  channelOpened(ch) {
    // A channel handed over from an earlier instance: the URL form shows in its protocol.
    const client = this._pending.get(ch.id) ?? new CrossOriginClient({ ...ch, channel: ch.id,
      target: targetOf({ protocols: ch.protocol ? [ch.protocol] : [], target: ch.target }).target });
    this._pending.delete(ch.id);
    client._ch = ch;
    this._clients.set(ch.id, client);
    ch.onmessage = (payload, binary) => {
      let data;
      try {
        data = decodeValue(payload, binary);
      } catch (err) {
        this.dispatchEvent(Object.assign(new Event('crossoriginmessageerror'), { source: client, error: err }));
        return;
      }
      this.dispatchEvent(new CrossOriginMessageEvent(data, client));
    };
    ch.onclose = (code, reason) => {
      this._clients.delete(ch.id);
      this.dispatchEvent(Object.assign(new Event('crossorigindisconnect'), { client, code, reason }));
    };
  }

  handlerError(err) { this.dispatchEvent(new SwitchboardErrorEvent(err)); }
  linkClosed(err) {
    if (err) this.dispatchEvent(new SwitchboardErrorEvent(err));
    this.dispatchEvent(new StateChangeEvent('closed', err));
  }

  publicURLChanged(url) {
    this.url = url;
    this.dispatchEvent(new Event('urlchange'));
  }

  linkState(state, info) {
    if (state === 'attached') { this.scope = info.scope; this.url = info.publicURL; }
    this.dispatchEvent(new StateChangeEvent(state, state === 'attached' ? null : info));
  }
}
handlerAttributes(ServiceRegistration, ['crossoriginconnect', 'crossoriginmessage', 'crossorigindisconnect', 'error', 'statechange', 'urlchange']);

/**
 * registerService makes this page (or worker) the service for a scope.
 * @param {string} scopeUrl  e.g. "/services/echo/"
 * @param {{label?: string, origins?: string[], credential?: string, broker?: string}} [options]
 */
export function registerService(scopeUrl, options = {}) {
  return new ServiceRegistration(scopeUrl, options);
}
