package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Report is one run's results, as written to JSON.
type Report struct {
	Mode              string            `json:"mode"`
	Started           time.Time         `json:"started"`
	Finished          time.Time         `json:"finished"`
	Command           string            `json:"command"`
	Revision          string            `json:"revision"` // git commit of the tree the binaries were built from; "+dirty" when it had changes
	Machine           Machine           `json:"machine"`
	MessageSize       int               `json:"message_size"`
	LatencyRatePerSec float64           `json:"latency_rate_per_sec"`
	Targets           []*TargetResult   `json:"targets"`
	Skipped           map[string]string `json:"skipped"`
	// Cluster is the cross-node scenario; nil when Switchboard was not
	// among the targets.
	Cluster *Cluster `json:"cluster,omitempty"`
	// Variants is Switchboard's idle memory per wss:// client and per
	// permessage-deflate client.
	Variants []IdleVariant `json:"idle_variants,omitempty"`
	// Soak is the soak scenario; nil when it did not run.
	Soak *Soak `json:"soak,omitempty"`
	// Ratios[metric][a][b] is a's figure divided by b's, for every pair of
	// targets measured in this run.
	Ratios map[string]map[string]map[string]float64 `json:"ratios"`
}

// Machine says where the run happened.
type Machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"go_version"`
}

// TargetResult is every figure for one target.
type TargetResult struct {
	Name           string         `json:"name"`
	Echo           []EchoPoint    `json:"echo"`
	Latency        *LatencyResult `json:"latency,omitempty"`
	ConnectsPerSec float64        `json:"connects_per_sec"`
	Idle           []IdlePoint    `json:"idle"`
	// IdleSlopeBytes is the relay's RSS per added idle connection, the
	// least-squares slope of its RSS growth over the idle points (two or
	// more); what a million connections would take is a million times it.
	IdleSlopeBytes float64  `json:"idle_slope_bytes_per_conn,omitempty"`
	Fanout         *Fanout  `json:"fanout,omitempty"`
	Errors         []string `json:"errors,omitempty"`
}

// EchoPoint is ping-pong throughput at one connection count (median of
// rounds) and the target's CPU time per round trip.
type EchoPoint struct {
	Conns            int       `json:"conns"`
	RoundTripsPerSec float64   `json:"round_trips_per_sec"`
	CPUMicrosPerRT   float64   `json:"cpu_us_per_round_trip"`
	Rounds           []float64 `json:"rounds"`
}

// LatencyResult is the median round's percentiles and a CDF of all rounds.
type LatencyResult struct {
	P50Micros  float64    `json:"p50_us"`
	P99Micros  float64    `json:"p99_us"`
	P999Micros float64    `json:"p999_us"`
	Count      int64      `json:"count"`
	Missed     int64      `json:"missed"` // scheduled round trips never sent: the target fell too far behind
	CDF        []CDFPoint `json:"cdf"`
}

// CDFPoint is one point of a latency distribution.
type CDFPoint struct {
	Percentile float64 `json:"percentile"`
	Micros     float64 `json:"us"`
}

// IdlePoint is RSS growth per idle connection.
type IdlePoint struct {
	Requested            int     `json:"requested"` // the mode's figure
	Conns                int     `json:"conns"`     // what was opened: lower when the file limit binds
	RSSPerConnBytes      float64 `json:"rss_per_conn_bytes"`
	RelayRSSPerConnBytes float64 `json:"relay_rss_per_conn_bytes"`
	Error                string  `json:"error,omitempty"`
}

// Fanout is the delivery of one service message to every client.
type Fanout struct {
	Requested  int     `json:"requested"` // the mode's figure
	Clients    int     `json:"clients"`
	Delivered  int     `json:"delivered"`
	DeliveryMs float64 `json:"delivery_ms"`
	P50Ms      float64 `json:"p50_ms"`
	// CPUMs is the target's CPU time (all its processes) from the trigger
	// until every client had the message, in 10 ms ticks of /proc: a
	// coarse figure of what the fan-out cost.
	CPUMs float64 `json:"cpu_ms"`
	Skip  string  `json:"skip,omitempty"`
	Error string  `json:"error,omitempty"`
}

func newReport(cfg Config) *Report {
	r := &Report{
		Mode: cfg.Mode.Name, Started: time.Now().UTC(), Command: cfg.Command,
		Machine: machine(), MessageSize: MessageSize, Skipped: map[string]string{},
		Revision: cfg.Revision,
	}
	if r.Revision == "" {
		r.Revision = revision(cfg.RepoDir)
	}
	return r
}

// result returns the target's result, adding it on first use.
func (r *Report) result(name string) *TargetResult {
	for _, t := range r.Targets {
		if t.Name == name {
			return t
		}
	}
	t := &TargetResult{Name: name}
	r.Targets = append(r.Targets, t)
	return t
}

// Result returns the named target's result, or nil.
func (r *Report) Result(name string) *TargetResult {
	for _, t := range r.Targets {
		if t.Name == name {
			return t
		}
	}
	return nil
}

func (r *Report) addError(name string, err error) {
	t := r.result(name)
	t.Errors = append(t.Errors, err.Error())
}

// EchoAt returns the ping-pong point at conns connections.
func (t *TargetResult) EchoAt(conns int) (EchoPoint, bool) {
	for _, p := range t.Echo {
		if p.Conns == conns {
			return p, true
		}
	}
	return EchoPoint{}, false
}

// metric is one row of the tables: a name, a unit, whether higher is
// better, and how to read it from a target's result (ok false: not
// measured).
type metric struct {
	key, label string
	higher     bool
	format     func(float64) string
	get        func(*TargetResult) (float64, bool)
}

// metrics lists the rows for this report's mode.
func (r *Report) metrics() []metric {
	var ms []metric
	var conns []int
	var idle []int
	for _, t := range r.Targets {
		for _, p := range t.Echo {
			if !slices.Contains(conns, p.Conns) {
				conns = append(conns, p.Conns)
			}
		}
		for _, p := range t.Idle {
			if !slices.Contains(idle, p.Requested) {
				idle = append(idle, p.Requested)
			}
		}
	}
	slices.Sort(conns)
	slices.Sort(idle)
	for _, k := range conns {
		ms = append(ms, metric{fmt.Sprintf("echo_rt_per_sec@%d", k), fmt.Sprintf("echo round trips/s, %d conns", k), true, fmtCount,
			func(t *TargetResult) (float64, bool) {
				p, ok := t.EchoAt(k)
				return p.RoundTripsPerSec, ok && p.RoundTripsPerSec > 0
			}})
		ms = append(ms, metric{fmt.Sprintf("cpu_us_per_rt@%d", k), fmt.Sprintf("server CPU µs per round trip, %d conns", k), false, fmtFloat,
			func(t *TargetResult) (float64, bool) {
				p, ok := t.EchoAt(k)
				return p.CPUMicrosPerRT, ok && p.CPUMicrosPerRT > 0
			}})
	}
	lat := func(f func(*LatencyResult) float64) func(*TargetResult) (float64, bool) {
		return func(t *TargetResult) (float64, bool) {
			if t.Latency == nil {
				return 0, false
			}
			return f(t.Latency), true
		}
	}
	ms = append(ms,
		metric{"latency_p50_us", "latency p50 µs", false, fmtFloat, lat(func(l *LatencyResult) float64 { return l.P50Micros })},
		metric{"latency_p99_us", "latency p99 µs", false, fmtFloat, lat(func(l *LatencyResult) float64 { return l.P99Micros })},
		metric{"latency_p999_us", "latency p99.9 µs", false, fmtFloat, lat(func(l *LatencyResult) float64 { return l.P999Micros })},
		metric{"connects_per_sec", "connects/s (handshake incl. accept)", true, fmtCount,
			func(t *TargetResult) (float64, bool) { return t.ConnectsPerSec, t.ConnectsPerSec > 0 }},
	)
	for _, k := range idle {
		get := func(relay bool) func(*TargetResult) (float64, bool) {
			return func(t *TargetResult) (float64, bool) {
				for _, p := range t.Idle {
					if p.Requested == k && p.Error == "" {
						if relay {
							return p.RelayRSSPerConnBytes / 1024, true
						}
						return p.RSSPerConnBytes / 1024, true
					}
				}
				return 0, false
			}
		}
		ms = append(ms,
			metric{fmt.Sprintf("rss_kib_per_conn@%d", k), fmt.Sprintf("idle RSS KiB/conn, all processes, %d conns", k), false, fmtFloat, get(false)},
			metric{fmt.Sprintf("relay_rss_kib_per_conn@%d", k), fmt.Sprintf("idle RSS KiB/conn, relay only, %d conns", k), false, fmtFloat, get(true)},
		)
	}
	ms = append(ms, metric{"fanout_ms", "fan-out delivery ms (to last client)", false, fmtFloat,
		func(t *TargetResult) (float64, bool) {
			// Only figures at (nearly) the requested size compare.
			if t.Fanout == nil || t.Fanout.Delivered == 0 || t.Fanout.Clients < t.Fanout.Requested*9/10 {
				return 0, false
			}
			return t.Fanout.DeliveryMs, true
		}})
	return ms
}

func fmtCount(v float64) string { return fmt.Sprintf("%.0f", v) }
func fmtFloat(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// finish computes every pairwise ratio and the idle slopes.
func (r *Report) finish() {
	r.Finished = time.Now().UTC()
	for _, t := range r.Targets {
		t.IdleSlopeBytes = idleSlope(t.Idle)
	}
	r.Ratios = map[string]map[string]map[string]float64{}
	for _, m := range r.metrics() {
		for _, a := range r.Targets {
			va, ok := m.get(a)
			if !ok {
				continue
			}
			for _, b := range r.Targets {
				vb, ok := m.get(b)
				if !ok || vb == 0 {
					continue
				}
				if r.Ratios[m.key] == nil {
					r.Ratios[m.key] = map[string]map[string]float64{}
				}
				if r.Ratios[m.key][a.Name] == nil {
					r.Ratios[m.key][a.Name] = map[string]float64{}
				}
				r.Ratios[m.key][a.Name][b.Name] = va / vb
			}
		}
	}
}

// WriteJSON writes the report, indented, to path.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

func latencyOf(h *hdrhistogram.Histogram) LatencyResult {
	l := LatencyResult{
		P50Micros: float64(h.ValueAtQuantile(50)), P99Micros: float64(h.ValueAtQuantile(99)),
		P999Micros: float64(h.ValueAtQuantile(99.9)), Count: h.TotalCount(),
	}
	for _, q := range cdfQuantiles {
		l.CDF = append(l.CDF, CDFPoint{Percentile: q, Micros: float64(h.ValueAtQuantile(q))})
	}
	return l
}

var cdfQuantiles = func() []float64 {
	var qs []float64
	for q := 1.0; q < 90; q += 3 {
		qs = append(qs, q)
	}
	return append(qs, 90, 92, 94, 95, 96, 97, 98, 99, 99.5, 99.7, 99.9, 99.95, 99.99, 100)
}()

// medianLatency takes the round with the median p99, so the three
// percentiles and the CDF come from one consistent round.
func medianLatency(rounds []LatencyResult) *LatencyResult {
	s := slices.Clone(rounds)
	slices.SortFunc(s, func(a, b LatencyResult) int {
		switch {
		case a.P99Micros < b.P99Micros:
			return -1
		case a.P99Micros > b.P99Micros:
			return 1
		}
		return 0
	})
	m := s[len(s)/2]
	return &m
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// revision names the commit the Go binaries were built from, with "+dirty"
// when the tree had uncommitted changes outside bench/.
func revision(repo string) string {
	out, err := exec.Command("git", "-C", repo, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	rev := strings.TrimSpace(string(out))
	st, err := exec.Command("git", "-C", repo, "status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench", ":!docs").Output()
	if err == nil && len(bytes.TrimSpace(st)) > 0 {
		rev += "+dirty"
	}
	return rev
}

// idleSlope fits the relay's RSS growth (per-connection figure times
// connections) against connections by least squares and returns the
// slope in bytes per connection; 0 with fewer than two points.
func idleSlope(ps []IdlePoint) float64 {
	slope, _ := idleFit(ps)
	return slope
}

// idleFit is idleSlope with the fitted line's intercept (bytes at zero
// connections), for the plot.
func idleFit(ps []IdlePoint) (slope, intercept float64) {
	var n, sx, sy, sxx, sxy float64
	for _, p := range ps {
		if p.Error != "" || p.Conns == 0 {
			continue
		}
		x, y := float64(p.Conns), p.RelayRSSPerConnBytes*float64(p.Conns)
		n++
		sx += x
		sy += y
		sxx += x * x
		sxy += x * y
	}
	if n < 2 || n*sxx == sx*sx {
		return 0, 0
	}
	slope = (n*sxy - sx*sy) / (n*sxx - sx*sx)
	return slope, (sy - slope*sx) / n
}

// bestProxy returns the best of Proxies' figures for m in this run (the
// highest when higher is better, else the lowest) and whose it is.
func (r *Report) bestProxy(m metric) (float64, string, bool) {
	best, who, found := 0.0, "", false
	for _, n := range Proxies {
		t := r.Result(n)
		if t == nil {
			continue
		}
		v, ok := m.get(t)
		if !ok || v <= 0 {
			continue
		}
		if !found || (m.higher && v > best) || (!m.higher && v < best) {
			best, who, found = v, n, true
		}
	}
	return best, who, found
}

// metric returns the metric with key, if this report has it.
func (r *Report) metric(key string) (metric, bool) {
	for _, m := range r.metrics() {
		if m.key == key {
			return m, true
		}
	}
	return metric{}, false
}
