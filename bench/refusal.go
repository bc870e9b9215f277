package bench

// The refusal timing benchmark (issue 12, "the privacy promise"): can a
// client tell a service's refusal from "no service here" by the time the
// broker takes to answer? It runs the switchboard binary as a production
// broker (a config file with a credential, no --dev), attaches a service
// that refuses every client from the Go SDK and one that refuses from a
// browser tab (Debian's Chromium through playwright-core), and plays the
// attacker: it probes a path known to have no service and the service's
// path over raw TCP, learns a threshold on a training set, and classifies
// fresh trials of N probes each by a statistic of their times (the
// fastest, the median, the mean, the 10th percentile), keeping the
// statistic and the direction that did best in training. Its accuracy on
// the test trials is what it reports: 50% is a coin, and the goal is at
// most 60%.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard/config"
	"github.com/switchboard-dev/switchboard/sdk"
)

// RefusalOptions configure RunRefusal.
type RefusalOptions struct {
	Repo     string        // module root: the binary is built from it, web/ holds the tab script
	Probes   int           // N: probes per trial (at most 20 in the terms)
	Train    int           // training trials per class
	Trials   int           // test trials per class
	Parallel int           // trials in flight at once
	Floor    string        // limits.refusal_floor ("" for the default; "off" for none, to see the leak)
	Jitter   string        // limits.refusal_jitter ("" for the default)
	Tab      bool          // also measure the browser-tab service
	Timeout  time.Duration // per probe
	Log      io.Writer     // progress; nil: none
}

// RefusalResult is one service's outcome.
type RefusalResult struct {
	Service    string             `json:"service"` // "go-sdk" or "browser-tab"
	Probes     int                `json:"probes"`
	Trials     int                `json:"trials"` // test trials per class
	Statistic  string             `json:"statistic"`
	Accuracy   float64            `json:"accuracy"`     // of the best-in-training statistic, on the test trials
	ByStat     map[string]float64 `json:"by_statistic"` // test accuracy of each statistic's own trained threshold
	MedianNone time.Duration      `json:"median_no_service"`
	MedianSvc  time.Duration      `json:"median_service"`
	GoalMet    bool               `json:"goal_met"` // accuracy ≤ 60%
}

// RefusalReport is what RunRefusal returns.
type RefusalReport struct {
	Floor   string          `json:"refusal_floor"`
	Jitter  string          `json:"refusal_jitter"`
	Results []RefusalResult `json:"results"`
}

// RunRefusal runs the benchmark.
func RunRefusal(ctx context.Context, o RefusalOptions) (*RefusalReport, error) {
	if o.Probes <= 0 || o.Probes > 20 {
		return nil, fmt.Errorf("probes must be 1 to 20, not %d", o.Probes)
	}
	logf := func(format string, args ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, format+"\n", args...)
		}
	}
	dir, err := os.MkdirTemp("", "switchboard-refusal-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "switchboard")
	logf("building %s", bin)
	if err := goBuild(ctx, o.Repo, bin, "./cmd/switchboard"); err != nil {
		return nil, err
	}

	secret, hash, err := config.NewCredential()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	limits := map[string]string{}
	if o.Floor == "off" {
		limits["refusal_floor"] = "1ns" // the smallest floor the config takes: none in effect
		limits["refusal_jitter"] = "1ns"
	} else if o.Floor != "" {
		limits["refusal_floor"] = o.Floor
	}
	if o.Jitter != "" && o.Floor != "off" {
		limits["refusal_jitter"] = o.Jitter
	}
	cfg := map[string]any{
		"listen": addr, "admin_token": "bench-" + strings.Repeat("0123456789", 4),
		"credentials": []map[string]any{{"name": "bench", "credential_hash": hash, "scopes": []string{"/svc/", "/tab/"}}},
	}
	if len(limits) > 0 {
		cfg["limits"] = limits
	}
	cfgPath := filepath.Join(dir, "config.json")
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		return nil, err
	}
	bctx, stopBroker := context.WithCancel(ctx)
	defer stopBroker() // runs last: the deferred stop below asks it to exit first
	broker := exec.CommandContext(bctx, bin, "serve", "--config", cfgPath, "--log-level", "warn")
	broker.Stderr = o.Log
	if o.Log == nil {
		broker.Stderr = io.Discard
	}
	if err := broker.Start(); err != nil {
		return nil, fmt.Errorf("start broker: %w", err)
	}
	defer func() {
		_ = broker.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = broker.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			stopBroker() // kills it
			<-done
		}
		stopBroker()
	}()
	if err := waitHealthy(ctx, "http://"+addr+"/healthz"); err != nil {
		return nil, err
	}

	rep := &RefusalReport{Floor: orDefault(o.Floor, "default (100ms)"), Jitter: orDefault(o.Jitter, "default (20ms)")}
	if o.Floor == "off" {
		rep.Jitter = "off"
	}
	lctx, stopSvc := context.WithCancel(ctx)
	defer stopSvc()
	l, err := sdk.Listen(lctx, "ws://"+addr+"/svc/", &sdk.ListenOptions{Credential: secret})
	if err != nil {
		return nil, fmt.Errorf("attach the Go SDK service: %w", err)
	}
	defer l.Close()
	go func() {
		for {
			req, err := l.Accept(lctx)
			if err != nil {
				return
			}
			_ = req.Reject(lctx)
		}
	}()
	logf("measuring the Go SDK service")
	r, err := classify(ctx, o, addr, "/svc/x", "go-sdk")
	if err != nil {
		return nil, err
	}
	rep.Results = append(rep.Results, r)

	if o.Tab {
		stopTab, err := startTab(ctx, o, addr, secret, logf)
		if err != nil {
			return nil, err
		}
		defer stopTab()
		logf("measuring the browser-tab service")
		r, err := classify(ctx, o, addr, "/tab/x", "browser-tab")
		if err != nil {
			return nil, err
		}
		rep.Results = append(rep.Results, r)
	}
	return rep, nil
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

