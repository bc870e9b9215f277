package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/config"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
)

// prodBroker is a production broker (config file with a credential owning
// /svc/, an admin token, no --dev) started as a process.
type prodBroker struct {
	p      *testutil.Process
	ws     string // ws://127.0.0.1:PORT
	http   string
	cfg    string // the config file's path
	secret string // the credential owning /svc/
}

const testAdminToken = "admin-token-0123456789abcdef0123456789"

func startProdBroker(t *testing.T, extra ...string) *prodBroker {
	t.Helper()
	secret, hash, err := config.NewCredential()
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "config.json")
	body := fmt.Sprintf(`{"admin_token": %q, "credentials": [{"name": "svc", "credential_hash": %q, "scopes": ["/svc/"]}]}`, testAdminToken, hash)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	p, base := testutil.StartServe(t, append([]string{"--config", cfg}, extra...)...)
	return &prodBroker{p: p, ws: testutil.WS(base), http: base, cfg: cfg, secret: secret}
}

// TestRejectedHandshakeIsLogged: on a production broker, a client refused
// for any reason gets the uniform 404 with no reason, and the broker logs
// the reason at INFO (path only, never the query).
func TestRejectedHandshakeIsLogged(t *testing.T) {
	b := startProdBroker(t)
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, b.http+"/nothing/here?secret=hunter2", nil)
	for k, v := range map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="} {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || string(body) != "Not Found\n" {
		t.Fatalf("client got %d %q, want the uniform 404", resp.StatusCode, body)
	}
	b.p.WaitLine(`level=INFO msg="client handshake refused" reason=no_scope path=/nothing/here remote=127\.0\.0\.1:`)
	for _, l := range b.p.Lines() {
		if strings.Contains(l, "hunter2") {
			t.Fatalf("the query reached the log: %s", l)
		}
	}
}

// TestListenBackendDownIsWarned: on a production broker, `listen --to` a
// backend that is down logs WARN per refused client, and `--exec` a
// command that fails logs WARN.
func TestListenBackendDownIsWarned(t *testing.T) {
	b := startProdBroker(t)
	l, _ := testutil.StartListen(t, b.ws+"/svc/to/", "--to", "ws://127.0.0.1:1/", "--credential", b.secret)
	c, resp, err := dialRaw(b.ws + "/svc/to/x")
	if err == nil {
		c.CloseNow()
		t.Fatal("a client was accepted with the backend down")
	}
	if resp == nil || resp.StatusCode != 404 {
		t.Fatalf("client with the backend down: %v %v", resp, err)
	}
	l.WaitLine(`level=WARN msg="client rejected: the local side failed".*dial ws://127\.0\.0\.1:1/x`)

	e, _ := testutil.StartListen(t, b.ws+"/svc/exec/", "--exec", "exit 3", "--credential", b.secret)
	c2 := dial(t, b.ws+"/svc/exec/")
	_, _, _ = c2.Read(tctx(t))
	e.WaitLine(`level=WARN msg="--exec process failed" channel=\d+ status="exit status 3"`)
}

// dialRaw dials url and returns the handshake response whatever happened.
func dialRaw(url string) (*websocket.Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return websocket.Dial(ctx, url, nil)
}
