// The service side of the Switchboard service protocol (docs/PROTOCOL.md):
// one Link is one service instance attached to the broker. It sends Hello,
// answers connect requests through its owner, delivers each channel's
// messages in order and acknowledges them after the owner's handler ran,
// and sends no more to a channel than the broker's credit allows.
//
// The public classes in switchboard.js are owners of a Link; this file knows
// nothing of their APIs. An owner implements:
//
//   connectRequest(req)      → answer | Promise<answer>, where answer is
//                              {accept: {protocol, headers}} | {respond: {status, headers, body}} | {reject: true}
//   channelOpened(ch, how)   how is 'accept' (a new client) or 'open' (handed over)
//   stateChanged(active)     the broker made this instance active or not
//   linkState(state, info)   'reattaching' (info: the error) when the link was lost and the
//                            Link attaches again by itself; 'attaching' (info: the error) when
//                            the first attach failed (the broker is down) and is retried with
//                            the same backoff; 'attached' (info: Welcome) when it is back (or
//                            up after such retries), its open channels handed back (the same
//                            Channel objects)
//   linkClosed(err)          the link ended for good; err is null after close()
//
// and sets ch.onmessage(payload: Uint8Array, binary: boolean) (may return a
// Promise: the Ack waits for it) and ch.onclose(code, reason) on channels.

import {
  VERSION, SUBPROTOCOL, LINK_PATH, HELLO_PRIVATE, HELLO_URL_UPDATES, FLAG_BINARY, ErrorCode,
  encodeBatches, decodeFrames, maxLinkMessage, ProtocolError,
} from './protocol.js';
import { grantNow, helloWithGrant } from './grant.js';

/** LinkError is an Error frame from the broker, or the link failing. */
export class LinkError extends Error {
  constructor(message, code = 0) { super(message); this.name = 'LinkError'; this.code = code; }
}

/** Channel is one accepted client connection as the service sees it. */
export class Channel {
  constructor(link, info) {
    this.link = link;
    this.id = info.channel;
    this.origin = info.origin ?? '';
    this.target = info.target ?? '';
    this.protocol = info.protocol ?? '';
    this.app = info.app ?? '';
    this.remote = info.remote ?? '';
    this.since = info.since || Date.now();
    this.credit = link.window;   // payload bytes we may still send
    this.outq = [];              // [payload, flags] waiting for credit
    this.queued = 0;             // bytes in outq
    this.inq = [];               // frames waiting for the handler, in order
    this.pumping = false;
    this.lastSeq = 0;            // highest seq handled (drops duplicates after handover)
    this.closing = null;         // [code, reason] once the service closed (or answers the client's close)
    this.closed = false;
    this.told = false;           // onclose ran: the client closed, our answer may still wait for credit
    this.onmessage = null;
    this.onclose = null;
  }

  /** bufferedAmount is the payload bytes waiting for credit. */
  get bufferedAmount() { return this.queued; }

  /**
   * send queues one message; it goes out as credit allows. A message larger
   * than the broker relays (Welcome.maxMessage) throws a RangeError: the
   * broker would end the link for it.
   */
  send(payload, binary) {
    if (this.closed || this.closing) return false;
    const max = this.link.welcome?.maxMessage;
    if (max && payload.length > max) {
      throw new RangeError(`switchboard: a message of ${payload.length} bytes is larger than the broker relays (${max} bytes)`);
    }
    this.outq.push([payload, binary ? FLAG_BINARY : 0]);
    this.queued += payload.length;
    this.flush();
    return true;
  }

  /** close ends the channel after the messages already sent. */
  close(code = 1000, reason = '') {
    if (this.closed || this.closing) return;
    this.closing = [code, reason];
    this.flush();
  }

  flush() {
    if (this.link.state !== 'attached') return; // detached: everything waits for the next link
    const window = this.link.window;
    while (this.outq.length > 0) {
      const [p, flags] = this.outq[0];
      // A message larger than the window may go when the whole window is free.
      if (p.length > this.credit && this.credit < window) break;
      this.outq.shift();
      this.queued -= p.length;
      this.credit -= p.length;
      this.link.send({ type: 'data', channel: this.id, seq: 0, flags, payload: p });
    }
    if (this.outq.length === 0 && this.closing && !this.closed) {
      const [code, reason] = this.closing;
      this.link.send({ type: 'close', channel: this.id, code, reason });
      this.link.forget(this, code, reason);
    }
  }

  /** detach keeps the channel across a lost link: what it received is delivered again. */
  detach() {
    this.credit = 0;
    this.inq.length = 0;
  }

