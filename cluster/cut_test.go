package cluster_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
	"github.com/switchboard-dev/switchboard/protocol"
)

// rawService attaches to scope on n speaking the service protocol by hand,
// and returns its link.
func rawService(t *testing.T, n *node, scope string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, n.ws+protocol.LinkPath, &websocket.DialOptions{Subprotocols: []string{protocol.Subprotocol}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	conn.SetReadLimit(16 << 20)
	hello := protocol.Hello{Version: protocol.Version, Scope: n.ws + scope, Label: "raw"}
	if err := conn.Write(ctx, websocket.MessageBinary, hello.Append(nil)); err != nil {
		t.Fatal(err)
	}
	if ft, _ := readFrame(t, conn); ft != protocol.TypeWelcome {
		t.Fatalf("got %s, want welcome", ft)
	}
	return conn
}

// readFrame reads link messages until one holds a frame other than State,
// and returns its type and, for a Connect, its channel.
func readFrame(t *testing.T, conn *websocket.Conn) (protocol.Type, uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		_, msg, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("read link: %v", err)
		}
		for len(msg) > 0 {
			ft, body, rest, err := protocol.Next(msg)
			if err != nil {
				t.Fatalf("bad frame from broker: %v", err)
			}
			if ft == protocol.TypeConnect {
				var f protocol.Connect
				_ = f.Decode(body)
				return ft, f.Channel
			}
			if ft != protocol.TypeState {
				return ft, 0
			}
			msg = rest
		}
	}
}

// cutReason waits for the broker to end the link and returns the Error
// frame's message and the close status.
func cutReason(t *testing.T, conn *websocket.Conn) (string, websocket.StatusCode) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var reason string
	for {
		_, msg, err := conn.Read(ctx)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatal("the service's link was not cut")
			}
			return reason, websocket.CloseStatus(err)
		}
		for len(msg) > 0 {
			ft, body, rest, err := protocol.Next(msg)
			if err != nil {
				break
			}
			if ft == protocol.TypeError {
				var f protocol.Error
				_ = f.Decode(body)
				reason = f.Message
			}
			msg = rest
		}
	}
}

// TestRemoteServiceCut: a service attached to node c2 sends frames that
// node c1 refuses for its client's channel (a malformed frame; data past
// the channel's credit). As on a local link, the service is cut: its link
// ends with an Error frame and close status, and c1 detaches its proxy.
func TestRemoteServiceCut(t *testing.T) {
	ns := startNATS(t, -1)
	limits := broker.Limits{Window: 16 << 10}
	c1 := startNode(t, "c1", ns.ClientURL(), limits)
	c2 := startNode(t, "c2", ns.ClientURL(), limits)
	testutil.WaitFor(t, "peers", 20*time.Second, func() bool { return len(c1.c.Peers()) == 1 && len(c2.c.Peers()) == 1 })
	for _, tc := range []struct {
		name, scope string
		status      websocket.StatusCode
		misbehave   func(ctx context.Context, link *websocket.Conn, ch uint64)
	}{
		{"malformed frame", "/cut1/", websocket.StatusProtocolError, func(ctx context.Context, link *websocket.Conn, ch uint64) {
			body := binary.AppendUvarint(nil, ch) // a Data frame with a channel and nothing else
			frame := append([]byte{byte(protocol.TypeData)}, binary.AppendUvarint(nil, uint64(len(body)))...)
			_ = link.Write(ctx, websocket.MessageBinary, append(frame, body...))
		}},
		{"beyond credit", "/cut2/", websocket.StatusMessageTooBig, func(ctx context.Context, link *websocket.Conn, ch uint64) {
			chunk := bytes.Repeat([]byte("x"), 32<<10)
			for seq := uint64(1); seq < 4096; seq++ { // the client reads nothing: at most 128 MiB
				if link.Write(ctx, websocket.MessageBinary, protocol.AppendData(nil, ch, seq, 1, chunk)) != nil {
					return
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			link := rawService(t, c2, tc.scope)
			testutil.WaitFor(t, "c1 to know the service", 20*time.Second, func() bool {
				return actives([]*node{c1}, tc.scope)[0] == "c1: raw (of 1)"
			})
			dialed := make(chan *websocket.Conn, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				c, _, err := websocket.Dial(ctx, c1.ws+tc.scope+"x", nil)
				if err != nil {
					t.Errorf("client dial: %v", err)
				}
				dialed <- c
			}()
			ft, ch := readFrame(t, link)
			if ft != protocol.TypeConnect {
				t.Fatalf("got %s, want connect", ft)
			}
			ctx := context.Background()
			if err := link.Write(ctx, websocket.MessageBinary, (&protocol.Accept{Channel: ch}).Append(nil)); err != nil {
				t.Fatal(err)
			}
			client := <-dialed
			if client == nil {
				t.FailNow()
			}
			defer client.CloseNow()
			go tc.misbehave(ctx, link, ch)
			reason, status := cutReason(t, link)
			t.Logf("cut with %d: %q", status, reason)
			if status != tc.status || reason == "" {
				t.Fatalf("link ended with %d %q, want %d and an Error frame", status, reason, tc.status)
			}
			testutil.WaitFor(t, "c1 to drop its proxy", 20*time.Second, func() bool {
				return actives([]*node{c1}, tc.scope)[0] != "c1: raw (of 1)"
			})
		})
	}
}
