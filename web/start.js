// The start page: a live dashboard of the broker (polls
// /.switchboard/v1/status every second) and the "this tab is a WebSocket
// server" demo built on WebSocketListener.

import { WebSocketListener } from './switchboard.js';

const $ = (id) => document.getElementById(id);
const base = new URL('/', import.meta.url);
let listener = null;   // the demo's WebSocketListener while it runs

// ---------------------------------------------------------------- dashboard

const history = [];          // [{t, in, out}] messages per second
let last = null;             // previous status sample
let failures = 0;

function rate(now, prev, key, dt) {
  const a = now.counters?.[key], b = prev?.counters?.[key];
  if (a == null) return null;
  return b == null ? 0 : Math.max(0, (a - b) / dt);
}

function fmtRate(v) { return v >= 100 ? Math.round(v).toLocaleString() : v.toFixed(v >= 10 ? 0 : 1); }
function fmtBytes(v) {
  const u = ['B/s', 'KB/s', 'MB/s', 'GB/s'];
  let i = 0;
  while (v >= 1000 && i < u.length - 1) { v /= 1000; i++; }
  return (v >= 10 || i === 0 ? Math.round(v) : v.toFixed(1)) + ' ' + u[i];
}
function age(since) {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(since)) / 1000));
  if (s < 60) return s + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm';
  return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm';
}

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v; else if (v !== false && v != null) e.setAttribute(k, v);
  }
  for (const k of kids.flat()) if (k != null) e.append(k);
  return e;
}

function renderRegistration(r) {
  const active = r.instances.find((i) => i.active);
  const inst = r.instances.map((i) => el('span', { class: 'chip ' + (i.active ? 'ok' : 'wait'), title: `instance ${i.id} from ${i.remote}` },
    i.active ? 'active' : 'waiting', ' · #' + i.id, i.label ? ' ' + i.label : '', ' · ', age(i.since)));
  if (inst.length === 0) inst.push(el('span', { class: 'chip warn' }, 'no instance · handing over'));
  const rows = r.channels.map((c) => el('tr', {},
    el('td', { 'data-k': 'id' }, String(c.id)),
    el('td', { class: 'target', 'data-k': 'target' }, new URL(c.target).pathname + new URL(c.target).search),
    el('td', { 'data-k': 'origin' }, c.origin || '—'),
    el('td', { 'data-k': 'instance' }, c.instance ? '#' + c.instance : '—'),
    el('td', { 'data-k': 'unacked', class: c.unacked ? 'hot' : '' }, String(c.unacked)),
    el('td', { 'data-k': 'age' }, age(c.since))));
  return el('article', { class: 'reg', 'data-scope': r.scope },
    el('div', { class: 'reg-head' },
      el('code', { class: 'scope' }, r.scope),
      listener && listener.scope === r.scope ? el('span', { class: 'chip mine' }, 'this tab') : null,
      r.owner ? el('span', { class: 'muted' }, 'owner ' + r.owner) : null,
      el('span', { class: 'muted right' }, r.channels.length === 1 ? '1 channel' : r.channels.length + ' channels')),
    el('div', { class: 'chips' }, inst),
    rows.length ? el('table', { class: 'channels' },
      el('thead', {}, el('tr', {}, ['channel', 'target', 'origin', 'instance', 'unacked', 'age'].map((h) => el('th', {}, h)))),
      el('tbody', {}, rows)) : el('p', { class: 'muted small' }, active ? 'Waiting for clients.' : ''));
}

// spark draws the last 120 samples right-aligned; area fills below the line.
function spark(path, key, max, area) {
  const n = history.length;
  const pts = history.map((h, i) => `${(120 - (n - 1 - i) * (120 / 119)).toFixed(2)},${(23 - (h[key] / max) * 21).toFixed(2)}`);
  if (pts.length < 2) { path.setAttribute('d', ''); return; }
  const line = 'M' + pts.join(' L');
  path.setAttribute('d', area ? `${line} L120,24 L${pts[0].split(',')[0]},24 Z` : line);
}

function render(s, dt) {
  const mi = rate(s, last, 'messages_in', dt), mo = rate(s, last, 'messages_out', dt);
  const bi = rate(s, last, 'bytes_in', dt), bo = rate(s, last, 'bytes_out', dt);
  const bytes = bi == null || bo == null ? null : bi + bo;
  history.push({ in: mi ?? 0, out: mo ?? 0 });
  if (history.length > 120) history.shift();
  $('node').textContent = 'node ' + s.node;
  const channels = s.registrations.reduce((n, r) => n + r.channels.length, 0);
  $('s-conn').textContent = channels.toLocaleString();
  $('s-min').textContent = mi == null ? '–' : fmtRate(mi);
  $('s-mout').textContent = mo == null ? '–' : fmtRate(mo);
  $('s-bytes').textContent = bytes == null ? '–' : fmtBytes(bytes);
  $('spark').toggleAttribute('hidden', mi == null);
  const max = Math.max(1, ...history.map((h) => Math.max(h.in, h.out)));
  spark($('spark-in-area'), 'in', max, true);
  spark($('spark-in'), 'in', max);
  spark($('spark-out'), 'out', max);
  const regs = [...s.registrations].sort((a, b) => a.scope.localeCompare(b.scope));
  $('regs').replaceChildren(...regs.map(renderRegistration));
  $('no-regs').hidden = regs.length > 0;
}

