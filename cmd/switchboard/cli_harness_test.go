package main

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.RemoveBuilt()
	os.Exit(code)
}

// startServe runs `switchboard serve --dev` on a free loopback port and
// returns its ws:// base URL.
func startServe(t *testing.T) string {
	t.Helper()
	_, base := testutil.StartServe(t, "--dev")
	return testutil.WS(base)
}

func dial(t *testing.T, url string, protocols ...string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: protocols})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func tctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func send(t *testing.T, c *websocket.Conn, typ websocket.MessageType, s string) {
	t.Helper()
	if err := c.Write(tctx(t), typ, []byte(s)); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func expect(t *testing.T, c *websocket.Conn, typ websocket.MessageType, want string) {
	t.Helper()
	got, p, err := c.Read(tctx(t))
	if err != nil {
		t.Fatalf("read (want %q): %v", want, err)
	}
	if got != typ || string(p) != want {
		t.Fatalf("read %v %q, want %v %q", got, p, typ, want)
	}
}

func expectClose(t *testing.T, c *websocket.Conn, code websocket.StatusCode, reasonPrefix string) {
	t.Helper()
	_, p, err := c.Read(tctx(t))
	var ce websocket.CloseError
	if err == nil {
		t.Fatalf("read %q, want close %d", p, code)
	}
	if !errors.As(err, &ce) || ce.Code != code || !strings.HasPrefix(ce.Reason, reasonPrefix) {
		t.Fatalf("read error %v, want close %d %q", err, code, reasonPrefix)
	}
}
