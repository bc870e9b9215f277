// The app chooser (served at /.switchboard/chooser?app=HOLDER[&origin=O]).
// An app opens it with window.open; the device owner signs in with the
// admin token (not needed on loopback with --dev), picks the server apps
// the asking app may reach, and the page hands the asking app one sealed
// token per pick:
//
//   window.opener.postMessage({type: "switchboard-chooser", tokens: [...]}, origin)
//
// origin is one of the asking app's configured origins (the "origin"
// parameter, or its only origin), so no other page can receive them. The
// message carries only the opaque tokens, never which apps they reach.
// The tokens are also shown for copy and paste, for apps that are not web
// pages. "Don't allow" sends an empty list.

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const holderId = params.get('app') ?? '';
let holder = null;
let openerOrigin = '';

function show(id) {
  for (const s of document.querySelectorAll('.panel')) s.hidden = s.id !== id;
}

function fail(text) {
  $('failed-text').textContent = text;
  show('failed');
}

function initial(name) {
  return (name || '?').trim().charAt(0).toUpperCase();
}

// pickOrigin returns the origin to deliver tokens to, or '' for none.
function pickOrigin(origins) {
  const asked = params.get('origin');
  if (asked) return origins.includes(asked) ? asked : '';
  return origins.length === 1 ? origins[0] : '';
}

function deliver(tokens) {
  if (!openerOrigin || !window.opener) return false;
  window.opener.postMessage({ type: 'switchboard-chooser', tokens }, openerOrigin);
  return true;
}

async function load() {
  if (!/^[a-z0-9][a-z0-9.-]{0,62}$/.test(holderId)) {
    fail('The link that opened this page does not name an app.');
    return;
  }
  let res;
  try {
    res = await fetch('/.switchboard/chooser/info?app=' + encodeURIComponent(holderId), { credentials: 'same-origin' });
  } catch {
    fail('The broker cannot be reached.');
    return;
  }
  if (res.status === 401) {
    show('login');
    $('token').focus();
    return;
  }
  if (!res.ok) {
    fail(res.status === 404 ? `There is no app "${holderId}" on this broker.` : `The broker answered ${res.status}.`);
    return;
  }
  const info = await res.json();
  holder = info.holder;
  openerOrigin = pickOrigin(holder.origins ?? []);
  renderChoices(info);
}

function renderChoices(info) {
  const name = holder.name || holder.id;
  $('asker-avatar').textContent = initial(name);
  $('asker-name').textContent = name;
  $('asker-id').textContent = holder.id;
  $('asker-origin').textContent = openerOrigin ? ` · ${openerOrigin}` : '';
  const list = $('choices');
  list.replaceChildren();
  for (const c of info.choices) {
    const li = document.createElement('li');
    const label = document.createElement('label');
    label.className = 'choice';
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.name = 'target';
    box.value = c.id;
    const mini = document.createElement('span');
    mini.className = 'mini';
    mini.textContent = initial(c.name || c.id);
    const text = document.createElement('span');
    const n = document.createElement('span');
    n.className = 'name';
    n.textContent = c.name || c.id;
    const id = document.createElement('span');
    id.className = 'id';
    id.textContent = c.id;
    text.append(n, id);
    label.append(box, mini, text);
    li.append(label);
    list.append(li);
  }
  $('none').hidden = info.choices.length > 0;
  list.hidden = info.choices.length === 0;
  updateAllow();
  show('choose');
}

function picked() {
  return [...document.querySelectorAll('input[name=target]:checked')].map((b) => b.value);
}

function updateAllow() {
  $('allow').disabled = picked().length === 0;
}

function copyButton(text) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = 'ghost copy';
  b.textContent = 'Copy';
  b.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(text);
      b.textContent = 'Copied';
    } catch {
      b.textContent = 'Select and copy';
    }
  });
  return b;
}

function renderDone(targets, tokens, sent) {
  const name = holder.name || holder.id;
  $('done-title').textContent = sent ? `${name} can now connect` : 'Tokens issued';
  $('done-text').textContent = sent
    ? `${tokens.length === 1 ? 'Its token was' : 'Its tokens were'} handed to ${openerOrigin}.`
    : `Give ${tokens.length === 1 ? 'this token' : 'these tokens'} to ${name}.`;
  const names = new Map([...document.querySelectorAll('.choice')].map((l) => [l.querySelector('input').value, l.querySelector('.name').textContent]));
  const ul = $('tokens');
  ul.replaceChildren();
  tokens.forEach((t, i) => {
    const li = document.createElement('li');
    const head = document.createElement('div');
    head.className = 'head';
    const what = document.createElement('span');
    what.textContent = `${names.get(targets[i]) ?? targets[i]} · until ${new Date(t.expires).toLocaleString()}`;
    head.append(what, copyButton(t.token));
    const code = document.createElement('code');
    code.textContent = t.token;
    code.dataset.token = '';
    li.append(head, code);
    ul.append(li);
  });
  $('tokens-box').open = !sent;
  show('done');
}

$('login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  $('login-error').hidden = true;
  const res = await fetch('/.switchboard/chooser/login', {
    method: 'POST', credentials: 'same-origin', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ token: $('token').value }),
  });
  $('token').value = '';
  if (!res.ok) {
    $('login-error').hidden = false;
    $('token').focus();
    return;
  }
  await load();
});

$('choices').addEventListener('change', updateAllow);

$('choose-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const targets = picked();
  if (targets.length === 0) return;
  $('allow').disabled = true;
  $('choose-error').hidden = true;
  const res = await fetch('/.switchboard/chooser/issue', {
    method: 'POST', credentials: 'same-origin', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ holder: holder.id, targets, ttl: $('ttl').value }),
  });
  if (!res.ok) {
    $('choose-error').textContent = res.status === 401 ? 'Your session has ended; reload the page and sign in again.' : (await res.text()).trim();
    $('choose-error').hidden = false;
    updateAllow();
    return;
  }
  const { tokens } = await res.json();
  const sent = deliver(tokens.map((t) => t.token));
  renderDone(targets, tokens, sent);
});

$('cancel').addEventListener('click', () => {
  deliver([]);
  window.close();
});

$('close').addEventListener('click', () => window.close());

load();
