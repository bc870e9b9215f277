package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Cluster is the cross-node scenario (issue 7): two clustered brokers on
// one NATS server, the echo service attached to node b. Single-node
// clients connect to node b, cross-node clients to node a, whose broker
// relays every message over NATS to node b and back. Both paths run on
// the same processes in the same run, in interleaved rounds.
type Cluster struct {
	NATS string `json:"nats"` // the NATS server and its version
	// DataLinks says the brokers ran with data links (--cluster-data):
	// cross-node messages went node to node, NATS carried membership.
	DataLinks         bool    `json:"data_links"`
	Conns             int     `json:"conns"`
	LatencyRatePerSec float64 `json:"latency_rate_per_sec"` // half of single-node's maximum
	// Single and Cross are the two paths' figures (medians of rounds).
	Single *ClusterPath `json:"single,omitempty"`
	Cross  *ClusterPath `json:"cross,omitempty"`
	// Ratios are cross-node's figure divided by single-node's.
	ThroughputRatio float64 `json:"throughput_ratio"`
	CPURatio        float64 `json:"cpu_ratio"`
	P50Ratio        float64 `json:"p50_ratio"`
	P99Ratio        float64 `json:"p99_ratio"`
	P999Ratio       float64 `json:"p999_ratio"`
	// ExtraCPUMicrosPerRT is cross-node's CPU per round trip minus
	// single-node's, summed over every process; a round trip is two
	// messages.
	ExtraCPUMicrosPerRT float64  `json:"extra_cpu_us_per_round_trip"`
	Skip                string   `json:"skip,omitempty"`
	Errors              []string `json:"errors,omitempty"`
}

// ClusterPath is one path's figures.
type ClusterPath struct {
	RoundTripsPerSec float64 `json:"round_trips_per_sec"`
	// CPUMicrosPerRT is summed over both brokers, NATS and the echo
	// service; CPUByProcess splits it (median of rounds, each process on
	// its own).
	CPUMicrosPerRT float64            `json:"cpu_us_per_round_trip"`
	CPUByProcess   map[string]float64 `json:"cpu_us_per_round_trip_by_process"`
	Rounds         []float64          `json:"rounds"`
	Latency        *LatencyResult     `json:"latency,omitempty"`
	// NATSMsgsPerRT is how many NATS messages the two brokers published
	// per round trip (median of rounds): under load many relayed messages
	// share one NATS message, and crossing costs per NATS message.
	NATSMsgsPerRT float64 `json:"nats_msgs_per_round_trip,omitempty"`
}

// Names of the cluster's processes, in the order the notes list them.
const (
	clNATS    = "nats-server"
	clBrokerA = "broker-a"
	clBrokerB = "broker-b"
	clEcho    = "listen-echo"
)

var clusterProcs = []string{clBrokerA, clBrokerB, clNATS, clEcho}

