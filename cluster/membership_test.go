package cluster_test

import (
	"context"
	"log/slog"
	"regexp"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
	"github.com/switchboard-dev/switchboard/sdk"
)

// TestMembershipInOrder: instances attach to and detach from node m1 over
// and over while m1 beats every millisecond. Node m2 attaches the proxy of
// each instance exactly once: a beat taken before an attach or a detach is
// never handled after the inst.up or inst.down that followed it (a stale beat re-attached
// killed instances and detached live ones, whose output was then dropped:
// the cause of TestKillCycleAcrossNodes's rare "gap").
func TestMembershipInOrder(t *testing.T) {
	ns := startNATS(t, -1)
	logs := &testutil.SyncBuffer{}
	n1 := startNode(t, "m1", ns.ClientURL(), broker.Limits{}, func(cc *cluster.Config, _ *broker.Config) {
		cc.HeartbeatInterval = time.Millisecond
	})
	n2 := startNode(t, "m2", ns.ClientURL(), broker.Limits{}, func(cc *cluster.Config, bc *broker.Config) {
		log := slog.New(slog.NewTextHandler(logs, nil))
		cc.Logger, bc.Logger = log, log
	})
	testutil.WaitFor(t, "peers", 10*time.Second, func() bool { return len(n1.c.Peers()) == 1 && len(n2.c.Peers()) == 1 })
	remote := func() int {
		for _, r := range n2.b.Status().Registrations {
			if r.Scope == "/churn/" {
				return len(r.Instances)
			}
		}
		return 0
	}
	for i := 0; i < 30; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		l, err := sdk.Listen(ctx, n1.ws+"/churn/", nil)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		testutil.WaitFor(t, "m2 to attach the instance", 10*time.Second, func() bool { return remote() == 1 })
		_ = l.Close()
		cancel()
		testutil.WaitFor(t, "m2 to detach it", 10*time.Second, func() bool { return remote() == 0 })
	}
	// A live instance detached for a stale beat comes back with the next
	// one, and a dead one re-attached by a stale beat is attached twice:
	// either way, twice. (A beat taken between a detach and its inst.down
	// may detach the proxy first, rightly: the instance is gone.)
	out := logs.String()
	attached := map[string]int{}
	for _, m := range regexp.MustCompile(`msg="remote instance attached".* instance=(\d+)`).FindAllStringSubmatch(out, -1) {
		attached[m[1]]++
	}
	if len(attached) != 30 {
		t.Errorf("m2 attached %d instances, want 30", len(attached))
	}
	for id, n := range attached {
		if n > 1 {
			t.Errorf("instance %s attached %d times on m2 (a stale heartbeat detached it alive or brought it back dead)", id, n)
		}
	}
}
