package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// SoakSpec sizes the soak scenario (issue 15): Idle clients that stay
// connected for the whole run and answer the broker's pings, and Active
// clients in echo sessions (mixed sizes, random closes, reconnects), all
// through a production broker: `switchboard serve --config` with a
// credential that owns the scope and an admin token, no --dev. The broker is
// a process of its own and the clients are the harness's, so each holds one
// descriptor per connection (the file limit is per process).
type SoakSpec struct {
	Idle, Active int
	Dur          time.Duration
	Every        time.Duration // how often the broker's RSS and goroutines are sampled
	Pace         time.Duration // between one active client's round trips
	PingInterval time.Duration // the broker's limits.ping_interval
}

// Soak is the soak scenario's outcome.
type Soak struct {
	Idle            int          `json:"idle"`
	Active          int          `json:"active"`
	DurationSec     float64      `json:"duration_s"`
	PingIntervalSec float64      `json:"ping_interval_s"`
	Samples         []SoakSample `json:"samples"`
	RoundTrips      int64        `json:"round_trips"`
	Sessions        int64        `json:"sessions"`
	Failures        int64        `json:"failures"`
	FirstFailure    string       `json:"first_failure,omitempty"`
	// IdleLost counts idle clients the broker closed during the run (they
	// answer every ping, so none should be).
	IdleLost int `json:"idle_lost"`
	// BaselineGoroutines is the broker's count before any client,
	// AfterGoroutines once every client has closed.
	BaselineGoroutines int `json:"baseline_goroutines"`
	AfterGoroutines    int `json:"after_goroutines"`
	GoroutinesMin      int `json:"goroutines_min"`
	GoroutinesMax      int `json:"goroutines_max"`
	// RSSFirstMean and RSSSecondMean are the broker's mean RSS over the
	// first half of the run (after the first tenth, the warm-up) and over
	// the second half; RSSMeanGrowthPct is the second over the first, as a
	// percentage: what "flat" is judged on. Single samples swing by ±15 %
	// here, over cycles of tens of seconds; the means of two halves differ by a few percent (up to about
	// 10 % for 1-minute halves) with no leak, and a leak raises the
	// second's.
	RSSFirstMean     float64 `json:"rss_first_half_mean_bytes"`
	RSSSecondMean    float64 `json:"rss_second_half_mean_bytes"`
	RSSMeanGrowthPct float64 `json:"rss_mean_growth_pct"`
	// RSSSlopeKiBPerMin is the least-squares slope of the broker's RSS over
	// the second half of the run; RSSGrowthPct is that slope times the
	// second half's length, as a percentage of its mean RSS.
	RSSSlopeKiBPerMin float64 `json:"rss_slope_kib_per_min"`
	RSSGrowthPct      float64 `json:"rss_growth_pct"`
	Error             string  `json:"error,omitempty"`
}

// SoakSample is one reading of the broker during the soak: its RSS from
// /proc, its goroutines and heap in use from /metrics.
type SoakSample struct {
	Sec            float64 `json:"s"`
	RSSBytes       uint64  `json:"rss_bytes"`
	Goroutines     int     `json:"goroutines"`
	HeapInuseBytes uint64  `json:"heap_inuse_bytes"`
	// HeapGoalBytes is the heap size the garbage collector set as the goal
	// of its next cycle: twice (GOGC=100) the heap its last cycle left
	// live, so it follows retained memory rather than garbage.
	HeapGoalBytes uint64 `json:"heap_goal_bytes"`
}

// soakMaxGrowthPct bounds "flat" memory: the second half's mean RSS at
// most this much above the first half's.
const soakMaxGrowthPct = 10.0

// GoroutineLimit is the most goroutines a flat run has: its baseline (the
// count before any client), one per active client, which holds one only
// while its handshake runs (net/http's handler, until the service
// accepts), and 10 for timers that fire. An idle client holds none.
func (s *Soak) GoroutineLimit() int { return s.BaselineGoroutines + s.Active + 10 }

