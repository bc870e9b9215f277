package server_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/config"
	"github.com/switchboard-dev/switchboard/daemon"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
	"github.com/switchboard-dev/switchboard/protocol"
	"github.com/switchboard-dev/switchboard/sdk"
)

// recorder attaches a service on scopeURL that accepts every client and
// sends the path it was told on a channel.
func recorder(t *testing.T, scopeURL, secret string) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l, err := sdk.Listen(ctx, scopeURL, &sdk.ListenOptions{Credential: secret})
	if err != nil {
		cancel()
		t.Fatalf("listen on %s: %v", scopeURL, err)
	}
	t.Cleanup(func() { cancel(); l.Close() })
	seen := make(chan string, 16)
	go func() {
		for {
			req, err := l.Accept(ctx)
			if err != nil {
				return
			}
			u, err := url.Parse(req.Target)
			if err != nil || !strings.HasPrefix(req.FirstLine, "GET "+u.EscapedPath()) {
				seen <- "target " + req.Target + " and first line " + req.FirstLine + " disagree"
			} else {
				seen <- u.EscapedPath()
			}
			_, _ = req.Accept(ctx, "", nil)
		}
	}()
	return seen
}

// TestPathsComparedInCanonicalForm (issue 12, holes 4 and 10): a scope and
// a client path are compared in one canonical form, so every spelling of a
// path under "/a/caf%C3%A9/" or "/a/x%20y/" reaches that scope's service,
// not the service of the enclosing "/a/"; dot segments are resolved before
// routing, and the service is told the resolved path, never one with dot
// segments outside its scope. On a production broker (config file,
// credentials, admin token).
func TestPathsComparedInCanonicalForm(t *testing.T) {
	secret, hash, err := config.NewCredential()
	if err != nil {
		t.Fatal(err)
	}
	f := &config.File{AdminToken: testAdminToken, Credentials: []config.Credential{
		{Name: "team", CredentialHash: hash, Scopes: []string{"/a/", "/svc/"}}}}
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	_, ws := testutil.StartBroker(t, daemon.Settings{File: f, AdminToken: f.AdminToken, RefusalFloor: -1}, daemon.Options{})
	addr := strings.TrimPrefix(ws, "ws://")
	wide := recorder(t, ws+"/a/", secret)
	cafe := recorder(t, ws+"/a/caf%c3%a9/", secret) // registered as /a/caf%C3%A9/
	space := recorder(t, ws+"/a/x%20y/", secret)
	svc := recorder(t, ws+"/svc/", secret)

	for _, c := range []struct {
		path string
		to   <-chan string
		name string
		told string
	}{
		{"/a/caf%C3%A9/x", cafe, "/a/caf%C3%A9/", "/a/caf%C3%A9/x"},
		{"/a/caf%c3%a9/x", cafe, "/a/caf%C3%A9/", "/a/caf%C3%A9/x"},
		{"/a/caf\xc3\xa9/x", cafe, "/a/caf%C3%A9/", "/a/caf%C3%A9/x"},
		{"/a/caf%C3%A9", cafe, "/a/caf%C3%A9/", "/a/caf%C3%A9"},
		{"/a/x%20y/z", space, "/a/x%20y/", "/a/x%20y/z"},
		{"/%61/x%20y/z", space, "/a/x%20y/", "/a/x%20y/z"},
		{"/a/other", wide, "/a/", "/a/other"},
		{"/a/caf%C3%A9/../../svc/x", svc, "/svc/", "/svc/x"},
		{"/svc/%2e%2e/a/x%20y/z", space, "/a/x%20y/", "/a/x%20y/z"},
		{"/a/b/./../../svc/", svc, "/svc/", "/svc/"},
	} {
		status, _ := timedHandshake(t, addr, c.path)
		if !strings.HasPrefix(status, "HTTP/1.1 101") {
			t.Errorf("GET %q: %s, want 101 from %s", c.path, status, c.name)
			continue
		}
		select {
		case got := <-c.to:
			if got != c.told {
				t.Errorf("GET %q: %s was told %q, want %q", c.path, c.name, got, c.told)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("GET %q: the service of %s was not asked", c.path, c.name)
		}
	}
	for _, ch := range []<-chan string{wide, cafe, space, svc} {
		select {
		case got := <-ch:
			t.Errorf("a client reached the wrong service, told %q", got)
		default:
		}
	}
	// A path that is not a valid encoding is a bad handshake.
	if status, _ := timedHandshake(t, addr, "/a/%zz/"); !strings.HasPrefix(status, "HTTP/1.1 400") {
		t.Errorf("GET /a/%%zz/: %s, want 400", status)
	}
}

// TestUnreachableScopeRefused: a scope that no canonical request path can
// reach (dot segments spelt with %2e) is refused when a service attaches.
func TestUnreachableScopeRefused(t *testing.T) {
	addr, secret := prodBroker(t, daemon.Settings{RefusalFloor: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, p := range []string{"/svc/%2e%2e/", "/svc/%2E/"} {
		l, err := sdk.Listen(ctx, "ws://"+addr+p, &sdk.ListenOptions{Credential: secret})
		if err == nil {
			l.Close()
			t.Errorf("listen on %s: attached, want a refusal", p)
		} else if !strings.Contains(err.Error(), "not clean") {
			t.Errorf("listen on %s: %v, want a scope error", p, err)
		}
	}
}

// TestTrailingDotHostIsTheSameHost (issue 12, hole 5): in dev mode, a
// process without a credential cannot register "host.example./h/" (or any
// other spelling of a claimed host: case, port, IDNA) beside the
// credential's "host.example/h/": hosts are canonical wherever compared.
func TestTrailingDotHostIsTheSameHost(t *testing.T) {
	_, hash, err := config.NewCredential()
	if err != nil {
		t.Fatal(err)
	}
	f := &config.File{AdminToken: testAdminToken, Credentials: []config.Credential{
		{Name: "team-a", CredentialHash: hash, Scopes: []string{"host.example/h/", "bücher.example/b/"}}}}
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	_, ws := testutil.StartBroker(t, daemon.Settings{File: f, AdminToken: f.AdminToken, Dev: true, RefusalFloor: -1}, daemon.Options{})
	attach := func(sc string) (protocol.Type, []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, _, err := websocket.Dial(ctx, ws+protocol.LinkPath, &websocket.DialOptions{Subprotocols: []string{protocol.Subprotocol}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.CloseNow()
		hello := protocol.Hello{Version: protocol.Version, Scope: sc}
		if err := conn.Write(ctx, websocket.MessageBinary, hello.Append(nil)); err != nil {
			t.Fatal(err)
		}
		_, msg, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("attach %s: %v", sc, err)
		}
		ft, body, _, err := protocol.Next(msg)
		if err != nil {
			t.Fatal(err)
		}
		return ft, body
	}
	for _, sc := range []string{"host.example./h/", "HOST.example/h/", "Host.Example.:8080/h/", "xn--bcher-kva.example/b/", "BÜCHER.example./b/"} {
		if ft, body := attach(sc); ft != protocol.TypeError {
			t.Errorf("a process without a credential registered %s beside team-a's scope (frame %v %q)", sc, ft, body)
		}
	}
	if ft, body := attach("other.example/h/"); ft != protocol.TypeWelcome {
		t.Errorf("dev mode refused an unclaimed host: frame %v %q", ft, body)
	}
}
