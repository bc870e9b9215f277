package apps

import (
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/switchboard-dev/switchboard/scope"
)

// KeySize is the length of the broker's token key file.
const KeySize = chacha20poly1305.KeySize

// Token layout. The sealed payload has a fixed size so that every token has
// the same length whatever its holder and target:
//
//	token   = base32lower(version[1] | nonce[24] | seal(payload) | tag[16])
//	payload = id[12] | issued unix ns[8] | expires unix s[8] |
//	          SHA-256(holder)[:8] | len(target)[1] | target padded with 0 to 63
//	AD      = "switchboard chooser token" | version | holder
const (
	tokenVersion  = 1
	idSize        = 12
	holderSumSize = 8
	payloadSize   = idSize + 8 + 8 + holderSumSize + 1 + scope.MaxAppIDLen
	sealedSize    = 1 + chacha20poly1305.NonceSizeX + payloadSize + chacha20poly1305.Overhead
	// TokenLen is the length of every token's text form.
	TokenLen = (sealedSize*8 + 4) / 5
)

const tokenAD = "switchboard chooser token"

// Token errors. Open wraps them with the grant id where it has one; none
// of them depends on, or names, the target.
var (
	ErrTokenInvalid = &DenyError{Reason: ReasonTokenInvalid, Msg: "chooser token is not valid for this holder"}
	ErrTokenExpired = &DenyError{Reason: ReasonTokenExpired, Msg: "chooser token has expired"}
	ErrTokenRevoked = &DenyError{Reason: ReasonTokenRevoked, Msg: "chooser token has been revoked"}
)

// Grant is what a chooser token says: holder may reach target until
// Expires. ID names it for revocation; Issued orders it against
// revocations by holder/target pair.
type Grant struct {
	ID      string
	Holder  string
	Target  string
	Issued  time.Time
	Expires time.Time
}

// Sealer issues and opens chooser tokens under the broker's key. It is
// safe for concurrent use.
type Sealer struct {
	aead cipher.AEAD  // static
	revs *Revocations // static; nil: no revocation check
}

// NewSealer makes a Sealer from a KeySize-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// WithRevocations returns a Sealer with the same key whose Open refuses
// grants that r has revoked.
func (s *Sealer) WithRevocations(r *Revocations) *Sealer {
	return &Sealer{aead: s.aead, revs: r}
}

// LoadOrCreateKey reads the broker's token key from path, or creates it
// with mode 0600 when there is no file. It refuses a key file that group or
// others may read or write, and one of the wrong size.
func LoadOrCreateKey(path string) (*Sealer, error) {
	key, err := readKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = createKey(path)
	}
	if err != nil {
		return nil, err
	}
	return NewSealer(key)
}

func readKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open token key: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat token key: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("token key %s is not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("token key %s has mode %04o: group and others must have no access (chmod 600 %s)", path, perm, path)
	}
	key, err := io.ReadAll(io.LimitReader(f, KeySize+1))
	if err != nil {
		return nil, fmt.Errorf("read token key %s: %w", path, err)
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("token key %s must hold exactly %d bytes, not %d", path, KeySize, len(key))
	}
	return key, nil
}