// Flat says whether the soak held: no failures, no idle client lost, RSS
// and goroutines flat, and the goroutines back to the baseline after.
func (s *Soak) Flat() bool {
	return s.Error == "" && s.Failures == 0 && s.IdleLost == 0 && len(s.Samples) >= 4 &&
		s.RSSMeanGrowthPct <= soakMaxGrowthPct && s.GoroutinesMax <= s.GoroutineLimit() &&
		s.AfterGoroutines <= s.BaselineGoroutines+5
}

// soakSizes are the active clients' message sizes.
var soakSizes = []int{16, 200, 1024, 4096, 32 << 10}

// soakBroker is the production broker of the soak, its echo service and
// what the harness needs to reach them.
type soakBroker struct {
	broker, svc *child
	addr        string
	adminToken  string
}

func (b *soakBroker) stop() {
	b.svc.stop()
	b.broker.stop()
}

// startSoakBroker writes a production config (an admin token, a credential
// owning /soak/, the ping interval; no dev mode), starts `switchboard serve
// --config` and `switchboard listen --echo` with the credential, and waits
// until the scope echoes.
func startSoakBroker(ctx context.Context, e env, dir string, ping time.Duration) (*soakBroker, error) {
	// The entry ready for the file is on stdout, the secret on stderr.
	cmd := exec.CommandContext(ctx, e.bins.switchboard, "credential", "new", "--json", "--name", "soak", "--scope", "/soak/")
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("switchboard credential new: %w: %s", err, se.String())
	}
	entry := json.RawMessage(so.Bytes())
	secret := ""
	sc := bufio.NewScanner(&se)
	for sc.Scan() {
		if _, v, ok := strings.Cut(sc.Text(), ": "); ok && strings.HasPrefix(strings.TrimSpace(v), "sb_") {
			secret = strings.TrimSpace(v)
		}
	}
	if secret == "" || !json.Valid(entry) {
		return nil, fmt.Errorf("switchboard credential new: no secret or entry in its output: %q", se.String())
	}
	tok := make([]byte, 32)
	_, _ = rand.Read(tok)
	admin := base64.RawURLEncoding.EncodeToString(tok)
	cfg := map[string]any{
		"admin_token": admin,
		"limits":      map[string]any{"ping_interval": ping.String()},
		"credentials": []json.RawMessage{entry},
	}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	cfgPath := filepath.Join(dir, "config.json")
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		return nil, fmt.Errorf("write soak config: %w", err)
	}
	broker, addr, err := startServe(ctx, e, dir, "broker", "/healthz", "--config", cfgPath)
	if err != nil {
		return nil, err
	}
	sb := &soakBroker{broker: broker, addr: addr, adminToken: admin}
	sb.svc, _, err = startChild(ctx, e.log, dir, "listen-echo", "", echoService(e, "ws://"+addr+"/soak/", "--credential", secret)...)
	if err != nil {
		broker.stop()
		return nil, err
	}
	if err := pollUntil(ctx, 30*time.Second, func(ctx context.Context) error { return probeEcho(ctx, "ws://"+addr+"/soak/probe") }); err != nil {
		sb.stop()
		return nil, fmt.Errorf("soak service does not echo: %w; service log: %s", err, sb.svc.tail())
	}
	return sb, nil
}

// soakMetrics are what the soak reads from the broker's /metrics.
var soakMetrics = []string{"go_goroutines", "go_memstats_heap_inuse_bytes", "go_memstats_next_gc_bytes"}

// metrics reads soakMetrics from the broker's /metrics, with the admin
// token (a production broker serves it to no one else).
func (b *soakBroker) metrics(ctx context.Context) (map[string]float64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+b.addr+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+b.adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape /metrics: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok || !slices.Contains(soakMetrics, name) {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", name, err)
		}
		out[name] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read /metrics: %w", err)
	}
	for _, n := range soakMetrics {
		if _, ok := out[n]; !ok {
			return nil, fmt.Errorf("scrape /metrics: no %s", n)
		}
	}
	return out, nil
}

