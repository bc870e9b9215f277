package grant

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/switchboard-dev/switchboard/scope"
)

// Config is the "grants" section of the broker's config file.
type Config struct {
	// Keys verify grants; list the new key next to the old one while you
	// rotate, then drop the old one.
	Keys []KeyConfig `json:"keys"`
	// MaxLifetime bounds how far in the future a grant's exp may lie, such
	// as "1h". Default "24h".
	MaxLifetime string `json:"max_lifetime,omitempty"`
}

// KeyConfig is one key of Config.
type KeyConfig struct {
	// ID is the key id that grants name in their header ("kid").
	ID string `json:"id"`
	// Alg is HS256 (shared secret), EdDSA (Ed25519) or ES256 (P-256).
	Alg string `json:"alg"`
	// Owner names the site: registrations made with this key's grants are
	// owned by "grant:OWNER". Keys that rotate for one site share it, so a
	// page that reloads with a grant of the new key takes over its scope.
	// Default: ID.
	Owner string `json:"owner,omitempty"`
	// Scopes bound what this key's grants may cover ("/pages/",
	// "app.example.com/"). Required.
	Scopes []string `json:"scopes"`
	// SecretFile holds the HS256 secret (at least 32 bytes; a trailing
	// newline is ignored). A relative path is relative to the config file.
	SecretFile string `json:"secret_file,omitempty"`
	// PublicKey is the EdDSA or ES256 public key in PEM (PKIX), inline;
	// or PublicKeyFile names a file that holds it.
	PublicKey     string `json:"public_key,omitempty"`
	PublicKeyFile string `json:"public_key_file,omitempty"`
}

// PrivateConfig is the "private_scopes" section: the private-scope policy
// for pages without a credential or grant. Absent: off (dev mode keeps its
// own loopback rule).
type PrivateConfig struct {
	// Origins that may create them: page origins such as
	// "https://app.example", or "*" for any.
	Origins []string `json:"origins"`
	// PerAddress bounds live private scopes per client address. Default 8.
	PerAddress int `json:"per_address,omitempty"`
	// PerOrigin bounds live private scopes per origin. Default 1000.
	PerOrigin int `json:"per_origin,omitempty"`
	// Lifetime of each, such as "1h". Default "1h".
	Lifetime string `json:"lifetime,omitempty"`
}

// Policy returns the policy the section describes.
func (c *PrivateConfig) Policy() (*Private, error) {
	if len(c.Origins) == 0 {
		return nil, errors.New("private_scopes.origins is empty: list page origins, or \"*\" for any")
	}
	origins := make([]string, len(c.Origins))
	for i, o := range c.Origins {
		origins[i] = o
		if o == "*" {
			continue
		}
		n, err := scope.CanonicalOrigin(o) // the form the link's origin is compared in
		if err != nil {
			return nil, fmt.Errorf("private_scopes.origins: %q is not an origin (scheme://host[:port]) nor \"*\"", o)
		}
		origins[i] = n
	}
	if c.PerAddress < 0 || c.PerOrigin < 0 {
		return nil, errors.New("private_scopes: per_address and per_origin must not be negative")
	}
	var life time.Duration
	if c.Lifetime != "" {
		var err error
		if life, err = time.ParseDuration(c.Lifetime); err != nil || life <= 0 {
			return nil, fmt.Errorf("private_scopes.lifetime: %q is not a positive duration such as \"1h\"", c.Lifetime)
		}
	}
	return NewPrivate(origins, c.PerAddress, c.PerOrigin, life), nil
}

// Verifier loads the keys (files relative to dir) and returns a Verifier.
func (c *Config) Verifier(dir string) (*Verifier, error) {
	if len(c.Keys) == 0 {
		return nil, errors.New("grants.keys is empty")
	}
	var maxLife time.Duration
	if c.MaxLifetime != "" {
		var err error
		if maxLife, err = time.ParseDuration(c.MaxLifetime); err != nil || maxLife <= 0 {
			return nil, fmt.Errorf("grants.max_lifetime: %q is not a positive duration such as \"1h\"", c.MaxLifetime)
		}
	}
	var keys []*Key
	var errs []error
	for i, kc := range c.Keys {
		k, err := kc.load(dir)
		if err != nil {
			errs = append(errs, fmt.Errorf("grants.keys[%d] (%s): %w", i, kc.ID, err))
			continue
		}
		keys = append(keys, k)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return NewVerifier(keys, maxLife)
}

func (kc KeyConfig) load(dir string) (*Key, error) {
	if kc.ID == "" {
		return nil, errors.New("id is required")
	}
	if len(kc.Scopes) == 0 {
		return nil, errors.New("scopes is empty: list the scopes this key's grants may cover")
	}
	k := &Key{ID: kc.ID, Alg: kc.Alg, Owner: kc.Owner}
	for _, raw := range kc.Scopes {
		s, err := scope.Parse(raw, true)
		if err != nil {
			return nil, err
		}
		k.Scopes = append(k.Scopes, s)
	}
	switch kc.Alg {
	case "HS256":
		if kc.SecretFile == "" {
			return nil, errors.New("an HS256 key needs secret_file")
		}
		b, err := os.ReadFile(resolve(dir, kc.SecretFile))
		if err != nil {
			return nil, fmt.Errorf("read secret_file: %w", err)
		}
		secret := []byte(strings.TrimRight(string(b), "\r\n"))
		if len(secret) < 32 {
			return nil, fmt.Errorf("secret_file holds %d bytes; an HS256 secret needs at least 32 (switchboard grant key --alg HS256 makes one)", len(secret))
		}
		k.Verify = secret
	case "EdDSA", "ES256":
		pemText := kc.PublicKey
		if kc.PublicKeyFile != "" {
			b, err := os.ReadFile(resolve(dir, kc.PublicKeyFile))
			if err != nil {
				return nil, fmt.Errorf("read public_key_file: %w", err)
			}
			pemText = string(b)
		}
		if pemText == "" {
			return nil, fmt.Errorf("an %s key needs public_key or public_key_file (PEM)", kc.Alg)
		}
		pub, err := parsePublic(kc.Alg, []byte(pemText))
		if err != nil {
			return nil, err
		}
		k.Verify = pub
	default:
		return nil, fmt.Errorf("alg %q: want HS256, EdDSA or ES256", kc.Alg)
	}
	return k, nil
}

func parsePublic(alg string, pemText []byte) (any, error) {
	if alg == "EdDSA" {
		pub, err := jwt.ParseEdPublicKeyFromPEM(pemText)
		if err != nil {
			return nil, fmt.Errorf("EdDSA public key: %w", err)
		}
		if _, ok := pub.(ed25519.PublicKey); !ok {
			return nil, errors.New("EdDSA public key: not an Ed25519 key")
		}
		return pub, nil
	}
	pub, err := jwt.ParseECPublicKeyFromPEM(pemText)
	if err != nil {
		return nil, fmt.Errorf("ES256 public key: %w", err)
	}
	if pub.Curve != elliptic.P256() {
		return nil, errors.New("ES256 public key: not a P-256 key")
	}
	return (*ecdsa.PublicKey)(pub), nil
}

func resolve(dir, path string) string {
	if filepath.IsAbs(path) || dir == "" {
		return path
	}
	return filepath.Join(dir, path)
}

// Scopes returns the scopes the keys may grant, for overlap checks.
func (c *Config) Scopes() []string {
	var out []string
	for _, k := range c.Keys {
		out = append(out, k.Scopes...)
	}
	return out
}
