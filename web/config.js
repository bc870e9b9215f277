// The module's settings: where the broker is and which credential services
// present. configure() in switchboard.js is the public face of this file.

import { Link } from './link.js';

/** settings in force for services and clients started after a change. */
export const settings = { broker: defaultBroker(), credential: '', token: null };

function defaultBroker() {
  const u = new URL(import.meta.url);
  const i = u.pathname.indexOf('/.switchboard/web/');
  u.pathname = i >= 0 ? u.pathname.slice(0, i) + '/' : '/';
  u.search = '';
  u.hash = '';
  if (u.protocol === 'http:') u.protocol = 'ws:';
  if (u.protocol === 'https:') u.protocol = 'wss:';
  return u.href;
}

/** wsURL resolves url against the broker and turns http(s) into ws(s). */
export function wsURL(url, base = settings.broker) {
  const u = new URL(url, base);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  if (u.protocol === 'https:') u.protocol = 'wss:';
  return u;
}

/**
 * configure sets the broker URL (ws, wss, http or https) and the credential
 * or listen grant (token: a JWT from the site's backend, or a function
 * that returns one, called for each service link) that services started
 * afterwards present. It returns the settings in force.
 * @param {{broker?: string, credential?: string, token?: string|(() => string|Promise<string>)|null}} [o]
 */
export function configure(o = {}) {
  if (o.broker != null) settings.broker = wsURL(o.broker, globalThis.location?.href).href;
  if (o.credential != null) settings.credential = String(o.credential);
  if (o.token !== undefined) settings.token = o.token;
  return { ...settings };
}

/** portOf is the TCP port of a URL, defaults included. */
export function portOf(url) {
  const u = new URL(url);
  if (u.port) return Number(u.port);
  return u.protocol === 'wss:' || u.protocol === 'https:' ? 443 : 80;
}

/** newLink makes a service link with the module's settings. */
export function newLink(owner, scope, o = {}) {
  return new Link({
    broker: o.broker ?? settings.broker, credential: o.credential ?? settings.credential,
    token: o.token ?? (o.credential ? null : settings.token),
    scope, label: o.label, protocols: o.protocols, origins: o.origins, window: o.window, owner,
    hold: o.hold, // ms: new clients wait this long for the next instance during a reload (docs/BROWSER.md)
  });
}