// goroutines reads the broker's goroutine count.
func (b *soakBroker) goroutines(ctx context.Context) (int, error) {
	m, err := b.metrics(ctx)
	return int(m["go_goroutines"]), err
}

// sample reads the broker's RSS (/proc) and its goroutines and heap.
func (b *soakBroker) sample(ctx context.Context, start time.Time) (SoakSample, error) {
	st, err := readProcStat(b.broker.pid())
	if err != nil {
		return SoakSample{}, err
	}
	m, err := b.metrics(ctx)
	if err != nil {
		return SoakSample{}, err
	}
	return SoakSample{Sec: time.Since(start).Seconds(), RSSBytes: st.rssPages * uint64(os.Getpagesize()), Goroutines: int(m["go_goroutines"]),
		HeapInuseBytes: uint64(m["go_memstats_heap_inuse_bytes"]), HeapGoalBytes: uint64(m["go_memstats_next_gc_bytes"])}, nil
}

// runSoak runs the soak scenario on a broker of its own.
func runSoak(ctx context.Context, e env, spec SoakSpec, fdLimit uint64) *Soak {
	s := &Soak{Idle: spec.Idle, Active: spec.Active, DurationSec: spec.Dur.Seconds(), PingIntervalSec: spec.PingInterval.Seconds()}
	if need := uint64(spec.Idle + spec.Active + 256); need > fdLimit {
		s.Error = fmt.Sprintf("not run: the per-process file limit is %d, the soak needs about %d in each of the broker and the harness", fdLimit, need)
		return s
	}
	if e.bins.switchboard == "" {
		s.Error = e.bins.noSBReason
		return s
	}
	dir := filepath.Join(e.dir, "soak")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		s.Error = err.Error()
		return s
	}
	b, err := startSoakBroker(ctx, e, dir, spec.PingInterval)
	if err != nil {
		s.Error = err.Error()
		return s
	}
	defer b.stop()
	if err := s.run(ctx, e, b, spec); err != nil {
		s.Error = err.Error()
	}
	if b.broker.exited() && s.Error == "" {
		s.Error = fmt.Sprintf("the broker exited: %v; log: %s", b.broker.err, b.broker.tail())
	}
	return s
}