  /** rebind hands the channel to the link that got it back (Open). */
  rebind(link) {
    this.link = link;
    this.credit = link.window;
    this.flush();
    this.pump();
  }

  async pump() {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.inq.length > 0) {
        const f = this.inq.shift();
        if (f.type === 'close') {
          this.link.clientClosed(this, f.code, f.reason);
          continue;
        }
        if (f.seq <= this.lastSeq) { this.link.ack(this, f.seq); continue; }
        // Past a gap (frames lost between brokers of a cluster): drop it
        // unacknowledged; the broker resends from the first missing one.
        if (this.lastSeq !== 0 && f.seq > this.lastSeq + 1) continue;
        try {
          const r = this.onmessage?.(f.payload, (f.flags & FLAG_BINARY) !== 0);
          if (r && typeof r.then === 'function') await r;
        } catch (err) {
          this.link.report(err);
        }
        this.lastSeq = f.seq;
        this.link.ack(this, f.seq);
      }
    } finally {
      this.pumping = false;
      this.link.drained();
    }
  }
}

function brokerFrom(base) {
  const u = new URL(base);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  if (u.protocol === 'https:') u.protocol = 'wss:';
  return u;
}

/**
 * Link is one service instance attached to the broker.
 */
export class Link {
  /**
   * @param {object} o
   * @param {string} o.broker   broker base URL (ws, wss, http or https)
   * @param {string} o.credential
   * @param {string|null} o.scope  scope URL; null asks for a private scope
   * @param {string} [o.label]
   * @param {string[]} [o.protocols]
   * @param {string[]} [o.origins]
   * @param {number} [o.window]
   * @param {object} o.owner
   */
  constructor(o) {
    this.owner = o.owner;
    this.token = o.token ?? null; // listen grant or a function that returns one (grant.js)
    const broker = brokerFrom(o.broker);
    this.hello = {
      type: 'hello', version: VERSION,
      scope: o.scope == null ? new URL('/', broker).href : new URL(o.scope, broker).href.replace(/^http/, 'ws'),
      label: o.label ?? '', credential: o.credential ?? '',
      protocols: o.protocols ?? [], origins: o.origins ?? [], window: o.window ?? 0,
      flags: (o.scope == null ? HELLO_PRIVATE : 0) | HELLO_URL_UPDATES, hold: Math.max(0, Math.round(o.hold ?? 0)),
    };
    this.url = new URL(LINK_PATH, broker).href;
    this.window = 0;
    this.welcome = null;
    this.active = false;
    this.channels = new Map();
    this.out = [];
    this.acks = new Map();
    this.flushing = false;
    this.lists = new Map();
    this.nextList = 1;
    this.closed = false;   // ended for good
    this.retiring = false;
    this.state = 'attaching'; // 'attached', 'reattaching', 'closed'
    this.reattach = o.reattach ?? true;
    this.detached = new Map(); // channel id → Channel kept across a lost link
    this.backoff = REATTACH_MIN;
    this.gen = 0;              // which socket this is: answers to an earlier one's requests are dropped
  }

  /** start opens the link and resolves with the Welcome frame. */
  start() {
    // No later instance can take over a private scope: when the page goes
    // away, close its clients now (1001) rather than at the handover timeout.
    if (this.hello.flags & HELLO_PRIVATE && 'onpagehide' in globalThis) {
      globalThis.addEventListener('pagehide', () => this.close(true), { once: true });
    }
    return new Promise((resolve, reject) => {
      this.ready = { resolve, reject };
      this.open();
    });
  }

  /** open opens one socket to the broker and sends Hello on it. */
  open() {
    let ws;
    this.gen++;
    this.out = [];
    this.acks.clear();
    this.welcome = null;
    this.error = null;
    try {
      ws = new WebSocket(this.url, SUBPROTOCOL);
    } catch (err) {
      this.error = new LinkError(`cannot open the service link to ${this.url}: ${err.message}`);
      queueMicrotask(() => this.ended(null, true));
      return;
    }
    this.ws = ws;
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => {
      if (this.ws !== ws) return;
      if (!this.token) { this.send(this.hello); return; }
      grantNow(this.token).then((g) => { // a listen grant: fresh for each link
        if (this.ws !== ws) return;
        helloWithGrant(this.hello, g, (this.hello.flags & HELLO_PRIVATE) !== 0);
        this.send(this.hello);
      }, (err) => { this.error = new LinkError(`no listen grant: ${err.message}`); ws.close(); });
    };
    ws.onmessage = (ev) => { if (this.ws === ws) this.receive(ev.data); };
    ws.onerror = () => {};
    ws.onclose = (ev) => { if (this.ws === ws) this.ended(ev); };
  }

