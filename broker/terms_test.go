package broker_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/daemon"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
	"github.com/switchboard-dev/switchboard/protocol"
)

// TestTerms: what Authorize puts into AuthRequest.Terms bounds the
// instance: the channel cap rejects connects beyond it, Release runs once
// at detach, Expires ends the link with the given message. The link's
// Origin and the private flag reach Authorize, and a private scope is made
// under the path the service gave.
func TestTerms(t *testing.T) {
	var released atomic.Int32
	var gotOrigin atomic.Value
	auth := func(_ context.Context, req broker.AuthRequest) (string, error) {
		gotOrigin.Store(req.Origin)
		if req.Private && !strings.HasPrefix(req.Scope.Path, "/tabs/~") {
			return "", errors.New("private scope not under /tabs/: " + req.Scope.Path)
		}
		req.Terms.MaxChannels = 1
		req.Terms.Release = func() { released.Add(1) }
		if req.Credential == "short" {
			req.Terms.Expires = time.Now().Add(300 * time.Millisecond)
			req.Terms.ExpiredMessage = "grant ran out"
		}
		return "owner", nil
	}
	_, ws := testutil.StartBroker(t, daemon.Settings{}, daemon.Options{Authorize: auth})
	e := &env{t: t, ws: ws, addr: strings.TrimPrefix(ws, "ws://")}

	s := e.attach(protocol.Hello{Scope: "/capped/"})
	_, c1 := e.open(s, "/capped/a")
	if _, err := e.tryDial("/capped/b", nil); err == nil {
		t.Fatal("a second channel passed a cap of 1")
	}
	c1.Close(websocket.StatusNormalClosure, "")
	s.next(protocol.TypeClose)
	_, c2 := e.open(s, "/capped/c") // room again
	c2.CloseNow()
	s.conn.Close(websocket.StatusNormalClosure, "")
	testutil.WaitFor(t, "Release at detach", 5*time.Second, func() bool { return released.Load() == 1 })

	// Expiry ends the link with an Unauthorized error frame.
	short := e.attach(protocol.Hello{Scope: "/short/", Credential: "short"})
	select {
	case <-short.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the link outlived its terms")
	}
	if err := short.conn.Ping(context.Background()); err == nil {
		t.Fatal("expired link still answers")
	}
	testutil.WaitFor(t, "Release after expiry", 5*time.Second, func() bool { return released.Load() == 2 })

	// The Origin of the link's handshake reaches Authorize; private under a path.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h := http.Header{"Origin": {"https://page.example"}}
	conn, _, err := websocket.Dial(ctx, ws+protocol.LinkPath, &websocket.DialOptions{Subprotocols: []string{protocol.Subprotocol}, HTTPHeader: h})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	hello := protocol.Hello{Version: protocol.Version, Scope: ws + "/tabs/", Flags: protocol.HelloPrivate}
	if err := conn.Write(ctx, websocket.MessageBinary, hello.Append(nil)); err != nil {
		t.Fatal(err)
	}
	_, msg, err := conn.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	typ, body, _, _ := protocol.Next(msg)
	var w protocol.Welcome
	if typ != protocol.TypeWelcome || w.Decode(body) != nil {
		t.Fatalf("no welcome: %v", typ)
	}
	if !strings.HasPrefix(w.Scope, "/tabs/~") || !strings.HasPrefix(w.PublicURL, ws+"/tabs/~") {
		t.Errorf("private scope %q at %q, want under /tabs/", w.Scope, w.PublicURL)
	}
	if o, _ := gotOrigin.Load().(string); o != "https://page.example" {
		t.Errorf("AuthRequest.Origin = %q", o)
	}
}