func (s *Soak) run(ctx context.Context, e env, b *soakBroker, spec SoakSpec) error {
	var err error
	if s.BaselineGoroutines, err = b.goroutines(ctx); err != nil {
		return err
	}
	base := "ws://" + b.addr + "/soak/"
	idle, err := newDialer(true).dialMany(ctx, base+"idle", spec.Idle, 64)
	if err != nil {
		return fmt.Errorf("open %d idle clients: %w", spec.Idle, err)
	}
	defer closeAll(idle)
	// CloseRead reads (and so answers pings) until the connection closes;
	// its context ends then.
	idleDone := make([]context.Context, len(idle))
	for i, c := range idle {
		idleDone[i] = c.CloseRead(ctx)
	}
	e.log.Info("soak: idle clients open", "idle", spec.Idle)

	start := time.Now()
	deadline := start.Add(spec.Dur)
	var rts, sessions, failures atomic.Int64
	var firstFail atomic.Value
	fail := func(err error) {
		failures.Add(1)
		firstFail.CompareAndSwap(nil, err.Error())
	}
	d := newDialer(true)
	var wg sync.WaitGroup
	for i := range spec.Active {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := mrand.New(mrand.NewPCG(uint64(i), 15))
			for time.Now().Before(deadline) && ctx.Err() == nil {
				if err := soakSession(ctx, d, base+"active/"+strconv.Itoa(i), rng, deadline, spec.Pace, &rts); err != nil {
					fail(err)
					time.Sleep(spec.Pace) // pacing the retry, not waiting for a condition
					continue
				}
				sessions.Add(1)
			}
		}()
	}

	every := spec.Every
	tick := time.NewTicker(every)
	for now := range tick.C {
		smp, err := b.sample(ctx, start)
		if err != nil {
			tick.Stop()
			return fmt.Errorf("sample the broker: %w", err)
		}
		s.Samples = append(s.Samples, smp)
		lvl := slog.LevelDebug
		if len(s.Samples)%max(1, int(30*time.Second/every)) == 1 {
			lvl = slog.LevelInfo // one line in 30 s
		}
		e.log.Log(ctx, lvl, "soak", "t", time.Duration(smp.Sec*float64(time.Second)).Round(time.Second), "rss_mib", smp.RSSBytes>>20,
			"goroutines", smp.Goroutines, "heap_inuse_mib", smp.HeapInuseBytes>>20, "heap_goal_mib", smp.HeapGoalBytes>>20, "round_trips", rts.Load(), "failures", failures.Load())
		if !now.Add(every / 2).Before(deadline) {
			break
		}
		if ctx.Err() != nil {
			tick.Stop()
			return ctx.Err()
		}
	}
	tick.Stop()
	wg.Wait()
	for _, dc := range idleDone {
		if dc.Err() != nil {
			s.IdleLost++
		}
	}
	closeAll(idle)
	s.RoundTrips, s.Sessions, s.Failures = rts.Load(), sessions.Load(), failures.Load()
	if f, ok := firstFail.Load().(string); ok {
		s.FirstFailure = f
	}
	s.summarize()
	// Every goroutine the clients caused returns.
	_ = pollUntil(ctx, 30*time.Second, func(ctx context.Context) error {
		g, err := b.goroutines(ctx)
		if err != nil {
			return err
		}
		s.AfterGoroutines = g
		if g > s.BaselineGoroutines+5 {
			return fmt.Errorf("%d goroutines, %d before the clients", g, s.BaselineGoroutines)
		}
		return nil
	})
	return nil
}

// summarize computes the goroutine range and the second half's RSS slope.
func (s *Soak) summarize() {
	if len(s.Samples) == 0 {
		return
	}
	s.GoroutinesMin, s.GoroutinesMax = math.MaxInt, 0
	for _, p := range s.Samples {
		s.GoroutinesMin = min(s.GoroutinesMin, p.Goroutines)
		s.GoroutinesMax = max(s.GoroutinesMax, p.Goroutines)
	}
	half := s.Samples[len(s.Samples)/2:]
	if len(half) < 2 {
		return
	}
	first := s.Samples[len(s.Samples)/10 : len(s.Samples)/2]
	if len(first) == 0 {
		first = s.Samples[:len(s.Samples)/2]
	}
	s.RSSFirstMean, s.RSSSecondMean = meanRSS(first), meanRSS(half)
	s.RSSMeanGrowthPct = (s.RSSSecondMean/s.RSSFirstMean - 1) * 100
	var n, sx, sy, sxx, sxy float64
	for _, p := range half {
		x, y := p.Sec, float64(p.RSSBytes)
		n++
		sx += x
		sy += y
		sxx += x * x
		sxy += x * y
	}
	if n*sxx == sx*sx {
		return
	}
	slope := (n*sxy - sx*sy) / (n*sxx - sx*sx) // bytes per second
	s.RSSSlopeKiBPerMin = slope * 60 / 1024
	span := half[len(half)-1].Sec - half[0].Sec
	s.RSSGrowthPct = slope * span / (sy / n) * 100
}

func meanRSS(ss []SoakSample) float64 {
	var sum float64
	for _, p := range ss {
		sum += float64(p.RSSBytes)
	}
	return sum / float64(len(ss))
}

