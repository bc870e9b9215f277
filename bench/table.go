package bench

import (
	"fmt"
	"strings"
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
	if r.Cluster != nil {
		b.WriteString(r.Cluster.Markdown())
	}
	return b.String()
}

// Goal is one of issue 6's (and issue 7's) targets for Switchboard, judged on this run.
type Goal struct {
	Text   string
	Status string // "met", "not met", "pending"
	Figure string
}

// Goals judges Switchboard against the goals from this run's
// figures. Goals that need a figure the run lacks are "pending".
func (r *Report) Goals() []Goal {
	sb := r.Result(Switchboard)
	ratio := func(key, other string) (float64, bool) {
		q, ok := r.Ratios[key][Switchboard][other]
		return q, ok
	}
	judge := func(text string, ok bool, met bool, fig string) Goal {
		switch {
		case sb == nil || !ok:
			return Goal{Text: text, Status: "pending", Figure: "not measured in this run"}
		case met:
			return Goal{Text: text, Status: "met", Figure: fig}
		default:
			return Goal{Text: text, Status: "not met", Figure: fig}
		}
	}
	var gs []Goal
	key := "echo_rt_per_sec@50"
	q, ok := ratio(key, Direct)
	gs = append(gs, judge("relay throughput ≥ 0.5 × direct (50 conns)", ok, q >= 0.5, fmt.Sprintf("%.2f × direct", q)))
	q, ok = ratio(key, Nginx)
	gs = append(gs, judge("relay throughput ≥ 1.0 × nginx (50 conns)", ok, q >= 1.0, fmt.Sprintf("%.2f × nginx", q)))
	q, ok = ratio(key, Pushpin)
	gs = append(gs, judge("relay throughput ≥ 5 × Pushpin (50 conns)", ok, q >= 5, fmt.Sprintf("%.2f × Pushpin", q)))
	q, ok = ratio("latency_p99_us", Direct)
	gs = append(gs, judge("p99 latency ≤ 2 × direct at half load", ok, q <= 2, fmt.Sprintf("%.2f × direct", q)))
	// Memory: the largest idle point measured, broker only.
	memText := "broker RSS ≤ 4 KiB per idle connection at 100,000 connections"
	var mem Goal
	if sb != nil {
		best := IdlePoint{}
		for _, p := range sb.Idle {
			if p.Error == "" && p.Conns > best.Conns {
				best = p
			}
		}
		kib := best.RelayRSSPerConnBytes / 1024
		fig := fmt.Sprintf("%.1f KiB/conn at %d conns", kib, best.Conns)
		if best.Conns > 0 && best.Conns < 100000 {
			fig += "; 100,000 not measured"
			for _, p := range sb.Idle {
				if p.Requested >= 100000 && p.Error != "" {
					fig += ": " + p.Error
				}
			}
			if r.Mode != "full" {
				fig += " (`make bench` only, and it needs a file limit above 100,000)"
			}
		}
		mem = judge(memText, best.Conns > 0, kib <= 4, fig)
	} else {
		mem = judge(memText, false, false, "")
	}
	gs = append(gs, mem)
	cps := 0.0
	if sb != nil {
		cps = sb.ConnectsPerSec
	}
	gs = append(gs, judge("≥ 5,000 connects/s including the accept round trip", cps > 0, cps >= 5000, fmt.Sprintf("%.0f/s", cps)))
	cl := r.Cluster
	clOK := cl != nil && cl.Single != nil && cl.Cross != nil
	q = 0
	if clOK {
		q = cl.ThroughputRatio
	}
	gs = append(gs, judge("cross-node throughput ≥ 0.5 × single-node (issue 7)", clOK, q >= 0.5, fmt.Sprintf("%.2f × single-node at %d conns", q, cl.conns())))
	return gs
}

func limitReason(target string) string {
	if target == Pushpin {
		return "Pushpin's runner caps zurl at max_open_requests=2000; the harness holds 1,000"
	}
	return "the per-process file limit binds"
}
