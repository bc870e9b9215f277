package config

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/scope"
)

// TestExampleInDocs keeps docs/CONFIG.md's example decodable and equal to
// Example().
func TestExampleInDocs(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "CONFIG.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```json\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("no json example in docs/CONFIG.md")
	}
	if strings.TrimSpace(string(m[1])) != string(Example()) {
		t.Fatal("docs/CONFIG.md example differs from config.Example()")
	}
	c, err := Decode(strings.NewReader(string(m[1])))
	if err != nil {
		t.Fatalf("example does not decode: %v", err)
	}
	if c.BrokerLimits().HandoverTimeout.String() != "30s" {
		t.Fatalf("limits %+v", c.BrokerLimits())
	}
}

func TestStrict(t *testing.T) {
	for name, in := range map[string]string{
		"unknown key":    `{"listen": "x", "colour": "red"}`,
		"unknown nested": `{"limits": {"max_mesage": 1}}`,
		"bad duration":   `{"limits": {"accept_timeout": 10}}`,
		"trailing":       `{} {}`,
		"bad hash":       `{"credentials": [{"name": "a", "credential_hash": "zz", "scopes": ["/a/"]}]}`,
		"bad scope":      `{"credentials": [{"name": "a", "credential_hash": "` + testHash(t) + `", "scopes": ["/a"]}]}`,
		"reserved scope": `{"credentials": [{"name": "a", "credential_hash": "` + testHash(t) + `", "scopes": ["/.switchboard/x/"]}]}`,
		"two owners": `{"credentials": [{"name": "a", "credential_hash": "` + testHash(t) + `", "scopes": ["/a/"]},
			{"name": "b", "credential_hash": "` + testHash(t) + `", "scopes": ["/a/"]}]}`,
	} {
		if _, err := Decode(strings.NewReader(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// testHash is the credential_hash of a fresh secret.
func testHash(t *testing.T) string {
	t.Helper()
	_, h, err := NewCredential()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestAuthorizer(t *testing.T) {
	secret, hash, _ := NewCredential()
	c, err := Decode(strings.NewReader(`{"credentials": [{"name": "team", "credential_hash": "` + hash + `", "scopes": ["/chat/"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	loop := netip.MustParseAddrPort("127.0.0.1:1")
	far := netip.MustParseAddrPort("192.0.2.1:1")
	sc := func(p string) scope.Scope { return scope.Scope{Path: p} }
	for _, tc := range []struct {
		dev     bool
		cred    string
		scope   string
		remote  netip.AddrPort
		owner   string
		errPart string
	}{
		{false, secret, "/chat/", far, "team", ""},
		{false, secret, "/chat/room/", far, "team", ""},
		{false, secret, "/other/", far, "", "does not own"},
		{false, "wrong", "/chat/", far, "", "unknown credential"},
		{false, "", "/free/", loop, "", "needs a credential"},
		{true, "", "/free/", loop, "dev", ""},
		{true, "", "/free/", far, "", "needs a credential"},
		{true, "", "/chat/", loop, "", "needs a credential"},
		{true, "", "/", loop, "", "needs a credential"},
	} {
		owner, err := c.Authorizer(tc.dev)(context.Background(), broker.AuthRequest{Credential: tc.cred, Scope: sc(tc.scope), Remote: tc.remote})
		if tc.errPart == "" && (err != nil || owner != tc.owner) {
			t.Errorf("%+v: owner %q err %v", tc, owner, err)
		}
		if tc.errPart != "" && (err == nil || !strings.Contains(err.Error(), tc.errPart)) {
			t.Errorf("%+v: err %v, want %q", tc, err, tc.errPart)
		}
	}
}
