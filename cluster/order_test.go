package cluster_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/internal/testkit/streamtest"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
)

// clockOff sets a node's clock off by d.
func clockOff(d time.Duration) func(*cluster.Config, *broker.Config) {
	return func(_ *cluster.Config, bc *broker.Config) {
		bc.Now = func() time.Time { return time.Now().Add(d) }
	}
}

// actives lists, per node, the labels of the active instances of scope.
func actives(nodes []*node, scope string) []string {
	var out []string
	for _, n := range nodes {
		var labels string
		for _, r := range n.b.Status().Registrations {
			if r.Scope != scope {
				continue
			}
			for _, in := range r.Instances {
				if in.Active {
					labels += in.Label + " "
				}
			}
			labels += fmt.Sprintf("(of %d)", len(r.Instances))
		}
		out = append(out, n.name+": "+labels)
	}
	return out
}

// TestInstanceOrderIgnoresClocks: node n1's clock is ten minutes fast and
// n3's ten minutes slow. Each new instance attaches after the previous one
// was seen everywhere, on a node whose clock says otherwise, and becomes
// the active one on every node: the order is causal, not by the clocks.
func TestInstanceOrderIgnoresClocks(t *testing.T) {
	urls, _ := natsCluster(t, 3)
	nodes := []*node{
		startNode(t, "n1", urls[0], broker.Limits{}, clockOff(10*time.Minute)),
		startNode(t, "n2", urls[1], broker.Limits{}),
		startNode(t, "n3", urls[2], broker.Limits{}, clockOff(-10*time.Minute)),
	}
	for _, n := range nodes {
		testutil.WaitFor(t, "peers", 10*time.Second, func() bool { return len(n.c.Peers()) == 2 })
	}
	scope := "/ord/"
	// v1 on the fast node, v2 on a true one, v3 on the slow one.
	for i, on := range []int{0, 1, 2} {
		label := fmt.Sprintf("v%d", i+1)
		streamtest.Echo(t, nodes[on].ws+scope, label)
		want := label + " (of " + fmt.Sprint(i+1) + ")"
		testutil.WaitFor(t, label+" active on every node", 10*time.Second, func() bool {
			for i, a := range actives(nodes, scope) {
				if a != nodes[i].name+": "+want {
					return false
				}
			}
			return true
		})
		t.Logf("after %s: %v", label, actives(nodes, scope))
	}
}
