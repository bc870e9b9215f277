package server_test

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/apps"
	"github.com/switchboard-dev/switchboard/config"
	"github.com/switchboard-dev/switchboard/daemon"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
	"github.com/switchboard-dev/switchboard/sdk"
)

// prodBroker starts a production broker (a config file with one
// credential owning /svc/, an admin token, no --dev) with settings s and
// returns its host:port and the credential's secret.
func prodBroker(t *testing.T, s daemon.Settings) (addr, secret string) {
	t.Helper()
	secret, hash, err := config.NewCredential()
	if err != nil {
		t.Fatal(err)
	}
	f := &config.File{AdminToken: testAdminToken,
		Credentials: []config.Credential{{Name: "team", CredentialHash: hash, Scopes: []string{"/svc/"}}}}
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	s.File, s.AdminToken = f, f.AdminToken
	_, ws := testutil.StartBroker(t, s, daemon.Options{})
	return strings.TrimPrefix(ws, "ws://"), secret
}

// testAdminToken is an admin token strong enough for a production broker.
const testAdminToken = "test-admin-token-0123456789abcdefghijklmnop"

// timedHandshake sends a client handshake for path on a fresh connection
// and returns the status line and the time from the request's last byte to
// the response's first.
func timedHandshake(t *testing.T, addr, path string, extra ...string) (string, time.Duration) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
	for _, h := range extra {
		req += h + "\r\n"
	}
	start := time.Now()
	if _, err := c.Write([]byte(req + "\r\n")); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("read response to %s: %v", path, err)
	}
	return strings.TrimSpace(line), time.Since(start)
}

