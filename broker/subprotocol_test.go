package broker_test

import (
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/protocol"
)

// TestAcceptOfUnofferedSubprotocolRefusedOnce (issue 16): an Accept that
// picks a subprotocol the client did not offer is refused by the broker's
// answer path, before a channel exists: the client gets the uniform
// rejection, the service a Close saying why, and no channel is ever
// registered (the transport has nothing to abandon).
func TestAcceptOfUnofferedSubprotocolRefusedOnce(t *testing.T) {
	e := newEnv(t, broker.Limits{})
	s := e.attach(protocol.Hello{Scope: "/sp/"})
	res := e.dialAsync("/sp/x", &websocket.DialOptions{Subprotocols: []string{"chat"}})
	c := s.acceptNext("other")
	if got := c.Protocols; len(got) != 1 || got[0] != "chat" {
		t.Fatalf("connect request offered %q", got)
	}
	cl := s.next(protocol.TypeClose).(*protocol.Close)
	if cl.Channel != c.Channel || !strings.Contains(cl.Reason, "not offered") {
		t.Errorf("service told %+v, want a Close of channel %d saying the subprotocol was not offered", cl, c.Channel)
	}
	r := <-res
	if r.err == nil || !strings.Contains(r.err.Error(), "404") {
		t.Fatalf("client dial: %v, want the uniform 404", r.err)
	}
	for _, reg := range e.b.Status().Registrations {
		if len(reg.Channels) != 0 {
			t.Errorf("registration %s holds channels %+v after a refused accept", reg.Scope, reg.Channels)
		}
	}
	// An accept of an offered subprotocol, or of none, still opens.
	res = e.dialAsync("/sp/y", &websocket.DialOptions{Subprotocols: []string{"x", "chat"}})
	s.acceptNext("chat")
	if r := <-res; r.err != nil || r.c.Subprotocol() != "chat" {
		t.Fatalf("accept of an offered subprotocol: %v", r.err)
	}
}
