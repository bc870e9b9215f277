package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// newHist records microseconds from 1 µs to 60 s with 3 significant digits.
func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(1, 60_000_000, 3) }

// runLatency sends rate round trips per second in total over conns
// connections, each on a fixed schedule, for dur. A round trip's latency is
// counted from when it was scheduled, not from when it was sent, so a
// target that falls behind is charged for the wait (no coordinated
// omission).
// A target far behind its schedule is stopped at dur plus 10%; the round
// trips it never got to are returned as missed.
func runLatency(ctx context.Context, r *running, conns int, rate float64, size int, dur time.Duration) (*hdrhistogram.Histogram, int64, error) {
	cs, err := newDialer(false).dialMany(ctx, r.wsBase+"lat", conns, 64)
	if err != nil {
		return nil, 0, err
	}
	defer closeAll(cs)
	interval := time.Duration(float64(conns) / rate * float64(time.Second))
	msg := make([]byte, size)
	hists := make([]*hdrhistogram.Histogram, len(cs))
	errc := make(chan error, len(cs))
	var wg sync.WaitGroup
	start := time.Now().Add(20 * time.Millisecond)
	end := start.Add(dur)
	hardEnd := end.Add(dur / 10)
	var missed atomic.Int64
	for i, c := range cs {
		h := newHist()
		hists[i] = h
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := start.Add(interval * time.Duration(i) / time.Duration(len(cs)))
			for next.Before(end) {
				if time.Now().After(hardEnd) {
					// Far behind schedule: count what was never sent.
					missed.Add(int64(end.Sub(next)/interval) + 1)
					return
				}
				if w := time.Until(next); w > 0 {
					time.Sleep(w) // pacing the schedule, not waiting for a condition
				}
				if err := roundTrip(ctx, c, msg); err != nil {
					errc <- err
					return
				}
				_ = h.RecordValue(max(1, time.Since(next).Microseconds()))
				next = next.Add(interval)
				if ctx.Err() != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return nil, 0, fmt.Errorf("latency at %.0f/s: %w", rate, err)
	}
	all := newHist()
	for _, h := range hists {
		all.Merge(h)
	}
	return all, missed.Load(), nil
}

// idleResult is the memory one target holds for idle connections.
type idleResult struct {
	conns           int
	rssPerConn      float64 // bytes, all target processes
	relayRSSPerConn float64 // bytes, relay processes only
	fanDelivered    int
	fanDeliveryMs   float64 // trigger to the last client's kernel receiving the frame
	fanP50Ms        float64
	fanCPUMs        float64 // the target's CPU time from the trigger to the watch's end
	fanSkip         string
}

// runIdle opens n idle connections to url (spread over source addresses),
// reads the target's RSS growth per connection and, when fan is set and the
// target has a fan-out trigger (a broadcast URL or a push service), has the
// service send one message to all of them and times the delivery: from
// just before the trigger to the kernel's receive timestamp of each
// client's frame. The clients that time a fan-out are raw sockets (see
// fanWatch), the others d's.
func runIdle(ctx context.Context, r *running, d *dialer, url string, n int, fan bool, settle time.Duration) (idleResult, error) {
	res := idleResult{conns: n}
	baseAll, baseRelay := r.usage()
	doFan := fan && (r.broadcast != "" || r.fan != nil)
	var w *fanWatch
	if doFan { // the fan-out's clients: raw sockets in the watch (see fanWatch)
		var err error
		if w, err = dialFan(ctx, url, n, 64); err != nil {
			return res, fmt.Errorf("open %d idle connections: %w", n, err)
		}
		defer w.close()
	} else {
		cs, err := d.dialMany(ctx, url, n, 64)
		if err != nil {
			return res, fmt.Errorf("open %d idle connections: %w", n, err)
		}
		defer closeAll(cs)
	}
	select {
	case <-time.After(settle): // let the target's memory settle before reading it
	case <-ctx.Done():
		return res, ctx.Err()
	}
	if err := r.alive(); err != nil {
		return res, err
	}
	all, relay := r.usage()
	res.rssPerConn = (float64(all.rssBytes) - float64(baseAll.rssBytes)) / float64(n)
	res.relayRSSPerConn = (float64(relay.rssBytes) - float64(baseRelay.rssBytes)) / float64(n)
	if !fan {
		return res, nil
	}
	if !doFan {
		res.fanSkip = "no broadcast trigger for this target"
		return res, nil
	}
	cpu0, _ := r.usage()
	t0 := time.Now()
	if err := triggerFan(ctx, r); err != nil {
		return res, err
	}
	got := w.wait(ctx, fanFrameLen, time.Now().Add(30*time.Second))
	cpu1, _ := r.usage()
	res.fanCPUMs = (cpu1.cpuSeconds - cpu0.cpuSeconds) * 1e3
	var ds []float64
	for _, t := range got {
		if t != 0 {
			ds = append(ds, float64(t-t0.UnixNano())/1e6)
		}
	}
	sort.Float64s(ds)
	res.fanDelivered = len(ds)
	if len(ds) > 0 {
		res.fanDeliveryMs = ds[len(ds)-1]
		res.fanP50Ms = ds[len(ds)/2]
	}
	return res, nil
}

// fanMessageSize is the size of the fan-out message; fanFrameLen is its
// unmasked server frame (2-byte header).
const (
	fanMessageSize = 64
	fanFrameLen    = 2 + fanMessageSize
)

// triggerFan has the target's service send one message to all its fan-out
// clients: the harness's SDK service pushes (Switchboard), the echo server
// broadcasts on a POST (direct, and through nginx or Pushpin).
func triggerFan(ctx context.Context, r *running) error {
	if r.fan != nil {
		return r.fan.push(ctx, fanMessageSize)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("%s?size=%d", r.broadcast, fanMessageSize), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("trigger broadcast: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return nil
}
