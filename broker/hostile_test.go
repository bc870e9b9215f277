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
	"github.com/switchboard-dev/switchboard/protocol"
	"github.com/switchboard-dev/switchboard/server"
)

func TestSlowlorisHandshakeTimesOut(t *testing.T) {
	e := newEnv(t, broker.Limits{}) // 2 s handshake timeout
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
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
	e := newEnvWith(t, broker.Limits{}, server.Config{MaxConnsPerAddr: 3})
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
	res := e.dialAsync("/g/", nil)
	c := s1.acceptNext("")
	client := waitDial(t, res)
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
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
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