// soakSession is one active client's connection: a random number of echo
// round trips of random sizes, paced, each checked, then a normal or an
// abrupt close.
func soakSession(ctx context.Context, d *dialer, url string, rng *mrand.Rand, deadline time.Time, pace time.Duration, rts *atomic.Int64) error {
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := d.dial(dctx, url)
	if err != nil {
		return err
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 20)
	n := 1 + rng.IntN(50)
	for i := 0; i < n && time.Now().Before(deadline); i++ {
		msg := bytes.Repeat([]byte{byte('a' + rng.IntN(26))}, soakSizes[rng.IntN(len(soakSizes))])
		typ := websocket.MessageText
		if rng.IntN(2) == 0 {
			typ = websocket.MessageBinary
		}
		rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
		err := c.Write(rctx, typ, msg)
		var gt websocket.MessageType
		var got []byte
		if err == nil {
			gt, got, err = c.Read(rctx)
		}
		rcancel()
		if err != nil {
			return fmt.Errorf("round trip %d of %d bytes: %w", i+1, len(msg), err)
		}
		if gt != typ || !bytes.Equal(got, msg) {
			return fmt.Errorf("echo mismatch: %d bytes of type %v, want %d of %v", len(got), gt, len(msg), typ)
		}
		rts.Add(1)
		time.Sleep(pace) // pacing the load, not waiting for a condition
	}
	if rng.IntN(4) == 0 {
		return nil // abrupt: the deferred CloseNow; the broker sees 1006
	}
	if err := c.Close(websocket.StatusNormalClosure, "done"); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}

// Markdown renders the soak's figures for the report.
func (s *Soak) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nSoak: %d idle clients (answering pings every %.0f s) and %d active clients in echo sessions, for %s, on a production broker (config file, credential, admin token; no --dev) in a process of its own:\n\n",
		s.Idle, s.PingIntervalSec, s.Active, time.Duration(s.DurationSec*float64(time.Second)))
	if s.Error != "" {
		fmt.Fprintf(&b, "- not measured: %s\n", s.Error)
		return b.String()
	}
	verdict := "flat"
	if !s.Flat() {
		verdict = "not flat"
	}
	fmt.Fprintf(&b, "| figure | value |\n|---|---:|\n")
	fmt.Fprintf(&b, "| broker mean RSS, first half (after the first tenth) and second half | %.1f → %.1f MiB |\n", s.RSSFirstMean/(1<<20), s.RSSSecondMean/(1<<20))
	fmt.Fprintf(&b, "| broker mean RSS, second half against first (goal ≤ +%.0f %%) | %+.1f %% |\n", soakMaxGrowthPct, s.RSSMeanGrowthPct)
	fmt.Fprintf(&b, "| broker RSS over the second half: least-squares slope | %.0f KiB/min (%+.1f %% over the half) |\n", s.RSSSlopeKiBPerMin, s.RSSGrowthPct)
	if n := len(s.Samples); n > 0 {
		fmt.Fprintf(&b, "| broker RSS, first and last sample | %.1f → %.1f MiB |\n", mibOf(s.Samples[0].RSSBytes), mibOf(s.Samples[n-1].RSSBytes))
		fmt.Fprintf(&b, "| broker heap in use, first and last sample | %.1f → %.1f MiB |\n", mibOf(s.Samples[0].HeapInuseBytes), mibOf(s.Samples[n-1].HeapInuseBytes))
	}
	fmt.Fprintf(&b, "| broker goroutines: min–max over the run (goal: at most %d, the baseline, one per active client and 10) | %d–%d |\n", s.GoroutineLimit(), s.GoroutinesMin, s.GoroutinesMax)
	fmt.Fprintf(&b, "| broker goroutines: before the clients, after they closed | %d, %d |\n", s.BaselineGoroutines, s.AfterGoroutines)
	fmt.Fprintf(&b, "| round trips, sessions, failures | %d, %d, %d |\n", s.RoundTrips, s.Sessions, s.Failures)
	fmt.Fprintf(&b, "| idle clients the broker closed | %d |\n", s.IdleLost)
	fmt.Fprintf(&b, "\nVerdict: %s (%d samples).", verdict, len(s.Samples))
	if s.FirstFailure != "" {
		fmt.Fprintf(&b, " First failure: %s.", s.FirstFailure)
	}
	b.WriteString("\n")
	return b.String()
}

func mibOf(v uint64) float64 { return float64(v) / (1 << 20) }