  receive(data) {
    if (typeof data === 'string') { this.fail(ErrorCode.protocol, 'link messages must be binary'); return; }
    let frames;
    try {
      frames = decodeFrames(new Uint8Array(data));
    } catch (err) {
      this.fail(ErrorCode.protocol, err.message);
      return;
    }
    for (const f of frames) {
      try {
        this.dispatch(f);
      } catch (err) {
        this.fail(err instanceof ProtocolError ? ErrorCode.protocol : ErrorCode.internal, err.message);
        return;
      }
    }
  }

  dispatch(f) {
    if (!this.welcome && f.type !== 'welcome' && f.type !== 'error') {
      throw new ProtocolError(`${f.type} before welcome`);
    }
    switch (f.type) {
      case 'welcome': {
        const again = this.state === 'reattaching' || this.firstFailed;
        this.firstFailed = false;
        this.welcome = f;
        this.window = f.window;
        this.active = f.active;
        this.state = 'attached';
        this.backoff = REATTACH_MIN;
        if (this.hello.flags & HELLO_PRIVATE) {
          // Attach again to this same scope, so that its URL stays the same.
          this.privateHello = this.privateHello ?? this.hello;
          this.hello = { ...this.hello, scope: new URL(f.scope, this.hello.scope).href, flags: HELLO_URL_UPDATES };
        }
        this.ready?.resolve(f);
        this.ready = null;
        if (again) {
          try { this.owner.linkState?.('attached', f); } catch (err) { this.report(err); }
          this.reconcile();
        }
        return;
      }
      case 'error':
        // Grant and private-scope refusals say what to do themselves (docs/BROWSER.md).
        this.error = new LinkError(f.code === ErrorCode.unauthorized && !this.token && !/grant|private_scopes/.test(f.message)
          ? `${f.message}; pass a credential that owns the scope with configure({ credential }) or the credential option`
          : f.message, f.code);
        return;
      case 'url': // the broker's public address changed (a port mapping made, lost or moved)
        this.welcome = { ...this.welcome, publicURL: f.publicURL };
        try { this.owner.publicURLChanged?.(f.publicURL); } catch (err) { this.report(err); }
        return;
      case 'state':
        this.active = f.active;
        if (!f.active) { this.retiring = true; this.drained(); }
        this.owner.stateChanged?.(f.active);
        return;
      case 'connect':
        this.connect(f);
        return;
      case 'open': {
        if (this.channels.has(f.channel)) return;
        const kept = this.detached.get(f.channel);
        if (kept) { // handed back after a lost link: the same channel goes on
          this.detached.delete(f.channel);
          this.channels.set(f.channel, kept);
          kept.rebind(this);
          return;
        }
        this.opened(new Channel(this, f), 'open');
        return;
      }
      case 'data':
      case 'close': {
        const ch = this.channels.get(f.channel);
        if (!ch) return; // closed a moment ago: the two sides race
        ch.inq.push(f);
        ch.pump();
        return;
      }
      case 'credit': {
        const ch = this.channels.get(f.channel);
        if (ch) { ch.credit += f.bytes; ch.flush(); }
        return;
      }
      case 'clients': {
        const p = this.lists.get(f.request);
        this.lists.delete(f.request);
        p?.resolve(f.clients);
        this.drained(); // a superseded instance waited for this answer
        return;
      }
    }
    throw new ProtocolError(`unexpected ${f.type} frame from the broker`);
  }

  connect(req) {
    const gen = this.gen;
    let answer;
    try {
      answer = Promise.resolve(this.owner.connectRequest(req));
    } catch (err) {
      answer = Promise.reject(err);
    }
    answer.then((a) => {
      if (this.closed || this.gen !== gen) return; // the link this request came on is gone
      if (a && a.accept) {
        const protocol = a.accept.protocol ?? '';
        this.send({ type: 'accept', channel: req.channel, protocol, headers: a.accept.headers ?? [] });
        this.opened(new Channel(this, { ...req, protocol, since: Date.now() }), 'accept');
      } else if (a && a.respond) {
        const r = a.respond;
        this.send({ type: 'respond', channel: req.channel, status: r.status, headers: r.headers ?? [], body: r.body ?? [] });
      } else {
        this.send({ type: 'reject', channel: req.channel });
      }
    }, (err) => {
      this.report(err);
      if (!this.closed && this.gen === gen) this.send({ type: 'reject', channel: req.channel });
    });
  }

  opened(ch, how) {
    this.channels.set(ch.id, ch);
    try { this.owner.channelOpened(ch, how); } catch (err) { this.report(err); }
  }

