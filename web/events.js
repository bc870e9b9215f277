// Events and message encoding shared by the classes of switchboard.js.

import { US, exactJSON, encodeClone, decodeClone } from './clone.js';

/** handlerAttributes defines `on<name>` properties that wrap addEventListener. */
export function handlerAttributes(cls, names) {
  for (const name of names) {
    const key = Symbol('on' + name);
    Object.defineProperty(cls.prototype, 'on' + name, {
      configurable: true,
      enumerable: true,
      get() { return this[key]?.fn ?? null; },
      set(fn) {
        if (this[key]) this.removeEventListener(name, this[key].wrap);
        this[key] = null;
        if (typeof fn === 'function') {
          const wrap = (ev) => fn.call(this, ev);
          this[key] = { fn, wrap };
          this.addEventListener(name, wrap);
        }
      },
    });
  }
}

/** ConnectionEvent carries the accepted socket of a WebSocketListener. */
export class ConnectionEvent extends Event {
  constructor(type, socket) { super(type); this.socket = socket; }
}

/** ErrorEvent-like event with the error and its message. */
export class SwitchboardErrorEvent extends Event {
  constructor(error) {
    super('error');
    this.error = error;
    this.message = error?.message ?? String(error);
  }
}

/** closeEvent makes a CloseEvent where the platform has one. */
/**
 * StateChangeEvent tells a page where its service is: 'attaching' (the
 * first attach failed, e.g. the broker is down at page load; error says
 * why; the library tries again by itself, with backoff), 'attached',
 * 'reattaching' (the link was lost; error says why; the library attaches
 * again by itself, with backoff) or 'closed'.
 */
export class StateChangeEvent extends Event {
  constructor(state, error = null) {
    super('statechange');
    this.state = state;
    this.error = error;
  }
}

export function closeEvent(code, reason, wasClean) {
  if (typeof CloseEvent === 'function') return new CloseEvent('close', { code, reason, wasClean });
  const ev = new Event('close');
  Object.assign(ev, { code, reason, wasClean });
  return ev;
}

/** messageEvent makes a MessageEvent with data. */
export function messageEvent(data, origin = '') {
  return new MessageEvent('message', { data, origin });
}

const utf8 = new TextEncoder();
const utf8dec = new TextDecoder();

/**
 * socketData turns a payload into what WebSocket's message event carries.
 * @param {Uint8Array} payload
 * @param {boolean} binary
 * @param {'blob'|'arraybuffer'} binaryType
 */
export function socketData(payload, binary, binaryType) {
  if (!binary) return utf8dec.decode(payload);
  const copy = payload.slice().buffer;
  return binaryType === 'blob' && typeof Blob === 'function' ? new Blob([copy]) : copy;
}

/**
 * bytesOf returns [bytes, binary] for what WebSocket.send accepts, or a
 * Promise of it for a Blob.
 */
export function bytesOf(data) {
  if (typeof data === 'string') return [utf8.encode(data), false];
  if (data instanceof ArrayBuffer) return [new Uint8Array(data.slice(0)), true];
  if (ArrayBuffer.isView(data)) return [new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)), true];
  if (typeof Blob === 'function' && data instanceof Blob) return data.arrayBuffer().then((b) => [new Uint8Array(b), true]);
  return [utf8.encode(String(data)), false];
}

// Values on connect()/registerService channels (see README, "Values on the
// wire"): a string is a text message as it is; binary data is a binary
// message; any other value is a text message of U+001E (the RFC 7464 record
// separator) followed by its JSON. A string that itself starts with U+001E is
// sent the JSON way too, so every text message decodes to one value.

/** RS is the marker of a JSON value in a text message. */
export const RS = '\u001e';

/** encodeValue turns a postMessage value into [bytes, binary] (or a Promise of it). */
export function encodeValue(v) {
  if (typeof v === 'string' && !v.startsWith(RS) && !v.startsWith(US)) return [utf8.encode(v), false];
  if (v instanceof ArrayBuffer || ArrayBuffer.isView(v) || (typeof Blob === 'function' && v instanceof Blob)) return bytesOf(v);
  if (v === undefined || !exactJSON(v)) return [utf8.encode(encodeClone(v)), false]; // clone.js
  return [utf8.encode(RS + JSON.stringify(v)), false];
}

/** decodeValue turns a message into the value that postMessage sent. */
export function decodeValue(payload, binary) {
  if (binary) return payload.slice().buffer;
  const text = utf8dec.decode(payload);
  if (text.startsWith(US)) return decodeClone(text.slice(1));
  if (!text.startsWith(RS)) return text;
  return JSON.parse(text.slice(1));
}
