// Listen grants in the page (docs/BROWSER.md): a short-lived JWT that the
// site's backend mints and the page hands to configure({ token }), as a
// string or as a function the library calls for a fresh one each time a
// service link opens. The library only reads the grant's "prefix" claim
// (to ask for private scopes under it); the broker verifies everything.

/** grantNow resolves a token setting (string or function) to a string. */
export async function grantNow(token) {
  const t = typeof token === 'function' ? await token() : token;
  if (t == null || t === '') return '';
  if (typeof t !== 'string') throw new TypeError('configure({ token }): the token (or what its function returns) must be a string');
  return t;
}

/** grantClaims decodes a JWT's payload without checking it ({} if it is not one). */
export function grantClaims(token) {
  const part = typeof token === 'string' ? token.split('.')[1] : undefined;
  if (!part) return {};
  try {
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
    const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0))));
  } catch {
    return {};
  }
}

/**
 * helloWithGrant puts a grant into a Hello: as its credential, and for a
 * private scope the grant's prefix as the path to create it under.
 */
export function helloWithGrant(hello, grant, isPrivate) {
  if (!grant) return;
  hello.credential = grant;
  const prefix = grantClaims(grant).prefix;
  if (isPrivate && typeof prefix === 'string' && prefix.startsWith('/') && prefix.endsWith('/')) {
    hello.scope = new URL(prefix, hello.scope).href;
  }
}
