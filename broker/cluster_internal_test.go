package broker

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/protocol"
)

// Connect requests relayed to a local instance that its service never
// answers expire with the request instead of piling up until the instance
// detaches.
func TestRemotePendingConnectsExpire(t *testing.T) {
	var rc remoteChannels
	ttl := 100 * time.Millisecond
	var msg []byte
	for i := uint64(1); i <= 500; i++ {
		msg = (&protocol.Connect{Channel: 7<<NodeShift | i, Target: "ws://x/a"}).Append(msg)
	}
	rc.observe(msg, ttl)
	if n := rc.pendingCount(); n != 500 {
		t.Fatalf("%d pending after 500 connects, want 500", n)
	}
	answered := (&protocol.ChannelInfo{Channel: 7<<NodeShift | 1}).Append(nil)
	rc.observe(answered, ttl) // an Open of one of them: a channel, not a request any more
	// (testutil.WaitFor would import the broker: a cycle.)
	for deadline := time.Now().Add(10 * time.Second); rc.pendingCount() != 0; {
		if time.Now().After(deadline) {
			t.Fatalf("%d connect requests still pending long after they expired", rc.pendingCount())
		}
		time.Sleep(10 * time.Millisecond)
		rc.observe(nil, ttl) // every relayed message sweeps
	}
	if got := len(rc.list()); got != 1 {
		t.Fatalf("%d open remote channels, want 1", got)
	}
}

// Frames relayed from another node to a local instance keep the local
// rule: Connect, Open and Credit go ahead of queued data, Data and Close
// stay in order behind it.
func TestRemoteControlAheadOfData(t *testing.T) {
	b := New(Config{NodeNum: 1})
	inst := &Instance{b: b, id: 1<<NodeShift | 99, done: make(chan struct{}), wake: make(chan struct{}, 1)}
	b.mu.Lock()
	b.links[inst.id] = inst // attached, with no writer: the queues stay as filled
	b.mu.Unlock()
	t.Cleanup(func() {
		b.mu.Lock()
		delete(b.links, inst.id)
		b.mu.Unlock()
		_ = b.Shutdown(context.Background())
	})
	ch := uint64(2<<NodeShift | 5)
	big := bytes.Repeat([]byte("x"), 64<<10)
	var msg, wantOut, wantCtrl []byte
	for i := uint64(1); i <= 8; i++ {
		msg = protocol.AppendData(msg, ch, i, 0, big)
	}
	wantOut = append(wantOut, msg...)
	connect := (&protocol.Connect{Channel: 2<<NodeShift | 6, Target: "ws://x/a"}).Append(nil)
	open := (&protocol.ChannelInfo{Channel: 2<<NodeShift | 7}).Append(nil)
	credit := protocol.AppendCredit(nil, ch, 1000)
	msg = append(append(append(msg, connect...), open...), credit...)
	wantCtrl = append(append(append(wantCtrl, connect...), open...), credit...)
	tail := protocol.AppendData(nil, ch, 9, 0, []byte("last"))
	tail = (&protocol.Close{Channel: ch, Code: 1000}).Append(tail)
	msg = append(msg, tail...)
	wantOut = append(wantOut, tail...)

	b.toLocalInstance(inst.id, msg)
	inst.outMu.Lock()
	defer inst.outMu.Unlock()
	if !bytes.Equal(inst.ctrl, wantCtrl) {
		t.Fatalf("control queue has %d bytes, want Connect, Open, Credit (%d bytes)", len(inst.ctrl), len(wantCtrl))
	}
	if !bytes.Equal(inst.out, wantOut) {
		t.Fatalf("data queue has %d bytes, want the nine Data and the Close in order (%d bytes)", len(inst.out), len(wantOut))
	}
}
