package main

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
	"github.com/switchboard-dev/switchboard/internal/testkit/wstest"
)

// TestInteropWithListenEcho: Python websockets and Node ws, clients nobody
// here wrote, through the real broker binary to `switchboard listen
// --echo`: subprotocol negotiated, text and binary echoed, close code and
// reason carried.
func TestInteropWithListenEcho(t *testing.T) {
	ws := startServe(t)
	testutil.StartListen(t, ws+"/echo/", "--echo", "--protocol", "chat")
	for _, c := range []wstest.Client{wstest.PythonClient, wstest.NodeClient} {
		run := wstest.RunClient(t, c, "--url", ws+"/echo/room", "--protocol", "chat", "--expect-protocol", "chat")
		r := run.Result
		if !r.OK || r.Echoed != 7 || r.Close == nil || r.Close.Code != 4001 || r.Close.Reason != "bye" {
			t.Fatalf("%s through listen --echo: %+v\n%s", c, r, run.Stderr)
		}
	}
}

// TestServeSIGTERM: on SIGTERM the broker stops accepting, closes every
// channel with 1001 (going away), and exits 0.
func TestServeSIGTERM(t *testing.T) {
	p, base := testutil.StartServe(t, "--dev")
	ws := testutil.WS(base)
	testutil.StartListen(t, ws+"/echo/", "--echo")
	c := dial(t, ws+"/echo/x")
	send(t, c, websocket.MessageText, "before")
	expect(t, c, websocket.MessageText, "before")

	start := time.Now()
	p.Signal(syscall.SIGTERM)
	expectClose(t, c, websocket.StatusGoingAway, "")
	if code := p.Wait(); code != 0 {
		t.Fatalf("serve exited %d after SIGTERM, want 0; stderr:\n%s", code, strings.Join(p.Lines(), "\n"))
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("shutdown took %v", d)
	}
}
