package sdk_test

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/broker"
)

// TestBurstToManyClients is the link contract from the service's side
// (PROTOCOL.md, "The link"): a service that writes 250 KB to each of 5
// clients at once queues more than the largest link message; the SDK's
// writer cuts it, so the broker (whose reader enforces the limit) keeps the
// link and every client gets its messages.
func TestBurstToManyClients(t *testing.T) {
	tb := startBroker(t, broker.Limits{})
	l := tb.listen("/burst/", nil)
	const clients, rounds, size = 5, 3, 250 << 10
	conns := make([]*websocket.Conn, clients)
	var wg sync.WaitGroup
	writers := make([]func(round int), clients)
	for i := range conns {
		c, ch, _ := tb.connect(l, fmt.Sprintf("/burst/%d", i))
		c.SetReadLimit(size)
		conns[i] = c
		writers[i] = func(round int) {
			defer wg.Done()
			p := bytes.Repeat([]byte{byte('a' + i), byte('0' + round)}, size/2)
			if err := ch.Write(ctxT(t), websocket.MessageBinary, p); err != nil {
				t.Errorf("channel %d write: %v", i, err)
			}
		}
	}
	for round := 0; round < rounds; round++ {
		wg.Add(clients)
		for _, w := range writers {
			go w(round)
		}
		wg.Wait()
		for i, c := range conns {
			_, p, err := c.Read(ctxT(t))
			if err != nil {
				t.Fatalf("round %d client %d: %v (link: %v)", round, i, err, l.Err())
			}
			if len(p) != size || p[0] != byte('a'+i) || p[1] != byte('0'+round) {
				t.Fatalf("round %d client %d: %d bytes starting %q", round, i, len(p), p[:2])
			}
		}
	}
	if err := l.Err(); err != nil {
		t.Fatalf("link ended: %v", err)
	}
}
