package broker_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
	"github.com/switchboard-dev/switchboard/protocol"
)

// TestHandoverExpiryFreesChannels: a service whose link is lost while 20
// clients send (their channels fill and the broker stops reading them);
// when the handover times out, every channel is closed with 1012 and
// leaves the registration, and a new instance is handed none of them.
func TestHandoverExpiryFreesChannels(t *testing.T) {
	e := newEnv(t, broker.Limits{HandoverTimeout: 300 * time.Millisecond, Window: 16 << 10, ChannelBuffer: 32 << 10})
	s := e.attach(protocol.Hello{Scope: "/stuck/"})
	const n = 20
	clients := make([]*websocket.Conn, n)
	for i := range clients {
		_, clients[i] = e.open(s, "/stuck/x")
	}
	s.conn.CloseNow() // the service is gone; its channels wait for a new instance

	var wg sync.WaitGroup
	codes := make(chan websocket.StatusCode, n)
	for _, c := range clients {
		wg.Add(2)
		go func() { // send until the broker stops reading, then until the close
			defer wg.Done()
			msg := make([]byte, 8<<10)
			for c.Write(context.Background(), websocket.MessageBinary, msg) == nil {
			}
		}()
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, _, err := c.Read(ctx)
			codes <- websocket.CloseStatus(err)
			c.CloseNow()
		}()
	}
	channels := func() int {
		total := 0
		for _, r := range e.b.Status().Registrations {
			total += len(r.Channels)
		}
		return total
	}
	testutil.WaitFor(t, "the channels to leave the registration after the handover timeout", 15*time.Second, func() bool { return channels() == 0 })
	wg.Wait()
	close(codes)
	for code := range codes {
		if code != websocket.StatusServiceRestart && code != -1 {
			t.Errorf("client closed with %d, want 1012 (or the connection cut)", code)
		}
	}
	s2 := e.attach(protocol.Hello{Scope: "/stuck/"})
	_, c := e.open(s2, "/stuck/y") // the first frame the new instance gets is this client's Connect, not an Open
	c.CloseNow()
	if got := channels(); got > 1 {
		t.Fatalf("%d channels after a new instance attached; want at most its own", got)
	}
}