  /** forget drops a channel that ended and tells its owner. */
  forget(ch, code, reason) {
    if (ch.closed) return;
    ch.closed = true;
    ch.inq.length = 0;
    ch.outq.length = 0;
    ch.queued = 0;
    this.channels.delete(ch.id);
    if (!ch.told) {
      try { ch.onclose?.(code, reason); } catch (err) { this.report(err); }
    }
    this.drained();
  }

  /**
   * clientClosed handles the client's close, after every message before it
   * was handled: the owner hears it at once (nothing more can be sent), and
   * the service's own Close, echoing the client's code, follows what the
   * handlers sent (as credit lets it go); the broker holds the client's
   * close until then (its close timeout aside). A client whose connection
   * broke (1006) is not answered.
   */
  clientClosed(ch, code, reason) {
    if (ch.closed || ch.told) return;
    ch.inq.length = 0;
    if (code === 1006) { this.forget(ch, code, reason); return; }
    ch.closing ??= [code, reason];
    ch.told = true;
    try { ch.onclose?.(code, reason); } catch (err) { this.report(err); }
    ch.flush();
  }

  ack(ch, seq) { this.acks.set(ch.id, seq); this.schedule(); }

  /** push sends one message to every channel whose target path starts with prefix. */
  push(payload, binary, prefix = '') {
    const max = this.welcome?.maxMessage;
    if (max && payload.length > max) {
      throw new RangeError(`switchboard: a push of ${payload.length} bytes is larger than the broker relays (${max} bytes)`);
    }
    if (new TextEncoder().encode(prefix).length > 32 << 10) throw new RangeError('switchboard: a push prefix longer than 32 KiB');
    if (this.state === 'reattaching') throw new DOMException('the service is attaching again to the broker; push once it is back (statechange)', 'InvalidStateError');
    this.send({ type: 'push', flags: binary ? FLAG_BINARY : 0, prefix, payload });
  }

  /**
   * list asks the broker for the registration's open channels: the same
   * list for every instance of it (seed 003's getAll), a superseded one
   * included until it detaches; one that has detached says so.
   */
  list() {
    return new Promise((resolve, reject) => {
      if (this.closed && this.retiring) {
        reject(new LinkError('this instance was superseded by a newer one of its registration and has detached; ' +
          'the active instance lists the clients'));
        return;
      }
      if (this.closed) { reject(new LinkError('the service link is closed')); return; }
      if (this.state === 'reattaching') { reject(new LinkError('the service is attaching again to the broker')); return; }
      const request = this.nextList++;
      this.lists.set(request, { resolve, reject });
      this.send({ type: 'list', request });
    });
  }

  send(frame) {
    if (this.closed || (this.state !== 'attached' && frame.type !== 'hello')) return;
    this.out.push(frame);
    this.schedule();
  }

  schedule() {
    if (this.flushing) return;
    this.flushing = true;
    queueMicrotask(() => this.flush());
  }

  /**
   * flush writes every queued frame, cut into link messages no larger than
   * the link contract allows (maxLinkMessage of Welcome.maxMessage; before
   * Welcome only Hello is sent).
   */
  flush() {
    this.flushing = false;
    if (this.closed || !this.ws || this.ws.readyState !== 1) return;
    for (const [channel, seq] of this.acks) this.out.push({ type: 'ack', channel, seq });
    this.acks.clear();
    if (this.out.length === 0) return;
    const limit = maxLinkMessage(this.welcome?.maxMessage ?? 1 << 20);
    const msgs = encodeBatches(this.out, limit);
    this.out = [];
    for (const m of msgs) this.ws.send(m);
  }

  /**
   * drained detaches a superseded instance once it handled all it holds
   * and the broker answered the client lists it asked for.
   */
  drained() {
    if (!this.retiring || this.closed || this.lists.size > 0) return;
    for (const ch of this.channels.values()) if (ch.inq.length > 0 || ch.pumping) return;
    this.flush();
    this.close();
  }

  report(err) {
    try { this.owner.handlerError?.(err); } catch { /* the owner's own report failed */ }
    if (typeof console !== 'undefined') console.error('switchboard: handler failed:', err);
  }

  fail(code, message) {
    if (this.closed) return;
    this.out = [{ type: 'error', code, message }];
    this.flush();
    this.error = new LinkError(message, code);
    this.ws.close(code === ErrorCode.protocol ? 4002 : 4011, message.slice(0, 120));
  }

