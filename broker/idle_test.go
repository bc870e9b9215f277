package broker_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
	"github.com/switchboard-dev/switchboard/internal/testkit/wstest"
	"github.com/switchboard-dev/switchboard/protocol"
)

// TestIdleClientsHoldNoGoroutine: a plain ws:// client that sends nothing
// costs the broker no goroutine: it runs on the epoll loops.
func TestIdleClientsHoldNoGoroutine(t *testing.T) {
	e := newEnv(t, broker.Limits{})
	s := e.attach(protocol.Hello{Scope: "/idle/"})
	autoAccept(s)
	const n = 500
	c0, _ := wstest.Dial(t, e.ws+"/idle/", nil) // the loops start with the first client
	before := runtime.NumGoroutine()
	cs := make([]*wstest.Conn, n)
	for i := range cs {
		cs[i], _ = wstest.Dial(t, e.ws+"/idle/", nil)
	}
	// The handshakes' handler goroutines end once the loops took the connections.
	var after int
	testutil.WaitFor(t, "handler goroutines to end", 10*time.Second, func() bool {
		after = runtime.NumGoroutine()
		return after-before < n/10
	})
	t.Logf("%d idle clients: %d goroutines before, %d after", n, before, after)
	c0.Close()
}
