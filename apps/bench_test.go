package apps

import (
	"testing"
	"time"
)

// BenchmarkAuthenticate measures a credential check (one SHA-256 and a
// map look-up): it must allow thousands of connects per second per core.
func BenchmarkAuthenticate(b *testing.B) {
	f := newFixture(b)
	secret := f.secrets["notes"]
	for b.Loop() {
		if _, ok := f.dir.Authenticate(secret); !ok {
			b.Fatal("not authenticated")
		}
	}
}

// BenchmarkOpen measures opening a chooser token with a revocation list.
func BenchmarkOpen(b *testing.B) {
	s, dir := newSealer(b)
	revs, err := OpenRevocations(dir + "/revoked.json")
	if err != nil {
		b.Fatal(err)
	}
	s = s.WithRevocations(revs)
	tok, _ := issue(b, s, "camera", "chat", time.Hour)
	now := time.Now()
	for b.Loop() {
		if _, err := s.Open(tok, "camera", now); err != nil {
			b.Fatal(err)
		}
	}
}
