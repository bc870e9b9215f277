package broker_test

import (
	"testing"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/protocol"
)

// TestPushMatchesCanonicalPath (issue 16): a push's prefix is compared with
// the path each channel keeps from routing, in the same canonical form,
// however the client and the service spelt it.
func TestPushMatchesCanonicalPath(t *testing.T) {
	e := newEnv(t, broker.Limits{})
	s := e.attach(protocol.Hello{Scope: "/rooms/"})
	_, cafe := e.open(s, "/rooms/caf%c3%a9/1")
	_, dots := e.open(s, "/rooms/x/../caf%C3%A9/2")
	_, other := e.open(s, "/rooms/cafe/1")
	s.send(protocol.AppendPush(nil, 0, "/rooms/café/", []byte("to café")), protocol.AppendPush(nil, 0, "/rooms/", []byte("to all")))
	for _, c := range []struct {
		name string
		conn *websocket.Conn
		want []string
	}{
		{"/rooms/caf%c3%a9/1", cafe, []string{"to café", "to all"}},
		{"/rooms/x/../caf%C3%A9/2", dots, []string{"to café", "to all"}},
		{"/rooms/cafe/1", other, []string{"to all"}},
	} {
		for _, w := range c.want {
			if _, m := readMsg(t, c.conn); m != w {
				t.Fatalf("client %s got %q want %q", c.name, m, w)
			}
		}
	}
}
