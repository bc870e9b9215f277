package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/internal/testkit/streamtest"
)

// TestMain lets the test binary run as an SDK service process that the
// kill-cycle test SIGKILLs.
func TestMain(m *testing.M) {
	streamtest.MaybeRunEchoProcess()
	os.Exit(m.Run())
}

// TestKillCycleSDKService: clients stream numbered messages without pause
// through one broker to an SDK service process; the process is SIGKILLed
// and a new one started, several times. Every client gets every number at
// least once, first appearances strictly increasing with no gap, and no
// client connection is closed or reset. (The same with `switchboard listen
// --echo` is cmd/switchboard's kill-cycle test; across nodes, cluster's.)
func TestKillCycleSDKService(t *testing.T) {
	ws := startBroker(t)
	proc := streamtest.StartEchoProcess(t, ws+"/kill/")
	var ss []*streamtest.Streamer
	for i := 0; i < 4; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, _, err := websocket.Dial(ctx, fmt.Sprintf("%s/kill/c%d", ws, i), nil)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.CloseNow() })
		ss = append(ss, streamtest.Stream(t, c))
	}
	streamtest.WaitProgress(t, ss, 200)
	for cycle := 0; cycle < 4; cycle++ {
		if err := proc.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = proc.Wait()
		proc = streamtest.StartEchoProcess(t, ws+"/kill/")
		streamtest.WaitProgress(t, ss, 200)
	}
	for i, s := range ss {
		sent, h, err := s.Progress()
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		t.Logf("client %d: sent %d, echoed up to %d", i, sent, h)
	}
}
