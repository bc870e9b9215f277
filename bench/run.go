package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Mode sets the sizes of one run.
type Mode struct {
	Name         string
	Rounds       int           // interleaved rounds; the median is reported
	EchoDur      time.Duration // per echo measurement
	LatencyDur   time.Duration
	ConnectDur   time.Duration
	EchoConns    []int // connection counts for ping-pong
	LatencyConns int
	ConnectPar   int   // dials in flight in the connect scenario
	IdleConns    []int // idle memory points; the first one is also the fan-out size
	// CurveConns are more idle memory points, for Switchboard only: its
	// memory curve, whose slope says what a million clients would take.
	CurveConns []int
	// Variants measures Switchboard's idle memory per wss:// client and per
	// client that negotiated permessage-deflate, at the first IdleConns.
	Variants     bool
	Settle       time.Duration
	ClusterConns int           // cluster scenario: connections for echo and latency
	ClusterDur   time.Duration // cluster scenario: per measurement
	// ClusterOverNATS runs the cluster without data links: cross-node
	// messages through NATS.
	ClusterOverNATS bool
	Install         bool // apt-get install missing peers; else skip them
	Plots           bool
	// Soak is the soak scenario on a production broker of its own (zero
	// Idle: not run).
	Soak SoakSpec
}

// Modes are the documented run sizes.
var Modes = map[string]Mode{
	"smoke": {Name: "smoke", Rounds: 1, EchoDur: 300 * time.Millisecond, LatencyDur: 300 * time.Millisecond,
		ConnectDur: 200 * time.Millisecond, EchoConns: []int{4, 16}, LatencyConns: 16, ConnectPar: 4,
		IdleConns: []int{200}, Settle: 100 * time.Millisecond, ClusterConns: 8, ClusterDur: 300 * time.Millisecond,
		Soak: SoakSpec{Idle: 200, Active: 20, Dur: 5 * time.Second, Every: 250 * time.Millisecond, Pace: 20 * time.Millisecond, PingInterval: 2 * time.Second}},
	"quick": {Name: "quick", Rounds: 3, EchoDur: 2 * time.Second, LatencyDur: 2 * time.Second,
		ConnectDur: time.Second, EchoConns: []int{50, 1000}, LatencyConns: 50, ConnectPar: 16,
		IdleConns: []int{10000}, CurveConns: []int{1000, 5000, 19000}, Variants: true,
		Settle: time.Second, ClusterConns: 50, ClusterDur: 2 * time.Second, Install: true, Plots: true,
		Soak: SoakSpec{Idle: 15000, Active: 500, Dur: 3 * time.Minute, Every: time.Second, Pace: 100 * time.Millisecond, PingInterval: 10 * time.Second}},
	"full": {Name: "full", Rounds: 5, EchoDur: 5 * time.Second, LatencyDur: 5 * time.Second,
		ConnectDur: 3 * time.Second, EchoConns: []int{50, 1000}, LatencyConns: 50, ConnectPar: 16,
		IdleConns: []int{10000, 100000}, CurveConns: []int{1000, 5000, 19000}, Variants: true,
		Settle: 2 * time.Second, ClusterConns: 50, ClusterDur: 5 * time.Second, Install: true, Plots: true,
		Soak: SoakSpec{Idle: 15000, Active: 500, Dur: 10 * time.Minute, Every: time.Second, Pace: 100 * time.Millisecond, PingInterval: 10 * time.Second}},
}

// MessageSize is the ping-pong and latency payload.
const MessageSize = 1024

// Config is one run of the harness.
type Config struct {
	Mode    Mode
	RepoDir string   // module root, where the Go binaries are built from
	Targets []string // default: all four
	Log     *slog.Logger
	Command string // the command line, for the report
	KeepDir bool   // keep the temp dir with the targets' configs and logs
	// Revision names the source tree in the report; empty: ask git in RepoDir.
	Revision string
	// Scenarios, when set, runs only these (see Scenarios); the report
	// leaves the others empty. Latency needs echo (its rate is half the
	// direct echo's maximum).
	Scenarios []string
}