func waitHealthy(ctx context.Context, url string) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return errors.New("the broker did not become healthy within 20s")
}

// startTab runs web/bench/refusing-tab.mjs: Chromium with a page whose
// BrowserSocket on /tab/ cancels every handshake. It returns once the tab
// listens.
func startTab(ctx context.Context, o RefusalOptions, addr, secret string, logf func(string, ...any)) (func(), error) {
	tctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(tctx, "node", filepath.Join("bench", "refusing-tab.mjs"))
	cmd.Dir = filepath.Join(o.Repo, "web")
	cmd.Env = append(os.Environ(), "SWITCHBOARD_URL=http://"+addr, "SWITCHBOARD_CREDENTIAL="+secret, "SCOPE=/tab/")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("start the tab (node, web/node_modules: run web/install-deps.sh): %w", err)
	}
	stop := func() {
		stdin.Close() // the script closes Chromium when its input ends
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cancel()
			<-done
		}
		cancel()
	}
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "ready" {
				ready <- nil
				_, _ = io.Copy(io.Discard, stdout)
				return
			}
			logf("tab: %s", sc.Text())
		}
		ready <- errors.New("the tab ended before it listened")
	}()
	select {
	case err := <-ready:
		if err != nil {
			stop()
			return nil, err
		}
	case <-time.After(60 * time.Second):
		stop()
		return nil, errors.New("the tab did not listen within 60s")
	}
	return stop, nil
}

// classify plays the attacker against one service path.
func classify(ctx context.Context, o RefusalOptions, addr, svcPath, name string) (RefusalResult, error) {
	// Check the two paths answer alike (the byte promise), then warm up.
	for _, p := range []string{"/nothing/here", svcPath} {
		if _, status, err := probe(addr, p, o.Timeout); err != nil || status != "HTTP/1.1 404 Not Found" {
			return RefusalResult{}, fmt.Errorf("probe %s: %q %v", p, status, err)
		}
	}
	paths := [2]string{"/nothing/here", svcPath} // class 0: no service; 1: a service refused
	train, err := trials(ctx, o, addr, paths, o.Train)
	if err != nil {
		return RefusalResult{}, err
	}
	test, err := trials(ctx, o, addr, paths, o.Trials)
	if err != nil {
		return RefusalResult{}, err
	}
	res := RefusalResult{Service: name, Probes: o.Probes, Trials: o.Trials, ByStat: map[string]float64{}}
	bestTrain := -1.0
	for _, st := range statistics {
		th, above, acc := fit(train, st.f)
		testAcc := score(test, st.f, th, above)
		res.ByStat[st.name] = testAcc
		if acc > bestTrain {
			bestTrain, res.Statistic, res.Accuracy = acc, st.name, testAcc
		}
	}
	var none, svc []time.Duration
	for _, t := range test {
		if t.class == 0 {
			none = append(none, t.times...)
		} else {
			svc = append(svc, t.times...)
		}
	}
	res.MedianNone, res.MedianSvc = medianDur(none), medianDur(svc)
	res.GoalMet = res.Accuracy <= 0.60
	return res, nil
}

type trial struct {
	class int
	times []time.Duration
}

