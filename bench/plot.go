package bench

import (
	"fmt"
	"image/color"
	"path/filepath"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// targetColors keeps each target's colour the same in every plot.
var targetColors = map[string]color.Color{
	Direct:      color.RGBA{R: 0x33, G: 0x33, B: 0x33, A: 0xff},
	Switchboard: color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	Nginx:       color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	Nginx2:      color.RGBA{R: 0x98, G: 0xdf, B: 0x8a, A: 0xff},
	HAProxy:     color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
	HAProxy2:    color.RGBA{R: 0xc5, G: 0xb0, B: 0xd5, A: 0xff},
	Pushpin:     color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
}

// WritePlots draws throughput against connections and the latency CDF as
// PNG files in dir and returns their paths.
func (r *Report) WritePlots(dir string) ([]string, error) {
	tp, err := r.throughputPlot()
	if err != nil {
		return nil, err
	}
	lat, err := r.latencyPlot()
	if err != nil {
		return nil, err
	}
	idle, err := r.idlePlot()
	if err != nil {
		return nil, err
	}
	plots := map[string]*plot.Plot{}
	// A run of some scenarios only (loadgen -scenarios) draws what it has.
	var echo, latency, idlePts bool
	for _, t := range r.Targets {
		echo = echo || len(t.Echo) > 0
		latency = latency || t.Latency != nil
		idlePts = idlePts || slices.ContainsFunc(t.Idle, func(p IdlePoint) bool { return p.Error == "" && p.Conns > 0 })
	}
	for name, p := range map[string]struct {
		p   *plot.Plot
		has bool
	}{"throughput.png": {tp, echo}, "latency-cdf.png": {lat, latency}, IdlePlot: {idle, idlePts}} {
		if p.has {
			plots[name] = p.p
		}
	}
	if c := r.Cluster; c != nil && c.Single != nil && c.Cross != nil && c.Single.Latency != nil && c.Cross.Latency != nil {
		cp, err := cdfPlot(fmt.Sprintf("Cluster latency at %.0f round trips/s (half the single-node maximum)", c.LatencyRatePerSec),
			[]cdfSeries{{"single-node (clients on b)", targetColors[Switchboard], c.Single.Latency}, {"cross-node (clients on a)", crossColor, c.Cross.Latency}})
		if err != nil {
			return nil, err
		}
		plots[ClusterPlot] = cp
	}
	if sp := r.soakPlot(); sp != nil {
		plots[SoakPlot] = sp
	}
	var out []string
	for name, p := range plots {
		path := filepath.Join(dir, name)
		if err := p.Save(7*vg.Inch, 4.5*vg.Inch, path); err != nil {
			return nil, fmt.Errorf("save plot %s: %w", path, err)
		}
		out = append(out, path)
	}
	return out, nil
}

func (r *Report) throughputPlot() (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Echo ping-pong, %d B messages (median of rounds)", r.MessageSize)
	p.X.Label.Text = "connections"
	p.Y.Label.Text = "round trips per second"
	p.X.Scale = plot.LogScale{}
	var xt []plot.Tick
	for _, t := range r.Targets {
		for _, e := range t.Echo {
			if !slices.ContainsFunc(xt, func(k plot.Tick) bool { return k.Value == float64(e.Conns) }) {
				xt = append(xt, plot.Tick{Value: float64(e.Conns), Label: fmt.Sprint(e.Conns)})
			}
		}
	}
	p.X.Tick.Marker = plot.ConstantTicks(xt)
	p.Y.Tick.Marker = intTicks{}
	p.Legend.Top = true
	for _, t := range r.Targets {
		var xy plotter.XYs
		for _, e := range t.Echo {
			xy = append(xy, plotter.XY{X: float64(e.Conns), Y: e.RoundTripsPerSec})
		}
		if len(xy) == 0 {
			continue
		}
		l, pts, err := plotter.NewLinePoints(xy)
		if err != nil {
			return nil, fmt.Errorf("throughput line for %s: %w", t.Name, err)
		}
		l.Color, pts.Color = targetColors[t.Name], targetColors[t.Name]
		l.Width = vg.Points(2)
		pts.Shape = draw.CircleGlyph{}
		p.Add(l, pts)
		p.Legend.Add(t.Name, l, pts)
	}
	p.Y.Min = 0
	return p, nil
}

// SoakPlot is the file name of the soak's memory over time.
const SoakPlot = "soak-memory.png"

// soakPlot draws the soak broker's RSS and heap in use over the run, with
// the goroutine range in the title; nil when the soak has no samples.
func (r *Report) soakPlot() *plot.Plot {
	s := r.Soak
	if s == nil || len(s.Samples) < 2 {
		return nil
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Soak: %d idle + %d active clients; broker goroutines %d–%d", s.Idle, s.Active, s.GoroutinesMin, s.GoroutinesMax)
	p.X.Label.Text = "seconds"
	p.Y.Label.Text = "MiB"
	p.Y.Tick.Marker = intTicks{}
	p.Legend.Top, p.Legend.Left = false, true
	for _, line := range []struct {
		name  string
		color color.Color
		get   func(SoakSample) uint64
	}{
		{"broker RSS", targetColors[Switchboard], func(x SoakSample) uint64 { return x.RSSBytes }},
		{"broker heap in use", crossColor, func(x SoakSample) uint64 { return x.HeapInuseBytes }},
	} {
		var xy plotter.XYs
		for _, smp := range s.Samples {
			xy = append(xy, plotter.XY{X: smp.Sec, Y: mibOf(line.get(smp))})
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			return nil
		}
		l.Color, l.Width = line.color, vg.Points(2)
		p.Add(l)
		p.Legend.Add(line.name, l)
	}
	p.X.Min, p.Y.Min = 0, 0
	p.Add(plotter.NewGrid())
	return p
}

// IdlePlot is the file name of the idle memory curve.
const IdlePlot = "idle-memory.png"

// idlePlot draws each relay's RSS growth against idle connections, with
// Switchboard's least-squares line.
func (r *Report) idlePlot() (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Idle connections: relay RSS growth"
	p.X.Label.Text = "idle connections"
	p.Y.Label.Text = "MiB"
	p.Y.Tick.Marker = intTicks{}
	p.Legend.Top, p.Legend.Left = true, true
	for _, t := range r.Targets {
		var xy plotter.XYs
		for _, pt := range t.Idle {
			if pt.Error == "" && pt.Conns > 0 {
				xy = append(xy, plotter.XY{X: float64(pt.Conns), Y: pt.RelayRSSPerConnBytes * float64(pt.Conns) / (1 << 20)})
			}
		}
		if len(xy) == 0 {
			continue
		}
		slices.SortFunc(xy, func(a, b plotter.XY) int { return int(a.X - b.X) })
		l, pts, err := plotter.NewLinePoints(xy)
		if err != nil {
			return nil, fmt.Errorf("idle line for %s: %w", t.Name, err)
		}
		l.Color, pts.Color = targetColors[t.Name], targetColors[t.Name]
		l.Width = vg.Points(2)
		pts.Shape = draw.CircleGlyph{}
		p.Add(l, pts)
		p.Legend.Add(t.Name, l, pts)
		if slope, icpt := idleFit(t.Idle); slope > 0 {
			// The least-squares line over the points, dashed: its slope is
			// the cost of one more idle connection.
			x0, x1 := xy[0].X, xy[len(xy)-1].X
			fit, err := plotter.NewLine(plotter.XYs{{X: x0, Y: (icpt + slope*x0) / (1 << 20)}, {X: x1, Y: (icpt + slope*x1) / (1 << 20)}})
			if err != nil {
				return nil, fmt.Errorf("idle fit for %s: %w", t.Name, err)
			}
			fit.Color, fit.Width, fit.Dashes = targetColors[t.Name], vg.Points(1), []vg.Length{vg.Points(4), vg.Points(3)}
			p.Add(fit)
			p.Legend.Add(fmt.Sprintf("%s least squares: %.2f KiB per connection, 1,000,000 ≈ %.1f GiB", t.Name, slope/1024, slope*1e6/(1<<30)), fit)
		}
	}
	p.X.Min, p.Y.Min = 0, 0
	p.Add(plotter.NewGrid())
	return p, nil
}

func (r *Report) latencyPlot() (*plot.Plot, error) {
	var ss []cdfSeries
	for _, t := range r.Targets {
		if t.Latency != nil {
			ss = append(ss, cdfSeries{t.Name, targetColors[t.Name], t.Latency})
		}
	}
	return cdfPlot(fmt.Sprintf("Latency at %.0f round trips/s (half the direct maximum)", r.LatencyRatePerSec), ss)
}

// ClusterPlot is the file name of the cluster scenario's latency CDF.
const ClusterPlot = "cluster-latency-cdf.png"

// crossColor is the cross-node line's colour in the cluster plot.
var crossColor = color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}

// cdfSeries is one line of a latency CDF plot.
type cdfSeries struct {
	name  string
	color color.Color
	lat   *LatencyResult
}

func cdfPlot(title string, series []cdfSeries) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "round-trip latency (log scale)"
	p.Y.Label.Text = "percentile"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.ConstantTicks([]plot.Tick{
		{Value: 1, Label: "1µs"}, {Value: 10, Label: "10µs"}, {Value: 100, Label: "100µs"},
		{Value: 1e3, Label: "1ms"}, {Value: 1e4, Label: "10ms"}, {Value: 1e5, Label: "100ms"},
		{Value: 1e6, Label: "1s"}, {Value: 1e7, Label: "10s"}, {Value: 6e7, Label: "60s"},
	})
	p.Legend.Top = false
	p.Legend.Left = false
	p.Legend.XOffs = -vg.Points(4)
	p.Legend.YOffs = vg.Points(4)
	for _, s := range series {
		var xy plotter.XYs
		for _, c := range s.lat.CDF {
			xy = append(xy, plotter.XY{X: max(1, c.Micros), Y: c.Percentile})
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			return nil, fmt.Errorf("latency line for %s: %w", s.name, err)
		}
		l.Color = s.color
		l.Width = vg.Points(2)
		p.Add(l)
		p.Legend.Add(s.name, l)
	}
	p.Y.Min, p.Y.Max = 0, 100
	p.Add(plotter.NewGrid())
	return p, nil
}

// intTicks labels the default ticks as whole numbers.
type intTicks struct{}

func (intTicks) Ticks(lo, hi float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = fmt.Sprintf("%.0f", ts[i].Value)
		}
	}
	return ts
}
