package apps_test

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/apps"
	"github.com/switchboard-dev/switchboard/config"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
	"github.com/switchboard-dev/switchboard/sdk"
)

func cliApps(s testutil.AppSecrets, chatAdmits ...string) []apps.AppConfig {
	return []apps.AppConfig{
		{ID: "chat", Name: "Chat server", CredentialHash: s.Hash("chat"), Listen: []string{"/chat/"},
			Admit: apps.Admit{Apps: chatAdmits, Tokens: true}},
		{ID: "notes", Name: "Notes", CredentialHash: s.Hash("notes"), Servers: []string{"chat"}},
		{ID: "camera", Name: "Camera", CredentialHash: s.Hash("camera")},
	}
}

// listenEcho runs `switchboard listen URL --echo --credential SECRET` and
// waits until the scope is served.
func listenEcho(t *testing.T, b *broker, scope, secret string) {
	t.Helper()
	testutil.StartListen(t, b.ws()+scope, "--echo", "--credential", secret)
}

// canReach dials target as the app with secret and checks an echo.
func canReach(b *broker, target, secret string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := sdk.DialApp(ctx, b.ws(), target, &sdk.AppDialOptions{Credential: secret})
	if err != nil {
		return false
	}
	defer c.CloseNow()
	if c.Write(ctx, websocket.MessageText, []byte("ping")) != nil {
		return false
	}
	_, p, err := c.Read(ctx)
	return err == nil && string(p) == "ping"
}

// TestCLIAppsEndToEnd: a server app listens with its app credential,
// `connect wsapp://chat/` reaches it as notes, `token issue` lets camera in,
// `token list` shows the grant, `token revoke` takes it back, and the admin
// API refuses a missing admin token.
func TestCLIAppsEndToEnd(t *testing.T) {
	s := testutil.NewAppSecrets("chat", "notes", "camera")
	b := startBroker(t, t.TempDir(), &config.File{AdminToken: adminSecret, Apps: cliApps(s, "notes")})
	listenEcho(t, b, "/chat/", s["chat"])
	admin := []string{"--broker", b.url, "--admin-token", adminSecret}

	out := testutil.MustRun(t, "hello chat\n", nil, "connect", "wsapp://chat/room", "--broker", b.ws(), "--credential", s["notes"])
	if strings.TrimSpace(out) != "hello chat" {
		t.Fatalf("connect wsapp://chat/room as notes printed %q", out)
	}
	if _, _, code := testutil.Run(t, "x\n", nil, "connect", "wsapp://chat/room", "--broker", b.ws(), "--credential", s["camera"]); code == 0 {
		t.Fatal("camera reached chat without a token")
	}

	if _, errOut, code := testutil.Run(t, "", nil, "token", "issue", "--holder", "camera", "--target", "chat", "--broker", b.url, "--admin-token", "wrong"); code == 0 || !strings.Contains(errOut, "401") {
		t.Fatalf("token issue with a wrong admin token: exit %d %s", code, errOut)
	}
	tok := strings.TrimSpace(testutil.MustRun(t, "", nil, append([]string{"token", "issue", "--holder", "camera", "--target", "chat", "--ttl", "1h"}, admin...)...))
	if len(tok) != apps.TokenLen {
		t.Fatalf("token issue printed %q", tok)
	}
	out = testutil.MustRun(t, "with a token\n", []string{"SWITCHBOARD_CREDENTIAL=" + s["camera"]}, "connect", "wsapp://"+tok+"/", "--broker", b.ws())
	if strings.TrimSpace(out) != "with a token" {
		t.Fatalf("connect with the token printed %q", out)
	}
	list := testutil.MustRun(t, "", []string{"SWITCHBOARD_ADMIN_TOKEN=" + adminSecret}, "token", "list", "--broker", b.url)
	if !strings.Contains(list, "camera") || !strings.Contains(list, "chat") {
		t.Fatalf("token list:\n%s", list)
	}
	testutil.MustRun(t, "", nil, append([]string{"token", "revoke", "--holder", "camera", "--target", "chat"}, admin...)...)
	if canReach(b, "wsapp://"+tok+"/", s["camera"]) {
		t.Fatal("the revoked token still works")
	}
	if !canReach(b, "wsapp://chat/", s["notes"]) {
		t.Fatal("notes lost access after camera's revocation")
	}
	if !strings.Contains(b.logs(), "reason=token_revoked") {
		t.Fatal("the broker did not log the denial's reason")
	}
}

// TestAppNew: `switchboard app new` prints a secret and the hash that
// authenticates it.
func TestAppNew(t *testing.T) {
	out := testutil.MustRun(t, "", nil, "app", "new")
	var secret, hash string
	for _, line := range strings.Split(out, "\n") {
		k, v, _ := strings.Cut(line, ":")
		switch k {
		case "secret":
			secret = strings.TrimSpace(v)
		case "credential_hash":
			hash = strings.TrimSpace(v)
		}
	}
	d, err := apps.NewDirectory([]apps.AppConfig{{ID: "x", CredentialHash: hash}})
	if err != nil {
		t.Fatalf("app new printed %q: %v", out, err)
	}
	if id, ok := d.Authenticate(secret); !ok || id.App != "x" {
		t.Fatalf("the printed secret does not match the printed hash: %q", out)
	}
}

// TestReloadBySIGHUPAndCLI: permissions follow the config file after
// SIGHUP and after `switchboard reload`, for new connections only.
func TestReloadBySIGHUPAndCLI(t *testing.T) {
	s := testutil.NewAppSecrets("chat", "notes", "camera")
	b := startBroker(t, t.TempDir(), &config.File{AdminToken: adminSecret, Apps: cliApps(s /* admits nobody */)})
	listenEcho(t, b, "/chat/", s["chat"])
	if canReach(b, "wsapp://chat/", s["notes"]) {
		t.Fatal("chat admitted notes before the reload")
	}

	testutil.WriteConfig(t, b.cfgPath, &config.File{AdminToken: adminSecret, Apps: cliApps(s, "notes")})
	if err := b.p.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "SIGHUP to admit notes", func() bool { return canReach(b, "wsapp://chat/", s["notes"]) })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	open, err := sdk.DialApp(ctx, b.ws(), "wsapp://chat/", &sdk.AppDialOptions{Credential: s["notes"]})
	if err != nil {
		t.Fatal(err)
	}
	defer open.CloseNow()

	testutil.WriteConfig(t, b.cfgPath, &config.File{AdminToken: adminSecret, Apps: cliApps(s)})
	testutil.MustRun(t, "", nil, "reload", "--broker", b.url, "--admin-token", adminSecret)
	if canReach(b, "wsapp://chat/", s["notes"]) {
		t.Fatal("a new connection was admitted after the reload took notes out")
	}
	if err := open.Write(ctx, websocket.MessageText, []byte("still open")); err != nil {
		t.Fatal(err)
	}
	if _, p, err := open.Read(ctx); err != nil || string(p) != "still open" {
		t.Fatalf("the connection made before the reload: %q %v", p, err)
	}
	open.Close(websocket.StatusNormalClosure, "")
}

// adminSecret is the admin token of these tests' brokers.
const adminSecret = "admin-secret-0123456789abcdefghijklmnop"
