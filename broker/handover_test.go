package broker_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
	"github.com/switchboard-dev/switchboard/protocol"
)

func TestHandoverAfterCrashRedeliversUnacked(t *testing.T) {
	e := newEnv(t, broker.Limits{})
	s1 := e.attach(protocol.Hello{Scope: "/h/", Label: "v1"})
	c, client := e.open(s1, "/h/")
	for i := 1; i <= 5; i++ {
		writeMsg(t, client, websocket.MessageText, fmt.Sprint(i))
	}
	for i := 1; i <= 5; i++ {
		if d := s1.next(protocol.TypeData).(*protocol.Data); d.Seq != uint64(i) {
			t.Fatalf("seq %d, want %d", d.Seq, i)
		}
	}
	s1.send(protocol.AppendAck(nil, c.Channel, 2))
	testutil.WaitFor(t, "ack to land", 5*time.Second, func() bool {
		return e.b.Status().Registrations[0].Channels[0].Unacked == 3
	})
	s1.conn.CloseNow() // crash
	testutil.WaitFor(t, "instance to detach", 5*time.Second, func() bool {
		return len(e.b.Status().Registrations[0].Instances) == 0
	})
	writeMsg(t, client, websocket.MessageText, "6") // buffered while no instance

	s2 := e.attach(protocol.Hello{Scope: "/h/", Label: "v2"})
	open := s2.next(protocol.TypeOpen).(*protocol.ChannelInfo)
	if open.Channel != c.Channel || !strings.HasSuffix(open.Target, "/h/") {
		t.Fatalf("open = %+v", open)
	}
	for i := 3; i <= 6; i++ {
		d := s2.next(protocol.TypeData).(*protocol.Data)
		if d.Seq != uint64(i) || string(d.Payload) != fmt.Sprint(i) {
			t.Fatalf("redelivered seq %d %q, want %d", d.Seq, d.Payload, i)
		}
	}
	s2.send(protocol.AppendAck(nil, c.Channel, 6), protocol.AppendData(nil, c.Channel, 0, 0, []byte("from v2")))
	if _, m := readMsg(t, client); m != "from v2" {
		t.Fatalf("got %q", m)
	}
}

func TestTakeoverKeepsOrder(t *testing.T) {
	e := newEnv(t, broker.Limits{})
	s1 := e.attach(protocol.Hello{Scope: "/t/", Label: "v1"})
	c, client := e.open(s1, "/t/")
	writeMsg(t, client, websocket.MessageText, "1")
	s1.next(protocol.TypeData)

	s2 := e.attach(protocol.Hello{Scope: "/t/", Label: "v2"})
	if st := s1.next(protocol.TypeState).(*protocol.State); st.Active {
		t.Fatal("old instance still active")
	}
	s2.next(protocol.TypeOpen)
	writeMsg(t, client, websocket.MessageText, "2")
	// "2" must wait until the old instance acknowledged "1".
	testutil.WaitFor(t, "2 to be buffered", 5*time.Second, func() bool {
		return e.b.Status().Registrations[0].Channels[0].Unacked == 2
	})
	select {
	case f := <-s2.frames:
		t.Fatalf("new instance got %s before the old one acked", f.typ)
	default:
	}
	s1.send(protocol.AppendAck(nil, c.Channel, 1))
	if d := s2.next(protocol.TypeData).(*protocol.Data); d.Seq != 2 {
		t.Fatalf("seq %d", d.Seq)
	}
	// New connect requests go to the new instance.
	e.open(s2, "/t/")
}

func TestHandoverTimeoutCloses1012(t *testing.T) {
	e := newEnv(t, broker.Limits{HandoverTimeout: 200 * time.Millisecond})
	s1 := e.attach(protocol.Hello{Scope: "/gone/"})
	_, client := e.open(s1, "/gone/")
	s1.conn.CloseNow()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _, err := client.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusServiceRestart {
		t.Fatalf("client read err %v, want close 1012", err)
	}
}

func TestWaitingInstanceTakesOverAtOnce(t *testing.T) {
	e := newEnv(t, broker.Limits{})
	s1 := e.attach(protocol.Hello{Scope: "/w/", Label: "v1"})
	c, client := e.open(s1, "/w/")
	s2 := e.attach(protocol.Hello{Scope: "/w/", Label: "v2"}) // active; s1 waits
	s2.next(protocol.TypeOpen)
	if st := s1.next(protocol.TypeState).(*protocol.State); st.Active {
		t.Fatal("old instance still active after takeover")
	}
	s2.conn.CloseNow() // the new one crashes: the old one is active again
	if st := s1.next(protocol.TypeState).(*protocol.State); !st.Active {
		t.Fatal("old instance not reactivated")
	}
	s1.next(protocol.TypeOpen)
	writeMsg(t, client, websocket.MessageText, "x")
	if d := s1.next(protocol.TypeData).(*protocol.Data); d.Channel != c.Channel {
		t.Fatalf("data for %d", d.Channel)
	}
}

