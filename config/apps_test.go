package config

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/apps"
	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/scope"
)

func TestAppsValidation(t *testing.T) {
	secret := apps.NewSecret()
	hash, _ := apps.HashCredential(secret)
	c := `{"apps": [{"id": "chat", "credential_hash": "` + hash + `", "listen": ["/chat/"]}],
	  "credentials": [{"name": "old", "credential_hash": "` + testHash(t) + `", "scopes": ["/chat/rooms/"]}]}`
	if _, err := Decode(strings.NewReader(c)); err == nil || !strings.Contains(err.Error(), "overlaps scope /chat/rooms/ of credential old") {
		t.Fatalf("overlap of an app and a credential: %v", err)
	}
	if _, err := Decode(strings.NewReader(`{"apps": [{"id": "chat", "listen": ["/chat/"]}]}`)); err == nil {
		t.Fatal("an app nothing can authenticate as was accepted")
	}
	if _, err := Decode(strings.NewReader(`{"apps": [{"id": "chat", "origins": ["https://a.example"], "colour": "red"}]}`)); err == nil {
		t.Fatal("an unknown key in an app was accepted")
	}
}

func TestAppAuthorizer(t *testing.T) {
	chat, camera := apps.NewSecret(), apps.NewSecret()
	hc, _ := apps.HashCredential(chat)
	hk, _ := apps.HashCredential(camera)
	f := &File{Apps: []apps.AppConfig{
		{ID: "chat", CredentialHash: hc, Listen: []string{"/chat/"}},
		{ID: "camera", CredentialHash: hk},
	}}
	auth := f.Authorizer(true)
	req := func(cred, raw string) (string, error) {
		sc, err := scope.Parse(raw, true)
		if err != nil {
			t.Fatal(err)
		}
		return auth(context.Background(), broker.AuthRequest{Credential: cred, Scope: sc, Remote: netip.MustParseAddrPort("127.0.0.1:1")})
	}
	if owner, err := req(chat, "/chat/general/"); err != nil || owner != "app:chat" {
		t.Fatalf("chat on its scope: %q %v", owner, err)
	}
	if _, err := req(camera, "/chat/"); err == nil {
		t.Fatal("camera listened on chat's scope")
	}
	if _, err := req("", "/chat/x/"); err == nil {
		t.Fatal("no credential took a scope under an app's, in dev mode")
	}
	if owner, err := req("", "/free/"); err != nil || owner != "dev" {
		t.Fatalf("dev mode on an unclaimed scope: %q %v", owner, err)
	}
	if _, err := req(apps.NewSecret(), "/free/"); err == nil {
		t.Fatal("an unknown credential was accepted")
	}
}

func TestTokenPathsAndKeyFile(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "etc", "switchboard.json")
	f := &File{}
	key, revs, err := f.TokenPaths(cfgPath)
	if err != nil || key != filepath.Join(dir, "etc", "token.key") || revs != filepath.Join(dir, "etc", "revocations.json") {
		t.Fatalf("paths next to the config: %s %s %v", key, revs, err)
	}
	t.Setenv("XDG_STATE_HOME", filepath.Join(dir, "state"))
	if key, _, _ := f.TokenPaths(""); key != filepath.Join(dir, "state", "switchboard", "token.key") {
		t.Fatalf("XDG path: %s", key)
	}
	if _, _, err := f.OpenTokens(cfgPath); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(key)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
}