// trials runs perClass trials of each class, interleaved in random order,
// o.Parallel at a time; each trial is o.Probes sequential probes.
func trials(ctx context.Context, o RefusalOptions, addr string, paths [2]string, perClass int) ([]trial, error) {
	order := make([]int, 0, 2*perClass)
	for i := 0; i < perClass; i++ {
		order = append(order, 0, 1)
	}
	rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	out := make([]trial, len(order))
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		ferr error
	)
	sem := make(chan struct{}, max(1, o.Parallel))
	for i, class := range order {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			t := trial{class: class}
			for p := 0; p < o.Probes; p++ {
				d, status, err := probe(addr, paths[class], o.Timeout)
				if err == nil && !strings.HasPrefix(status, "HTTP/1.1 404") {
					err = fmt.Errorf("probe %s: %s", paths[class], status)
				}
				if err != nil {
					mu.Lock()
					ferr = err
					mu.Unlock()
					return
				}
				t.times = append(t.times, d)
			}
			out[i] = t
		}()
	}
	wg.Wait()
	return out, ferr
}

// probe sends one client handshake on a fresh connection and returns the
// time from its last byte to the response's first, and the status line.
func probe(addr, path string, timeout time.Duration) (time.Duration, string, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return 0, "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	br := bufio.NewReader(c)
	start := time.Now()
	if _, err := c.Write([]byte(req)); err != nil {
		return 0, "", err
	}
	if _, err := br.Peek(1); err != nil {
		return 0, "", err
	}
	d := time.Since(start)
	line, err := br.ReadString('\n')
	return d, strings.TrimSpace(line), err
}

type statistic struct {
	name string
	f    func([]time.Duration) float64
}

var statistics = []statistic{
	{"fastest", func(t []time.Duration) float64 { return float64(quantile(t, 0)) }},
	{"p10", func(t []time.Duration) float64 { return float64(quantile(t, 0.1)) }},
	{"median", func(t []time.Duration) float64 { return float64(quantile(t, 0.5)) }},
	{"mean", func(t []time.Duration) float64 {
		var s float64
		for _, d := range t {
			s += float64(d)
		}
		return s / float64(len(t))
	}},
}

func quantile(t []time.Duration, q float64) time.Duration {
	s := append([]time.Duration(nil), t...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(q*float64(len(s)-1))]
}

func medianDur(t []time.Duration) time.Duration {
	if len(t) == 0 {
		return 0
	}
	return quantile(t, 0.5)
}

// fit finds the threshold and direction ("service" when above, or when
// below) that classify the training trials best by f.
func fit(train []trial, f func([]time.Duration) float64) (th float64, above bool, acc float64) {
	vals := make([]float64, len(train))
	for i, t := range train {
		vals[i] = f(t.times)
	}
	cands := append([]float64(nil), vals...)
	sort.Float64s(cands)
	acc = -1
	for i := range cands {
		c := cands[i]
		if i+1 < len(cands) {
			c = (cands[i] + cands[i+1]) / 2
		}
		for _, up := range []bool{true, false} {
			if a := scoreVals(train, vals, c, up); a > acc {
				th, above, acc = c, up, a
			}
		}
	}
	return th, above, acc
}

func score(test []trial, f func([]time.Duration) float64, th float64, above bool) float64 {
	vals := make([]float64, len(test))
	for i, t := range test {
		vals[i] = f(t.times)
	}
	return scoreVals(test, vals, th, above)
}

func scoreVals(ts []trial, vals []float64, th float64, above bool) float64 {
	ok := 0
	for i, t := range ts {
		guess := 0
		if (vals[i] > th) == above {
			guess = 1
		}
		if guess == t.class {
			ok++
		}
	}
	return float64(ok) / float64(len(ts))
}

// Text formats the report.
func (r *RefusalReport) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "refusal timing: floor %s, jitter %s\n", r.Floor, r.Jitter)
	fmt.Fprintf(&b, "%-12s %6s %7s %10s %9s %12s %12s %s\n", "service", "probes", "trials", "statistic", "accuracy", "median none", "median svc", "goal (≤ 60%)")
	for _, x := range r.Results {
		goal := "met"
		if !x.GoalMet {
			goal = "NOT met"
		}
		fmt.Fprintf(&b, "%-12s %6d %7d %10s %8.1f%% %12s %12s %s\n", x.Service, x.Probes, 2*x.Trials, x.Statistic, 100*x.Accuracy,
			x.MedianNone.Round(10*time.Microsecond), x.MedianSvc.Round(10*time.Microsecond), goal)
		names := make([]string, 0, len(x.ByStat))
		for n := range x.ByStat {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(&b, "    %-8s %5.1f%%\n", n, 100*x.ByStat[n])
		}
	}
	return b.String()
}