// startCluster starts Debian's nats-server, brokers a and b clustered on
// it and the echo service on node b, and returns the single-node and the
// cross-node path over the same processes. A non-empty skip says why the
// scenario cannot run here.
func startCluster(ctx context.Context, e env, dir string, dataLinks bool) (single, cross *running, natsVersion, skip string, err error) {
	if e.bins.switchboard == "" {
		return nil, nil, "", e.bins.noSBReason, nil
	}
	if skip := ensurePeer(ctx, e, "nats-server", "nats-server"); skip != "" {
		return nil, nil, "", skip, nil
	}
	bin, _ := exec.LookPath("nats-server")
	natsVersion = "nats-server"
	if out, err := exec.CommandContext(ctx, bin, "--version").Output(); err == nil {
		natsVersion = strings.Replace(strings.TrimSpace(string(out)), ": ", " ", 1) // "nats-server: v2.9.10"
	}
	port, err := freePort()
	if err != nil {
		return nil, nil, "", "", err
	}
	natsAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	nats, _, err := startChild(ctx, e.log, dir, clNATS, "", bin, "-a", "127.0.0.1", "-p", strconv.Itoa(port))
	if err != nil {
		return nil, nil, "", "", err
	}
	all := &running{name: "cluster", relay: []*child{nats}}
	fail := func(err error) (*running, *running, string, string, error) {
		all.stop()
		return nil, nil, "", "", err
	}
	if err := pollUntil(ctx, 10*time.Second, func(ctx context.Context) error {
		if nats.exited() {
			return fmt.Errorf("nats-server exited: %v; log: %s", nats.err, nats.tail())
		}
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", natsAddr)
		if err != nil {
			return err
		}
		return c.Close()
	}); err != nil {
		return fail(fmt.Errorf("nats-server does not accept connections on %s: %w", natsAddr, err))
	}
	addrs := map[string]string{}
	for _, node := range []string{"a", "b"} {
		name := "broker-" + node
		args := []string{"--cluster", "nats://" + natsAddr, "--node-name", node}
		if dataLinks {
			args = append(args, "--cluster-data", "127.0.0.1:0")
		}
		b, addr, err := startBroker(ctx, e, dir, name, "/readyz", args...)
		if err != nil {
			return fail(err)
		}
		all.relay = append(all.relay, b)
		addrs[node] = addr
	}
	// Stop the brokers before NATS, so they do not log its loss.
	all.relay = append(all.relay[1:], nats)
	svc, _, err := startChild(ctx, e.log, dir, clEcho, "", echoService(e, "ws://"+addrs["b"]+"/echo/")...)
	if err != nil {
		return fail(err)
	}
	all.backend = []*child{svc}
	single = &running{name: "cluster single-node", wsBase: "ws://" + addrs["b"] + "/echo/", relay: all.relay, backend: all.backend}
	cross = &running{name: "cluster cross-node", wsBase: "ws://" + addrs["a"] + "/echo/", relay: all.relay, backend: all.backend}
	for _, p := range []*running{single, cross} {
		// Node a learns of node b's registration over NATS: poll until a
		// client on a is put through.
		if err := pollUntil(ctx, 30*time.Second, func(ctx context.Context) error {
			if err := p.alive(); err != nil {
				return err
			}
			return probeEcho(ctx, p.wsBase+"probe")
		}); err != nil {
			return fail(fmt.Errorf("%s does not echo at %s: %w", p.name, p.wsBase, err))
		}
	}
	if dataLinks {
		// A node dials its data link when a heartbeat shows it the
		// peer; until both links are up, streams go over NATS, and the
		// rounds would measure a mix of the two paths.
		for _, p := range []*running{single, cross} {
			if err := pollUntil(ctx, 30*time.Second, func(ctx context.Context) error {
				if err := p.alive(); err != nil {
					return err
				}
				n, err := brokerMetric(ctx, p, dataLinksLine)
				if err == nil && n < 1 {
					err = errors.New("no data link up")
				}
				return err
			}); err != nil {
				return fail(fmt.Errorf("%s: the broker at %s has no data link: %w", p.name, p.wsBase, err))
			}
		}
	}
	return single, cross, natsVersion, "", nil
}

// runCluster measures both paths: echo throughput at m.ClusterConns in
// interleaved rounds, then latency at half single-node's maximum.
func runCluster(ctx context.Context, e env, m Mode) *Cluster {
	res := &Cluster{Conns: m.ClusterConns, DataLinks: !m.ClusterOverNATS}
	dir := filepath.Join(e.dir, "cluster")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		res.Errors = append(res.Errors, fmt.Sprintf("make dir: %v", err))
		return res
	}
	single, cross, version, skip, err := startCluster(ctx, e, dir, res.DataLinks)
	switch {
	case err != nil:
		res.Errors = append(res.Errors, "start: "+err.Error())
		return res
	case skip != "":
		res.Skip = skip
		return res
	}
	defer single.stop() // the same processes as cross
	res.NATS = version
	paths := map[string]*running{"single": single, "cross": cross}
	order := []string{"single", "cross"}
	procs := map[string]*running{"cluster": single}
	echo := map[string][]echoResult{}
	natsMsgs := map[string][]float64{}
	for round := range m.Rounds {
		for _, p := range rotate(order, round) {
			quiesce(ctx, procs)
			before := natsPublished(ctx, single, cross)
			r, err := runEcho(ctx, paths[p], m.ClusterConns, MessageSize, m.ClusterDur)
			if err != nil {
				res.Errors = append(res.Errors, fmt.Sprintf("%s echo: %v", p, err))
				continue
			}
			if after := natsPublished(ctx, single, cross); before >= 0 && after >= 0 && r.roundTrips > 0 {
				natsMsgs[p] = append(natsMsgs[p], (after-before)/float64(r.roundTrips))
			}
			echo[p] = append(echo[p], r)
			e.log.Info("cluster echo", "round", round+1, "path", p, "rt_per_s", int(r.perSec), "cpu_us_per_rt", r.cpuMicrosPerRT)
		}
	}
	res.Single, res.Cross = clusterPath(echo["single"]), clusterPath(echo["cross"])
	if res.Single == nil || res.Cross == nil {
		return res
	}
	if len(natsMsgs["cross"]) > 0 {
		res.Cross.NATSMsgsPerRT = median(natsMsgs["cross"])
	}
	res.LatencyRatePerSec = res.Single.RoundTripsPerSec / 2
	lat := map[string][]LatencyResult{}
	for round := range m.Rounds {
		for _, p := range rotate(order, round) {
			quiesce(ctx, procs)
			h, missed, err := runLatency(ctx, paths[p], m.ClusterConns, res.LatencyRatePerSec, MessageSize, m.ClusterDur)
			if err != nil {
				res.Errors = append(res.Errors, fmt.Sprintf("%s latency: %v", p, err))
				continue
			}
			lr := latencyOf(h)
			lr.Missed = missed
			lat[p] = append(lat[p], lr)
			e.log.Info("cluster latency", "round", round+1, "path", p, "p50_us", lr.P50Micros, "p99_us", lr.P99Micros)
		}
	}
	if len(lat["single"]) > 0 {
		res.Single.Latency = medianLatency(lat["single"])
	}
	if len(lat["cross"]) > 0 {
		res.Cross.Latency = medianLatency(lat["cross"])
	}
	if err := single.alive(); err != nil {
		res.Errors = append(res.Errors, err.Error())
	}
	res.ratios()
	return res
}

