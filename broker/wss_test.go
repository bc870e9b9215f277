package broker_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"net/http"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/internal/testkit/streamtest"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
	"github.com/switchboard-dev/switchboard/internal/testkit/wstest"
	"github.com/switchboard-dev/switchboard/protocol"
)

// TestWSSIdleClientsHoldNoGoroutine: a wss:// client that sends nothing
// costs the broker no goroutine either: once its TLS handshake and its
// WebSocket handshake are done, the loops read and write its TLS records.
func TestWSSIdleClientsHoldNoGoroutine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the epoll loops are Linux's")
	}
	e := newEnvTLS(t, broker.Limits{})
	s := e.attach(protocol.Hello{Scope: "/idle/"})
	autoAccept(s)
	const n = 300
	c0, _ := wstest.DialTLS(t, e.ws+"/idle/", nil, e.tls) // the loops start with the first client
	before := runtime.NumGoroutine()
	for range n {
		wstest.DialTLS(t, e.ws+"/idle/", nil, e.tls)
	}
	var after int
	testutil.WaitFor(t, "handler goroutines to end", 10*time.Second, func() bool {
		after = runtime.NumGoroutine()
		return after-before < n/10
	})
	t.Logf("%d idle wss:// clients: %d goroutines before, %d after", n, before, after)
	// The first client still works: it pings, the loops answer over TLS.
	if err := c0.WriteFrames(wstest.Frame{Fin: true, Opcode: wstest.OpPing, Payload: []byte("hi")}); err != nil {
		t.Fatal(err)
	}
	m, err := c0.ReadMessage()
	if err != nil || m.Opcode != wstest.OpPong || string(m.Payload) != "hi" {
		t.Fatalf("ping over wss: got %v, %v; want pong hi", m, err)
	}
}

// TestWSSLargeMessagesRelay: 4 MiB messages, whole and in 64 fragments,
// relay over wss:// to an echo service and back (many TLS records each
// way, the broker's writes cut into chunks).
func TestWSSLargeMessagesRelay(t *testing.T) {
	if testutil.RaceEnabled {
		t.Skip("4 MiB through TLS and the race detector is slow; make test runs this test without it")
	}
	e := newEnvTLS(t, broker.Limits{MaxMessage: 8 << 20})
	streamtest.EchoTLS(t, e.ws+"/big/", e.tls)
	c, _ := wstest.DialTLS(t, e.ws+"/big/x", nil, e.tls)
	c.Timeout = 30 * time.Second
	p := make([]byte, 4<<20)
	for i := range p {
		p[i] = byte(i * 7)
	}
	for _, parts := range []int{1, 64} {
		var frames []wstest.Frame
		step := len(p) / parts
		for i := range parts {
			op := wstest.OpContinuation
			if i == 0 {
				op = wstest.OpBinary
			}
			frames = append(frames, wstest.Frame{Fin: i == parts-1, Opcode: op, Payload: p[i*step : (i+1)*step]})
		}
		if err := c.WriteFrames(frames...); err != nil {
			t.Fatalf("%d parts: write: %v", parts, err)
		}
		m, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("%d parts: read: %v", parts, err)
		}
		if m.Opcode != wstest.OpBinary || !bytes.Equal(m.Payload, p) {
			t.Fatalf("%d parts: got %d bytes (opcode %d), want the 4 MiB back", parts, len(m.Payload), m.Opcode)
		}
	}
}

// TestWSSSlowReader: a wss:// client with a small receive buffer streams
// 8 MiB of numbered messages through an echo service and reads none of the
// echoes until the broker's socket to it is full (a write the socket did
// not take whole: the loops then hold ciphertext and wait for EPOLLOUT; 8
// MiB is more than the two sockets' buffers can hold). Then it reads them
// all: every echo comes back whole and in order.
func TestWSSSlowReader(t *testing.T) {
	e := newEnvTLS(t, broker.Limits{Window: 64 << 10, ChannelBuffer: 256 << 10})
	streamtest.EchoTLS(t, e.ws+"/slow/", e.tls)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = e.tls
	tr.DialContext = (&net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		if err != nil {
			return err
		}
		return serr
	}}).DialContext
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, e.ws+"/slow/x", &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 20)
	const size, count = 32 << 10, 256 // 8 MiB
	msg := func(i int) []byte {
		p := bytes.Repeat([]byte{byte(i)}, size)
		binary.BigEndian.PutUint32(p, uint32(i))
		return p
	}
	waits := e.b.Status().Counters.WriteWaits
	werr := make(chan error, 1)
	go func() {
		for i := range count {
			if err := c.Write(ctx, websocket.MessageBinary, msg(i)); err != nil {
				werr <- err
				return
			}
		}
		werr <- nil
	}()
	testutil.WaitFor(t, "a write to the client that waits for its socket", 30*time.Second, func() bool {
		return e.b.Status().Counters.WriteWaits > waits
	})
	for i := range count {
		_, p, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("echo %d: %v", i, err)
		}
		if !bytes.Equal(p, msg(i)) {
			t.Fatalf("echo %d: %d bytes, number %d; want message %d back", i, len(p), binary.BigEndian.Uint32(p), i)
		}
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatalf("close: %v", err)
	}
}
