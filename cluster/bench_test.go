package cluster_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/internal/testkit/streamtest"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
)

// BenchmarkCrossNode: 1 KiB ping-pong from 50 clients through an SDK echo
// service on node b, with the clients on b (single) or on a (cross: every
// message crosses NATS twice). Everything runs in this process, so a CPU
// profile (-cpuprofile) shows the cross-node path whole, NATS included;
// the figures that count are the bench's cluster scenario (separate
// processes), see docs/BENCHMARKS.md.
func BenchmarkCrossNode(b *testing.B) {
	ns := startNATS(b, -1)
	ra, rb := prometheus.NewRegistry(), prometheus.NewRegistry()
	na := startNode(b, "ba", ns.ClientURL(), broker.Limits{}, func(cc *cluster.Config, _ *broker.Config) { cc.Registerer = ra })
	nb := startNode(b, "bb", ns.ClientURL(), broker.Limits{}, func(cc *cluster.Config, _ *broker.Config) { cc.Registerer = rb })
	testutil.WaitFor(b, "peers", 10*time.Second, func() bool { return len(na.c.Peers()) == 1 && len(nb.c.Peers()) == 1 })
	streamtest.Echo(b, nb.ws+"/bench/", "")
	const conns = 50
	for _, path := range []struct {
		name string
		n    *node
	}{{"single", nb}, {"cross", na}} {
		b.Run(path.name, func(b *testing.B) {
			cs := make([]*websocket.Conn, conns)
			for i := range cs {
				cs[i] = dial(b, path.n, fmt.Sprintf("/bench/%d", i))
			}
			msg := make([]byte, 1024)
			b.SetBytes(1024)
			before := natsMessages(b, ra, rb)
			b.ResetTimer()
			var wg sync.WaitGroup
			for i, c := range cs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ctx := context.Background()
					for j := i; j < b.N; j += conns {
						if err := c.Write(ctx, websocket.MessageBinary, msg); err != nil {
							b.Error(err)
							return
						}
						if _, _, err := c.Read(ctx); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			after := natsMessages(b, ra, rb)
			b.ReportMetric((after-before)/float64(b.N), "nats-msgs/op")
		})
	}
}

// natsMessages is how many NATS messages the nodes of regs published.
func natsMessages(b *testing.B, regs ...*prometheus.Registry) float64 {
	n := 0.0
	for _, r := range regs {
		mfs, err := r.Gather()
		if err != nil {
			b.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "switchboard_cluster_messages_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "direction" && l.GetValue() == "out" {
						n += m.GetCounter().GetValue()
					}
				}
			}
		}
	}
	return n
}
