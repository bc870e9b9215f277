package config

import (
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/apps"
)

// TestZeroAndNegativeLimitsRefused: a limit written as 0 or below is
// refused with its key path, never silently replaced by the default;
// max_conns_per_addr's -1 ("no limit") stays allowed.
func TestZeroAndNegativeLimitsRefused(t *testing.T) {
	for _, in := range []string{
		`{"limits": {"max_message": 0}}`,
		`{"limits": {"max_message": -5}}`,
		`{"limits": {"accept_timeout": "0s"}}`,
		`{"limits": {"accept_timeout": "-1s"}}`,
		`{"limits": {"max_pending_connects": -1}}`,
		`{"limits": {"refusal_floor": "0s"}}`,
		`{"max_header_bytes": 0}`,
		`{"handshake_timeout": "-2s"}`,
		`{"max_conns_per_addr": -2}`,
	} {
		_, err := Decode(strings.NewReader(in))
		if err == nil {
			t.Errorf("%s: accepted", in)
			continue
		}
		key := in[strings.LastIndex(in, "{")+2:]
		key = key[:strings.Index(key, `"`)]
		if !strings.Contains(err.Error(), key) {
			t.Errorf("%s: error does not name the key: %v", in, err)
		}
	}
	for _, in := range []string{`{"max_conns_per_addr": -1}`, `{"limits": {"max_message": 1024, "refusal_floor": "50ms"}}`, `{}`} {
		if _, err := Decode(strings.NewReader(in)); err != nil {
			t.Errorf("%s: %v", in, err)
		}
	}
}

// TestOverlappingCredentialScopesRefused: two credentials whose scopes
// nest (either could listen where they meet) are refused, naming both.
func TestOverlappingCredentialScopesRefused(t *testing.T) {
	h := func() string {
		hash, err := apps.HashCredential(apps.NewSecret())
		if err != nil {
			t.Fatal(err)
		}
		return hash
	}
	f := &File{Credentials: []Credential{
		{Name: "a", CredentialHash: h(), Scopes: []string{"/a/"}},
		{Name: "b", CredentialHash: h(), Scopes: []string{"/a/b/"}},
	}}
	err := f.Validate()
	if err == nil || !strings.Contains(err.Error(), "overlaps") || !strings.Contains(err.Error(), " of a") || !strings.Contains(err.Error(), " of b") {
		t.Fatalf("nested scopes of two credentials: %v", err)
	}
	f.Credentials[1].Scopes = []string{"/b/", "host.example/c/"}
	f.Credentials[0].Scopes = []string{"/a/", "/c/"} // /c/ (any host) meets host.example/c/
	if err := f.Validate(); err == nil || !strings.Contains(err.Error(), "overlaps") {
		t.Fatalf("host-less scope over a host scope: %v", err)
	}
	f.Credentials[0].Scopes = []string{"/a/", "other.example/c/"}
	if err := f.Validate(); err != nil {
		t.Fatalf("disjoint scopes: %v", err)
	}
}

// TestDuplicateCredentialSecretRefused: two credentials (or a credential
// and an app) with one secret are refused, naming the other.
func TestDuplicateCredentialSecretRefused(t *testing.T) {
	hash, err := apps.HashCredential(apps.NewSecret())
	if err != nil {
		t.Fatal(err)
	}
	f := &File{Credentials: []Credential{
		{Name: "a", CredentialHash: hash, Scopes: []string{"/a/"}},
		{Name: "b", CredentialHash: hash, Scopes: []string{"/b/"}},
	}}
	if err := f.Validate(); err == nil || !strings.Contains(err.Error(), "the same secret as credential a") {
		t.Fatalf("two credentials, one secret: %v", err)
	}
	f.Credentials = f.Credentials[:1]
	f.Apps = []apps.AppConfig{{ID: "chat", CredentialHash: hash, Listen: []string{"/chat/"}}}
	if err := f.Validate(); err == nil || !strings.Contains(err.Error(), "the same secret as credential a") {
		t.Fatalf("a credential and an app, one secret: %v", err)
	}
}
