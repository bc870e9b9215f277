package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/internal/testkit/streamtest"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
)

// TestMain lets the test binary run as a service process that the tests
// kill with SIGKILL.
func TestMain(m *testing.M) {
	streamtest.MaybeRunEchoProcess()
	os.Exit(m.Run())
}

// TestKillCycleAcrossNodes: clients on every node stream numbered messages
// to a service; the service process is SIGKILLed and a new one attaches to
// another node, several times. Every client gets every number, in order,
// and no client connection breaks.
func TestKillCycleAcrossNodes(t *testing.T) {
	if testutil.RaceEnabled {
		// Three brokers, three NATS servers and unpaced streams in one
		// process under the race detector starve the heartbeats for
		// seconds on two cores, so nodes take each other for lost.
		t.Skip("timing-based membership says nothing under the race detector; make test runs this test without it")
	}
	nodes := threeNodes(t, broker.Limits{})
	proc := streamtest.StartEchoProcess(t, nodes[2].ws+"/kc/")
	var ss []*streamtest.Streamer
	for i, n := range nodes {
		for j := 0; j < 2; j++ {
			ss = append(ss, streamtest.Stream(t, dial(t, n, fmt.Sprintf("/kc/c%d-%d", i, j))))
		}
	}
	streamtest.WaitProgress(t, ss, 200)
	for cycle := 0; cycle < 4; cycle++ {
		if err := proc.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = proc.Wait()
		proc = streamtest.StartEchoProcess(t, nodes[cycle%3].ws+"/kc/") // a different node each time
		streamtest.WaitProgress(t, ss, 200)
	}
	for i, s := range ss {
		sent, h, err := s.Progress()
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		t.Logf("stream %d: sent %d, echoed up to %d", i, sent, h)
	}
}

// TestNodeLossUnderLoad: a node dies while clients on the others stream
// through a service on a surviving node; their streams go on untouched,
// and the service's client list drops the dead node's clients.
func TestNodeLossUnderLoad(t *testing.T) {
	if testutil.RaceEnabled {
		t.Skip("timing-based membership says nothing under the race detector; make test runs this test without it")
	}
	nodes := threeNodes(t, broker.Limits{})
	l := streamtest.Echo(t, nodes[0].ws+"/nl/", "")
	var survivors []*streamtest.Streamer
	for _, n := range nodes[:2] {
		survivors = append(survivors, streamtest.Stream(t, dial(t, n, "/nl/s")))
	}
	doomed := dial(t, nodes[2], "/nl/d")
	if got := roundTrip(t, doomed, "x"); got != "x" {
		t.Fatalf("got %q", got)
	}
	streamtest.WaitProgress(t, survivors, 100)
	nodes[2].kill()
	streamtest.WaitProgress(t, survivors, 300)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	testutil.WaitFor(t, "the lost node's client to leave the list", nodeTimeout()+5*time.Second, func() bool {
		list, err := l.Clients(ctx)
		return err == nil && len(list) == 2
	})
}

// TestNATSRestart: NATS goes away mid-stream and comes back on the same
// address. Local traffic never stops; the node reports the outage
// (Ready, hence /readyz); a cross-node stream resumes with nothing lost,
// or, if NATS lost frames of it in the restart, is closed with 1012, never
// silently skipped; cross-node connections work again afterwards.
func TestNATSRestart(t *testing.T) {
	if testutil.RaceEnabled {
		t.Skip("timing-based membership says nothing under the race detector; make test runs this test without it")
	}
	port := freePort(t)
	ns := startNATS(t, port)
	url := ns.ClientURL()
	n1 := startNode(t, "r1", url, broker.Limits{})
	n2 := startNode(t, "r2", url, broker.Limits{})
	testutil.WaitFor(t, "peers", 10*time.Second, func() bool { return len(n1.c.Peers()) == 1 && len(n2.c.Peers()) == 1 })
	streamtest.Echo(t, n2.ws+"/nr/", "")
	local := streamtest.Stream(t, dial(t, n2, "/nr/local"))
	remote := streamtest.Stream(t, dial(t, n1, "/nr/remote"))
	streamtest.WaitProgress(t, []*streamtest.Streamer{local, remote}, 100)

	remote.Mark()
	ns.Shutdown()
	ns.WaitForShutdown()
	testutil.WaitFor(t, "node to notice", 10*time.Second, func() bool { return n1.c.Ready() != nil })
	streamtest.WaitProgress(t, []*streamtest.Streamer{local}, 200) // local traffic goes on without NATS

	startNATS(t, port)
	testutil.WaitFor(t, "node to reconnect", 20*time.Second, func() bool { return n1.c.Ready() == nil && n2.c.Ready() == nil })
	streamtest.WaitProgress(t, []*streamtest.Streamer{local}, 200)
	testutil.WaitFor(t, "the cross-node stream to resume or be closed with 1012", 30*time.Second, func() bool {
		_, h, err := remote.Progress()
		if err != nil {
			if websocket.CloseStatus(errors.Unwrap(err)) != websocket.StatusServiceRestart {
				t.Fatalf("cross-node stream: %v", err)
			}
			t.Logf("cross-node stream closed with 1012 after %d echoes (NATS lost frames in its restart)", h)
			return true
		}
		return h > 0 && remote.Resumed()
	})
	fresh := dial(t, n1, "/nr/fresh")
	if got := roundTrip(t, fresh, "after"); got != "after" {
		t.Fatalf("got %q", got)
	}
}
