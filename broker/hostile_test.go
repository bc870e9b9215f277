package broker_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/daemon"
	"github.com/switchboard-dev/switchboard/protocol"
)

func TestSlowlorisHandshakeTimesOut(t *testing.T) {
	e := newEnvWith(t, daemon.Settings{HandshakeTimeout: 2 * time.Second})
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := conn.Write([]byte("GET /x/ HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n")); err != nil {
		t.Fatal(err)
	}
	// One more header line a second, never finishing.
	go func() {
		for i := 0; i < 10; i++ {
			time.Sleep(time.Second)
			if _, err := conn.Write([]byte("X-Slow: 1\r\n")); err != nil {
				return
			}
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(8 * time.Second))
	_, err = io.ReadAll(conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("broker kept a slow handshake open past its timeout")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("connection closed after %v, want about 2s", d)
	}
}

func TestPerAddressLimit(t *testing.T) {
	e := newEnvWith(t, daemon.Settings{MaxConnsPerAddr: 4}) // the service link counts too
	s := e.attach(protocol.Hello{Scope: "/f/"})
	go func() {
		for f := range s.frames {
			if c, ok := f.v.(*protocol.Connect); ok {
				s.send((&protocol.Accept{Channel: c.Channel}).Append(nil))
			}
		}
	}()
	for i := 0; i < 3; i++ {
		e.dial("/f/", nil)
	}
	resp := rawHandshake(t, e, "/f/")
	if !strings.HasPrefix(string(resp), "HTTP/1.1 429 ") {
		t.Fatalf("fourth connection from one address got:\n%s", resp)
	}
}

func TestGarbageFromServiceHandsChannelsOver(t *testing.T) {
	e := newEnv(t, broker.Limits{})
	s1 := e.attach(protocol.Hello{Scope: "/g/"})
	c, client := e.open(s1, "/g/")
	writeMsg(t, client, websocket.MessageText, "keep me")
	s1.next(protocol.TypeData)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s1.conn.Write(ctx, websocket.MessageBinary, []byte{0x7f, 0x03, 1, 2, 3}) // unknown frame type
	ef := s1.next(protocol.TypeError).(*protocol.Error)
	if ef.Code != protocol.ErrCodeProtocol || !strings.Contains(ef.Message, "unexpected") {
		t.Fatalf("error frame %+v", ef)
	}
	<-s1.done

	s2 := e.attach(protocol.Hello{Scope: "/g/"})
	if o := s2.next(protocol.TypeOpen).(*protocol.ChannelInfo); o.Channel != c.Channel {
		t.Fatalf("open %+v", o)
	}
	if d := s2.next(protocol.TypeData).(*protocol.Data); string(d.Payload) != "keep me" || d.Seq != 1 {
		t.Fatalf("redelivered %+v", d)
	}
}

func TestLinkRequiresSubprotocolAndBinary(t *testing.T) {
	e := newEnv(t, broker.Limits{})
	resp := rawHandshake(t, e, protocol.LinkPath)
	if !strings.HasPrefix(string(resp), "HTTP/1.1 400 ") {
		t.Fatalf("link without subprotocol got:\n%s", resp)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, e.ws+protocol.LinkPath, &websocket.DialOptions{Subprotocols: []string{protocol.Subprotocol}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	_ = conn.Write(ctx, websocket.MessageText, []byte("hello?"))
	_, msg, err := conn.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	typ, body, _, _ := protocol.Next(msg)
	var f protocol.Error
	if typ != protocol.TypeError || f.Decode(body) != nil || f.Code != protocol.ErrCodeProtocol {
		t.Fatalf("got %s %+v", typ, f)
	}
	_, _, err = conn.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusProtocolError {
		t.Fatalf("close %v, want 1002", err)
	}
}

func TestHeaderFlood(t *testing.T) {
	e := newEnv(t, broker.Limits{})
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var req strings.Builder
	req.WriteString("GET /x/ HTTP/1.1\r\nHost: h\r\n")
	for i := 0; i < 5000; i++ {
		req.WriteString("X-Flood: a\r\n")
	}
	req.WriteString("\r\n")
	go func() { _, _ = conn.Write([]byte(req.String())) }()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, _ := bufio.NewReader(conn).ReadString('\n')
	if !strings.HasPrefix(line, "HTTP/1.1 431") {
		t.Fatalf("got %q, want 431", line)
	}
}

// TestPendingConnectLimit: past MaxPendingConnects unanswered requests, a
// registration's new clients are rejected at once (the same bytes as any
// rejection) instead of queueing.
func TestPendingConnectLimit(t *testing.T) {
	e := newEnv(t, broker.Limits{MaxPendingConnects: 2, AcceptTimeout: 1500 * time.Millisecond})
	s := e.attach(protocol.Hello{Scope: "/busy/"}) // never answers
	first, second := e.dialAsync("/busy/", nil), e.dialAsync("/busy/", nil)
	s.next(protocol.TypeConnect)
	s.next(protocol.TypeConnect)
	start := time.Now()
	got := rawHandshake(t, e, "/busy/")
	if want := rawHandshake(t, e, "/nothing/"); string(got) != string(want) {
		t.Fatalf("over the pending limit got:\n%s\nwant the uniform rejection:\n%s", got, want)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("the rejection took %v: it waited instead of being refused at once", d)
	}
	for _, r := range []<-chan dialResult{first, second} {
		if res := <-r; res.err == nil {
			t.Fatal("a client nobody answered was accepted")
		}
	}
}

// TestTotalBufferLimit: once the broker holds TotalBuffer bytes of client
// messages over all channels, a channel that holds some stops being read
// even under its own ChannelBuffer.
func TestTotalBufferLimit(t *testing.T) {
	e := newEnv(t, broker.Limits{Window: 4 << 10, ChannelBuffer: 1 << 20, TotalBuffer: 256 << 10})
	s := e.attach(protocol.Hello{Scope: "/tb/"}) // never acknowledges
	var clients []*websocket.Conn
	for i := 0; i < 2; i++ {
		_, c := e.open(s, "/tb/")
		clients = append(clients, c)
	}
	payload := make([]byte, 32<<10)
	fill := func(c *websocket.Conn) int {
		n := 0
		for ; n < 2000; n++ {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			err := c.Write(ctx, websocket.MessageBinary, payload)
			cancel()
			if err != nil {
				break
			}
		}
		return n
	}
	fill(clients[0])
	fill(clients[1])
	var total int
	for _, c := range e.b.Status().Registrations[0].Channels {
		if c.BufferedBytes > 1<<20 {
			t.Fatalf("channel %d holds %d bytes, over its own limit", c.ID, c.BufferedBytes)
		}
		total += c.BufferedBytes
	}
	if total > 256<<10+2*len(payload) {
		t.Fatalf("the broker holds %d bytes of client messages, total limit 256 KiB", total)
	}
}
