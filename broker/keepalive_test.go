package broker_test

import (
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
	"github.com/switchboard-dev/switchboard/internal/testkit/wstest"
	"github.com/switchboard-dev/switchboard/protocol"
)

// TestKeepaliveCutsManySilentClients: thousands of clients that never
// answer a ping are all cut within two ping intervals of connecting (plus
// slack for a busy machine), however many they are: pings do not wait for
// pongs one after another.
func TestKeepaliveCutsManySilentClients(t *testing.T) {
	transports(t, broker.Limits{PingInterval: time.Second}, testKeepaliveCutsManySilentClients)
}

func testKeepaliveCutsManySilentClients(t *testing.T, e *env, dial func(string) *wstest.Conn) {
	n, interval := 2000, time.Second
	if testutil.RaceEnabled {
		n = 300
	}
	closes := autoAccept(e.attach(protocol.Hello{Scope: "/ka/"}))
	for i := 0; i < n; i++ {
		c := dial("/ka/") // never reads, so never answers a ping
		t.Cleanup(func() { c.Close() })
	}
	connected := time.Now()
	deadline := connected.Add(2*interval + 4*time.Second)
	for i := 0; i < n; i++ {
		select {
		case cf := <-closes:
			if cf.Code != 1006 {
				t.Fatalf("service close %+v, want 1006", cf)
			}
		case <-time.After(time.Until(deadline)):
			t.Fatalf("%d of %d silent clients still connected %v after the last connected (ping interval %v)",
				n-i, n, time.Since(connected).Round(time.Millisecond), interval)
		}
	}
	t.Logf("%d silent clients cut %v after the last connected", n, time.Since(connected).Round(time.Millisecond))
}
