package grant

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Signer mints grants with one key (for the CLI, tests and Go backends;
// any JWT library can do the same, see docs/BROWSER.md).
type Signer struct {
	ID  string // kid
	Alg string // HS256, EdDSA, ES256
	key any    // []byte, ed25519.PrivateKey or *ecdsa.PrivateKey
}

// NewSigner returns a Signer for kid with the key material: an HS256
// secret, or a private key in PEM (PKCS#8; for ES256 also SEC 1).
func NewSigner(kid, alg string, material []byte) (*Signer, error) {
	s := &Signer{ID: kid, Alg: alg}
	switch alg {
	case "HS256":
		secret := []byte(strings.TrimRight(string(material), "\r\n"))
		if len(secret) < 32 {
			return nil, fmt.Errorf("HS256 secret of %d bytes: at least 32 needed", len(secret))
		}
		s.key = secret
	case "EdDSA":
		k, err := jwt.ParseEdPrivateKeyFromPEM(material)
		if err != nil {
			return nil, fmt.Errorf("EdDSA private key: %w", err)
		}
		s.key = k
	case "ES256":
		k, err := jwt.ParseECPrivateKeyFromPEM(material)
		if err != nil {
			return nil, fmt.Errorf("ES256 private key: %w", err)
		}
		s.key = k
	default:
		return nil, fmt.Errorf("alg %q: want HS256, EdDSA or ES256", alg)
	}
	return s, nil
}

// LoadSigner reads the key material from a file.
func LoadSigner(kid, alg, path string) (*Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	return NewSigner(kid, alg, b)
}

// Mint signs c, with aud set to Audience, iat to now and exp to now+ttl
// when c has none (a negative ttl makes an expired grant, for tests).
func (s *Signer) Mint(c Claims, ttl time.Duration) (string, error) {
	now := time.Now()
	c.Audience = jwt.ClaimStrings{Audience}
	if c.IssuedAt == nil {
		c.IssuedAt = jwt.NewNumericDate(now)
	}
	if c.ExpiresAt == nil {
		if ttl == 0 {
			return "", errors.New("mint: a grant needs a lifetime")
		}
		c.ExpiresAt = jwt.NewNumericDate(now.Add(ttl))
	}
	var m jwt.SigningMethod
	switch s.Alg {
	case "HS256":
		m = jwt.SigningMethodHS256
	case "EdDSA":
		m = jwt.SigningMethodEdDSA
	case "ES256":
		m = jwt.SigningMethodES256
	}
	t := jwt.NewWithClaims(m, c)
	t.Header["kid"] = s.ID
	out, err := t.SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("mint grant: %w", err)
	}
	return out, nil
}

// GenerateKey makes key material for alg: for HS256 a random secret (both
// results the same text); for EdDSA and ES256 a private key (PKCS#8 PEM)
// and its public key (PKIX PEM).
func GenerateKey(alg string) (private, public []byte, err error) {
	var priv, pub any
	switch alg {
	case "HS256":
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, nil, err
		}
		s := []byte(base64.RawURLEncoding.EncodeToString(b) + "\n")
		return s, s, nil
	case "EdDSA":
		p, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		pub, priv = p, k
	case "ES256":
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		pub, priv = &k.PublicKey, k
	default:
		return nil, nil, fmt.Errorf("alg %q: want HS256, EdDSA or ES256", alg)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, err
	}
	pb, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pb}), nil
}
