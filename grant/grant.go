package grant

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/scope"
)

// Audience is the "aud" every listen grant must carry, so that no other
// token signed with the same key passes for one.
const Audience = "switchboard"

// OwnerPrefix starts the owner name of a registration made with a grant:
// "grant:" and the key's owner. Instances of one registration must share an
// owner, so keys that rotate for one site share an owner name.
const OwnerPrefix = "grant:"

// DefaultMaxLifetime bounds exp − now of a grant when Config sets none.
const DefaultMaxLifetime = 24 * time.Hour

// Claims are a listen grant's claims.
type Claims struct {
	jwt.RegisteredClaims
	// Scopes the holder may listen on (a scope covers the scopes under it):
	// "/chat/", "chat.example.com/rooms/".
	Scopes []string `json:"scopes,omitempty"`
	// Prefix under which the holder may create fresh private scopes
	// (new WebSocketListener() with no URL): "/pages/" gives
	// "/pages/~TOKEN/".
	Prefix string `json:"prefix,omitempty"`
	// Origin binds the grant to one page origin ("https://app.example"):
	// a link whose handshake carries another Origin is refused.
	Origin string `json:"origin,omitempty"`
	// MaxChannels caps the registration's open channels. 0: no cap.
	MaxChannels int `json:"max_channels,omitempty"`
}

// Key is one verification key.
type Key struct {
	ID     string        // "kid"
	Alg    string        // HS256, EdDSA or ES256
	Owner  string        // registration owner after OwnerPrefix; default ID
	Scopes []scope.Scope // what grants under this key may cover
	Verify crypto.PublicKey
	// (an HS256 key is its secret, []byte)
}

// Verifier checks listen grants against its keys.
type Verifier struct {
	keys        map[string]*Key
	maxLifetime time.Duration
	now         func() time.Time
}

// NewVerifier returns a Verifier for keys. maxLifetime bounds how far in
// the future a grant's exp may lie (0: DefaultMaxLifetime).
func NewVerifier(keys []*Key, maxLifetime time.Duration) (*Verifier, error) {
	if maxLifetime <= 0 {
		maxLifetime = DefaultMaxLifetime
	}
	v := &Verifier{keys: make(map[string]*Key), maxLifetime: maxLifetime, now: time.Now}
	for _, k := range keys {
		if _, dup := v.keys[k.ID]; dup {
			return nil, fmt.Errorf("grant key id %q is listed twice", k.ID)
		}
		if k.Owner == "" {
			k.Owner = k.ID
		}
		v.keys[k.ID] = k
	}
	return v, nil
}

// HasOwner reports whether a key of owner is listed.
func (v *Verifier) HasOwner(owner string) bool {
	for _, k := range v.keys {
		if k.Owner == owner {
			return true
		}
	}
	return false
}

// LooksLikeGrant reports whether a credential has a JWT's shape (three
// base64url parts, the header a JSON object): such credentials are grants.
func LooksLikeGrant(s string) bool {
	return strings.HasPrefix(s, "eyJ") && strings.Count(s, ".") == 2
}

// Verify checks a grant's signature and claims and returns the claims.
// origin is the page origin of the link (empty when there is none). The
// error says exactly what is wrong: it reaches the page.
func (v *Verifier) Verify(token, origin string) (*Claims, *Key, error) {
	var key *Key
	var keyErr error
	claims := &Claims{}
	_, err := jwt.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		k := v.keys[kid]
		switch {
		case kid == "":
			keyErr = errors.New("listen grant refused: it has no key id (kid) in its header")
		case k == nil:
			keyErr = fmt.Errorf("listen grant refused: its key id %q is not one this broker knows (rotated out?)", kid)
		case t.Method.Alg() != k.Alg:
			keyErr = fmt.Errorf("listen grant refused: it is signed with %s but key %q is %s", t.Method.Alg(), kid, k.Alg)
		}
		if keyErr != nil {
			return nil, keyErr
		}
		key = k
		return k.Verify, nil
	}, jwt.WithValidMethods([]string{"HS256", "EdDSA", "ES256"}), jwt.WithExpirationRequired(),
		jwt.WithAudience(Audience), jwt.WithLeeway(5*time.Second), jwt.WithTimeFunc(v.now))
	switch {
	case err == nil:
	case keyErr != nil:
		return nil, nil, keyErr
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, nil, fmt.Errorf("listen grant expired at %s: ask your backend for a fresh one", claims.ExpiresAt.UTC().Format(time.RFC3339))
	case errors.Is(err, jwt.ErrTokenSignatureInvalid) && key == nil:
		return nil, nil, fmt.Errorf("listen grant refused: %w (HS256, EdDSA and ES256 are accepted)", err)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return nil, nil, fmt.Errorf("listen grant refused: its signature does not verify with key %q (forged, or signed with another key)", key.ID)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return nil, nil, fmt.Errorf("listen grant refused: its audience (aud) must be %q", Audience)
	default:
		return nil, nil, fmt.Errorf("listen grant refused: %w", err)
	}
	if exp := claims.ExpiresAt.Time; exp.Sub(v.now()) > v.maxLifetime {
		return nil, nil, fmt.Errorf("listen grant refused: it expires in %s, more than this broker's max_lifetime %s", exp.Sub(v.now()).Round(time.Second), v.maxLifetime)
	}
	if claims.Origin != "" && !sameOrigin(claims.Origin, origin) {
		if origin == "" {
			origin = "none"
		}
		return nil, nil, fmt.Errorf("listen grant refused: it is bound to origin %s, and this link's origin is %s", claims.Origin, origin)
	}
	if claims.MaxChannels < 0 {
		return nil, nil, errors.New("listen grant refused: max_channels is negative")
	}
	return claims, key, nil
}

