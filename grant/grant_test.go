package grant

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/scope"
)

// keys writes one key of each algorithm and returns the config and signers.
func keys(t *testing.T) (*Config, string, map[string]*Signer) {
	t.Helper()
	dir := t.TempDir()
	cfg := &Config{MaxLifetime: "1h"}
	signers := map[string]*Signer{}
	for _, alg := range []string{"HS256", "EdDSA", "ES256"} {
		priv, pub, err := GenerateKey(alg)
		if err != nil {
			t.Fatal(err)
		}
		kid := "k-" + strings.ToLower(alg)
		kc := KeyConfig{ID: kid, Alg: alg, Owner: "site", Scopes: []string{"/pages/"}}
		if alg == "HS256" {
			kc.SecretFile = kid + ".key"
			if err := os.WriteFile(filepath.Join(dir, kc.SecretFile), priv, 0o600); err != nil {
				t.Fatal(err)
			}
		} else {
			kc.PublicKey = string(pub)
		}
		cfg.Keys = append(cfg.Keys, kc)
		s, err := NewSigner(kid, alg, priv)
		if err != nil {
			t.Fatal(err)
		}
		signers[alg] = s
	}
	return cfg, dir, signers
}

func auth(t *testing.T, a AuthFunc, cred, raw, origin string, private bool) (string, *broker.Terms, error) {
	t.Helper()
	sc, err := scope.Parse(raw, false)
	if err != nil {
		t.Fatal(err)
	}
	terms := &broker.Terms{}
	owner, err := a(context.Background(), broker.AuthRequest{Credential: cred, Scope: sc, Origin: origin, Private: private,
		Remote: netip.MustParseAddrPort("192.0.2.1:5000"), Terms: terms})
	return owner, terms, err
}

func TestGrants(t *testing.T) {
	cfg, dir, signers := keys(t)
	v, err := cfg.Verifier(dir)
	if err != nil {
		t.Fatal(err)
	}
	a := Authorizer(v, nil, nil)
	for alg, s := range signers {
		tok, err := s.Mint(Claims{Scopes: []string{"/pages/shop/"}, Origin: "https://shop.example", MaxChannels: 3}, 10*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		owner, terms, err := auth(t, a, tok, "/pages/shop/", "https://shop.example", false)
		if err != nil || owner != "grant:site" {
			t.Fatalf("%s: owner %q, err %v", alg, owner, err)
		}
		if terms.MaxChannels != 3 || time.Until(terms.Expires) < 9*time.Minute {
			t.Errorf("%s: terms %+v", alg, terms)
		}
		if _, _, err := auth(t, a, tok, "/pages/shop/", "https://evil.example", false); err == nil || !strings.Contains(err.Error(), "bound to origin https://shop.example") {
			t.Errorf("%s: other origin: %v", alg, err)
		}
		if _, _, err := auth(t, a, tok, "/pages/other/", "https://shop.example", false); err == nil || !strings.Contains(err.Error(), "does not cover scope") {
			t.Errorf("%s: other scope: %v", alg, err)
		}
	}
	hs := signers["HS256"]
	cases := []struct {
		name, want string
		tok        func() string
	}{
		{"expired", "listen grant expired", func() string {
			tok, _ := hs.Mint(Claims{Scopes: []string{"/pages/"}, RegisteredClaims: jwt.RegisteredClaims{
				ExpiresAt: jwt.NewNumericDate(time.Now().Add(-time.Minute))}}, 0)
			return tok
		}},
		{"forged", "signature does not verify", func() string {
			forger, _ := NewSigner("k-hs256", "HS256", []byte(strings.Repeat("x", 40)))
			tok, _ := forger.Mint(Claims{Scopes: []string{"/pages/"}}, time.Minute)
			return tok
		}},
		{"tampered", "signature does not verify", func() string {
			tok, _ := hs.Mint(Claims{Scopes: []string{"/pages/a/"}}, time.Minute)
			other, _ := hs.Mint(Claims{Scopes: []string{"/pages/"}}, time.Minute)
			p := strings.Split(tok, ".")
			return p[0] + "." + strings.Split(other, ".")[1] + "." + p[2]
		}},
		{"unknown kid", "not one this broker knows", func() string {
			s, _ := NewSigner("gone", "HS256", []byte(strings.Repeat("y", 40)))
			tok, _ := s.Mint(Claims{Scopes: []string{"/pages/"}}, time.Minute)
			return tok
		}},
		{"too long", "max_lifetime", func() string {
			tok, _ := hs.Mint(Claims{Scopes: []string{"/pages/"}}, 3*time.Hour)
			return tok
		}},
		{"outside the key's scopes", "may not grant scope", func() string {
			tok, _ := hs.Mint(Claims{Scopes: []string{"/"}}, time.Minute)
			return tok
		}},
		{"alg none", "listen grant refused", func() string {
			tok, _ := jwt.NewWithClaims(jwt.SigningMethodNone, Claims{Scopes: []string{"/pages/"}}).SignedString(jwt.UnsafeAllowNoneSignatureType)
			return tok
		}},
	}
	for _, c := range cases {
		tok := c.tok()
		if !LooksLikeGrant(tok) {
			t.Fatalf("%s: %q does not look like a grant", c.name, tok)
		}
		scope := "/pages/x/"
		if c.name == "outside the key's scopes" {
			scope = "/other/"
		}
		if _, _, err := auth(t, a, tok, scope, "", false); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want %q", c.name, err, c.want)
		}
	}

	// A prefix admits fresh private scopes under it, not the prefix itself.
	tok, _ := hs.Mint(Claims{Prefix: "/pages/tabs/"}, time.Minute)
	if _, _, err := auth(t, a, tok, "/pages/tabs/~abc/", "", true); err != nil {
		t.Errorf("private under prefix: %v", err)
	}
	if _, _, err := auth(t, a, tok, "/pages/tabs/", "", false); err == nil {
		t.Errorf("a prefix grant listened on the prefix itself")
	}
	if _, _, err := auth(t, a, tok, "/pages/~abc/", "", true); err == nil || !strings.Contains(err.Error(), "private scopes under /pages/") {
		t.Errorf("private outside prefix: %v", err)
	}

	// Without keys, a grant gets a message that says so.
	if _, _, err := auth(t, Authorizer(nil, nil, nil), tok, "/pages/tabs/~abc/", "", true); err == nil || !strings.Contains(err.Error(), "no grant keys") {
		t.Errorf("no keys: %v", err)
	}
}