  /** close detaches this instance; with goingAway, clients are closed first (1001). */
  close(goingAway = false) {
    if (this.closed || this.stopping) return;
    this.stopping = true;
    clearTimeout(this.retryTimer);
    if (goingAway) {
      for (const ch of [...this.channels.values()]) {
        this.send({ type: 'close', channel: ch.id, code: 1001, reason: 'service stopped' });
        this.forget(ch, 1001, 'service stopped');
      }
    }
    this.flush();
    this.closed = true;
    this.ws?.close(1000);
    this.ended(null);
  }

  /** reconcile ends kept channels that the registration no longer has (gone while detached). */
  reconcile() {
    // The broker sends Open for every open channel before it answers List.
    this.list().then((infos) => {
      const open = new Set(infos.map((i) => i.channel));
      for (const [id, ch] of [...this.detached]) {
        if (open.has(id)) continue;
        this.detached.delete(id);
        ch.link = this;
        this.forget(ch, 1006, 'gone while the service was detached');
      }
    }, () => {}); // the link was lost again: the next attach reconciles
  }

  ended(ev, failedToOpen = false) {
    const err = this.error ?? (ev && !this.welcome
      ? new LinkError(`the broker refused the service link at ${this.url} (close ${ev.code}${ev.reason ? ': ' + ev.reason : ''})`)
      : ev ? new LinkError(`the service link closed (${ev.code}${ev.reason ? ': ' + ev.reason : ''})`)
        : failedToOpen ? new LinkError(`cannot open the service link to ${this.url}`) : null);
    for (const p of this.lists.values()) p.reject(err ?? new LinkError('the service link is closed'));
    this.lists.clear();
    if (this.linkEnded) return;
    if (!this.closed && !failedToOpen && this.lostLink(err)) return;
    this.closed = true;
    this.state = 'closed';
    if (this.ready) { this.ready.reject(err ?? new LinkError('closed before the broker answered')); this.ready = null; }
    this.linkEnded = true;
    for (const ch of [...this.channels.values(), ...this.detached.values()]) {
      ch.closed = true;
      try { ch.onclose?.(1006, 'service link lost'); } catch (e) { this.report(e); }
    }
    this.channels.clear();
    this.detached.clear();
    this.owner.linkClosed?.(this.retiring ? null : err);
  }

  /**
   * lostLink handles a link that ended while attached or attaching again:
   * it keeps the channels and attaches again with backoff and jitter. It
   * returns false when the link ends for good instead (close(), a
   * superseded instance, a refusal). A first attach that fails for any
   * other reason is retried the same way.
   */
  lostLink(err) {
    if (this.stopping || this.retiring || !this.reattach) return false;
    if (this.state === 'attached') {
      for (const ch of this.channels.values()) { ch.detach(); this.detached.set(ch.id, ch); }
      this.channels.clear();
      this.state = 'reattaching';
      try { this.owner.linkState?.('reattaching', err); } catch (e) { this.report(e); }
    } else if (this.state !== 'reattaching' && this.state !== 'attaching') {
      return false;
    }
    // A listen grant that ran out: a token function gives a fresh one (grant.js).
    const renew = err && typeof this.token === 'function' && /grant expired|lifetime ended/.test(err.message);
    if (this.state === 'attaching') {
      // The first attach failed. A refusal ends it (ready rejects); a broker
      // that cannot be reached (down at page load, restarting) is tried again
      // with the same backoff as a reattach, and ready waits. The page hears
      // of it once, through statechange ('attaching', with the error).
      if (err && REFUSALS.has(err.code) && !renew) return false;
      if (!this.firstFailed) {
        this.firstFailed = true;
        try { this.owner.linkState?.('attaching', err); } catch (e) { this.report(e); }
      }
    } else if (err && REFUSALS.has(err.code) && !renew) {
      if (!this.privateHello || this.hello === this.privateHello) return false;
      // The broker does not give the private scope back (a new broker, a
      // policy): take a fresh one; the owner learns the new URL.
      this.hello = this.privateHello;
      this.backoff = REATTACH_MIN;
    }
    const wait = this.backoff / 2 + Math.random() * this.backoff / 2; // jitter
    this.backoff = Math.min(2 * this.backoff, REATTACH_MAX);
    this.retryTimer = setTimeout(() => { if (!this.closed) this.open(); }, wait);
    return true;
  }
}

// Backoff between attach attempts after a lost link (doubling, with jitter).
const REATTACH_MIN = 100;
const REATTACH_MAX = 10000;
// Error codes that attaching again would only repeat.
const REFUSALS = new Set([ErrorCode.protocol, ErrorCode.version, ErrorCode.unauthorized, ErrorCode.scope]);