func TestMessageTooBig(t *testing.T) {
	e := newEnv(t, broker.Limits{MaxMessage: 1024})
	s := e.attach(protocol.Hello{Scope: "/big/"})
	c, client := e.open(s, "/big/")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = client.Write(ctx, websocket.MessageBinary, make([]byte, 2048))
	_, _, err := client.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Fatalf("client err %v, want 1009", err)
	}
	if cf := s.next(protocol.TypeClose).(*protocol.Close); cf.Channel != c.Channel || cf.Code != 1009 {
		t.Fatalf("service close %+v", cf)
	}
}

func TestInvalidUTF8Closes1007(t *testing.T) {
	e := newEnv(t, broker.Limits{})
	s := e.attach(protocol.Hello{Scope: "/u/"})
	c, client := e.open(s, "/u/")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = client.Write(ctx, websocket.MessageText, []byte{0xff, 0xfe})
	_, _, err := client.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusInvalidFramePayloadData {
		t.Fatalf("client err %v, want 1007", err)
	}
	if cf := s.next(protocol.TypeClose).(*protocol.Close); cf.Channel != c.Channel || cf.Code != 1007 {
		t.Fatalf("service close %+v", cf)
	}
}

func TestBackpressureStopsReadingOneClient(t *testing.T) {
	e := newEnv(t, broker.Limits{Window: 4 << 10, ChannelBuffer: 16 << 10})
	s := e.attach(protocol.Hello{Scope: "/bp/"})
	a, stalled := e.open(s, "/bp/a")
	b, active := e.open(s, "/bp/b")

	// The service never acks channel a: the broker holds at most
	// ChannelBuffer, then stops reading, and the client's writes block.
	payload := strings.Repeat("x", 64<<10)
	wrote := make(chan int, 1)
	go func() {
		n := 0
		for ; n < 2000; n++ {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			err := stalled.Write(ctx, websocket.MessageText, []byte(payload))
			cancel()
			if err != nil {
				break
			}
		}
		wrote <- n
	}()
	var n int
	select {
	case n = <-wrote:
	case <-time.After(20 * time.Second):
		t.Fatal("writes never blocked")
	}
	if n >= 2000 {
		t.Fatalf("client wrote %d messages without backpressure", n)
	}
	st := e.b.Status().Registrations[0]
	for _, ch := range st.Channels {
		if ch.ID == a.Channel && ch.BufferedBytes > 16<<10+64<<10 {
			t.Fatalf("channel buffered %d bytes, over its limit", ch.BufferedBytes)
		}
	}
	// The other channel still flows.
	var inflightA int
	for i := 0; i < 50; i++ {
		writeMsg(t, active, websocket.MessageText, fmt.Sprint(i))
		for {
			d := s.next(protocol.TypeData).(*protocol.Data)
			if d.Channel == a.Channel {
				inflightA++
				continue
			}
			if d.Channel != b.Channel || string(d.Payload) != fmt.Sprint(i) {
				t.Fatalf("got %d %q", d.Channel, d.Payload)
			}
			s.send(protocol.AppendAck(nil, b.Channel, d.Seq))
			break
		}
	}
	if inflightA > 1 {
		t.Fatalf("service got %d unacked messages of 64 KiB on channel a, window is 4 KiB", inflightA)
	}
}

func TestServiceBeyondCreditIsCut(t *testing.T) {
	e := newEnv(t, broker.Limits{Window: 1024})
	s := e.attach(protocol.Hello{Scope: "/cr/"})
	c, _ := e.open(s, "/cr/") // the client never reads
	var frames [][]byte
	for i := 0; i < 4000; i++ { // far beyond twice the window, even if the client's socket buffers absorb some
		frames = append(frames, protocol.AppendData(nil, c.Channel, 0, 0, make([]byte, 1000)))
	}
	var msg []byte
	for _, f := range frames {
		msg = append(msg, f...)
	}
	_ = s.conn.Write(context.Background(), websocket.MessageBinary, msg) // may fail: the broker cuts the link
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		t.Fatal("link not cut")
	}
}

func TestKeepaliveCutsSilentClient(t *testing.T) {
	e := newEnv(t, broker.Limits{PingInterval: 200 * time.Millisecond})
	s := e.attach(protocol.Hello{Scope: "/ka/"})
	go func() {
		c := s.next(protocol.TypeConnect).(*protocol.Connect)
		s.send((&protocol.Accept{Channel: c.Channel}).Append(nil))
	}()
	// A raw client that completes the handshake and then never answers pings.
	_, resp := rawHandshakeConn(t, e, "/ka/")
	if !strings.HasPrefix(string(resp), "HTTP/1.1 101") {
		t.Fatalf("handshake: %s", resp)
	}
	cf := s.next(protocol.TypeClose).(*protocol.Close)
	if cf.Code != 1006 {
		t.Fatalf("service close %+v, want 1006", cf)
	}
}