// signIn shows the dashboard's sign-in (a production broker answered 401):
// the admin token is traded once for an HttpOnly session cookie scoped to
// the status (the page never keeps the token), then polling goes on.
let signingIn = null;
function signIn() {
  if (signingIn) return signingIn;
  const form = $('signin');
  form.hidden = false;
  signingIn = new Promise((resolve) => {
    form.onsubmit = async (e) => {
      e.preventDefault();
      const token = $('signin-token').value;
      const res = await fetch(new URL('/.switchboard/v1/dashboard/login', base), {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ token }),
      }).catch(() => null);
      if (!res?.ok) {
        $('signin-error').textContent = res?.status === 401 ? 'The broker rejected this admin token.'
          : res?.status === 429 ? 'Too many tries: wait a minute.' : 'The broker did not answer.';
        return;
      }
      $('signin-token').value = '';
      $('signin-error').textContent = '';
      form.hidden = true;
      signingIn = null;
      resolve();
    };
  });
  return signingIn;
}

// Figures stay on screen while the broker is down, marked stale with the
// time of the last good sample.
let lastGood = null;
function markStale(why) {
  $('dash').classList.toggle('stale', lastGood != null);
  $('live').dataset.state = 'down';
  $('live-text').textContent = lastGood
    ? `${why} · figures from ${lastGood.toLocaleTimeString([], { hour12: false })}`
    : why;
}

async function poll() {
  const started = performance.now();
  let wait = 1000;
  try {
    const res = await fetch(new URL('/.switchboard/v1/status', base), { cache: 'no-store', credentials: 'same-origin' });
    if (res.status === 401) {
      $('live').dataset.state = 'signin';
      $('live-text').textContent = 'sign in with the admin token';
      await signIn();
      wait = 0;
    } else {
      if (!res.ok) throw new Error('HTTP ' + res.status);
      const s = await res.json();
      const dt = last ? (started - last.t) / 1000 : 1;
      render(s, dt);
      last = { ...s, t: started };
      lastGood = new Date();
      failures = 0;
      $('dash').classList.remove('stale');
      $('live').dataset.state = 'live';
      $('live-text').textContent = 'live';
    }
  } catch (err) {
    failures++;
    markStale(failures > 1 ? 'broker unreachable' : String(err.message ?? err));
  }
  setTimeout(poll, Math.max(wait === 0 ? 0 : 100, wait - (performance.now() - started)));
}
poll();

// ---------------------------------------------------------------- demo

const names = new Map();
let nextName = 1;

function log(kind, text, who) {
  const li = el('li', { class: kind }, el('time', {}, new Date().toLocaleTimeString([], { hour12: false })),
    who ? el('b', {}, who) : null, el('span', {}, text));
  $('log').append(li);
  while ($('log').children.length > 200) $('log').firstChild.remove();
  li.scrollIntoView({ block: 'nearest' });
}

let everConnected = false; // "no clients yet" only until the first one came
function peers() {
  const n = listener?.sockets.size ?? 0;
  if (n > 0) everConnected = true;
  $('peer-count').textContent = n === 0 ? (everConnected ? 'no clients connected' : 'no clients yet')
    : n === 1 ? '1 client connected' : n + ' clients connected';
}

const mode = () => document.querySelector('input[name=mode]:checked').value;
const show = (d) => (typeof d === 'string' ? d : `‹${d.byteLength} bytes›`);

function everyone(text) { for (const s of listener.sockets) s.send(text); }

async function start() {
  everConnected = false;
  $('start').disabled = true;
  $('start').textContent = 'Starting…';
  listener = new WebSocketListener(null, undefined, { label: 'start page' });
  listener.onconnection = ({ socket }) => {
    const who = 'client ' + nextName++;
    names.set(socket, who);
    socket.binaryType = 'arraybuffer';
    log('join', `connected from ${socket.remoteAddress || 'somewhere'}`, who);
    peers();
    if (mode() === 'chat') { everyone(`* ${who} joined`); }
    else socket.send(`Hello ${who}! This browser tab echoes what you send.`);
    socket.onmessage = (e) => {
      log('in', show(e.data), who);
      if (mode() === 'chat' && typeof e.data === 'string') everyone(`${who}: ${e.data}`);
      else socket.send(e.data);
    };
    socket.onclose = (e) => {
      log('leave', `left (${e.code}${e.reason ? ' ' + e.reason : ''})`, who);
      peers();
      if (mode() === 'chat') everyone(`* ${who} left`);
    };
  };
  listener.onerror = (e) => log('err', e.message);
  listener.onclose = () => {
    $('listener-state').textContent = 'stopped';
    $('listener-state').className = 'pill';
  };
  try {
    await listener.ready;
  } catch (err) {
    $('start').disabled = false;
    $('start').textContent = 'Try again';
    $('demo-idle').append(el('p', { class: 'err' }, 'Could not listen: ' + err.message));
    return;
  }
  $('url').textContent = listener.url;
  $('cmd').textContent = `switchboard connect ${listener.url}`;
  $('demo-idle').hidden = true;
  $('demo-on').hidden = false;
  log('sys', 'listening; paste the URL into any WebSocket client');
}

$('start').addEventListener('click', start);
$('stop').addEventListener('click', () => {
  listener?.close();
  listener = null;
  $('demo-on').hidden = true;
  $('demo-idle').hidden = false;
  $('start').disabled = false;
  $('start').textContent = 'Make this tab a server';
  $('log').replaceChildren();
});
$('say').addEventListener('submit', (e) => {
  e.preventDefault();
  const t = $('say-text').value.trim();
  if (!t || !listener) return;
  everyone(mode() === 'chat' ? `host: ${t}` : t);
  log('out', t, 'you');
  $('say-text').value = '';
});
for (const b of document.querySelectorAll('[data-copy]')) {
  b.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText($(b.dataset.copy).textContent);
      b.textContent = 'Copied';
    } catch {
      getSelection().selectAllChildren($(b.dataset.copy));
      b.textContent = 'Selected';
    }
    setTimeout(() => { b.textContent = 'Copy'; }, 1500);
  });
}
if (new URLSearchParams(location.search).has('serve')) start();
