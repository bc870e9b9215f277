// A site's Node backend mints listen grants for its pages (docs/BROWSER.md).
// It uses jose (npm), a maintained JWT library; the secret is the HS256 key
// file that the broker's config lists as grants.keys[].secret_file.
import { SignJWT } from 'jose';

/**
 * mintGrant signs a listen grant.
 * @param {string} secret  the HS256 key file's text
 * @param {string} kid     the key's id in the broker's config
 * @param {{scopes?: string[], prefix?: string, origin?: string, maxChannels?: number, ttl?: string|number}} grant
 */
export async function mintGrant(secret, kid, { scopes, prefix, origin, maxChannels, ttl = '5m' }) {
  return new SignJWT({ scopes, prefix, origin, max_channels: maxChannels })
    .setProtectedHeader({ alg: 'HS256', kid })
    .setAudience('switchboard')
    .setIssuedAt()
    .setExpirationTime(ttl) // "5m", or seconds since the epoch
    .sign(new TextEncoder().encode(secret.trim()));
}

// The endpoint the page calls: decide who the user is first (your session
// cookie), then grant only what that user may have.
//
//   import http from 'node:http';
//   http.createServer(async (req, res) => {
//     if (req.url !== '/switchboard-grant') { res.writeHead(404).end(); return; }
//     const user = await sessionUser(req);              // yours
//     if (!user) { res.writeHead(401).end(); return; }
//     const token = await mintGrant(secret, 'site-1', {
//       scopes: [`/site/${user.id}/`], origin: 'https://app.example', maxChannels: 100,
//     });
//     res.writeHead(200, { 'Content-Type': 'text/plain', 'Cache-Control': 'no-store' }).end(token);
//   }).listen(3000);
