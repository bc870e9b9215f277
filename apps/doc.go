// Package apps is Switchboard's model of apps, manifests and chooser
// tokens, after the WebSocketOverApp proposal (seed 000, docs/ORIGINS.md): an app is an
// identity (a credential, or the web origin its pages come from) with a
// manifest saying which scopes it may listen on, which server apps it may
// connect to (servers), and, on its server side, whom it admits (admit).
// Both sides are checked on every connect. A chooser token is a sealed
// capability that lets one holder app reach one server app its manifest
// does not list.
//
// The package is pure policy: it decides and explains, it does not
// connect, serve HTTP or read flags. Scopes and wsapp:// URLs are parsed by
// package scope, shared with the broker and the SDK. The broker builds a
// [Directory] from the config file's "apps" section (decoded with
// [DecodeStrict]), keeps it in an atomic pointer, and replaces it whole on
// reload; connections already admitted are not re-checked.
//
// # Credentials
//
// An app credential is a high-entropy random secret ([NewSecret]: 256 bits).
// The config holds only [HashCredential]'s output, "sha256$" followed by the
// hex SHA-256 of a domain-separated secret. A slow password hash (argon2id,
// bcrypt) buys nothing against guessing a 256-bit secret and would cost
// tens of milliseconds and megabytes per connect, which an unauthenticated
// flood could turn against the broker; a cache of verified secrets would
// keep secrets in memory and still leave misses expensive. So secrets
// shorter than [MinSecretLen] are refused, and verification is one SHA-256
// and a map look-up keyed by that hash: the look-up time depends on the
// hash, never on which apps exist or on a prefix of the secret.
//
// # Chooser tokens
//
// A token is XChaCha20-Poly1305 (golang.org/x/crypto/chacha20poly1305)
// under a 32-byte broker key kept in a 0600 file ([LoadOrCreateKey]). The
// sealed payload holds the grant id, issue and expiry times, a digest of
// the holder and the target id padded to a fixed length, so every token has
// the same length and reveals nothing of its target; the holder id is also
// the associated data, so the token opens for no other holder. The text
// form is lower-case unpadded base32 ([a-z2-7], [TokenLen] characters):
// valid in a URL authority (wsapp://TOKEN/), case-exact and canonical, so
// any one-character change fails. It is longer than the 63 characters of a
// DNS label on purpose: wsapp:// authorities are never resolved, WHATWG URL
// parsers treat a non-special scheme's host as opaque, and the length
// tells a token from an app id (at most 63 characters) without a look-up
// ([ParseAppURL]). Revocations, by grant id or by holder/target pair, are
// kept in a file ([OpenRevocations]) and survive a restart.
package apps