func TestPrivatePolicy(t *testing.T) {
	p, err := (&PrivateConfig{Origins: []string{"https://ok.example"}, PerAddress: 2, Lifetime: "2m"}).Policy()
	if err != nil {
		t.Fatal(err)
	}
	a := Authorizer(nil, p, nil)
	_, t1, err := auth(t, a, "", "/~a/", "https://ok.example", true)
	if err != nil || time.Until(t1.Expires) < time.Minute {
		t.Fatalf("allowed origin: %v, terms %+v", err, t1)
	}
	if _, _, err := auth(t, a, "", "/~b/", "https://other.example", true); err == nil || !strings.Contains(err.Error(), "not open to https://other.example") {
		t.Errorf("other origin: %v", err)
	}
	if _, _, err := auth(t, a, "", "/~b/", "", true); err == nil {
		t.Errorf("no origin admitted")
	}
	if _, _, err := auth(t, a, "", "/chat/", "https://ok.example", false); err == nil {
		t.Errorf("a named scope without credential admitted")
	}
	_, t2, err := auth(t, a, "", "/~c/", "https://ok.example", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := auth(t, a, "", "/~d/", "https://ok.example", true); err == nil || !strings.Contains(err.Error(), "per_address") {
		t.Errorf("third from one address: %v", err)
	}
	t1.Release()
	t1.Release() // once
	if n, _ := p.Live(netip.MustParseAddr("192.0.2.1"), "https://ok.example"); n != 1 {
		t.Errorf("live after one release: %d", n)
	}
	if _, _, err := auth(t, a, "", "/~e/", "https://ok.example", true); err != nil {
		t.Errorf("after a release: %v", err)
	}
	t2.Release()
	if _, err := (&PrivateConfig{Origins: []string{"ok.example"}}).Policy(); err == nil {
		t.Errorf("an origin without scheme was accepted")
	}
}

// TestOriginsCompareCanonically: a grant's bound origin and the
// private-scope policy's origins are compared with the link's origin
// (canonical, from broker.WithLinkOrigin) in scope.CanonicalOrigin's form.
func TestOriginsCompareCanonically(t *testing.T) {
	cfg, dir, signers := keys(t)
	v, err := cfg.Verifier(dir)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := signers["HS256"].Mint(Claims{Scopes: []string{"/pages/"}, Origin: "https://Shop.Example:443"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := auth(t, Authorizer(v, nil, nil), tok, "/pages/", "https://shop.example", false); err != nil {
		t.Errorf("a grant bound to https://Shop.Example:443 refused https://shop.example: %v", err)
	}
	if _, _, err := auth(t, Authorizer(v, nil, nil), tok, "/pages/", "https://shop.example:8443", false); err == nil {
		t.Errorf("a grant bound to https://Shop.Example:443 admitted another port")
	}
	p, err := (&PrivateConfig{Origins: []string{"https://OK.example:443"}}).Policy()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := auth(t, Authorizer(nil, p, nil), "", "/~a/", "https://ok.example", true); err != nil {
		t.Errorf("private_scopes.origins https://OK.example:443 refused https://ok.example: %v", err)
	}
}
