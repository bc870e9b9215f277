package broker_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
	"github.com/switchboard-dev/switchboard/internal/testkit/wstest"
	"github.com/switchboard-dev/switchboard/protocol"
)

// acceptAsync has s accept the next connect request, from a goroutine of
// its own (the client's dial waits for it); it reports the channel id.
func acceptAsync(s *svc) <-chan any {
	res := make(chan any, 1)
	go func() {
		for f := range s.frames {
			if f.typ == protocol.TypeCredit {
				continue
			}
			c, ok := f.v.(*protocol.Connect)
			if !ok {
				res <- fmt.Errorf("got %s frame %+v, want a connect request", f.typ, f.v)
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			s.wmu.Lock()
			err := s.conn.Write(ctx, websocket.MessageBinary, (&protocol.Accept{Channel: c.Channel}).Append(nil))
			s.wmu.Unlock()
			cancel()
			if err != nil {
				res <- err
			} else {
				res <- c.Channel
			}
			return
		}
	}()
	return res
}

// dialAccepted connects a raw client to path with dial, accepted by s.
func dialAccepted(t *testing.T, dial func(string) *wstest.Conn, s *svc, path string) (*wstest.Conn, uint64) {
	t.Helper()
	res := acceptAsync(s)
	c := dial(path)
	switch v := (<-res).(type) {
	case uint64:
		return c, v
	case error:
		t.Fatal(v)
	}
	return nil, 0
}

func textFrame(s string) wstest.Frame {
	return wstest.Frame{Fin: true, Opcode: wstest.OpText, Payload: []byte(s)}
}

func closeFrame(code uint16, reason string) wstest.Frame {
	return wstest.Frame{Fin: true, Opcode: wstest.OpClose, Payload: wstest.ClosePayload(code, reason)}
}

func channelsOpen(e *env) int { return e.b.Status().Counters.Channels }

// TestClientCloseWaitsForService: a client that sends two messages
// and its close frame at once still gets the replies the service sends
// only after it was told of the close, then the close frame that answers
// the client's once the service answered (on the epoll loops with the
// service's code, on coder/websocket an echo of the client's), and then the
// connection ends and the channel with it. Both transports: ws:// clients
// on the epoll loops, and wss:// ones on coder/websocket (a CloseHold
// keeps the client's close frame from the library until the answer).
func TestClientCloseWaitsForService(t *testing.T) {
	transports(t, broker.Limits{CloseTimeout: time.Minute}, testClientCloseWaitsForService) // only the service's answer ends this wait
}

func testClientCloseWaitsForService(t *testing.T, e *env, dial func(string) *wstest.Conn) {
	s := e.attach(protocol.Hello{Scope: "/late/"})
	c, ch := dialAccepted(t, dial, s, "/late/x")
	if err := c.WriteFrames(textFrame("a"), textFrame("b"), closeFrame(1000, "bye")); err != nil {
		t.Fatal(err)
	}
	d1 := s.next(protocol.TypeData).(*protocol.Data)
	d2 := s.next(protocol.TypeData).(*protocol.Data)
	if cf := s.next(protocol.TypeClose).(*protocol.Close); cf.Channel != ch || cf.Code != 1000 || cf.Reason != "bye" {
		t.Fatalf("service told %+v, want the client's 1000 bye", cf)
	}
	if string(d1.Payload) != "a" || string(d2.Payload) != "b" {
		t.Fatalf("service got %q %q", d1.Payload, d2.Payload)
	}
	// Only now, with the client's close in hand, does the service reply;
	// then it answers the close.
	s.send(protocol.AppendData(nil, ch, 0, 0, []byte("re: a")), protocol.AppendData(nil, ch, 0, 0, []byte("re: b")),
		protocol.AppendAck(nil, ch, d2.Seq))
	for _, want := range []string{"re: a", "re: b"} {
		m, err := c.ReadMessage()
		if err != nil || m.Opcode != wstest.OpText || string(m.Payload) != want {
			t.Fatalf("client read %v %q (%v), want %q before the close", m.Opcode, m.Payload, err, want)
		}
	}
	if n := channelsOpen(e); n != 1 {
		t.Fatalf("%d channels open while the client waits for the answer, want 1", n)
	}
	s.send((&protocol.Close{Channel: ch, Code: 4001, Reason: "done"}).Append(nil))
	wantCode, wantReason := 4001, "done" // the service's answer
	if strings.HasSuffix(t.Name(), "/goroutines") {
		wantCode, wantReason = 1000, "bye" // coder/websocket answers, echoing the client
	}
	if code, reason := readClose(t, c); code != wantCode || reason != wantReason {
		t.Fatalf("client got close %d %q, want %d %q", code, reason, wantCode, wantReason)
	}
	if m, err := c.ReadMessage(); err == nil {
		t.Fatalf("after the close handshake the client read %v", m)
	}
	testutil.Eventually(t, "the channel to end", func() bool { return channelsOpen(e) == 0 })

	// Many clients waiting for their answer each get their own answer; on
	// the epoll loops they hold no goroutine each (the wait is a timer).
	const n = 20
	before := runtime.NumGoroutine()
	conns := make([]*wstest.Conn, n)
	ids := make([]uint64, n)
	for i := range conns {
		conns[i], ids[i] = dialAccepted(t, dial, s, fmt.Sprintf("/late/%d", i))
		if err := conns[i].WriteFrames(closeFrame(1000, "bye")); err != nil {
			t.Fatal(err)
		}
		s.next(protocol.TypeClose)
	}
	if g := runtime.NumGoroutine(); strings.HasSuffix(t.Name(), "/epoll") && g > before+n/2 {
		t.Fatalf("%d goroutines with %d clients waiting for their close, %d before: one each?", g, n, before)
	}
	for i, c := range conns {
		s.send(protocol.AppendData(nil, ids[i], 0, 0, []byte(fmt.Sprint("last ", i))), (&protocol.Close{Channel: ids[i], Code: 1000}).Append(nil))
		if m, err := c.ReadMessage(); err != nil || string(m.Payload) != fmt.Sprint("last ", i) {
			t.Fatalf("client %d read %q %v", i, m.Payload, err)
		}
		if code, _ := readClose(t, c); code != 1000 {
			t.Fatalf("client %d got close %d", i, code)
		}
	}
	testutil.Eventually(t, "the channels to end", func() bool { return channelsOpen(e) == 0 })
}

// TestClientCloseTimeout: a service that never answers a client's close
// is not waited for past limits.close_timeout: the broker then echoes the
// client's close frame, and what the service sends later is dropped.
func TestClientCloseTimeout(t *testing.T) {
	transports(t, broker.Limits{CloseTimeout: closeTimeout}, testClientCloseTimeout)
}

const closeTimeout = 300 * time.Millisecond

func testClientCloseTimeout(t *testing.T, e *env, dial func(string) *wstest.Conn) {
	const timeout = closeTimeout
	s := e.attach(protocol.Hello{Scope: "/mute/"})
	conns := make([]*wstest.Conn, 3)
	ids := make([]uint64, len(conns))
	for i := range conns {
		conns[i], ids[i] = dialAccepted(t, dial, s, fmt.Sprintf("/mute/%d", i))
	}
	start := time.Now()
	for i, c := range conns {
		if err := c.WriteFrames(closeFrame(4000+uint16(i), "bye")); err != nil {
			t.Fatal(err)
		}
	}
	for range conns {
		s.next(protocol.TypeClose)
	}
	for i, c := range conns {
		if code, reason := readClose(t, c); code != 4000+i || reason != "bye" {
			t.Fatalf("client %d got close %d %q, want its own %d bye echoed", i, code, reason, 4000+i)
		}
		if d := time.Since(start); d < timeout {
			t.Fatalf("client %d answered after %v, before the close timeout", i, d)
		}
	}
	// The service's late reply and answer go nowhere, and break nothing.
	s.send(protocol.AppendData(nil, ids[0], 0, 0, []byte("too late")), (&protocol.Close{Channel: ids[0], Code: 1000}).Append(nil))
	for i, c := range conns {
		if m, err := c.ReadMessage(); err == nil {
			t.Fatalf("client %d read %v %q after the close handshake", i, m.Opcode, m.Payload)
		}
	}
	testutil.Eventually(t, "the channels to end", func() bool { return channelsOpen(e) == 0 })
}
