package apps

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"strings"
)

// MinSecretLen is the shortest secret HashCredential accepts. Secrets must
// be random (NewSecret): the stored hash is fast to compute, which is safe
// only because guessing a 128-bit-or-more random secret is hopeless.
const MinSecretLen = 32

// SecretPrefix starts every secret NewSecret makes, so a leaked one is easy
// to recognise (and to scan for in repositories). App credentials and the
// config file's scope credentials are one kind of secret.
const SecretPrefix = "sb_"

// hashPrefix names the credential hash scheme in the config file.
const hashPrefix = "sha256$"

// hashDomain separates credential hashes from every other SHA-256 use, so
// a credential's hash is no use as any other kind of secret. (The name
// keeps its first use, app credentials, so existing hashes stay valid.)
const hashDomain = "switchboard app credential v1\x00"

// lowerBase32 is unpadded lower-case base32, used for secrets, tokens and
// grant ids: safe in URLs, host names and shells.
var lowerBase32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewSecret returns a fresh random credential (for an app or for the
// config file's scope credentials): SecretPrefix and 256
// random bits in lower-case base32.
func NewSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (it panics instead)
	return SecretPrefix + lowerBase32.EncodeToString(b[:])
}

// HashCredential returns the form of secret kept in the config file:
// "sha256$" and 64 hex digits. It refuses secrets shorter than
// MinSecretLen.
func HashCredential(secret string) (string, error) {
	if len(secret) < MinSecretLen {
		return "", fmt.Errorf("hash credential: secret is %d characters; secrets must be at least %d random characters (switchboard credential new makes one)", len(secret), MinSecretLen)
	}
	sum := hashSecret(secret)
	return hashPrefix + hex.EncodeToString(sum[:]), nil
}

func hashSecret(secret string) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(hashDomain))
	h.Write([]byte(secret))
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// SumSecret is the digest a credential_hash holds for secret: compare it
// with ParseCredentialHash's result.
func SumSecret(secret string) [sha256.Size]byte { return hashSecret(secret) }

// ParseCredentialHash reads HashCredential's output.
func ParseCredentialHash(s string) ([sha256.Size]byte, error) { return parseCredentialHash(s) }

// parseCredentialHash reads HashCredential's output.
func parseCredentialHash(s string) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	rest, ok := strings.CutPrefix(s, hashPrefix)
	if !ok {
		return sum, fmt.Errorf("credential_hash must start with %q (switchboard credential new prints one)", hashPrefix)
	}
	b, err := hex.DecodeString(rest)
	if err != nil || len(b) != sha256.Size {
		return sum, fmt.Errorf("credential_hash must be %q and 64 hex digits", hashPrefix)
	}
	copy(sum[:], b)
	return sum, nil
}

// OwnerPrefix starts the owner name of a registration an app listens on
// ("app:ID"), which the broker checks when it routes a wsapp connection.
const OwnerPrefix = "app:"

// Owner is the registration owner name of app id.
func Owner(id string) string { return OwnerPrefix + id }
