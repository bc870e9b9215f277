// Package testutil holds what several test packages here need the same
// way: waiting for a condition with a deadline instead of sleeping
// (WaitFor, Eventually), whether the race detector is on (RaceEnabled),
// fresh app secrets, an in-process broker (StartBroker), and the
// switchboard binary built once per test run with one way to start its
// processes and learn where they listen (BuildSwitchboard, Command, Start,
// StartProcess, Process.URL, StartServe, StartListen) or to run it to its
// end (Run, MustRun), a config file writer (WriteConfig), and a private
// CA for TLS tests (NewCA, CA.Issue).
package testutil

import (
	"bytes"
	"encoding/json"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/apps"
	"github.com/switchboard-dev/switchboard/config"
)

// WaitFor polls cond every few milliseconds until it holds, and fails the
// test, naming what it waited for, when d passes first.
func WaitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Patience is how long Eventually waits: generous, because the suite runs
// on busy machines and under the race detector.
const Patience = 10 * time.Second

// Eventually is WaitFor with the suite's usual deadline, Patience.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	WaitFor(t, what, Patience, cond)
}

// AppSecrets are fresh app credentials by app id, for tests that write a
// config of apps.
type AppSecrets map[string]string

// NewAppSecrets makes a fresh secret for each id.
func NewAppSecrets(ids ...string) AppSecrets {
	s := AppSecrets{}
	for _, id := range ids {
		s[id] = apps.NewSecret()
	}
	return s
}

// Hash is the credential_hash of id's secret.
func (s AppSecrets) Hash(id string) string {
	h, err := apps.HashCredential(s[id])
	if err != nil {
		panic(err) // a fresh secret always hashes
	}
	return h
}

// WriteConfig writes f as a config file (JSON, mode 0600) to path.
func WriteConfig(t testing.TB, path string, f *config.File) {
	t.Helper()
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// SyncBuffer is a log sink that the goroutines of a broker, a node or a
// child process may write to while a test reads it.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
