package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/daemon"
	"github.com/switchboard-dev/switchboard/sdk"
)

// TestServiceCookiesStayInScope: a service's Set-Cookie (on accept and on
// its own response) keeps to its scope: Path=/, a path outside the scope,
// a Domain, a __Host- cookie and the chooser's cookie name are dropped; no
// Path becomes the scope's; a path under the scope is kept. The chooser's
// session cookie a client sends is not forwarded to the service.
func TestServiceCookiesStayInScope(t *testing.T) {
	addr, secret := prodBroker(t, daemon.Settings{RefusalFloor: -1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l, err := sdk.Listen(ctx, "ws://"+addr+"/svc/", &sdk.ListenOptions{Credential: secret})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cookies := http.Header{"Set-Cookie": {
		"root=1; Path=/", "other=2; Path=/svcother/", "dom=3; Domain=127.0.0.1; Path=/svc/",
		"__Host-x=4; Path=/; Secure", "sb_chooser=forged; Path=/svc/", "up=5; Path=/svc/../",
		"plain=6", "deep=7; Path=/svc/room/",
	}}
	seen := make(chan string, 2)
	go func() {
		for {
			req, err := l.Accept(ctx)
			if err != nil {
				return
			}
			var cookie []string
			for _, h := range req.Headers {
				if h.Name == "Cookie" {
					cookie = append(cookie, h.Value)
				}
			}
			seen <- strings.Join(cookie, " | ")
			if strings.Contains(req.Target, "/respond") {
				_ = req.Respond(ctx, 401, cookies, []byte("no"))
			} else {
				_, _ = req.Accept(ctx, "", cookies)
			}
		}
	}()
	want := []string{"plain=6; Path=/svc/", "deep=7; Path=/svc/room/"}
	check := func(what string, h http.Header) {
		t.Helper()
		got := h.Values("Set-Cookie")
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: Set-Cookie %q, want %q", what, got, want)
		}
	}
	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	defer dcancel()
	hdr := http.Header{"Cookie": {"sb_chooser=SESSION-SECRET; theme=dark"}}
	c, resp, err := websocket.Dial(dctx, "ws://"+addr+"/svc/x", &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		t.Fatal(err)
	}
	c.CloseNow()
	check("accept", resp.Header)
	if got := <-seen; got != "theme=dark" {
		t.Errorf("the service saw Cookie %q, want only theme=dark", got)
	}
	_, resp, err = websocket.Dial(dctx, "ws://"+addr+"/svc/respond", &websocket.DialOptions{HTTPHeader: hdr})
	if err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("custom response: %v %v", resp, err)
	}
	check("custom response", resp.Header)
	<-seen
}