// TestRefusalTimeHasAFloor: a refused handshake is answered no earlier
// than the refusal floor, whatever refused it (no scope, a service's
// Reject, the origin policy); an accepted one is not held.
func TestRefusalTimeHasAFloor(t *testing.T) {
	const floor = 300 * time.Millisecond
	addr, secret := prodBroker(t, daemon.Settings{RefusalFloor: floor, RefusalJitter: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l, err := sdk.Listen(ctx, "ws://"+addr+"/svc/", &sdk.ListenOptions{Credential: secret, Origins: []string{"https://ok.example"}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			req, err := l.Accept(ctx)
			if err != nil {
				return
			}
			if strings.HasSuffix(req.Target, "/yes") {
				_, _ = req.Accept(ctx, "", nil)
			} else {
				_ = req.Reject(ctx)
			}
		}
	}()
	cases := []struct {
		name, path string
		extra      []string
	}{
		{"no scope", "/nothing/here", nil},
		{"service refuses (Go SDK)", "/svc/no", []string{"Origin: https://ok.example"}},
		{"origin not admitted", "/svc/no", []string{"Origin: https://evil.example"}},
		{"wsapp with no apps", "/.switchboard/v1/app/chat/", nil},
	}
	for _, c := range cases {
		for i := 0; i < 3; i++ {
			status, d := timedHandshake(t, addr, c.path, c.extra...)
			if !strings.HasPrefix(status, "HTTP/1.1 404") {
				t.Fatalf("%s: %s", c.name, status)
			}
			if d < floor {
				t.Errorf("%s: answered after %v, before the floor %v", c.name, d, floor)
			}
		}
	}
	// Accepted handshakes are not held: well under the floor even on a busy
	// machine (the floor is 300 ms; an accept takes about a millisecond).
	var best time.Duration = time.Hour
	for i := 0; i < 3; i++ {
		status, d := timedHandshake(t, addr, "/svc/yes", "Origin: https://ok.example")
		if !strings.HasPrefix(status, "HTTP/1.1 101") {
			t.Fatalf("accept: %s", status)
		}
		best = min(best, d)
	}
	if best >= floor {
		t.Errorf("accepted handshakes took at least %v: held like a refusal", best)
	}
}

// TestRefusalFloorDefault: a broker assembled with no refusal settings
// holds refusals for the documented default.
func TestRefusalFloorDefault(t *testing.T) {
	addr, _ := prodBroker(t, daemon.Settings{})
	status, d := timedHandshake(t, addr, "/nothing/")
	if !strings.HasPrefix(status, "HTTP/1.1 404") || d < daemon.DefaultRefusalFloor {
		t.Fatalf("%s after %v; want 404 after at least %v", status, d, daemon.DefaultRefusalFloor)
	}
}

// TestSecretsStayOutOfLogs: a refused wsapp path (dot segments) whose
// authority is a chooser token, and a client URL with a secret in its
// query, leave no trace of the secret in the log, even at DEBUG.
func TestSecretsStayOutOfLogs(t *testing.T) {
	var logs testutil.SyncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := testutil.AppSecrets{"chat": apps.NewSecret()}
	f := &config.File{AdminToken: testAdminToken, Apps: []apps.AppConfig{
		{ID: "chat", CredentialHash: s.Hash("chat"), Listen: []string{"/chat/"}, Admit: apps.Admit{Any: true}}}}
	_, ws := testutil.StartBroker(t, daemon.Settings{File: f, RefusalFloor: -1}, daemon.Options{Logger: log})
	addr := strings.TrimPrefix(ws, "ws://")
	token := strings.Repeat("tokensecretpart", 16)[:226]
	for _, path := range []string{
		"/.switchboard/v1/app/" + token + "/../x",
		"/.switchboard/v1/app/chat/a/../b?credential=" + s["chat"],
		"/nothing/?token=" + token,
	} {
		if status, _ := timedHandshake(t, addr, path); !strings.HasPrefix(status, "HTTP/1.1 404") {
			t.Fatalf("%s: %s", path, status)
		}
	}
	// A malformed handshake (a second version) on a token's path.
	if status, _ := timedHandshake(t, addr, "/.switchboard/v1/app/"+token+"/x", "Sec-WebSocket-Version: 8"); !strings.HasPrefix(status, "HTTP/1.1 4") {
		t.Fatalf("bad version: %s", status)
	}
	out := logs.String()
	if !strings.Contains(out, "bad_url") {
		t.Fatalf("the refusal was not logged:\n%s", out)
	}
	for _, secret := range []string{token, s["chat"], "tokensecretpart"} {
		if strings.Contains(out, secret) {
			t.Errorf("a secret reached the log:\n%s", out)
		}
	}
}

// TestLinkAnswersUnauthenticatedAlike: a service link without a valid
// credential gets the same Error for a scope owned by a credential, an
// app's scope and a free one (production), and the same for each with a
// wrong credential: the link endpoint does not tell who owns what.
func TestLinkAnswersUnauthenticatedAlike(t *testing.T) {
	secret, hash, err := config.NewCredential()
	if err != nil {
		t.Fatal(err)
	}
	s := testutil.NewAppSecrets("chat")
	f := &config.File{AdminToken: testAdminToken,
		Credentials: []config.Credential{{Name: "team", CredentialHash: hash, Scopes: []string{"/svc/"}}},
		Apps:        []apps.AppConfig{{ID: "chat", CredentialHash: s.Hash("chat"), Listen: []string{"/chat/"}}}}
	_, ws := testutil.StartBroker(t, daemon.Settings{File: f, AdminToken: f.AdminToken}, daemon.Options{})
	for _, cred := range []string{"", apps.NewSecret()} {
		answers := map[string]string{}
		for _, scope := range []string{"/svc/", "/chat/", "/free/"} {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			l, err := sdk.Listen(ctx, ws+scope, &sdk.ListenOptions{Credential: cred})
			cancel()
			if err == nil {
				l.Close()
				t.Fatalf("attached to %s with credential %q", scope, cred)
			}
			answers[scope] = strings.ReplaceAll(err.Error(), scope, "SCOPE")
		}
		if answers["/svc/"] != answers["/chat/"] || answers["/chat/"] != answers["/free/"] {
			t.Errorf("credential %q: answers differ by owner:\n%q", cred, answers)
		}
	}
	// The right credential still attaches.
	l, err := sdk.Listen(context.Background(), ws+"/svc/", &sdk.ListenOptions{Credential: secret})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
}