// admits reports why claims do not admit scope (nil: they do).
func admits(c *Claims, k *Key, want scope.Scope, private bool) error {
	covered := false
	for _, raw := range c.Scopes {
		s, err := scope.Parse(raw, true)
		if err != nil {
			return fmt.Errorf("listen grant refused: %w", err)
		}
		covered = covered || s.Covers(want)
	}
	if private && c.Prefix != "" {
		p, err := scope.Parse(c.Prefix, true)
		if err != nil {
			return fmt.Errorf("listen grant refused: prefix: %w", err)
		}
		covered = covered || p.Covers(want)
	}
	if !covered {
		if private {
			return fmt.Errorf("listen grant does not let its holder create private scopes under %s (its prefix is %q)", parentOf(want), c.Prefix)
		}
		return fmt.Errorf("listen grant does not cover scope %s (it covers %s)", want, strings.Join(c.Scopes, ", "))
	}
	for _, ks := range k.Scopes {
		if ks.Covers(want) {
			return nil
		}
	}
	return fmt.Errorf("listen grant refused: key %q may not grant scope %s", k.ID, want)
}

// parentOf strips a private scope's last segment: /pages/~x/ → /pages/.
func parentOf(s scope.Scope) string {
	p := strings.TrimSuffix(s.Path, "/")
	if i := strings.LastIndex(p, "/"); i >= 0 {
		p = p[:i+1]
	}
	return s.Host + p
}

// AuthFunc is broker.Config.Authorize's type.
type AuthFunc = func(context.Context, broker.AuthRequest) (string, error)

// Authorizer wraps next: a credential that is a grant is decided by v
// (nil: grants are refused with a message that says so); a private scope
// asked for without a credential is decided by p (nil: off) and then by
// next; everything else goes to next.
func Authorizer(v *Verifier, p *Private, next AuthFunc) AuthFunc {
	return func(ctx context.Context, req broker.AuthRequest) (string, error) {
		if LooksLikeGrant(req.Credential) {
			if v == nil {
				return "", errors.New("this broker accepts no listen grants (its config lists no grant keys)")
			}
			c, k, err := v.Verify(req.Credential, req.Origin)
			if err != nil {
				return "", err
			}
			if err := admits(c, k, req.Scope, req.Private); err != nil {
				return "", err
			}
			if req.Terms != nil {
				req.Terms.Expires = c.ExpiresAt.Time
				req.Terms.ExpiredMessage = "listen grant expired: ask your backend for a fresh one"
				req.Terms.MaxChannels = c.MaxChannels
			}
			return OwnerPrefix + k.Owner, nil
		}
		if req.Credential == "" && req.Private && p != nil {
			owner, perr := p.admit(req)
			if perr == nil {
				return owner, nil
			}
			if next != nil {
				if owner, err := next(ctx, req); err == nil {
					return owner, nil // dev mode's loopback rule
				}
			}
			return "", perr
		}
		if next == nil {
			return "", errors.New("this broker admits no services (no credentials configured)")
		}
		return next(ctx, req)
	}
}

// sameOrigin reports whether a grant's bound origin is the link's origin
// (already canonical, from broker.WithLinkOrigin), comparing canonical
// forms: a grant minted for "https://App.example:443" binds
// https://app.example.
func sameOrigin(bound, origin string) bool {
	b, err := scope.CanonicalOrigin(bound)
	return err == nil && b == origin
}
