// Command loadgen runs Switchboard's benchmark harness: it builds the echo
// server and the switchboard CLI, starts every target on loopback (direct,
// Switchboard, nginx and HAProxy with one and two workers or threads,
// Pushpin), the cluster scenario's two clustered brokers over Debian's
// nats-server and the soak's production broker, runs the scenarios, prints
// the ratio table and the goals, and writes the JSON report (and, in quick
// and full mode, the plots and, with -doc, docs/BENCHMARKS.md's results).
//
//	go run ./bench/cmd/loadgen -mode quick
//	go run ./bench/cmd/loadgen -mode full -scenarios soak -targets switchboard -soak 10m
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/switchboard-dev/switchboard/bench"
)

func main() {
	mode := flag.String("mode", "quick", "smoke, quick or full")
	repo := flag.String("repo", ".", "module root to build the binaries from")
	out := flag.String("out", "", "JSON report path (default bench/results/MODE-TIME.json)")
	plots := flag.String("plots", "docs/bench", "directory for the PNG plots (quick and full modes)")
	doc := flag.String("doc", "", "write the results into this Markdown file (e.g. docs/BENCHMARKS.md)")
	targets := flag.String("targets", "", "comma-separated targets (default all: direct,switchboard,nginx,nginx-2w,haproxy,haproxy-2t,pushpin)")
	verbose := flag.Bool("v", false, "log every measurement")
	idle := flag.Int("idle", 0, "override the mode's idle connection count (one point)")
	scenarios := flag.String("scenarios", "", "comma-separated scenarios to run (default all: "+strings.Join(bench.Scenarios, ",")+")")
	echoConns := flag.String("echo-conns", "", "override the mode's echo connection counts (comma-separated, e.g. 50)")
	rounds := flag.Int("rounds", 0, "override the mode's number of interleaved rounds")
	soakDur := flag.Duration("soak", 0, "override the mode's soak duration")
	overNATS := flag.Bool("cluster-over-nats", false, "cluster scenario: no data links, cross-node messages through NATS")
	keep := flag.Bool("keep", false, "keep the temp dir with the targets' configs and logs")
	rev := flag.String("revision", "", "name of the source tree for the report (default: git's HEAD in -repo, +dirty if changed)")
	flag.Parse()
	level := slog.LevelInfo
	if !*verbose {
		level = slog.LevelWarn
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o := overrides{idle: *idle, scenarios: *scenarios, echoConns: *echoConns, rounds: *rounds, soak: *soakDur, overNATS: *overNATS}
	if err := run(ctx, log, *mode, *repo, *out, *plots, *doc, *targets, o, *keep, *rev); err != nil {
		fmt.Fprintf(os.Stderr, "loadgen: %v\n", err)
		os.Exit(1)
	}
}

// overrides narrow a mode for a focused run (one scenario, fewer
// connection counts or rounds).
type overrides struct {
	idle      int
	scenarios string
	echoConns string
	rounds    int
	soak      time.Duration
	overNATS  bool
}

func run(ctx context.Context, log *slog.Logger, mode, repo, out, plots, doc, targets string, o overrides, keep bool, rev string) error {
	m, ok := bench.Modes[mode]
	if !ok {
		return fmt.Errorf("unknown mode %q (smoke, quick, full)", mode)
	}
	if o.idle > 0 {
		m.IdleConns = []int{o.idle}
	}
	if o.rounds > 0 {
		m.Rounds = o.rounds
	}
	if o.soak > 0 {
		m.Soak.Dur = o.soak
	}
	m.ClusterOverNATS = o.overNATS
	if o.echoConns != "" {
		m.EchoConns = nil
		for _, f := range strings.Split(o.echoConns, ",") {
			n, err := strconv.Atoi(f)
			if err != nil || n <= 0 {
				return fmt.Errorf("-echo-conns: %q is not a connection count", f)
			}
			m.EchoConns = append(m.EchoConns, n)
		}
		if !slices.Contains(m.EchoConns, m.LatencyConns) {
			m.LatencyConns = m.EchoConns[0] // latency's rate comes from the direct echo at as many connections
		}
	}
	cfg := bench.Config{Mode: m, RepoDir: repo, Log: log, Command: commandFor(mode), KeepDir: keep, Revision: rev}
	if targets != "" {
		cfg.Targets = strings.Split(targets, ",")
	}
	if o.scenarios != "" {
		cfg.Scenarios = strings.Split(o.scenarios, ",")
	}
	start := time.Now()
	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Printf("# %s run, %s, %d CPUs (%s), kernel %s\n\n", rep.Mode, time.Since(start).Round(time.Second),
		rep.Machine.CPUs, rep.Machine.CPUModel, rep.Machine.Kernel)
	fmt.Print(rep.Table())
	fmt.Println()
	for _, g := range rep.Goals() {
		if mode == "smoke" {
			break // tiny counts: the goals mean nothing here
		}
		vs := ""
		if g.VsGoal != 0 {
			vs = fmt.Sprintf(" (%.2f of the goal)", g.VsGoal)
		}
		fmt.Printf("goal %-62s %-8s %s%s\n", g.Text, g.Status, g.Figure, vs)
	}
	if out == "" {
		out = filepath.Join(repo, "bench", "results", fmt.Sprintf("%s-%s.json", mode, rep.Started.Format("20060102-150405")))
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("make results dir: %w", err)
	}
	if err := rep.WriteJSON(out); err != nil {
		return err
	}
	fmt.Printf("\nreport: %s\n", out)
	if m.Plots && plots != "" {
		if err := os.MkdirAll(plots, 0o755); err != nil {
			return fmt.Errorf("make plot dir: %w", err)
		}
		paths, err := rep.WritePlots(plots)
		if err != nil {
			return err
		}
		fmt.Printf("plots: %s\n", strings.Join(paths, ", "))
	}
	if doc != "" {
		if err := bench.WriteResultsDoc(doc, rep); err != nil {
			return err
		}
		fmt.Printf("results written into %s\n", doc)
	}
	return nil
}

func commandFor(mode string) string {
	switch mode {
	case "quick":
		return "make bench-quick"
	case "full":
		return "make bench"
	}
	return "make bench-smoke"
}
