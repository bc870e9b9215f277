package broker_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/internal/testkit/streamtest"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
	"github.com/switchboard-dev/switchboard/internal/testkit/wstest"
)

// TestLargeMessagesRelay: with max_message at 16 MiB, messages of 4 and
// 16 MiB relay through the broker to an echo service and back, whole and
// in fragments.
func TestLargeMessagesRelay(t *testing.T) {
	if testutil.RaceEnabled {
		t.Skip("16 MiB through the race detector is slow; make test runs this test without it")
	}
	e := newEnv(t, broker.Limits{MaxMessage: 16 << 20})
	streamtest.Echo(t, e.ws+"/big/", "")
	c, _ := wstest.Dial(t, e.ws+"/big/x", nil)
	c.Timeout = 30 * time.Second
	for _, tc := range []struct {
		name  string
		size  int
		parts int
	}{{"4 MiB whole", 4 << 20, 1}, {"4 MiB in 64 fragments", 4 << 20, 64}, {"16 MiB whole", 16 << 20, 1}, {"16 MiB in 4 fragments", 16 << 20, 4}} {
		p := make([]byte, tc.size)
		for i := range p {
			p[i] = byte(i * 7)
		}
		var frames []wstest.Frame
		step := tc.size / tc.parts
		for i := 0; i < tc.parts; i++ {
			op := wstest.OpContinuation
			if i == 0 {
				op = wstest.OpBinary
			}
			frames = append(frames, wstest.Frame{Fin: i == tc.parts-1, Opcode: op, Payload: p[i*step : (i+1)*step]})
		}
		if err := c.WriteFrames(frames...); err != nil {
			t.Fatalf("%s: write: %v", tc.name, err)
		}
		m, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("%s: read: %v", tc.name, err)
		}
		if m.Opcode != wstest.OpBinary || !bytes.Equal(m.Payload, p) {
			t.Fatalf("%s: got %v, want the %d bytes back", tc.name, m, tc.size)
		}
	}
}
