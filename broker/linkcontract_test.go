package broker_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/protocol"
)

// TestLinkWriterCutsBatches checks the broker's side of the link contract
// (PROTOCOL.md, "The link"): a burst of client messages far larger than
// the largest link message reaches the service in link messages within
// protocol.MaxLinkMessage, with every message intact. The service stops
// reading while the burst is queued, so the broker's writer finds megabytes
// waiting when it resumes.
func TestLinkWriterCutsBatches(t *testing.T) {
	e := newEnv(t, broker.Limits{})
	limit := protocol.MaxLinkMessage(1 << 20) // the default max_message
	const clients, perClient, size = 6, 3, 250 << 10

	// A service whose reader the test controls.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	link, _, err := websocket.Dial(ctx, e.ws+protocol.LinkPath, &websocket.DialOptions{Subprotocols: []string{protocol.Subprotocol}})
	if err != nil {
		t.Fatal(err)
	}
	defer link.CloseNow()
	link.SetReadLimit(int64(limit)) // the contract: a larger message fails the read
	hello := protocol.Hello{Version: protocol.Version, Scope: e.ws + "/burst/", Window: 1 << 20}
	if err := link.Write(ctx, websocket.MessageBinary, hello.Append(nil)); err != nil {
		t.Fatal(err)
	}
	_, msg, err := link.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var w protocol.Welcome
	if typ, body, _, err := protocol.Next(msg); err != nil || typ != protocol.TypeWelcome || w.Decode(body) != nil {
		t.Fatalf("no welcome: %v", err)
	}
	if got := protocol.MaxLinkMessage(w.MaxMessage); got != limit {
		t.Fatalf("welcome max message %d", w.MaxMessage)
	}

	// Clients connect; the service answers from its own reader below.
	type dialed struct {
		c   *websocket.Conn
		err error
	}
	dials := make(chan dialed, clients)
	for i := 0; i < clients; i++ {
		go func(i int) {
			c, _, err := websocket.Dial(ctx, fmt.Sprintf("%s/burst/%d", e.ws, i), nil)
			dials <- dialed{c, err}
		}(i)
	}
	for accepted := 0; accepted < clients; {
		_, msg, err := link.Read(ctx)
		if err != nil {
			t.Fatalf("read connect requests: %v", err)
		}
		for len(msg) > 0 {
			typ, body, rest, err := protocol.Next(msg)
			if err != nil {
				t.Fatal(err)
			}
			msg = rest
			if typ != protocol.TypeConnect {
				continue
			}
			var c protocol.Connect
			if err := c.Decode(body); err != nil {
				t.Fatal(err)
			}
			a := protocol.Accept{Channel: c.Channel}
			if err := link.Write(ctx, websocket.MessageBinary, a.Append(nil)); err != nil {
				t.Fatal(err)
			}
			accepted++
		}
	}
	var burst []*websocket.Conn
	for i := 0; i < clients; i++ {
		d := <-dials
		if d.err != nil {
			t.Fatalf("client dial: %v", d.err)
		}
		defer d.c.CloseNow()
		burst = append(burst, d.c)
	}

	// The burst: every client sends its messages while the service reads
	// nothing, so the broker's queue for the link grows to megabytes.
	payload := func(client, k int) []byte {
		return bytes.Repeat([]byte{byte('a' + client), byte('0' + k)}, size/2)
	}
	var wg sync.WaitGroup
	for i, c := range burst {
		wg.Add(1)
		go func(i int, c *websocket.Conn) {
			defer wg.Done()
			for k := 0; k < perClient; k++ {
				if err := c.Write(ctx, websocket.MessageBinary, payload(i, k)); err != nil {
					t.Errorf("client %d write: %v", i, err)
				}
			}
		}(i, c)
	}
	wg.Wait()

	// Now read: every message arrives, in link messages within the limit
	// (a larger one fails the read, as it would fail any reader that
	// keeps to the contract).
	got, largest := 0, 0
	for got < clients*perClient {
		_, msg, err := link.Read(ctx)
		if err != nil {
			t.Fatalf("after %d of %d messages: read link: %v (largest link message so far %d, limit %d)", got, clients*perClient, err, largest, limit)
		}
		largest = max(largest, len(msg))
		for len(msg) > 0 {
			typ, body, rest, err := protocol.Next(msg)
			if err != nil {
				t.Fatal(err)
			}
			msg = rest
			if typ != protocol.TypeData {
				continue
			}
			var d protocol.Data
			if err := d.Decode(body); err != nil {
				t.Fatal(err)
			}
			if len(d.Payload) != size || d.Payload[1] != byte('0'+int(d.Seq-1)) {
				t.Fatalf("channel %d seq %d: %d bytes starting %q", d.Channel, d.Seq, len(d.Payload), d.Payload[:2])
			}
			if err := link.Write(ctx, websocket.MessageBinary, protocol.AppendAck(nil, d.Channel, d.Seq)); err != nil {
				t.Fatal(err)
			}
			got++
		}
	}
	if largest > limit {
		t.Fatalf("largest link message %d bytes, over the limit %d", largest, limit)
	}
	t.Logf("%d messages of %d bytes in link messages of at most %d bytes (limit %d)", got, size, largest, limit)
}
