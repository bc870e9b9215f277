// Package grant admits pages (and other services without a credential of
// their own) to listen on a broker: listen grants, and the private-scope
// policy for anonymous pages.
//
// A listen grant is a short-lived JWT that a site's backend mints for its
// page with a key the broker's config lists (HS256 shared secret, EdDSA
// (Ed25519) or ES256 public key, each with a key id, "kid", so keys rotate
// without downtime). Its claims say which scopes the page may listen on
// ("scopes") or under which prefix it may create private scopes
// ("prefix"), when it expires ("exp", required), and optionally the page
// origin it is bound to ("origin") and a cap on open channels
// ("max_channels"). The signature work is github.com/golang-jwt/jwt/v5's;
// this package only decides what a verified grant admits. See
// docs/BROWSER.md.
//
// The private-scope policy (Private) lets pages of listed origins create
// fresh private scopes ("/~TOKEN/") without any grant, bounded per address
// and per origin and with a lifetime. It is off unless configured.
//
// Both plug into the broker as a wrapper of broker.Config.Authorize
// (Authorizer). The package knows nothing of HTTP, flags or config files.
package grant
