package bench

import (
	"fmt"
	"os"
	"strings"
)

// Markers around the generated part of docs/BENCHMARKS.md; the prose
// around them is written by hand.
const (
	resultsBegin = "<!-- results:begin (written by bench/cmd/loadgen -doc; do not edit) -->"
	resultsEnd   = "<!-- results:end -->"
)

// ResultsMarkdown renders the run for docs/BENCHMARKS.md: machine, command,
// table, plots and the goals.
func (r *Report) ResultsMarkdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Run: `%s` (%s mode), %s, %s, built from `%s`.\n\n", r.Command, r.Mode,
		r.Started.Format("2006-01-02 15:04 UTC"), r.Finished.Sub(r.Started).Round(1e9), r.Revision)
	fmt.Fprintf(&b, "Machine: %d CPUs (`nproc`), %s, Linux %s, %s. Load generator, targets and peers all share these cores.\n\n",
		r.Machine.CPUs, r.Machine.CPUModel, r.Machine.Kernel, r.Machine.GoVersion)
	fmt.Fprintf(&b, "Messages: %d B binary. Latency rate: %.0f round trips/s in total (half the direct echo's maximum in this run).\n\n",
		r.MessageSize, r.LatencyRatePerSec)
	b.WriteString(r.Table())
	b.WriteString("\n![Round trips per second against connections](bench/throughput.png)\n\n")
	b.WriteString("![Latency CDF at half the direct maximum](bench/latency-cdf.png)\n\n")
	b.WriteString("![Relay RSS growth against idle connections](bench/" + IdlePlot + ")\n\n")
	if r.soakPlot() != nil {
		b.WriteString("![Soak: the broker's RSS and heap over the run](bench/" + SoakPlot + ")\n\n")
	}
	if c := r.Cluster; c != nil && c.Single != nil && c.Cross != nil && c.Single.Latency != nil && c.Cross.Latency != nil {
		b.WriteString("![Cluster latency CDF, single-node against cross-node](bench/" + ClusterPlot + ")\n\n")
	}
	b.WriteString("Goals (issues 6, 7 and 15), judged on this run; \"÷ goal\" is the figure divided by the goal's bound (an \"at least\" goal is met at 1 or more, an \"at most\" goal at 1 or less):\n\n| goal | status | figure | ÷ goal |\n|---|---|---|---:|\n")
	for _, g := range r.Goals() {
		vs := ""
		if g.VsGoal != 0 {
			vs = fmt.Sprintf("%.2f", g.VsGoal)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", g.Text, g.Status, g.Figure, vs)
	}
	return b.String()
}

// WriteResultsDoc replaces the generated block of the Markdown file at path
// with this run's results, or appends the block when the file has none.
func WriteResultsDoc(path string, r *Report) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("read %s: %w", path, err)
	}
	block := resultsBegin + "\n" + r.ResultsMarkdown() + resultsEnd
	s := string(old)
	i, j := strings.Index(s, resultsBegin), strings.Index(s, resultsEnd)
	if i >= 0 && j > i {
		s = s[:i] + block + s[j+len(resultsEnd):]
	} else {
		s = strings.TrimRight(s, "\n") + "\n\n" + block + "\n"
	}
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
