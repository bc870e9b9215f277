package broker_test

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/internal/testkit/streamtest"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
)

// TestStalledClientDoesNotSlowOthers: 50 clients ping-pong through one
// service while a 51st sends without ever reading. Every one of the 50 keeps
// making round trips, together at least half of what they make without it,
// and the broker holds no more than the limits say. A stalled client that
// blocked the link or the service would take the 50 to about nothing; the
// exact ratio (about 1 on a quiet machine) is logged, not asserted: speed is
// the benchmarks' business, and this machine is shared.
func TestStalledClientDoesNotSlowOthers(t *testing.T) {
	if testutil.RaceEnabled {
		t.Skip("throughput under the race detector says nothing; make test runs this test without it")
	}
	const window, chanBuf = 64 << 10, 256 << 10
	e := newEnv(t, broker.Limits{Window: window, ChannelBuffer: chanBuf})
	streamtest.Echo(t, e.ws+"/bp/", "")
	var active []*websocket.Conn
	for i := 0; i < 50; i++ {
		active = append(active, e.dial("/bp/a", nil))
	}
	msg := make([]byte, 1024)
	// run returns the round trips of all active clients in d, and the
	// fewest that one of them made.
	run := func(d time.Duration) (total, fewest int64) {
		counts := make([]int64, len(active))
		var wg sync.WaitGroup
		end := time.Now().Add(d)
		for i, c := range active {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx := context.Background()
				for time.Now().Before(end) {
					if c.Write(ctx, websocket.MessageBinary, msg) != nil {
						return
					}
					if _, _, err := c.Read(ctx); err != nil {
						return
					}
					counts[i]++
				}
			}()
		}
		wg.Wait()
		fewest = counts[0]
		for _, n := range counts {
			total += n
			fewest = min(fewest, n)
		}
		return total, fewest
	}
	stall := func() *websocket.Conn {
		c := e.dial("/bp/stalled", nil)
		big := make([]byte, 32<<10)
		for i := 0; ; i++ { // write until the broker stops reading
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			err := c.Write(ctx, websocket.MessageBinary, big)
			cancel()
			if err != nil {
				break
			}
			if i > 10000 {
				t.Fatal("the stalled client was never held back")
			}
		}
		return c
	}
	run(500 * time.Millisecond) // warm up
	// Rounds alternate without and with the stalled client; the machine is
	// shared and noisy, so the verdict is the median of the rounds' ratios.
	var without, with []int64
	var ratios []float64
	for round := 0; round < 5; round++ {
		a, _ := run(600 * time.Millisecond)
		s := stall()
		b, fewest := run(600 * time.Millisecond)
		if fewest == 0 {
			t.Fatalf("round %d: an active client made no round trip while a client was stalled", round)
		}
		checkBounds(t, e, window, chanBuf)
		s.CloseNow()
		without, with = append(without, a), append(with, b)
		ratios = append(ratios, float64(b)/float64(a))
	}
	sort.Float64s(ratios)
	ratio := ratios[len(ratios)/2]
	t.Logf("round trips without a stalled client %v, with one %v: median ratio %.2f", without, with, ratio)
	if ratio < 0.5 {
		t.Fatalf("active clients kept %.0f%% of their throughput with a stalled client, want at least half", ratio*100)
	}
}

// checkBounds asserts the broker holds at most the channel buffer per
// channel toward the service and two windows per channel toward the client.
func checkBounds(t *testing.T, e *env, window, chanBuf int) {
	t.Helper()
	for _, r := range e.b.Status().Registrations {
		for _, c := range r.Channels {
			if c.BufferedBytes > chanBuf+32<<10 || c.QueuedOut > 2*window+32<<10 {
				t.Fatalf("channel %d holds %d bytes in and %d out, over the bounds %d and %d", c.ID, c.BufferedBytes, c.QueuedOut, chanBuf, 2*window)
			}
		}
	}
}
