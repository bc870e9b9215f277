package bench

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSmoke runs the harness in smoke mode against every target available
// here, writes the JSON report and checks it from the file: direct (and
// Switchboard, once cmd/switchboard has listen --echo) must show
// throughput, connects, latency and idle memory.
func TestSmoke(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := Run(ctx, Config{Mode: Modes["smoke"], RepoDir: "..", Command: "go test ./bench"})
	if err != nil {
		t.Fatalf("smoke run: %v", err)
	}
	path := filepath.Join(t.TempDir(), "smoke.json")
	if err := rep.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got Report
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("decode report: %v", err)
	}
	t.Logf("\n%s", got.Table())

	want := []string{Direct}
	if why, skipped := got.Skipped[Switchboard]; skipped {
		if !strings.HasPrefix(why, "not built yet") {
			t.Errorf("switchboard skipped for a reason other than not being built: %s", why)
		}
	} else {
		want = append(want, Switchboard)
	}
	for _, name := range want {
		tr := got.Result(name)
		if tr == nil {
			t.Errorf("%s: no result in the report", name)
			continue
		}
		if len(tr.Errors) > 0 {
			t.Errorf("%s: errors: %v", name, tr.Errors)
		}
		for _, k := range Modes["smoke"].EchoConns {
			p, ok := tr.EchoAt(k)
			if !ok || p.RoundTripsPerSec <= 0 {
				t.Errorf("%s: no echo throughput at %d conns: %+v", name, k, p)
			}
			if ok && p.CPUMicrosPerRT <= 0 {
				t.Errorf("%s: no server CPU measured at %d conns", name, k)
			}
		}
		if tr.ConnectsPerSec <= 0 {
			t.Errorf("%s: no connects measured", name)
		}
		if tr.Latency == nil || tr.Latency.Count == 0 || tr.Latency.P99Micros <= 0 {
			t.Errorf("%s: no latency measured: %+v", name, tr.Latency)
		}
		if len(tr.Idle) == 0 || tr.Idle[0].Error != "" || tr.Idle[0].RSSPerConnBytes <= 0 {
			t.Errorf("%s: no idle memory measured: %+v", name, tr.Idle)
		}
	}
	for _, name := range want {
		if tr := got.Result(name); tr != nil && (tr.Fanout == nil || tr.Fanout.Clients == 0 || tr.Fanout.Delivered != tr.Fanout.Clients || tr.Fanout.DeliveryMs <= 0) {
			t.Errorf("%s fan-out did not reach every client: %+v", name, tr.Fanout)
		}
	}
	checkCluster(t, &got, len(want) > 1)
	if q := got.Ratios["echo_rt_per_sec@4"][Direct][Direct]; q != 1 {
		t.Errorf("direct/direct throughput ratio = %v, want 1", q)
	}
}

