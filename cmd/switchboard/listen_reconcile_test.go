package main

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/sdk"
)

// recordingLocal is a local side that records the closes it is told of.
type recordingLocal struct {
	mu     sync.Mutex
	closed []websocket.StatusCode
}

func (r *recordingLocal) deliver(context.Context, *sdk.Channel, websocket.MessageType, []byte) error {
	return nil
}
func (r *recordingLocal) run(context.Context, *session) {}
func (r *recordingLocal) stop()                         {}
func (r *recordingLocal) clientClosed(_ *session, code websocket.StatusCode, _ string) {
	r.mu.Lock()
	r.closed = append(r.closed, code)
	r.mu.Unlock()
}

func (r *recordingLocal) closes() []websocket.StatusCode {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]websocket.StatusCode(nil), r.closed...)
}

// TestReconcileKeepsLiveSessions: after a reattach, listen ends the
// sessions whose clients left while no link was up, by the list the broker
// answers. A client that connects on the new link while that list is on
// its way is missing from it and must be left alone (CI once saw such a
// client's session ended, "channel gone while detached", on a fresh link).
func TestReconcileKeepsLiveSessions(t *testing.T) {
	svc := &service{log: slog.New(slog.DiscardHandler), sessions: make(map[uint64]*session)}
	t.Cleanup(svc.stopAll)
	ctx := context.Background()
	gone, handed, early := &recordingLocal{}, &recordingLocal{}, &recordingLocal{}
	svc.newSession(ctx, 1, gone)                          // detached: its client left meanwhile
	svc.newSession(ctx, 2, handed).attach(&sdk.Channel{}) // handed over: in the list
	svc.newSession(ctx, 4, early).attach(&sdk.Channel{})  // connected on this link, not yet listed
	var live *recordingLocal
	clients := func(context.Context) ([]sdk.ClientInfo, error) {
		// A client connects on this link after the broker made the list.
		live = &recordingLocal{}
		svc.newSession(ctx, 3, live).attach(&sdk.Channel{})
		return []sdk.ClientInfo{{Channel: 2}}, nil
	}
	svc.reconcile(ctx, clients)

	if got := gone.closes(); len(got) != 1 || got[0] != websocket.StatusAbnormalClosure {
		t.Errorf("the session whose client left got closes %v, want [1006]", got)
	}
	for name, l := range map[string]*recordingLocal{"handed-over": handed, "new": live, "early": early} {
		if got := l.closes(); len(got) != 0 {
			t.Errorf("the %s session was closed: %v", name, got)
		}
	}
	svc.mu.Lock()
	_, has1 := svc.sessions[1]
	_, has2 := svc.sessions[2]
	_, has3 := svc.sessions[3]
	_, has4 := svc.sessions[4]
	svc.mu.Unlock()
	if has1 || !has2 || !has3 || !has4 {
		t.Errorf("sessions after reconcile: 1 %v, 2 %v, 3 %v, 4 %v; want all but 1", has1, has2, has3, has4)
	}
}
