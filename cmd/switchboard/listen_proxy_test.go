package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
)

// TestListenToProxyHeaders: on a production broker, `listen --to` passes
// the client's Origin, Cookie and User-Agent to the backend and adds
// X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host and Forwarded
// (RFC 7239), like a reverse proxy; --bad-gateway answers 502 when the
// backend is down (off by default: the uniform 404); a bad --to URL is a
// usage error at startup.
func TestListenToProxyHeaders(t *testing.T) {
	b := startProdBroker(t)
	seen := make(chan http.Header, 1)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: []string{"app.example"}})
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.Write(context.Background(), websocket.MessageText, []byte("hi"))
		c.Read(context.Background())
	}))
	t.Cleanup(backend.Close)
	testutil.StartListen(t, b.ws+"/svc/", "--to", "ws"+strings.TrimPrefix(backend.URL, "http")+"/", "--credential", b.secret)

	h := http.Header{}
	h.Set("Origin", "https://app.example")
	h.Set("Cookie", "session=abc")
	h.Set("User-Agent", "test-agent/1.0")
	h.Set("X-Forwarded-For", "198.51.100.7")
	c, _, err := websocket.Dial(tctx(t), b.ws+"/svc/room", &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	expect(t, c, websocket.MessageText, "hi")
	got := <-seen
	host := strings.TrimPrefix(b.ws, "ws://")
	for k, want := range map[string]string{
		"Origin": "https://app.example", "Cookie": "session=abc", "User-Agent": "test-agent/1.0",
		"X-Forwarded-For": "198.51.100.7, 127.0.0.1", "X-Forwarded-Proto": "http", "X-Forwarded-Host": host,
		"Forwarded": `for=127.0.0.1;proto=http;host="` + host + `"`,
	} {
		if got.Get(k) != want {
			t.Errorf("backend saw %s: %q, want %q", k, got.Get(k), want)
		}
	}

	// Backend down: 404 by default, 502 with --bad-gateway.
	l, _ := testutil.StartListen(t, b.ws+"/svc/down502/", "--to", "ws://127.0.0.1:1/", "--bad-gateway", "--credential", b.secret)
	l.WaitLine(`level=WARN msg="the --to backend is down`)
	_, resp, err := websocket.Dial(tctx(t), b.ws+"/svc/down502/", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("--bad-gateway with the backend down: %v %v", resp, err)
	}

	if _, e, code := testutil.Run(t, "", nil, "listen", b.ws+"/svc/x/", "--to", "http//nope"); code != 2 || !strings.Contains(e, "want a ws:// or wss:// URL") {
		t.Fatalf("bad --to: %d %s", code, e)
	}
}