// Scenarios names the parts of a run, for Config.Scenarios: idle memory
// and fan-out (idle), Switchboard's memory curve (curve), its wss:// and
// permessage-deflate idle memory (variants), echo throughput (echo),
// connect rate (connect), latency (latency), the cluster (cluster) and the
// soak (soak).
var Scenarios = []string{"idle", "curve", "variants", "echo", "connect", "latency", "cluster", "soak"}

// runs says whether cfg runs scenario s.
func (cfg Config) runs(s string) bool {
	return len(cfg.Scenarios) == 0 || slices.Contains(cfg.Scenarios, s)
}

// AllTargets lists every target in table order.
var AllTargets = []string{Direct, Switchboard, Nginx, Nginx2, HAProxy, HAProxy2, Pushpin}

// Run builds the Go binaries, starts every available target, runs every
// scenario against each of them interleaved, stops them, and returns the
// report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := cfg.Mode
	for _, s := range cfg.Scenarios {
		if !slices.Contains(Scenarios, s) {
			return nil, fmt.Errorf("unknown scenario %q (%s)", s, strings.Join(Scenarios, ", "))
		}
	}
	if cfg.runs("latency") && !cfg.runs("echo") {
		return nil, fmt.Errorf("the latency scenario needs echo: its rate is half the direct echo's maximum")
	}
	names := cfg.Targets
	if len(names) == 0 {
		names = AllTargets
	}
	fdLimit := raiseFileLimit(log)
	dir, err := os.MkdirTemp("", "switchboard-bench-")
	if err != nil {
		return nil, fmt.Errorf("make temp dir: %w", err)
	}
	if cfg.KeepDir {
		log.Warn("keeping the run's configs and logs", "dir", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	bins, err := buildBinaries(ctx, cfg.RepoDir, dir)
	if err != nil {
		return nil, err
	}
	e := env{log: log, dir: dir, bins: bins, install: m.Install}
	rep := newReport(cfg)

	targets := map[string]*running{}
	defer func() {
		for _, r := range targets {
			r.stop()
		}
	}()
	var order []string
	for _, n := range names {
		r, skip, err := startTarget(ctx, e, n)
		if err != nil {
			if n == Direct {
				return nil, fmt.Errorf("start direct target: %w", err)
			}
			skip = "failed to start: " + err.Error()
		}
		if skip != "" {
			log.Warn("target skipped", "target", n, "reason", skip)
			rep.Skipped[n] = skip
			continue
		}
		log.Info("target ready", "target", n, "url", r.wsBase)
		targets[n] = r
		order = append(order, n)
		rep.result(n)
	}

	// Idle memory and fan-out first, on fresh processes, one target at a time.
	for _, n := range order {
		if !cfg.runs("idle") {
			break
		}
		for i, want := range m.IdleConns {
			k, why := feasibleConns(n, want, fdLimit)
			pt := IdlePoint{Requested: want, Conns: k}
			if why != "" {
				log.Warn("idle memory not run", "target", n, "conns", want, "reason", why)
				pt.Error = why
				rep.result(n).Idle = append(rep.result(n).Idle, pt)
				if i == 0 {
					rep.result(n).Fanout = &Fanout{Requested: want, Error: why}
				}
				continue
			}
			r := targets[n]
			// A target whose fan-out service is the harness's own
			// (Switchboard) measures idle memory on its echo service, as
			// the others do, and fans out on a second set of clients.
			sepFan := r.fanURL != ""
			quiesce(ctx, targets)
			res, err := runIdle(ctx, r, newDialer(true), r.wsBase+"fan", k, i == 0 && !sepFan, m.Settle)
			if err != nil {
				log.Warn("idle memory failed", "target", n, "conns", k, "err", err)
				pt.Error = err.Error()
			} else {
				pt.RSSPerConnBytes = res.rssPerConn
				pt.RelayRSSPerConnBytes = res.relayRSSPerConn
			}
			rep.result(n).Idle = append(rep.result(n).Idle, pt)
			if i == 0 && sepFan {
				quiesce(ctx, targets)
				res, err = runIdle(ctx, r, newDialer(true), r.fanURL, k, true, 0)
			}
			if i == 0 {
				rep.result(n).Fanout = fanoutOf(want, k, res, err)
			}
			// pt, not res: with a separate fan-out, res is the fan-out's run.
			log.Info("idle", "target", n, "conns", k, "rss_per_conn", pt.RSSPerConnBytes, "relay_rss_per_conn", pt.RelayRSSPerConnBytes, "fanout_ms", res.fanDeliveryMs)
		}
	}

	// Switchboard's memory curve, each point on a broker of its own (a Go
	// process keeps the heap of connections that closed).
	if targets[Switchboard] != nil && cfg.runs("curve") {
		for _, want := range m.CurveConns {
			pt := curvePoint(ctx, e, want, fdLimit, m.Settle)
			rep.result(Switchboard).Idle = append(rep.result(Switchboard).Idle, pt)
		}
	}

	// wss:// and permessage-deflate clients, on brokers of their own.
	if m.Variants && targets[Switchboard] != nil && len(m.IdleConns) > 0 && cfg.runs("variants") {
		if k, why := feasibleConns(Switchboard, m.IdleConns[0], fdLimit); why == "" {
			rep.Variants = runVariants(ctx, e, k)
		} else {
			rep.Variants = []IdleVariant{{Name: VariantWSS, Error: why}, {Name: VariantDeflate, Error: why}}
		}
	}

	// Throughput and connect rate, interleaved rounds, the order rotated
	// each round.
	echo := map[string]map[int][]echoResult{}
	conn := map[string][]float64{}
	for round := range m.Rounds {
		for _, n := range rotate(order, round) {
			r := targets[n]
			if echo[n] == nil {
				echo[n] = map[int][]echoResult{}
			}
			for _, k := range m.EchoConns {
				if !cfg.runs("echo") {
					break
				}
				quiesce(ctx, targets)
				res, err := runEcho(ctx, r, k, MessageSize, m.EchoDur)
				if err != nil {
					log.Warn("echo failed", "target", n, "conns", k, "err", err)
					rep.addError(n, err)
					continue
				}
				echo[n][k] = append(echo[n][k], res)
				log.Info("echo", "round", round+1, "target", n, "conns", k, "rt_per_s", int(res.perSec), "cpu_us_per_rt", res.cpuMicrosPerRT)
			}
			if !cfg.runs("connect") {
				continue
			}
			quiesce(ctx, targets)
			cps, err := runConnect(ctx, r, m.ConnectPar, m.ConnectDur)
			if err != nil {
				log.Warn("connect rate failed", "target", n, "err", err)
				rep.addError(n, err)
			} else {
				conn[n] = append(conn[n], cps)
				log.Info("connect", "round", round+1, "target", n, "per_s", int(cps))
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
		}
	}
	for _, n := range order {
		for _, k := range m.EchoConns {
			rounds := echo[n][k]
			if len(rounds) == 0 {
				continue
			}
			rts := make([]float64, len(rounds))
			cpus := make([]float64, len(rounds))
			for i, r := range rounds {
				rts[i], cpus[i] = r.perSec, r.cpuMicrosPerRT
			}
			rep.result(n).Echo = append(rep.result(n).Echo, EchoPoint{
				Conns: k, RoundTripsPerSec: median(rts), CPUMicrosPerRT: median(cpus), Rounds: rts,
			})
		}
		if len(conn[n]) > 0 {
			rep.result(n).ConnectsPerSec = median(conn[n])
		}
	}

	// Latency at half the direct echo's maximum, measured above with as
	// many connections as the latency scenario uses.
	dp, _ := rep.result(Direct).EchoAt(m.LatencyConns)
	directMax := dp.RoundTripsPerSec
	if cfg.runs("latency") && directMax == 0 {
		return nil, fmt.Errorf("direct echo measured no throughput at %d conns: cannot set the latency rate", m.LatencyConns)
	}
	rate := directMax / 2
	rep.LatencyRatePerSec = rate
	lat := map[string][]LatencyResult{}
	for round := range m.Rounds {
		if !cfg.runs("latency") {
			break
		}
		for _, n := range rotate(order, round) {
			quiesce(ctx, targets)
			h, missed, err := runLatency(ctx, targets[n], m.LatencyConns, rate, MessageSize, m.LatencyDur)
			if err != nil {
				log.Warn("latency failed", "target", n, "err", err)
				rep.addError(n, err)
				continue
			}
			lr := latencyOf(h)
			lr.Missed = missed
			lat[n] = append(lat[n], lr)
			log.Info("latency", "round", round+1, "target", n, "p50_us", lr.P50Micros, "p99_us", lr.P99Micros, "p999_us", lr.P999Micros)
		}
	}
	for _, n := range order {
		if len(lat[n]) > 0 {
			rep.result(n).Latency = medianLatency(lat[n])
		}
	}
	for _, n := range order {
		if err := targets[n].alive(); err != nil {
			rep.addError(n, err)
		}
	}

	// The cluster scenario (issue 7) on processes of its own, the other
	// targets stopped.
	for n, r := range targets {
		r.stop()
		delete(targets, n)
	}
	if slices.Contains(names, Switchboard) && cfg.runs("cluster") {
		rep.Cluster = runCluster(ctx, e, m)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	// The soak last, on a production broker of its own, nothing else
	// running.
	if slices.Contains(names, Switchboard) && m.Soak.Idle > 0 && cfg.runs("soak") {
		rep.Soak = runSoak(ctx, e, m.Soak, fdLimit)
		e.log.Info("soak done", "flat", rep.Soak.Flat(), "rss_mean_growth_pct", rep.Soak.RSSMeanGrowthPct,
			"goroutines_min", rep.Soak.GoroutinesMin, "goroutines_max", rep.Soak.GoroutinesMax, "failures", rep.Soak.Failures, "err", rep.Soak.Error)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	rep.finish()
	return rep, nil
}

func fanoutOf(requested, clients int, res idleResult, err error) *Fanout {
	f := &Fanout{Clients: clients, Requested: requested}
	switch {
	case err != nil:
		f.Error = err.Error()
	case res.fanSkip != "":
		f.Skip = res.fanSkip
	default:
		f.Delivered, f.DeliveryMs, f.P50Ms, f.CPUMs = res.fanDelivered, res.fanDeliveryMs, res.fanP50Ms, res.fanCPUMs
	}
	return f
}

func rotate(s []string, k int) []string {
	if len(s) == 0 {
		return nil
	}
	k %= len(s)
	return append(slices.Clone(s[k:]), s[:k]...)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// pushpinMaxConns is how many proxied WebSocket connections the idle and
// fan-out scenarios hold open through Pushpin (see feasibleConns).
const pushpinMaxConns = 1000

// feasibleConns says how many idle connections target can hold under a
// per-process file limit: the harness holds one descriptor per connection,
// and so does each target process, except nginx's single worker, which
// holds two (client and upstream). When the limit binds but allows at
// least 90% of want, it returns that lower count; below that, a reason.
// Pushpin is measured at no more than pushpinMaxConns.
func feasibleConns(target string, want int, limit uint64) (int, string) {
	const spare = 256 // listeners, logs, links, pipes
	per := 1
	if slices.Contains(Proxies, target) {
		per = 2 // nginx's workers and HAProxy hold a client and an upstream socket
	}
	room := (int(min(limit, 1<<30)) - spare) / per
	if target == Pushpin {
		// Pushpin's runner writes zurl's config from a fixed template with
		// max_open_requests=2000: connection 2,001 gets a 502.
		room = min(room, pushpinMaxConns)
	}
	switch {
	case target == Pushpin && want > 10*pushpinMaxConns:
		return 0, fmt.Sprintf("not run: Pushpin's runner caps zurl at max_open_requests=2000, and its %d-connection point stands for the 10,000 one", pushpinMaxConns)
	case target == Pushpin && room < want:
		return room, ""
	case room >= want:
		return want, ""
	case room >= want*9/10:
		return room, ""
	}
	return 0, fmt.Sprintf("not run: the per-process file limit is %d (raising it needs CAP_SYS_RESOURCE), %s needs about %d", limit, target, want*per+spare)
}

// raiseFileLimit lifts RLIMIT_NOFILE to the kernel's maximum (as root) or
// to the hard limit, and returns the limit in force; the targets, started
// as children, inherit it.
func raiseFileLimit(log *slog.Logger) uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		log.Warn("read file limit", "err", err)
		return 1024
	}
	want := lim.Max
	if b, err := os.ReadFile("/proc/sys/fs/nr_open"); err == nil {
		var n uint64
		if _, err := fmt.Sscan(string(b), &n); err == nil && n > want {
			want = n
		}
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: want, Max: want}); err != nil {
		// Not root: the hard limit is as far as we may go.
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: lim.Max, Max: lim.Max})
		log.Info("file limit stays at the hard limit", "limit", lim.Max, "err", err)
		return lim.Max
	}
	return want
}

