package bench

import (
	"fmt"
	"strings"
	"time"
)

// Table renders the figures as Markdown: each target's value with its ratio
// to direct, then the ratios between every pair of relays (Switchboard and
// the peers).
func (r *Report) Table() string {
	var b strings.Builder
	var ms []metric // rows with a figure for at least one target
	for _, m := range r.metrics() {
		for _, t := range r.Targets {
			if _, ok := m.get(t); ok {
				ms = append(ms, m)
				break
			}
		}
	}
	b.WriteString("| scenario |")
	for _, t := range r.Targets {
		fmt.Fprintf(&b, " %s |", t.Name)
	}
	b.WriteString("\n|---|")
	for range r.Targets {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	for _, m := range ms {
		fmt.Fprintf(&b, "| %s |", m.label)
		for _, t := range r.Targets {
			v, ok := m.get(t)
			switch {
			case !ok:
				b.WriteString(" n/a |")
			case t.Name == Direct:
				fmt.Fprintf(&b, " %s |", m.format(v))
			default:
				if q, ok := r.Ratios[m.key][t.Name][Direct]; ok {
					fmt.Fprintf(&b, " %s (%.2f×) |", m.format(v), q)
				} else {
					fmt.Fprintf(&b, " %s |", m.format(v))
				}
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("\n(×) is the figure divided by direct's figure in the same run.\n")

	var pairs [][2]string
	for i, a := range r.Targets {
		for _, c := range r.Targets[i+1:] {
			if a.Name != Direct && c.Name != Direct {
				pairs = append(pairs, [2]string{a.Name, c.Name})
			}
		}
	}
	if len(pairs) > 0 {
		b.WriteString("\nAgainst each peer (row figure divided by column figure, same run):\n\n| scenario |")
		for _, p := range pairs {
			fmt.Fprintf(&b, " %s / %s |", p[0], p[1])
		}
		b.WriteString("\n|---|")
		for range pairs {
			b.WriteString("---:|")
		}
		b.WriteString("\n")
		for _, m := range ms {
			fmt.Fprintf(&b, "| %s |", m.label)
			for _, p := range pairs {
				if q, ok := r.Ratios[m.key][p[0]][p[1]]; ok {
					fmt.Fprintf(&b, " %.2f |", q)
				} else {
					b.WriteString(" n/a |")
				}
			}
			b.WriteString("\n")
		}
	}
	if len(r.Skipped) > 0 {
		b.WriteString("\nSkipped targets:\n\n")
		for _, n := range AllTargets {
			if why, ok := r.Skipped[n]; ok {
				fmt.Fprintf(&b, "- %s: %s\n", n, why)
			}
		}
	}
	var notes []string
	for _, t := range r.Targets {
		if t.Fanout != nil && t.Fanout.Skip != "" {
			notes = append(notes, fmt.Sprintf("- %s fan-out: %s", t.Name, t.Fanout.Skip))
		}
		if t.Fanout != nil && t.Fanout.Error != "" {
			notes = append(notes, fmt.Sprintf("- %s fan-out failed: %s", t.Name, t.Fanout.Error))
		}
		if t.Fanout != nil && t.Fanout.Delivered > 0 && t.Fanout.Clients < t.Fanout.Requested*9/10 {
			notes = append(notes, fmt.Sprintf("- %s fan-out was measured with %d clients, not %d (not in the ratios): %.1f ms to the last client, %.1f ms median",
				t.Name, t.Fanout.Clients, t.Fanout.Requested, t.Fanout.DeliveryMs, t.Fanout.P50Ms))
		}
		if t.Fanout != nil && t.Fanout.Delivered > 0 && t.Fanout.Delivered < t.Fanout.Clients {
			notes = append(notes, fmt.Sprintf("- %s fan-out: %d of %d clients got the message", t.Name, t.Fanout.Delivered, t.Fanout.Clients))
		}
		for _, p := range t.Idle {
			if p.Error == "" && p.Conns != p.Requested {
				notes = append(notes, fmt.Sprintf("- %s idle memory for %d conns was measured at %d conns (%s)", t.Name, p.Requested, p.Conns, limitReason(t.Name)))
			}
			if p.Error != "" {
				notes = append(notes, fmt.Sprintf("- %s idle memory at %d conns: %s", t.Name, p.Requested, p.Error))
			}
		}
		if t.Latency != nil && t.Latency.Missed > 0 {
			notes = append(notes, fmt.Sprintf("- %s latency: %d scheduled round trips were never sent (the target fell behind the rate; the percentiles understate its latency)", t.Name, t.Latency.Missed))
		}
		for _, e := range t.Errors {
			notes = append(notes, fmt.Sprintf("- %s: %s", t.Name, e))
		}
	}
	if len(notes) > 0 {
		b.WriteString("\nNotes:\n\n" + strings.Join(notes, "\n") + "\n")
	}
	if len(r.Variants) > 0 {
		b.WriteString("\nSwitchboard's idle memory by kind of client (a broker of its own for each):\n\n| clients | conns | broker RSS KiB/conn | all processes KiB/conn |\n|---|---:|---:|---:|\n")
		for _, v := range r.Variants {
			if v.Error != "" {
				fmt.Fprintf(&b, "| %s | %d | n/a: %s | |\n", v.Name, v.Conns, v.Error)
				continue
			}
			fmt.Fprintf(&b, "| %s | %d | %s | %s |\n", v.Name, v.Conns, fmtFloat(v.RelayRSSPerConnBytes/1024), fmtFloat(v.RSSPerConnBytes/1024))
		}
	}
	if r.Cluster != nil {
		b.WriteString(r.Cluster.Markdown())
	}
	if r.Soak != nil {
		b.WriteString(r.Soak.Markdown())
	}
	return b.String()
}

// Goal is one of the issues' targets for Switchboard (6, 7 and 15),
// judged on this run.
type Goal struct {
	Text   string
	Status string // "met", "not met", "pending"
	Figure string
	// VsGoal is the figure divided by the goal's bound (0: no single
	// figure, or not measured): at least 1 meets an "at least" goal, at
	// most 1 an "at most" goal.
	VsGoal float64
}

// Goals judges Switchboard against the issues' goals from this run's
// figures. Goals that need a figure the run lacks are "pending". "The best
// proxy" is, figure by figure, the best of nginx and HAProxy with one and
// two workers or threads in this run.
func (r *Report) Goals() []Goal {
	sb := r.Result(Switchboard)
	// judge makes a goal from whether its figure was measured (ok), whether
	// it meets the goal, the figure's text and its ratio to the goal.
	judge := func(text string, ok bool, met bool, fig string, vs float64) Goal {
		switch {
		case sb == nil || !ok:
			return Goal{Text: text, Status: "pending", Figure: "not measured in this run"}
		case met:
			return Goal{Text: text, Status: "met", Figure: fig, VsGoal: vs}
		default:
			return Goal{Text: text, Status: "not met", Figure: fig, VsGoal: vs}
		}
	}
	// atLeast and atMost judge a ratio q against a bound.
	atLeast := func(text string, ok bool, q, bound float64, fig string) Goal {
		return judge(text, ok, q >= bound, fig, q/bound)
	}
	atMost := func(text string, ok bool, q, bound float64, fig string) Goal {
		return judge(text, ok, q <= bound, fig, q/bound)
	}
	// vsBest judges Switchboard's figure for key against the best proxy's,
	// at least (higher is better) or at most bound times it.
	vsBest := func(text, key string, bound float64) Goal {
		m, ok := r.metric(key)
		if !ok || sb == nil {
			return judge(text, false, false, "", 0)
		}
		v, ok1 := m.get(sb)
		best, who, ok2 := r.bestProxy(m)
		if !ok1 || !ok2 {
			return judge(text, false, false, "", 0)
		}
		q := v / best
		fig := fmt.Sprintf("%.2f × the best proxy (%s: %s, Switchboard: %s)", q, who, m.format(best), m.format(v))
		if m.higher {
			return atLeast(text, true, q, bound, fig)
		}
		return atMost(text, true, q, bound, fig)
	}
	vsDirect := func(text, key string, limit float64) Goal {
		q, ok := r.Ratios[key][Switchboard][Direct]
		return atMost(text, ok, q, limit, fmt.Sprintf("%.2f × direct", q))
	}
	var gs []Goal
	q, ok := r.Ratios["echo_rt_per_sec@50"][Switchboard][Direct]
	gs = append(gs, atLeast("relay throughput ≥ 0.5 × direct (50 conns)", ok, q, 0.5, fmt.Sprintf("%.2f × direct", q)))
	for _, k := range []int{50, 1000} {
		gs = append(gs, vsBest(fmt.Sprintf("relay throughput ≥ 1.25 × the best proxy (%d conns)", k), fmt.Sprintf("echo_rt_per_sec@%d", k), 1.25))
		gs = append(gs, vsBest(fmt.Sprintf("CPU per round trip ≤ 0.8 × the best proxy's (%d conns)", k), fmt.Sprintf("cpu_us_per_rt@%d", k), 0.8))
	}
	q, ok = r.Ratios["echo_rt_per_sec@50"][Switchboard][Pushpin]
	gs = append(gs, atLeast("relay throughput ≥ 5 × Pushpin (50 conns)", ok, q, 5, fmt.Sprintf("%.2f × Pushpin", q)))
	gs = append(gs, vsDirect("latency p50 ≤ 3 × direct at half the direct maximum", "latency_p50_us", 3))
	gs = append(gs, vsDirect("latency p99 ≤ 1.5 × direct at half the direct maximum", "latency_p99_us", 1.5))
	gs = append(gs, vsBest("connects/s (with the service's accept) ≥ the best proxy's", "connects_per_sec", 1))
	cps := 0.0
	if sb != nil {
		cps = sb.ConnectsPerSec
	}
	gs = append(gs, atLeast("≥ 5,000 connects/s including the accept round trip", cps > 0, cps, 5000, fmt.Sprintf("%.0f/s", cps)))
	gs = append(gs, r.memoryGoal(sb, atMost))
	// wss:// and permessage-deflate idle memory have no bound: the goal is
	// that they are measured and published.
	for _, vg := range []struct{ name, text string }{
		{VariantWSS, "wss:// clients' idle memory measured and published (no bound)"},
		{VariantDeflate, "permessage-deflate clients' idle memory measured and published (no bound)"},
	} {
		var v *IdleVariant
		for i := range r.Variants {
			if r.Variants[i].Name == vg.name && r.Variants[i].Error == "" && r.Variants[i].Conns > 0 {
				v = &r.Variants[i]
			}
		}
		fig := ""
		if v != nil {
			fig = fmt.Sprintf("%s KiB of broker RSS per connection at %d conns", fmtFloat(v.RelayRSSPerConnBytes/1024), v.Conns)
		}
		gs = append(gs, judge(vg.text, v != nil, true, fig, 0))
	}
	var fan *Fanout
	if sb != nil {
		fan = sb.Fanout
	}
	fanOK := fan != nil && fan.Delivered > 0 && fan.Clients >= fan.Requested*9/10 && fan.Requested >= 10000
	fanFig, fanMs := "", 0.0
	if fanOK {
		fanFig, fanMs = fmt.Sprintf("%.1f ms to the last of %d clients", fan.DeliveryMs, fan.Clients), fan.DeliveryMs
	}
	gs = append(gs, atMost("fan-out of one message to 10,000 clients ≤ 50 ms to the last", fanOK, fanMs, 50, fanFig))
	gs = append(gs, r.soakGoal(judge))
	cl := r.Cluster
	clOK := cl != nil && cl.Single != nil && cl.Cross != nil
	q = 0
	if clOK {
		q = cl.ThroughputRatio
	}
	gs = append(gs, atLeast("cross-node throughput ≥ 0.5 × single-node (issue 7)", clOK, q, 0.5, fmt.Sprintf("%.2f × single-node at %d conns", q, cl.conns())))
	return gs
}

// soakGoal judges the soak: measured only at issue 15's size (15,000 idle
// and 500 active clients); its ratio is the second half's mean RSS over
// the most it may be (the first half's mean plus 10 %).
func (r *Report) soakGoal(judge func(string, bool, bool, string, float64) Goal) Goal {
	text := "soak: 15,000 idle + 500 active clients for the run, flat memory and goroutines"
	s := r.Soak
	if s == nil || s.Error != "" || s.Idle < 15000 || s.Active < 500 || len(s.Samples) == 0 {
		return judge(text, false, false, "", 0)
	}
	fig := fmt.Sprintf("%s: mean RSS %.1f → %.1f MiB, %+.1f %% (second half against first; slope %+.1f %% over the second half), goroutines %d–%d (%d before, %d after), %d failures, %d idle clients lost",
		time.Duration(s.DurationSec*float64(time.Second)), s.RSSFirstMean/(1<<20), s.RSSSecondMean/(1<<20), s.RSSMeanGrowthPct, s.RSSGrowthPct, s.GoroutinesMin, s.GoroutinesMax,
		s.BaselineGoroutines, s.AfterGoroutines, s.Failures, s.IdleLost)
	return judge(text, true, s.Flat(), fig, (1+s.RSSMeanGrowthPct/100)/(1+soakMaxGrowthPct/100))
}

// memoryGoal judges the broker's idle RSS per connection at the largest
// point measured (19,000 here: the file limit is 20,000 per process), with
// the slope and what a million connections would take.
func (r *Report) memoryGoal(sb *TargetResult, atMost func(string, bool, float64, float64, string) Goal) Goal {
	text := "broker RSS ≤ 4 KiB per idle connection at the most connections the file limit allows (19,000)"
	if sb == nil {
		return atMost(text, false, 0, 4, "")
	}
	best := IdlePoint{}
	for _, p := range sb.Idle {
		if p.Error == "" && p.Conns > best.Conns {
			best = p
		}
	}
	kib := best.RelayRSSPerConnBytes / 1024
	fig := fmt.Sprintf("%.1f KiB/conn at %d conns", kib, best.Conns)
	if sb.IdleSlopeBytes > 0 {
		fig += fmt.Sprintf("; slope %.1f KiB per added connection, so 1,000,000 would take about %.1f GiB",
			sb.IdleSlopeBytes/1024, sb.IdleSlopeBytes*1e6/(1<<30))
	}
	return atMost(text, best.Conns >= 19000*9/10, kib, 4, fig)
}

func limitReason(target string) string {
	if target == Pushpin {
		return "Pushpin's runner caps zurl at max_open_requests=2000; the harness holds 1,000"
	}
	return "the per-process file limit binds"
}
