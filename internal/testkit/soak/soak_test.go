// Package soak holds the bounded soak run (make soak): thousands of clients
// through an in-process broker and an SDK echo service, mixed message sizes
// and random closes, checked for goroutine growth and flat memory. It is
// not part of make test; it runs when SWITCHBOARD_SOAK is set to a duration.
package soak

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/daemon"
	"github.com/switchboard-dev/switchboard/internal/testkit/streamtest"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
)

func TestSoak(t *testing.T) {
	dur, err := time.ParseDuration(os.Getenv("SWITCHBOARD_SOAK"))
	if err != nil {
		t.Skip("set SWITCHBOARD_SOAK=2m (make soak) to run the soak")
	}
	conns := 2000
	if v, err := strconv.Atoi(os.Getenv("SWITCHBOARD_SOAK_CONNS")); err == nil {
		conns = v
	}
	var logOut io.Writer = io.Discard
	if os.Getenv("SWITCHBOARD_SOAK_LOG") != "" {
		logOut = os.Stderr
	}
	log := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b, ws := testutil.StartBroker(t, daemon.Settings{}, daemon.Options{Logger: log})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	streamtest.Echo(t, ws+"/soak/", "")

	baseGoroutines := runtime.NumGoroutine()
	var ms runtime.MemStats
	var roundTrips, reconnects, failures, rejects atomic.Int64
	deadline := time.Now().Add(dur)
	var clients sync.WaitGroup
	errs := make(chan error, conns)
	for i := 0; i < conns; i++ {
		clients.Add(1)
		go func(seed uint64) {
			defer clients.Done()
			rng := rand.New(rand.NewPCG(seed, 7))
			for time.Now().Before(deadline) {
				err := session(ctx, ws, rng, deadline, &roundTrips)
				if errors.Is(err, errRejected) {
					// Load shedding (pending connect requests over the
					// limit) is a defined outcome; a client retries.
					rejects.Add(1)
					time.Sleep(time.Duration(50+rng.IntN(200)) * time.Millisecond)
					continue
				}
				if err != nil {
					failures.Add(1)
					select {
					case errs <- err:
					default:
					}
					return
				}
				reconnects.Add(1)
			}
		}(uint64(i))
	}
	var heapAt []uint64
	sample := time.NewTicker(dur / 8)
	for done := false; !done; {
		select {
		case <-sample.C:
			runtime.GC()
			runtime.ReadMemStats(&ms)
			heapAt = append(heapAt, ms.HeapInuse)
			t.Logf("t=%v goroutines=%d heap_inuse=%d MiB round_trips=%d reconnects=%d", time.Until(deadline).Round(time.Second),
				runtime.NumGoroutine(), ms.HeapInuse>>20, roundTrips.Load(), reconnects.Load())
			done = time.Now().After(deadline)
		}
	}
	sample.Stop()
	clients.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("client: %v", err)
	}
	// Every channel ends and every goroutine the clients caused returns.
	testutil.WaitFor(t, "channels to close", 30*time.Second, func() bool {
		st := b.Status()
		return len(st.Registrations) == 1 && len(st.Registrations[0].Channels) == 0
	})
	testutil.WaitFor(t, "goroutines to return to the baseline", 30*time.Second, func() bool {
		return runtime.NumGoroutine() <= baseGoroutines+10
	})
	if len(heapAt) >= 4 {
		early, late := heapAt[1], heapAt[len(heapAt)-1]
		if late > early*3/2+8<<20 {
			t.Errorf("heap grew from %d MiB to %d MiB", early>>20, late>>20)
		}
	}
	t.Logf("SOAK RESULT: %d connections, %v, %d round trips, %d reconnects, %d rejected handshakes (retried), %d failures, heap samples (MiB): %v, goroutines back to %d (baseline %d)",
		conns, dur, roundTrips.Load(), reconnects.Load(), rejects.Load(), failures.Load(), mib(heapAt), runtime.NumGoroutine(), baseGoroutines)
	cancel()
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if err := b.Shutdown(sctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

var errRejected = errors.New("handshake rejected")

var sizes = []int{16, 200, 1024, 4096, 32 << 10, 200 << 10}

// session is one client connection: a random number of echo round trips
// with random sizes, then a random way of closing.
func session(ctx context.Context, ws string, rng *rand.Rand, deadline time.Time, rts *atomic.Int64) error {
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(dctx, ws+"/soak/"+strconv.Itoa(rng.IntN(100)), nil)
	if err != nil {
		if resp != nil && resp.StatusCode == 404 {
			return errRejected
		}
		return fmt.Errorf("dial: %w", err)
	}
	c.SetReadLimit(1 << 20)
	n := 1 + rng.IntN(40)
	for i := 0; i < n && time.Now().Before(deadline); i++ {
		msg := bytes.Repeat([]byte{byte('a' + rng.IntN(26))}, sizes[rng.IntN(len(sizes))])
		typ := websocket.MessageText
		if rng.IntN(2) == 0 {
			typ = websocket.MessageBinary
		}
		if err := c.Write(dctx, typ, msg); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		gt, got, err := c.Read(dctx)
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		if gt != typ || !bytes.Equal(got, msg) {
			return fmt.Errorf("echo mismatch: %d bytes of type %v, want %d of %v", len(got), gt, len(msg), typ)
		}
		rts.Add(1)
	}
	if rng.IntN(4) == 0 {
		return c.CloseNow() // abrupt: the broker reports 1006
	}
	_ = c.Close(websocket.StatusNormalClosure, "done")
	return nil
}

func mib(v []uint64) []uint64 {
	out := make([]uint64, len(v))
	for i, x := range v {
		out[i] = x >> 20
	}
	return out
}