// goBuild builds the package pkg of the module at repo into out. The
// harness builds from its -repo (any checkout, e.g. an older one to compare
// with), not from the module it runs in, which is why it does not use
// testutil.BuildSwitchboard.
func goBuild(ctx context.Context, repo, out, pkg string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = repo
	if o, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w: %s", pkg, err, o)
	}
	return nil
}

// buildBinaries builds the echo server and, when cmd/switchboard exists
// and has the listen command, the switchboard CLI.
func buildBinaries(ctx context.Context, repo, dir string) (binaries, error) {
	var b binaries
	build := func(out, pkg string) error { return goBuild(ctx, repo, out, pkg) }
	dir = filepath.Join(dir, "bin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return b, fmt.Errorf("make bin dir: %w", err)
	}
	b.echoServer = filepath.Join(dir, "echoserver")
	if err := build(b.echoServer, "./bench/cmd/echoserver"); err != nil {
		return b, err
	}
	if _, err := os.Stat(filepath.Join(repo, "cmd", "switchboard")); err != nil {
		b.noSBReason = "not built yet: cmd/switchboard does not exist"
		return b, nil
	}
	sb := filepath.Join(dir, "switchboard")
	if err := build(sb, "./cmd/switchboard"); err != nil {
		b.noSBReason = "not built yet: " + err.Error()
		return b, nil
	}
	if why := switchboardStatus(ctx, sb); why != "" {
		b.noSBReason = why
		return b, nil
	}
	b.switchboard = sb
	return b, nil
}

// quiesce waits (up to 5 s) until every running target has been nearly
// idle for 100 ms, so one target's cleanup (closing thousands of
// connections) is not charged to the next measurement.
func quiesce(ctx context.Context, targets map[string]*running) {
	roots := func() []int {
		var ps []int
		for _, r := range targets {
			ps = append(ps, pids(r.relay)...)
			ps = append(ps, pids(r.backend)...)
		}
		return ps
	}()
	const window = 100 * time.Millisecond
	_ = pollUntil(ctx, 5*time.Second, func(ctx context.Context) error {
		before := measure(roots)
		select {
		case <-time.After(window):
		case <-ctx.Done():
			return ctx.Err()
		}
		busy := (measure(roots).cpuSeconds - before.cpuSeconds) / window.Seconds()
		if busy > 0.05 {
			return fmt.Errorf("targets still busy: %.0f%% of a core", busy*100)
		}
		return nil
	})
}