// clusterPath takes the medians of one path's echo rounds.
func clusterPath(rounds []echoResult) *ClusterPath {
	if len(rounds) == 0 {
		return nil
	}
	p := &ClusterPath{CPUByProcess: map[string]float64{}}
	var cpus []float64
	for _, r := range rounds {
		p.Rounds = append(p.Rounds, r.perSec)
		cpus = append(cpus, r.cpuMicrosPerRT)
	}
	p.RoundTripsPerSec, p.CPUMicrosPerRT = median(p.Rounds), median(cpus)
	for _, name := range clusterProcs {
		var v []float64
		for _, r := range rounds {
			v = append(v, r.cpuByProc[name])
		}
		p.CPUByProcess[name] = median(v)
	}
	return p
}

func (c *Cluster) ratios() {
	div := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	c.ThroughputRatio = div(c.Cross.RoundTripsPerSec, c.Single.RoundTripsPerSec)
	c.CPURatio = div(c.Cross.CPUMicrosPerRT, c.Single.CPUMicrosPerRT)
	c.ExtraCPUMicrosPerRT = c.Cross.CPUMicrosPerRT - c.Single.CPUMicrosPerRT
	if c.Single.Latency != nil && c.Cross.Latency != nil {
		c.P50Ratio = div(c.Cross.Latency.P50Micros, c.Single.Latency.P50Micros)
		c.P99Ratio = div(c.Cross.Latency.P99Micros, c.Single.Latency.P99Micros)
		c.P999Ratio = div(c.Cross.Latency.P999Micros, c.Single.Latency.P999Micros)
	}
}

