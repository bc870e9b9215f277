package broker_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
	"github.com/switchboard-dev/switchboard/protocol"
)

func TestRelayBothWays(t *testing.T) {
	e := newEnv(t, broker.Limits{})
	s := e.attach(protocol.Hello{Scope: "/echo/", Protocols: []string{"chat"}})
	if !s.welcome.Active || s.welcome.Scope != "/echo/" {
		t.Fatalf("welcome = %+v", s.welcome)
	}
	res := e.dialAsync("/echo/room?x=1", &websocket.DialOptions{Subprotocols: []string{"other", "chat"}, HTTPHeader: map[string][]string{"Origin": {"https://a.example"}}})
	c := s.acceptNext("chat", protocol.Header{Name: "X-Served-By", Value: "test"})
	if c.Origin != "https://a.example" || c.Target != e.ws+"/echo/room?x=1" || fmt.Sprint(c.Protocols) != "[other chat]" {
		t.Fatalf("connect request = %+v", c)
	}
	if c.FirstLine != "GET /echo/room?x=1 HTTP/1.1" {
		t.Fatalf("first line %q", c.FirstLine)
	}
	client := waitDial(t, res)
	if client.Subprotocol() != "chat" {
		t.Fatalf("subprotocol %q", client.Subprotocol())
	}

	writeMsg(t, client, websocket.MessageText, "hello")
	writeMsg(t, client, websocket.MessageBinary, "\x00\x01")
	d1 := s.next(protocol.TypeData).(*protocol.Data)
	d2 := s.next(protocol.TypeData).(*protocol.Data)
	if d1.Seq != 1 || string(d1.Payload) != "hello" || d1.Flags != 0 || d2.Seq != 2 || d2.Flags != protocol.FlagBinary {
		t.Fatalf("data frames %+v %+v", d1, d2)
	}
	s.send(protocol.AppendAck(nil, c.Channel, 2),
		protocol.AppendData(nil, c.Channel, 0, 0, []byte("hi back")),
		protocol.AppendData(nil, c.Channel, 0, protocol.FlagBinary, []byte{9}))
	if typ, m := readMsg(t, client); typ != websocket.MessageText || m != "hi back" {
		t.Fatalf("client got %v %q", typ, m)
	}
	if typ, m := readMsg(t, client); typ != websocket.MessageBinary || m != "\x09" {
		t.Fatalf("client got %v %q", typ, m)
	}

	// The client list.
	s.send((&protocol.List{Request: 5}).Append(nil))
	cl := s.next(protocol.TypeClients).(*protocol.Clients)
	if cl.Request != 5 || len(cl.Clients) != 1 || cl.Clients[0].Channel != c.Channel || cl.Clients[0].Protocol != "chat" {
		t.Fatalf("clients = %+v", cl)
	}

	// Client closes: the service sees the code and reason after the data.
	writeMsg(t, client, websocket.MessageText, "last")
	if err := client.Close(4001, "bye"); err != nil {
		t.Fatalf("client close: %v", err)
	}
	if d := s.next(protocol.TypeData).(*protocol.Data); d.Seq != 3 {
		t.Fatalf("seq %d", d.Seq)
	}
	cf := s.next(protocol.TypeClose).(*protocol.Close)
	if cf.Code != 4001 || cf.Reason != "bye" {
		t.Fatalf("close = %+v", cf)
	}
	s.send(protocol.AppendAck(nil, c.Channel, 3))
	testutil.WaitFor(t, "channel to go", 5*time.Second, func() bool {
		st := e.b.Status()
		return len(st.Registrations) == 1 && len(st.Registrations[0].Channels) == 0
	})
}

func TestServiceCloseReachesClient(t *testing.T) {
	e := newEnv(t, broker.Limits{})
	s := e.attach(protocol.Hello{Scope: "/svc/"})
	c, client := e.open(s, "/svc/")
	s.send(protocol.AppendData(nil, c.Channel, 0, 0, []byte("before close")),
		(&protocol.Close{Channel: c.Channel, Code: 4002, Reason: "done here"}).Append(nil))
	if _, m := readMsg(t, client); m != "before close" {
		t.Fatalf("got %q", m)
	}
	_, _, err := client.Read(context.Background())
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4002 || ce.Reason != "done here" {
		t.Fatalf("client read err = %v", err)
	}
}

func TestPushByPrefix(t *testing.T) {
	e := newEnv(t, broker.Limits{})
	s := e.attach(protocol.Hello{Scope: "/rooms/"})
	var clients []*websocket.Conn
	for _, p := range []string{"/rooms/a/1", "/rooms/a/2", "/rooms/b/1"} {
		_, c := e.open(s, p)
		clients = append(clients, c)
	}
	s.send(protocol.AppendPush(nil, 0, "/rooms/a/", []byte("to a")), protocol.AppendPush(nil, 0, "", []byte("to all")))
	for i, c := range clients {
		want := []string{"to a", "to all"}
		if i == 2 {
			want = want[1:]
		}
		for _, w := range want {
			if _, m := readMsg(t, c); m != w {
				t.Fatalf("client %d got %q want %q", i, m, w)
			}
		}
	}
}

func TestLongestScopeWinsAtConnectTime(t *testing.T) {
	e := newEnv(t, broker.Limits{})
	wide := e.attach(protocol.Hello{Scope: "/a/"})
	_, old := e.open(wide, "/a/b/c")
	narrow := e.attach(protocol.Hello{Scope: "/a/b/"})
	for _, p := range []string{"/a/b", "/a/b/", "/a/b/c"} {
		e.open(narrow, p)
	}
	e.open(wide, "/a/bc")
	// The channel made before the narrower scope stays with the wide one.
	writeMsg(t, old, websocket.MessageText, "still wide")
	if d := wide.next(protocol.TypeData).(*protocol.Data); string(d.Payload) != "still wide" {
		t.Fatalf("got %q", d.Payload)
	}
}

func TestAttachErrors(t *testing.T) {
	e := newEnv(t, broker.Limits{})
	cases := []struct {
		hello protocol.Hello
		code  uint64
	}{
		{protocol.Hello{Version: 99, Scope: "/x/"}, protocol.ErrCodeVersion},
		{protocol.Hello{Scope: "/no-slash"}, protocol.ErrCodeScope},
		{protocol.Hello{Scope: "/.switchboard/x/"}, protocol.ErrCodeScope},
		{protocol.Hello{Scope: "/x/", Credential: "unknown"}, protocol.ErrCodeUnauthorized},
	}
	for _, c := range cases {
		_, err := e.tryAttach(c.hello)
		var le *linkErr
		if !errors.As(err, &le) || le.f.Code != c.code {
			t.Errorf("hello %+v: err %v, want code %d", c.hello, err, c.code)
		}
	}
}

// TestOfferChecksOwner: a connection routed to an app's scope (wsapp) is
// refused when the registration there belongs to someone else.
func TestOfferChecksOwner(t *testing.T) {
	e := newEnv(t, broker.Limits{})
	s := e.attach(protocol.Hello{Scope: "/owned/"}) // owner "dev"
	d := e.b.Offer(context.Background(), &broker.Handshake{Host: "h", Path: "/owned/x", Target: "ws://h/owned/x", Owner: "app:other"})
	if d.Outcome != broker.Rejected || d.Reason != "owner" {
		t.Fatalf("offer to another owner's registration: %+v", d)
	}
	select {
	case f := <-s.frames:
		t.Fatalf("the service was asked (%s) about a connection meant for another owner", f.typ)
	default:
	}
}