// createKey writes a fresh key to a temporary file and links it into
// place, so the key file never exists half-written and two brokers
// starting at once agree on one key.
func createKey(path string) ([]byte, error) {
	key := make([]byte, KeySize)
	_, _ = rand.Read(key)
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".token-key-*") // mode 0600
	if err != nil {
		return nil, fmt.Errorf("create token key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(key); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write token key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("sync token key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("close token key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readKey(path) // another process won the race
		}
		return nil, fmt.Errorf("create token key: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return nil, fmt.Errorf("create token key: %w", err)
	}
	return key, nil
}

// Issue seals a grant letting holder reach target for ttl (whole seconds).
func (s *Sealer) Issue(holder, target string, ttl time.Duration) (string, Grant, error) {
	if err := scope.ValidAppID(holder); err != nil {
		return "", Grant{}, fmt.Errorf("issue token: holder: %w", err)
	}
	if err := scope.ValidAppID(target); err != nil {
		return "", Grant{}, fmt.Errorf("issue token: target: %w", err)
	}
	if holder == target {
		return "", Grant{}, errors.New("issue token: holder and target are the same app")
	}
	if ttl < time.Second {
		return "", Grant{}, fmt.Errorf("issue token: ttl %v is under one second", ttl)
	}
	var id [idSize]byte
	_, _ = rand.Read(id[:])
	now := time.Now()
	g := Grant{ID: lowerBase32.EncodeToString(id[:]), Holder: holder, Target: target,
		Issued: now, Expires: now.Add(ttl).Truncate(time.Second)}

	p := make([]byte, 0, payloadSize)
	p = append(p, id[:]...)
	p = binary.BigEndian.AppendUint64(p, uint64(now.UnixNano()))
	p = binary.BigEndian.AppendUint64(p, uint64(g.Expires.Unix()))
	hs := sha256.Sum256([]byte(holder))
	p = append(p, hs[:holderSumSize]...)
	p = append(p, byte(len(target)))
	p = append(p, target...)
	p = p[:payloadSize] // pad with zeros: make zeroed the whole capacity

	out := make([]byte, 1+chacha20poly1305.NonceSizeX, sealedSize)
	out[0] = tokenVersion
	_, _ = rand.Read(out[1:])
	out = s.aead.Seal(out, out[1:], p, tokenAAD(holder))
	return lowerBase32.EncodeToString(out), g, nil
}

func tokenAAD(holder string) []byte {
	ad := make([]byte, 0, len(tokenAD)+1+len(holder))
	ad = append(ad, tokenAD...)
	ad = append(ad, tokenVersion)
	return append(ad, holder...)
}

// Open returns the grant a token seals, if holder is its holder, it has
// not expired at now, and it has not been revoked (when the Sealer has
// revocations). Its errors carry a Reason and never name the target: a
// token for another holder, altered in any byte, or sealed under another
// key are all just ErrTokenInvalid.
func (s *Sealer) Open(token string, holder string, now time.Time) (Grant, error) {
	if len(token) != TokenLen {
		return Grant{}, ErrTokenInvalid
	}
	raw, err := lowerBase32.DecodeString(token)
	// Re-encoding rejects texts that decode to the same bytes (unused
	// trailing bits set), so every character is significant.
	if err != nil || len(raw) != sealedSize || raw[0] != tokenVersion || lowerBase32.EncodeToString(raw) != token {
		return Grant{}, ErrTokenInvalid
	}
	nonce := raw[1 : 1+chacha20poly1305.NonceSizeX]
	p, err := s.aead.Open(nil, nonce, raw[1+chacha20poly1305.NonceSizeX:], tokenAAD(holder))
	if err != nil || len(p) != payloadSize {
		return Grant{}, ErrTokenInvalid
	}
	var g Grant
	g.ID = lowerBase32.EncodeToString(p[:idSize])
	p = p[idSize:]
	g.Issued = time.Unix(0, int64(binary.BigEndian.Uint64(p)))
	g.Expires = time.Unix(int64(binary.BigEndian.Uint64(p[8:])), 0)
	p = p[16:]
	hs := sha256.Sum256([]byte(holder))
	if !bytes.Equal(p[:holderSumSize], hs[:holderSumSize]) {
		return Grant{}, ErrTokenInvalid
	}
	p = p[holderSumSize:]
	n := int(p[0])
	if n > scope.MaxAppIDLen {
		return Grant{}, ErrTokenInvalid
	}
	g.Holder, g.Target = holder, string(p[1:1+n])
	if scope.ValidAppID(g.Target) != nil {
		return Grant{}, ErrTokenInvalid
	}
	if !now.Before(g.Expires) {
		return Grant{}, fmt.Errorf("grant %s: %w", g.ID, ErrTokenExpired)
	}
	if s.revs != nil && s.revs.Revoked(g) {
		return Grant{}, fmt.Errorf("grant %s: %w", g.ID, ErrTokenRevoked)
	}
	return g, nil
}
