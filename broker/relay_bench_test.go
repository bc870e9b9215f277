package broker_test

import (
	"context"
	"io"
	"testing"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/internal/bufpool"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
	"github.com/switchboard-dev/switchboard/protocol"
)

// readInto reads one message of r into buf, reusing it.
func readInto(r io.Reader, buf *[]byte) (*[]byte, error) {
	*buf = (*buf)[:0]
	return bufpool.ReadAll(r, buf)
}

// runEchoLink attaches a minimal echo service on the raw protocol that
// reuses its buffers, so that a benchmark's allocations are the broker's and
// the WebSocket library's.
func runEchoLink(tb testing.TB, e *env, scope string) {
	ctx := context.Background()
	conn, _, err := websocket.Dial(ctx, e.ws+protocol.LinkPath, &websocket.DialOptions{Subprotocols: []string{protocol.Subprotocol}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.CloseNow() })
	conn.SetReadLimit(64 << 20) // the broker batches frames: link messages are large
	hello := protocol.Hello{Version: protocol.Version, Scope: e.ws + scope}
	if err := conn.Write(ctx, websocket.MessageBinary, hello.Append(nil)); err != nil {
		tb.Fatal(err)
	}
	go func() {
		buf := bufpool.Get(64 << 10)
		out := make([]byte, 0, 64<<10)
		for {
			_, r, err := conn.Reader(ctx)
			if err != nil {
				return
			}
			if buf, err = readInto(r, buf); err != nil {
				return
			}
			out = out[:0]
			for msg := *buf; len(msg) > 0; {
				typ, body, rest, err := protocol.Next(msg)
				if err != nil {
					return
				}
				msg = rest
				switch typ {
				case protocol.TypeConnect:
					var c protocol.Connect
					_ = c.Decode(body)
					out = (&protocol.Accept{Channel: c.Channel}).Append(out)
				case protocol.TypeData:
					var d protocol.Data
					_ = d.Decode(body)
					out = protocol.AppendAck(out, d.Channel, d.Seq)
					out = protocol.AppendData(out, d.Channel, 0, d.Flags, d.Payload)
				}
			}
			if len(out) > 0 {
				if err := conn.Write(ctx, websocket.MessageBinary, out); err != nil {
					return
				}
			}
		}
	}()
}

// BenchmarkRelayRoundTrip sends one 1 KiB message from a client through the
// broker to a service and back. With -benchmem, allocs/op counts the
// broker, the library, and the benchmark's own client and service, all in
// one process.
func BenchmarkRelayRoundTrip(b *testing.B) {
	e := newEnv(b, broker.Limits{})
	runEchoLink(b, e, "/bench/")
	ctx := context.Background()
	var client *websocket.Conn
	testutil.WaitFor(b, "service", 5e9, func() bool {
		c, err := e.tryDial("/bench/x", nil)
		client = c
		return err == nil
	})
	msg := make([]byte, 1024)
	buf := bufpool.Get(4096)
	b.SetBytes(1024)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := client.Write(ctx, websocket.MessageBinary, msg); err != nil {
			b.Fatal(err)
		}
		_, r, err := client.Reader(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if buf, err = readInto(r, buf); err != nil || len(*buf) != 1024 {
			b.Fatal(err)
		}
	}
}

// TestRelayDoesNotAllocate checks the steady-state data path: a relayed
// round trip (client → broker → service → broker → client) allocates
// nothing in the broker, counted over the whole process.
func TestRelayDoesNotAllocate(t *testing.T) {
	if testutil.RaceEnabled {
		t.Skip("the race detector allocates on its own; make test runs this test without it")
	}
	e := newEnv(t, broker.Limits{})
	runEchoLink(t, e, "/alloc/")
	ctx := context.Background()
	var client *websocket.Conn
	testutil.WaitFor(t, "service", 5e9, func() bool {
		c, err := e.tryDial("/alloc/x", nil)
		client = c
		return err == nil
	})
	msg := make([]byte, 1024)
	buf := bufpool.Get(4096)
	roundTrip := func() {
		if err := client.Write(ctx, websocket.MessageBinary, msg); err != nil {
			t.Fatal(err)
		}
		_, r, err := client.Reader(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if buf, err = readInto(r, buf); err != nil || len(*buf) != 1024 {
			t.Fatal(err)
		}
	}
	for i := 0; i < 200; i++ { // warm the pools
		roundTrip()
	}
	if allocs := testing.AllocsPerRun(2000, roundTrip); allocs > 0 {
		t.Fatalf("%v allocations per relayed round trip", allocs)
	}
}