// checkCluster checks the cluster scenario of a smoke report: measured on
// both paths when Switchboard runs and Debian's nats-server is installed
// (scripts/install-test-deps.sh installs it), else skipped for that reason.
func checkCluster(t *testing.T, rep *Report, switchboard bool) {
	t.Helper()
	c := rep.Cluster
	if c == nil {
		t.Fatal("no cluster scenario in the report")
	}
	if !switchboard {
		if c.Skip == "" {
			t.Errorf("cluster ran without a switchboard binary: %+v", c)
		}
		return
	}
	if _, err := exec.LookPath("nats-server"); err != nil {
		if !strings.HasPrefix(c.Skip, "not installed") {
			t.Errorf("cluster skipped for another reason than nats-server missing: %q", c.Skip)
		}
		return
	}
	if c.Skip != "" || len(c.Errors) > 0 {
		t.Fatalf("cluster scenario: skip %q, errors %v", c.Skip, c.Errors)
	}
	for name, p := range map[string]*ClusterPath{"single": c.Single, "cross": c.Cross} {
		switch {
		case p == nil:
			t.Errorf("cluster %s: not measured", name)
		case p.RoundTripsPerSec <= 0 || p.CPUMicrosPerRT <= 0:
			t.Errorf("cluster %s: no throughput or CPU: %+v", name, p)
		case p.Latency == nil || p.Latency.Count == 0 || p.Latency.P99Micros <= 0:
			t.Errorf("cluster %s: no latency: %+v", name, p.Latency)
		case p.CPUByProcess[clBrokerB] <= 0:
			t.Errorf("cluster %s: broker b's CPU not measured: %v", name, p.CPUByProcess)
		}
	}
	if c.Single != nil && c.Cross != nil && c.ThroughputRatio != c.Cross.RoundTripsPerSec/c.Single.RoundTripsPerSec {
		t.Errorf("cluster throughput ratio %v is not cross/single", c.ThroughputRatio)
	}
	if c.Cross != nil && (c.Cross.CPUByProcess[clNATS] <= 0 || c.Cross.CPUByProcess[clBrokerA] <= 0) {
		t.Errorf("cross-node round trips used no CPU in NATS or broker a: %v", c.Cross.CPUByProcess)
	}
	var judged bool
	for _, g := range rep.Goals() {
		if strings.HasPrefix(g.Text, "cross-node throughput") {
			judged = g.Status != "pending"
		}
	}
	if !judged {
		t.Error("the cross-node goal is not judged")
	}
}

func TestSetINI(t *testing.T) {
	in := "[global]\nrundir=/var/run/x\n#rundir=no\n[runner]\nservices=a,b\n"
	out := setINI(in, map[string]map[string]string{
		"global": {"rundir": "/tmp/r"},
		"runner": {"services": "a,b,c", "logdir": "/tmp/l"},
		"proxy":  {"routesfile": "/tmp/routes"},
	})
	for _, want := range []string{"[global]\nrundir=/tmp/r\n#rundir=no\n", "services=a,b,c\n", "logdir=/tmp/l\n", "[proxy]\nroutesfile=/tmp/routes\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("setINI output lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "rundir=") != 2 {
		t.Errorf("rundir should be replaced, not added:\n%s", out)
	}
}

func TestIdleSlope(t *testing.T) {
	// 2 KiB per connection on top of a fixed 1 MiB: the slope is 2 KiB
	// whatever the fixed part, which the per-connection figures hide.
	var ps []IdlePoint
	for _, k := range []int{1000, 5000, 19000} {
		ps = append(ps, IdlePoint{Conns: k, RelayRSSPerConnBytes: (2048*float64(k) + 1<<20) / float64(k)})
	}
	ps = append(ps, IdlePoint{Conns: 10000, Error: "not run"})
	if got := idleSlope(ps); got < 2047 || got > 2049 {
		t.Fatalf("slope %v, want 2048", got)
	}
	if got := idleSlope(ps[:1]); got != 0 {
		t.Fatalf("slope of one point %v, want 0", got)
	}
}

func TestFeasibleConns(t *testing.T) {
	for _, c := range []struct {
		target string
		want   int
		limit  uint64
		conns  int
		ok     bool
	}{
		{Direct, 10000, 20000, 10000, true},
		{Nginx, 10000, 20000, 9872, true},
		{HAProxy2, 10000, 20000, 9872, true},
		{Switchboard, 19000, 20000, 19000, true},
		{Direct, 100000, 20000, 0, false},
		{Nginx, 100000, 1 << 20, 100000, true},
		{Pushpin, 10000, 20000, pushpinMaxConns, true},
		{Pushpin, 100000, 1 << 20, 0, false},
	} {
		got, why := feasibleConns(c.target, c.want, c.limit)
		if got != c.conns || (why == "") != c.ok {
			t.Errorf("feasibleConns(%s, %d, %d) = %d, %q; want %d, ok=%v", c.target, c.want, c.limit, got, why, c.conns, c.ok)
		}
	}
}
