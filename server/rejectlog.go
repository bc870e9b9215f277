package server

import (
	"log/slog"
	"sort"
	"sync"
	"time"
)

// rejectLogWindow is how long a reason's later rejections are counted
// instead of logged one by one.
const rejectLogWindow = 10 * time.Second

// rejectLog logs refused client handshakes at INFO with their reason,
// which the client never sees (it gets the uniform 404). The first refusal
// of each reason in a window is logged in full (path, remote address);
// the rest of the window is counted and logged as one summary line when
// it ends, so a scan or a flood costs a line per reason per window.
// Memory is one counter per reason (a small fixed set).
type rejectLog struct {
	log *slog.Logger

	mu     sync.Mutex
	counts map[string]int  // refusals not logged yet, by reason; guarded by mu
	open   map[string]bool // reasons whose window is open; guarded by mu
	timer  *time.Timer     // ends the window; nil when none is open; guarded by mu
	closed bool            // guarded by mu
}

func newRejectLog(log *slog.Logger) *rejectLog {
	return &rejectLog{log: log, counts: map[string]int{}, open: map[string]bool{}}
}

// note records one refusal. path is the request path (never the query,
// which may carry a secret).
func (l *rejectLog) note(reason, path, remote string) {
	l.mu.Lock()
	if l.open[reason] {
		l.counts[reason]++
		l.mu.Unlock()
		return
	}
	l.open[reason] = true
	if l.timer == nil && !l.closed {
		l.timer = time.AfterFunc(rejectLogWindow, l.flush)
	}
	l.mu.Unlock()
	l.log.Info("client handshake refused", "reason", reason, "path", path, "remote", remote,
		"note", "the client got the uniform 404; further refusals for this reason are summarised every 10s")
}

// flush logs the window's summary and closes it.
func (l *rejectLog) flush() {
	l.mu.Lock()
	counts := l.counts
	l.counts, l.open, l.timer = map[string]int{}, map[string]bool{}, nil
	l.mu.Unlock()
	reasons := make([]string, 0, len(counts))
	for r := range counts {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	for _, r := range reasons {
		l.log.Info("client handshakes refused", "reason", r, "count", counts[r], "in", rejectLogWindow)
	}
}

// close logs what is pending and stops the timer.
func (l *rejectLog) close() {
	l.mu.Lock()
	l.closed = true
	t := l.timer
	l.mu.Unlock()
	if t != nil && t.Stop() {
		l.flush()
	}
}
