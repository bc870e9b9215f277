package broker_test

import (
	"encoding/binary"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/daemon"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
	"github.com/switchboard-dev/switchboard/internal/testkit/wstest"
	"github.com/switchboard-dev/switchboard/protocol"
)

// autoAccept has s accept every client, and returns the Close frames s
// receives.
func autoAccept(s *svc) <-chan *protocol.Close {
	closes := make(chan *protocol.Close, 8192)
	go func() {
		for f := range s.frames {
			switch v := f.v.(type) {
			case *protocol.Connect:
				s.send((&protocol.Accept{Channel: v.Channel}).Append(nil))
			case *protocol.Close:
				closes <- v
			}
		}
	}()
	return closes
}

// readClose reads from c until a close frame and returns its code, or 0
// when the connection ends without one.
func readClose(t *testing.T, c *wstest.Conn) (int, string) {
	t.Helper()
	for {
		m, err := c.ReadMessage()
		if err != nil {
			return 0, err.Error()
		}
		if m.Opcode == wstest.OpClose {
			if len(m.Payload) < 2 {
				return 1005, ""
			}
			return int(binary.BigEndian.Uint16(m.Payload)), string(m.Payload[2:])
		}
	}
}

// transports runs f once for each client transport of the broker: epoll
// (plain clients) and coder/websocket (wss:// clients, here every client
// through daemon.Options.GoroutineClients), with a client that offers
// permessage-deflate. dial opens a raw client to path.
func transports(t *testing.T, limits broker.Limits, f func(t *testing.T, e *env, dial func(path string) *wstest.Conn)) {
	t.Run("epoll", func(t *testing.T) {
		e := newEnv(t, limits)
		f(t, e, func(path string) *wstest.Conn { c, _ := wstest.Dial(t, e.ws+path, nil); return c })
	})
	t.Run("goroutines", func(t *testing.T) {
		b, ws := testutil.StartBroker(t, daemon.Settings{Limits: limits}, daemon.Options{GoroutineClients: true})
		e := &env{t: t, b: b, ws: ws, addr: strings.TrimPrefix(ws, "ws://")}
		offer := http.Header{"Sec-WebSocket-Extensions": {"permessage-deflate; client_no_context_takeover; server_no_context_takeover"}}
		f(t, e, func(path string) *wstest.Conn {
			c, resp := wstest.Dial(t, e.ws+path, offer)
			if resp.Header.Get("Sec-WebSocket-Extensions") == "" {
				t.Fatal("permessage-deflate was not negotiated")
			}
			return c
		})
	})
}

func nextClose(t *testing.T, closes <-chan *protocol.Close) *protocol.Close {
	t.Helper()
	select {
	case cf := <-closes:
		return cf
	case <-time.After(10 * time.Second):
		t.Fatal("the service was not told that the client closed")
		return nil
	}
}

// TestMessageTooBigCloseArrives: a client that sends far more than the
// limit in one go, and is still sending when the broker refuses it, reads
// the 1009 close frame (the broker finishes the closing handshake instead
// of resetting the connection with the rest unread), and the service is
// told 1009. A client that never answers the close frame is cut.
func TestMessageTooBigCloseArrives(t *testing.T) {
	transports(t, broker.Limits{MaxMessage: 1024}, testMessageTooBigCloseArrives)
}

func testMessageTooBigCloseArrives(t *testing.T, e *env, dial func(string) *wstest.Conn) {
	closes := autoAccept(e.attach(protocol.Hello{Scope: "/big/"}))
	big := make([]byte, 4<<20)
	for i := 0; i < 5; i++ {
		c := dial("/big/")
		go func() { _ = c.WriteFrames(wstest.Frame{Fin: true, Opcode: wstest.OpBinary, Payload: big}) }()
		if code, reason := readClose(t, c); code != 1009 {
			t.Fatalf("round %d: client got %d %q, want the 1009 close frame", i, code, reason)
		}
		if i == 0 { // a client that never answers the close is cut after the linger
			c.Timeout = 10 * time.Second
			start := time.Now()
			if m, err := c.ReadMessage(); err == nil {
				t.Fatalf("after the close frame the client read %v", m)
			} else if d := time.Since(start); d > 8*time.Second {
				t.Fatalf("the connection stayed open %v after the close frame: %v", d, err)
			}
		}
		c.Close()
		if cf := nextClose(t, closes); cf.Code != 1009 {
			t.Fatalf("service told %+v, want 1009", cf)
		}
	}
}

// TestProtocolErrorToldToService: a client that breaks the protocol gets
// 1002, and its service is told 1002 with what the client did, not 1006.
func TestProtocolErrorToldToService(t *testing.T) {
	transports(t, broker.Limits{}, testProtocolErrorToldToService)
}

func testProtocolErrorToldToService(t *testing.T, e *env, dial func(string) *wstest.Conn) {
	closes := autoAccept(e.attach(protocol.Hello{Scope: "/bad/"}))
	for _, tc := range []struct {
		name string
		f    wstest.Frame
	}{
		{"unmasked", wstest.Frame{Fin: true, Opcode: wstest.OpText, Payload: []byte("hi"), Unmasked: true}},
		{"reserved opcode", wstest.Frame{Fin: true, Opcode: 3}},
		{"rsv bits", wstest.Frame{Fin: true, RSV: wstest.RSV2, Opcode: wstest.OpText, Payload: []byte("hi")}},
	} {
		c := dial("/bad/")
		if err := c.WriteFrames(tc.f); err != nil {
			t.Fatal(err)
		}
		if code, reason := readClose(t, c); code != 1002 {
			t.Fatalf("%s: client got %d %q, want 1002", tc.name, code, reason)
		}
		c.Close()
		cf := nextClose(t, closes)
		if cf.Code != 1002 || !strings.HasPrefix(cf.Reason, "protocol error: ") {
			t.Fatalf("%s: service told %+v, want 1002 with the cause", tc.name, cf)
		}
	}
}

// TestInvalidUTF8CloseReasonGets1007: a close frame whose reason is not
// UTF-8 is answered with 1007, and the service is told 1007.
func TestInvalidUTF8CloseReasonGets1007(t *testing.T) {
	e := newEnv(t, broker.Limits{})
	closes := autoAccept(e.attach(protocol.Hello{Scope: "/r/"}))
	c, _ := wstest.Dial(t, e.ws+"/r/", nil)
	if err := c.WriteFrames(wstest.Frame{Fin: true, Opcode: wstest.OpClose, Payload: wstest.ClosePayload(1000, "bad \xed\xa0\x80")}); err != nil {
		t.Fatal(err)
	}
	if code, reason := readClose(t, c); code != 1007 {
		t.Fatalf("client got %d %q, want 1007", code, reason)
	}
	if cf := nextClose(t, closes); cf.Code != 1007 {
		t.Fatalf("service told %+v, want 1007", cf)
	}
}
