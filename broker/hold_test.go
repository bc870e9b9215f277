package broker_test

import (
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
	"github.com/switchboard-dev/switchboard/protocol"
)

// TestHold: a registration whose instance asked for a hold keeps its scope
// after the instance leaves, and a client that connects meanwhile is
// served by the next instance; without a hold it is refused at once; the
// hold ends and the scope is gone.
func TestHold(t *testing.T) {
	e := newEnv(t, broker.Limits{AcceptTimeout: 5 * time.Second})

	first := e.attach(protocol.Hello{Scope: "/held/", Hold: 4000})
	first.conn.Close(websocket.StatusNormalClosure, "restart")
	<-first.done
	res := e.dialAsync("/held/x", nil) // waits: no instance, but a hold
	select {
	case r := <-res:
		t.Fatalf("a connect during the hold was answered before any instance came: %v", r.err)
	case <-time.After(200 * time.Millisecond): // the connect is still waiting, as it should
	}
	second := e.attach(protocol.Hello{Scope: "/held/", Hold: 4000})
	second.acceptNext("")
	if r := <-res; r.err != nil {
		t.Fatalf("the held connect was not served by the next instance: %v", r.err)
	}

	// No hold: refused at once.
	plain := e.attach(protocol.Hello{Scope: "/plain/"})
	plain.conn.Close(websocket.StatusNormalClosure, "restart")
	<-plain.done
	start := time.Now()
	testutil.WaitFor(t, "the plain registration to go", 5*time.Second, func() bool {
		_, err := e.tryDial("/plain/x", nil)
		return err != nil
	})
	if time.Since(start) > 2*time.Second {
		t.Errorf("a connect without a hold took %v to be refused", time.Since(start))
	}

	// A hold that ends without an instance: the connect is refused.
	short := e.attach(protocol.Hello{Scope: "/short/", Hold: 300})
	short.conn.Close(websocket.StatusNormalClosure, "gone")
	<-short.done
	if _, err := e.tryDial("/short/x", nil); err == nil {
		t.Fatal("a connect was served with no instance")
	}
}
