package server

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// lockedBuffer is testutil.SyncBuffer, which this package's own tests
// cannot import (testutil assembles a broker with package server).
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRejectLogAggregates: the first refusal of each reason is logged at
// INFO with its reason and path (never the query), the rest of the window
// as one summary line with the count.
func TestRejectLogAggregates(t *testing.T) {
	var buf lockedBuffer
	l := newRejectLog(slog.New(slog.NewTextHandler(&buf, nil)))
	for i := 0; i < 100; i++ {
		l.note("no_scope", "/nothing/here", "192.0.2.1:1234")
	}
	l.note("origin", "/chat/", "192.0.2.2:1")
	l.close()
	out := buf.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 lines (two first refusals, one summary), got %d:\n%s", len(lines), out)
	}
	for _, want := range []string{
		`level=INFO msg="client handshake refused" reason=no_scope path=/nothing/here remote=192.0.2.1:1234`,
		`level=INFO msg="client handshake refused" reason=origin path=/chat/`,
		`level=INFO msg="client handshakes refused" reason=no_scope count=99`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}