// Markdown renders the scenario's table and notes.
func (c *Cluster) Markdown() string {
	var b strings.Builder
	flags, path := "", "a → NATS → b and back"
	if c.DataLinks {
		flags, path = " --cluster-data 127.0.0.1:0", "a → b and back over a data link (NATS carries membership only)"
	}
	fmt.Fprintf(&b, "\nCluster (issues 7 and 14): brokers a and b (`switchboard serve --dev --cluster nats://… --node-name a|b%s`) on one ", flags)
	if c.NATS != "" {
		fmt.Fprintf(&b, "Debian `%s`", c.NATS)
	} else {
		b.WriteString("Debian `nats-server`")
	}
	fmt.Fprintf(&b, ", `switchboard listen ws://B/echo/ --echo --log-level warn` attached to node b. Single-node: clients on node b; cross-node: clients on node a, every message relayed %s. Same processes, same run, interleaved rounds, %d connections.\n\n", path, c.Conns)
	if c.Skip != "" {
		fmt.Fprintf(&b, "Not run: %s\n", c.Skip)
		return b.String()
	}
	if c.Single == nil || c.Cross == nil {
		b.WriteString("Not measured:\n\n")
		for _, e := range c.Errors {
			fmt.Fprintf(&b, "- %s\n", e)
		}
		return b.String()
	}
	b.WriteString("| cluster scenario | single-node | cross-node | cross / single |\n|---|---:|---:|---:|\n")
	row := func(label string, s, x, q float64, f func(float64) string) {
		fmt.Fprintf(&b, "| %s | %s | %s | %.2f |\n", label, f(s), f(x), q)
	}
	row(fmt.Sprintf("echo round trips/s, %d conns", c.Conns), c.Single.RoundTripsPerSec, c.Cross.RoundTripsPerSec, c.ThroughputRatio, fmtCount)
	row("CPU µs per round trip (brokers a+b, NATS, echo service)", c.Single.CPUMicrosPerRT, c.Cross.CPUMicrosPerRT, c.CPURatio, fmtFloat)
	if c.Single.Latency != nil && c.Cross.Latency != nil {
		s, x := c.Single.Latency, c.Cross.Latency
		row(fmt.Sprintf("latency p50 µs at %.0f/s", c.LatencyRatePerSec), s.P50Micros, x.P50Micros, c.P50Ratio, fmtFloat)
		row("latency p99 µs", s.P99Micros, x.P99Micros, c.P99Ratio, fmtFloat)
		row("latency p99.9 µs", s.P999Micros, x.P999Micros, c.P999Ratio, fmtFloat)
	}
	fmt.Fprintf(&b, "\nExtra cost of crossing nodes: %s µs of CPU per round trip (%s µs per message; a round trip is two messages):",
		fmtFloat(c.ExtraCPUMicrosPerRT), fmtFloat(c.ExtraCPUMicrosPerRT/2))
	var parts []string
	for _, name := range clusterProcs {
		parts = append(parts, fmt.Sprintf(" %s %+.1f", name, c.Cross.CPUByProcess[name]-c.Single.CPUByProcess[name]))
	}
	b.WriteString(strings.Join(parts, ",") + ". Latency rate: half of single-node's maximum in this run.\n")
	if c.Cross.NATSMsgsPerRT > 0 {
		fmt.Fprintf(&b, "NATS messages published per cross-node round trip: %.2f (two would be one per relayed message).\n", c.Cross.NATSMsgsPerRT)
	}
	var notes []string
	for _, p := range []struct {
		name string
		l    *LatencyResult
	}{{"single-node", c.Single.Latency}, {"cross-node", c.Cross.Latency}} {
		if p.l != nil && p.l.Missed > 0 {
			notes = append(notes, fmt.Sprintf("- %s latency: %d scheduled round trips were never sent (it fell behind the rate)", p.name, p.l.Missed))
		}
	}
	for _, e := range c.Errors {
		notes = append(notes, "- "+e)
	}
	if len(notes) > 0 {
		b.WriteString("\nCluster notes:\n\n" + strings.Join(slices.Compact(notes), "\n") + "\n")
	}
	return b.String()
}

// conns is the scenario's connection count; 0 for a nil scenario.
func (c *Cluster) conns() int {
	if c == nil {
		return 0
	}
	return c.Conns
}

// natsPublished sums switchboard_cluster_messages_total{direction="out"}
// over the brokers of paths (dev mode: /metrics is open); -1 if unread.
func natsPublished(ctx context.Context, paths ...*running) float64 {
	total := 0.0
	for _, p := range paths {
		v, err := brokerMetric(ctx, p, natsOutLine)
		if err != nil {
			return -1
		}
		total += v
	}
	return total
}

// brokerMetric reads the sample line re matches (its first group is the
// value) from the /metrics of p's broker (dev mode: /metrics is open).
func brokerMetric(ctx context.Context, p *running, re *regexp.Regexp) (float64, error) {
	host := strings.SplitN(strings.TrimPrefix(p.wsBase, "ws://"), "/", 2)[0]
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+"/metrics", nil)
	if err != nil {
		return 0, fmt.Errorf("metrics of %s: %w", host, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("metrics of %s: %w", host, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, fmt.Errorf("metrics of %s: %w", host, err)
	}
	m := re.FindSubmatch(body)
	if m == nil {
		return 0, fmt.Errorf("metrics of %s: no line matches %s", host, re)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		return 0, fmt.Errorf("metrics of %s: %w", host, err)
	}
	return v, nil
}

var (
	natsOutLine   = regexp.MustCompile(`(?m)^switchboard_cluster_messages_total\{direction="out"\} (\S+)$`)
	dataLinksLine = regexp.MustCompile(`(?m)^switchboard_cluster_data_links (\S+)$`)
)
