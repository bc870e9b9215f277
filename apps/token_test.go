package apps

import (
	"bytes"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/scope"
)

func newSealer(t testing.TB) (*Sealer, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := LoadOrCreateKey(filepath.Join(dir, "token.key"))
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func issue(t testing.TB, s *Sealer, holder, target string, ttl time.Duration) (string, Grant) {
	t.Helper()
	tok, g, err := s.Issue(holder, target, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok, g
}

func TestTokenWorksForItsHolderOnly(t *testing.T) {
	s, _ := newSealer(t)
	tok, g := issue(t, s, "camera", "chat", time.Hour)
	got, err := s.Open(tok, "camera", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != g.ID || got.Holder != "camera" || got.Target != "chat" || !got.Expires.Equal(g.Expires) || !got.Issued.Equal(g.Issued) {
		t.Fatalf("Open = %+v, issued %+v", got, g)
	}
	for _, other := range []string{"notes", "chat", "camera2", "Camera", ""} {
		_, err := s.Open(tok, other, time.Now())
		if !errors.Is(err, ErrTokenInvalid) {
			t.Fatalf("Open by %q: %v, want ErrTokenInvalid", other, err)
		}
		if strings.Contains(err.Error(), "chat") {
			t.Fatalf("error names the target: %v", err)
		}
	}
}

func TestTokenExpires(t *testing.T) {
	s, _ := newSealer(t)
	tok, g := issue(t, s, "camera", "chat", 90*time.Second)
	if g.Expires.Sub(time.Now()) > 90*time.Second || g.Expires.Sub(time.Now()) < 88*time.Second {
		t.Fatalf("expires %v", g.Expires)
	}
	if _, err := s.Open(tok, "camera", g.Expires.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Time{g.Expires, g.Expires.Add(time.Hour)} {
		_, err := s.Open(tok, "camera", at)
		if !errors.Is(err, ErrTokenExpired) || ReasonOf(err) != ReasonTokenExpired || strings.Contains(err.Error(), "chat") {
			t.Fatalf("Open at expiry: %v", err)
		}
	}
	if _, _, err := s.Issue("camera", "chat", time.Millisecond); err == nil {
		t.Fatal("ttl under a second was accepted")
	}
}

func TestTokenRevokedByID(t *testing.T) {
	s, dir := newSealer(t)
	path := filepath.Join(dir, "revoked.json")
	revs, err := OpenRevocations(path)
	if err != nil {
		t.Fatal(err)
	}
	rs := s.WithRevocations(revs)
	tok, g := issue(t, rs, "camera", "chat", time.Hour)
	tok2, _ := issue(t, rs, "camera", "chat", time.Hour)
	if _, err := rs.Open(tok, "camera", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := revs.RevokeID(g.ID); err != nil {
		t.Fatal(err)
	}
	if err := revs.RevokeID(g.ID); err != nil { // again: harmless
		t.Fatal(err)
	}
	wantRevoked(t, rs, tok, "camera")
	if _, err := rs.Open(tok2, "camera", time.Now()); err != nil {
		t.Fatalf("another grant of the same pair was revoked: %v", err)
	}
	// The Sealer without revocations still opens it: revocation is the
	// list's job, and the list survives a restart.
	if _, err := s.Open(tok, "camera", time.Now()); err != nil {
		t.Fatal(err)
	}
	revs2, err := OpenRevocations(path)
	if err != nil {
		t.Fatal(err)
	}
	wantRevoked(t, s.WithRevocations(revs2), tok, "camera")
	if l := revs2.List(); len(l) != 1 || l[0].ID != g.ID {
		t.Fatalf("List after reopen = %+v", l)
	}
}

func TestTokenRevokedByPair(t *testing.T) {
	s, dir := newSealer(t)
	path := filepath.Join(dir, "revoked.json")
	revs, err := OpenRevocations(path)
	if err != nil {
		t.Fatal(err)
	}
	rs := s.WithRevocations(revs)
	a, _ := issue(t, rs, "camera", "chat", time.Hour)
	b, _ := issue(t, rs, "camera", "chat", time.Hour)
	other, _ := issue(t, rs, "camera", "notes", time.Hour)
	if err := revs.RevokePair("camera", "chat"); err != nil {
		t.Fatal(err)
	}
	wantRevoked(t, rs, a, "camera")
	wantRevoked(t, rs, b, "camera")
	if _, err := rs.Open(other, "camera", time.Now()); err != nil {
		t.Fatalf("a token for another target was revoked: %v", err)
	}
	// The owner may choose again: a token issued after the revocation works.
	later := waitIssuedAfter(t, rs, revs.List()[0].At)
	if _, err := rs.Open(later, "camera", time.Now()); err != nil {
		t.Fatalf("token issued after the pair revocation: %v", err)
	}
	revs2, err := OpenRevocations(path)
	if err != nil {
		t.Fatal(err)
	}
	rs2 := s.WithRevocations(revs2)
	wantRevoked(t, rs2, a, "camera")
	wantRevoked(t, rs2, b, "camera")
	if _, err := rs2.Open(later, "camera", time.Now()); err != nil {
		t.Fatalf("after reopen, token issued after the pair revocation: %v", err)
	}
}

// waitIssuedAfter issues camera→chat tokens until one is issued strictly
// after at (the clock may not have moved since the revocation).
func waitIssuedAfter(t *testing.T, s *Sealer, at time.Time) string {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		tok, g := issue(t, s, "camera", "chat", time.Hour)
		if g.Issued.After(at) {
			return tok
		}
	}
	t.Fatal("the clock did not move for 5s")
	return ""
}

func wantRevoked(t *testing.T, s *Sealer, tok, holder string) {
	t.Helper()
	_, err := s.Open(tok, holder, time.Now())
	if !errors.Is(err, ErrTokenRevoked) || ReasonOf(err) != ReasonTokenRevoked || strings.Contains(err.Error(), "chat") {
		t.Fatalf("Open of a revoked token: %v", err)
	}
}

func TestRevocationsFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "revoked.json")
	revs, err := OpenRevocations(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(revs.List()) != 0 {
		t.Fatal("a missing file is not an empty list")
	}
	if err := revs.RevokeID("not-an-id"); err == nil {
		t.Fatal("a malformed grant id was accepted")
	}
	if err := revs.RevokePair("Camera", "chat"); err == nil {
		t.Fatal("a malformed holder was accepted")
	}
	if err := revs.RevokePair("camera", "chat"); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("revocation file: %v, %v", st, err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("temporary files left behind: %v", ents)
	}
	for _, bad := range []string{`{"version":1,"revocations":[{"id":"x"}]}`, `{"version":2,"revocations":[]}`,
		`{"version":1,"revocations":[],"extra":1}`, `{"version":1,"revocations":[{"holder":"a","at":"2026-01-01T00:00:00Z"}]}`, `{`} {
		if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := OpenRevocations(path); err == nil {
			t.Errorf("OpenRevocations accepted %s", bad)
		}
	}
	// A directory that cannot be written: the revocation fails and does
	// not take effect in memory either.
	ro := filepath.Join(dir, "ro")
	if err := os.Mkdir(ro, 0o500); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		r2, err := OpenRevocations(filepath.Join(ro, "revoked.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := r2.RevokePair("camera", "chat"); err == nil {
			t.Fatal("revocation into a read-only directory succeeded")
		}
		if r2.Revoked(Grant{Holder: "camera", Target: "chat", Issued: time.Unix(1, 0)}) {
			t.Fatal("a revocation that was not saved took effect")
		}
	}
}

// TestTokenAnyByteChangeFails changes each character of a token to every
// other base32 character and to a few outside the alphabet.
func TestTokenAnyByteChangeFails(t *testing.T) {
	s, _ := newSealer(t)
	tok, _ := issue(t, s, "camera", "chat", time.Hour)
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	for i := range len(tok) {
		for _, c := range alphabet + "A=0.-" {
			if byte(c) == tok[i] {
				continue
			}
			bad := tok[:i] + string(c) + tok[i+1:]
			if _, err := s.Open(bad, "camera", time.Now()); !errors.Is(err, ErrTokenInvalid) {
				t.Fatalf("token with byte %d changed to %q: %v", i, c, err)
			}
		}
	}
	for _, bad := range []string{"", tok[1:], tok + "a", tok[:len(tok)-1], strings.ToUpper(tok)} {
		if _, err := s.Open(bad, "camera", time.Now()); !errors.Is(err, ErrTokenInvalid) {
			t.Fatalf("token %q: %v", bad, err)
		}
	}
}

func TestTokenFromAnotherKeyFails(t *testing.T) {
	s1, _ := newSealer(t)
	s2, _ := newSealer(t)
	tok, _ := issue(t, s1, "camera", "chat", time.Hour)
	if _, err := s2.Open(tok, "camera", time.Now()); !errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("another key opened it: %v", err)
	}
}

// TestTokenHidesTarget looks for the target in the token in every encoding
// at every alignment, and checks that tokens for a short and a long target
// cannot be told apart by length or alphabet.
func TestTokenHidesTarget(t *testing.T) {
	s, _ := newSealer(t)
	target := "secret-server.example"
	long := strings.Repeat("z", scope.MaxAppIDLen)
	type encoding struct {
		enc   func([]byte) string
		bits  int // bits per character
		group int // bytes per group: alignments to try
	}
	encs := map[string]encoding{
		"plain":     {func(b []byte) string { return string(b) }, 8, 1},
		"hex":       {hex.EncodeToString, 4, 1},
		"base64":    {base64.StdEncoding.EncodeToString, 6, 3},
		"base64url": {base64.RawURLEncoding.EncodeToString, 6, 3},
		"base32":    {base32.StdEncoding.EncodeToString, 5, 5},
		"base32hex": {base32.HexEncoding.EncodeToString, 5, 5},
	}
	for range 20 {
		tok, _ := issue(t, s, "camera", target, time.Hour)
		tokLong, _ := issue(t, s, "camera", long, time.Hour)
		if len(tok) != TokenLen || len(tokLong) != TokenLen {
			t.Fatalf("token lengths %d and %d, want %d", len(tok), len(tokLong), TokenLen)
		}
		lt := strings.ToLower(tok)
		for name, e := range encs {
			// A substring's encoding depends on its alignment: encode the
			// target behind 0..group-1 filler bytes and keep the characters
			// made of target bits only.
			for pad := range e.group {
				enc := strings.ToLower(e.enc(append(make([]byte, pad), target...)))
				from := (pad*8 + e.bits - 1) / e.bits
				to := (pad + len(target)) * 8 / e.bits
				if core := enc[from:to]; strings.Contains(lt, core) {
					t.Fatalf("token contains the target in %s (alignment %d): %q", name, pad, core)
				}
			}
		}
	}
	// Nor can the holder learn it from errors.
	tok, _ := issue(t, s, "camera", target, time.Second)
	for _, holder := range []string{"camera", "notes"} {
		for _, at := range []time.Time{time.Now(), time.Now().Add(time.Hour)} {
			if _, err := s.Open(tok, holder, at); err != nil && strings.Contains(err.Error(), "secret-server") {
				t.Fatalf("error names the target: %v", err)
			}
		}
	}
}

func TestTokenShape(t *testing.T) {
	s, _ := newSealer(t)
	tok, g := issue(t, s, "a", strings.Repeat("b", scope.MaxAppIDLen), time.Hour)
	if TokenLen >= 253 || len(tok) != TokenLen || TokenLen <= scope.MaxAppIDLen {
		t.Fatalf("TokenLen %d, token %d", TokenLen, len(tok))
	}
	for _, c := range tok {
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			t.Fatalf("token has %q", c)
		}
	}
	if len(g.ID) != 20 {
		t.Fatalf("grant id %q", g.ID)
	}
	u, err := scope.ParseAppURL("wsapp://" + tok + "/inbox?x=1")
	if err != nil || !u.Token || u.Authority != tok || u.Path != "/inbox" || u.RawQuery != "x=1" {
		t.Fatalf("ParseAppURL(token URL) = %+v, %v", u, err)
	}
	for _, bad := range [][2]string{{"", "chat"}, {"chat", "chat"}, {"chat", "Bad"}, {"chat", strings.Repeat("b", 64)}} {
		if _, _, err := s.Issue(bad[0], bad[1], time.Hour); err == nil {
			t.Errorf("Issue(%q, %q) accepted", bad[0], bad[1])
		}
	}
}

func TestKeyFileCreatedPrivateAndReused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token.key")
	s1, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 || st.Size() != KeySize {
		t.Fatalf("key file mode %v size %d", st.Mode(), st.Size())
	}
	before, _ := os.ReadFile(path)
	s2, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("the key file was rewritten")
	}
	tok, _ := issue(t, s1, "camera", "chat", time.Hour)
	if _, err := s2.Open(tok, "camera", time.Now()); err != nil {
		t.Fatalf("a token from before the restart: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("temporary files left behind: %v", ents)
	}
}

func TestKeyFileRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token.key")
	if _, err := LoadOrCreateKey(path); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o660, 0o666} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadOrCreateKey(path)
		if err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Fatalf("mode %04o: %v", mode, err)
		}
	}
	short := filepath.Join(dir, "short.key")
	if err := os.WriteFile(short, []byte("0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(short); err == nil || !strings.Contains(err.Error(), "exactly 32 bytes") {
		t.Fatalf("short key: %v", err)
	}
	if _, err := LoadOrCreateKey(dir); err == nil {
		t.Fatal("a directory was accepted as a key file")
	}
	if _, err := LoadOrCreateKey(filepath.Join(dir, "missing", "token.key")); err == nil {
		t.Fatal("a key in a missing directory was created")
	}
}

// TestKeyFileRace starts several brokers on one new key file at once: they
// must all end up with the same key.
func TestKeyFileRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token.key")
	const n = 8
	sealers := make([]*Sealer, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { sealers[i], errs[i] = LoadOrCreateKey(path) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
	}
	tok, _ := issue(t, sealers[0], "camera", "chat", time.Hour)
	for i := range n {
		if _, err := sealers[i].Open(tok, "camera", time.Now()); err != nil {
			t.Fatalf("sealer %d has another key: %v", i, err)
		}
	}
}

// TestRevocationsConcurrent revokes from several goroutines while others
// check grants; every revocation must be kept, in memory and on disk.
func TestRevocationsConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "revoked.json")
	revs, err := OpenRevocations(path)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := newSealer(t)
	const n = 16
	grants := make([]Grant, n)
	for i := range n {
		_, grants[i] = issue(t, s, "camera", "chat", time.Hour)
	}
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs <- revs.RevokeID(grants[i].ID) })
		wg.Go(func() { revs.Revoked(grants[(i+1)%n]) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	reopened, err := OpenRevocations(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range grants {
		if !revs.Revoked(g) || !reopened.Revoked(g) {
			t.Fatalf("grant %s not revoked", g.ID)
		}
	}
}
