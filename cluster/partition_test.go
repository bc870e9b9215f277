package cluster_test

import (
	"errors"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/internal/testkit/streamtest"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
)

// resumedOr1012 waits until a stream carries on past its mark or was
// closed with 1012, and fails on anything else.
func resumedOr1012(t *testing.T, what string, s *streamtest.Streamer) {
	t.Helper()
	testutil.WaitFor(t, what+" to resume or be closed with 1012", 30*time.Second, func() bool {
		_, h, err := s.Progress()
		if err != nil {
			if websocket.CloseStatus(errors.Unwrap(err)) != websocket.StatusServiceRestart {
				t.Fatalf("%s: %v", what, err)
			}
			t.Logf("%s: closed with 1012 after %d echoes", what, h)
			return true
		}
		return h > 0 && s.Resumed()
	})
}

// TestPartitionedNode: node p1 loses NATS (a proxy cuts only its traffic)
// for longer than the node timeout, while its clients stay connected.
// Its local channels keep flowing throughout. The others take it for lost,
// and a new instance of its registration attaches on p2. When p1 is back:
// cross-node channels resume or are closed with 1012, and every node has
// the same single active instance of the registration, the new one (the
// stated outcome: during the partition each side has its own, after it
// exactly one, the instance that attached last as its node knew).
func TestPartitionedNode(t *testing.T) {
	if testutil.RaceEnabled {
		t.Skip("timing-based membership says nothing under the race detector; make test runs this test without it")
	}
	ns := startNATS(t, -1)
	proxy := testutil.NewTCPProxy(t, ns.Addr().String())
	nodes := []*node{
		startNode(t, "p1", "nats://"+proxy.Addr(), broker.Limits{}),
		startNode(t, "p2", ns.ClientURL(), broker.Limits{}),
		startNode(t, "p3", ns.ClientURL(), broker.Limits{}),
	}
	p1, p2, p3 := nodes[0], nodes[1], nodes[2]
	for _, n := range nodes {
		testutil.WaitFor(t, "peers", 20*time.Second, func() bool { return len(n.c.Peers()) == 2 })
	}
	streamtest.EchoLabelled(t, p1.ws+"/part/", "v1") // the registration's instance lives on p1
	streamtest.Echo(t, p2.ws+"/far/", "")            // a service p1's clients reach across
	testutil.WaitFor(t, "v1 active everywhere", 20*time.Second, func() bool {
		for i, a := range actives(nodes, "/part/") {
			if a != nodes[i].name+": v1 (of 1)" {
				return false
			}
		}
		return true
	})
	local := streamtest.Stream(t, dial(t, p1, "/part/local")) // p1's client, p1's instance
	cross := streamtest.Stream(t, dial(t, p1, "/far/cross"))  // p1's client, p2's instance
	streamtest.WaitProgress(t, []*streamtest.Streamer{local, cross}, 100)

	cross.Mark()
	proxy.SetCut(true)
	testutil.WaitFor(t, "p1 to notice", 20*time.Second, func() bool { return p1.c.Ready() != nil })
	testutil.WaitFor(t, "p2 and p3 to take p1 for lost", nodeTimeout()+20*time.Second, func() bool {
		return len(p2.c.Peers()) == 1 && len(p3.c.Peers()) == 1
	})
	streamtest.WaitProgress(t, []*streamtest.Streamer{local}, 200) // local traffic goes on without NATS
	streamtest.EchoLabelled(t, p2.ws+"/part/", "v2")               // the others' side gets a new instance
	testutil.WaitFor(t, "v2 active on p2 and p3", 20*time.Second, func() bool {
		a := actives(nodes, "/part/")
		return a[1] == "p2: v2 (of 1)" && a[2] == "p3: v2 (of 1)"
	})
	if a := actives(nodes, "/part/")[0]; a != "p1: v1 (of 1)" {
		t.Fatalf("during the partition p1 should still serve its own clients with v1: %s", a)
	}
	streamtest.WaitProgress(t, []*streamtest.Streamer{local}, 100)

	local.Mark()
	proxy.SetCut(false)
	testutil.WaitFor(t, "p1 back on NATS with both peers", 30*time.Second, func() bool {
		return p1.c.Ready() == nil && len(p1.c.Peers()) == 2 && len(p2.c.Peers()) == 2 && len(p3.c.Peers()) == 2
	})
	testutil.WaitFor(t, "one active instance, v2, on every node", 30*time.Second, func() bool {
		for i, a := range actives(nodes, "/part/") {
			if a != nodes[i].name+": v2 (of 2)" {
				return false
			}
		}
		return true
	})
	resumedOr1012(t, "the cross-node stream", cross)
	resumedOr1012(t, "p1's local stream, handed over to v2", local)
	if got := roundTrip(t, dial(t, p1, "/part/fresh"), "after"); got != "after" {
		t.Fatalf("a new client on p1 got %q", got)
	}
	if got := roundTrip(t, dial(t, p1, "/far/fresh"), "after"); got != "after" {
		t.Fatalf("a new cross-node client on p1 got %q", got)
	}
}
