// ServerWebSocket: the service's end of one client connection, shaped like
// a WebSocket. Used by WebSocketListener and the wsapp:// server side.

import { handlerAttributes, closeEvent, messageEvent, socketData, bytesOf } from './events.js';

/**
 * ServerWebSocket is the service's end of one client connection: a
 * WebSocket-like object (readyState, protocol, url, binaryType, send, close,
 * onopen/onmessage/onclose/onerror).
 */
export class ServerWebSocket extends EventTarget {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;

  constructor(ch) {
    super();
    this._ch = ch;
    this._state = 1; // the broker has accepted the client: the socket is open
    this._chain = null;
    this.binaryType = 'blob';
    ch.onmessage = (payload, binary) => {
      if (this._state !== 1) return;
      this.dispatchEvent(messageEvent(socketData(payload, binary, this.binaryType), ch.origin));
    };
    ch.onclose = (code, reason) => {
      this._state = 3;
      if (code === 1006) this.dispatchEvent(new Event('error'));
      this.dispatchEvent(closeEvent(code, reason, code !== 1006));
    };
  }

  get CONNECTING() { return 0; }
  get OPEN() { return 1; }
  get CLOSING() { return 2; }
  get CLOSED() { return 3; }
  get readyState() { return this._state; }
  /** The subprotocol (intent) chosen for this connection. */
  get protocol() { return this._ch.protocol; }
  /** The URL the client connected to. */
  get url() { return this._ch.target; }
  get extensions() { return ''; }
  get bufferedAmount() { return this._ch.bufferedAmount; }
  /** The client's Origin header ("" when it sent none). */
  get origin() { return this._ch.origin; }
  /** The client's address as the broker saw it. */
  get remoteAddress() { return this._ch.remote; }
  /** The verified app id of the client ("" for anonymous clients). */
  get app() { return this._ch.app; }
  /** The broker's channel id. */
  get channel() { return this._ch.id; }

  _open() {
    if (this._state === 1) this.dispatchEvent(new Event('open'));
  }

  /** send sends a string (text) or an ArrayBuffer, view or Blob (binary). */
  send(data) {
    if (this._state === 0) throw new DOMException('the connection is not open yet', 'InvalidStateError');
    if (this._state !== 1) return;
    const b = this._chain ? null : bytesOf(data);
    if (b && !(b instanceof Promise)) { this._ch.send(b[0], b[1]); return; }
    const ch = this._ch;
    this._chain = (this._chain ?? Promise.resolve()).then(() => (b ?? bytesOf(data))).then(([p, bin]) => ch.send(p, bin));
    const mine = this._chain;
    mine.finally(() => { if (this._chain === mine) this._chain = null; });
  }

  /** close closes the connection with a code (1000 or 3000–4999) and a reason. */
  close(code = 1000, reason = '') {
    if (code !== 1000 && (code < 3000 || code > 4999)) {
      throw new DOMException(`close code ${code} is not 1000 or in 3000–4999`, 'InvalidAccessError');
    }
    if (new TextEncoder().encode(reason).length > 123) throw new DOMException('close reason longer than 123 bytes', 'SyntaxError');
    if (this._state >= 2) return;
    this._state = 2;
    const close = () => this._ch.close(code, reason);
    if (this._chain) this._chain.then(close); else close();
  }
}
handlerAttributes(ServerWebSocket, ['open', 'message', 'close', 'error']);

