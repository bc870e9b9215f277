package cluster_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/internal/testkit/streamtest"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
)

// TestLargeMessageAcrossNodes: a message of the largest size (1 MiB by
// default) crosses nodes both ways although NATS's max_payload (1 MB by
// default) is smaller than its batch: the batch goes in fragments.
func TestLargeMessageAcrossNodes(t *testing.T) {
	ns := startNATS(t, -1)
	a := startNode(t, "a", ns.ClientURL(), broker.Limits{})
	b := startNode(t, "b", ns.ClientURL(), broker.Limits{})
	testutil.WaitFor(t, "peers", 20*time.Second, func() bool { return len(a.c.Peers()) == 1 && len(b.c.Peers()) == 1 })
	streamtest.Echo(t, b.ws+"/big/", "")
	c := dial(t, a, "/big/x")
	c.SetReadLimit(4 << 20)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msg := bytes.Repeat([]byte("y"), 1<<20)
	if err := c.Write(ctx, websocket.MessageBinary, msg); err != nil {
		t.Fatal(err)
	}
	_, p, err := c.Read(ctx)
	if err != nil || len(p) != len(msg) {
		t.Fatalf("%d %v", len(p), err)
	}
}

// TestLargePushAcrossNodes: a push of the largest size reaches a client on
// another node through NATS's default max_payload, in fragments.
func TestLargePushAcrossNodes(t *testing.T) {
	ns := startNATS(t, -1)
	a := startNode(t, "a", ns.ClientURL(), broker.Limits{})
	b := startNode(t, "b", ns.ClientURL(), broker.Limits{})
	testutil.WaitFor(t, "peers", 20*time.Second, func() bool { return len(a.c.Peers()) == 1 && len(b.c.Peers()) == 1 })
	l := streamtest.Echo(t, b.ws+"/bigpush/", "")
	c := dial(t, a, "/bigpush/x")
	c.SetReadLimit(4 << 20)
	if got := roundTrip(t, c, "hi"); got != "hi" {
		t.Fatalf("got %q", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msg := bytes.Repeat([]byte("p"), 1<<20)
	if err := l.Push(ctx, "", websocket.MessageBinary, msg); err != nil {
		t.Fatal(err)
	}
	_, p, err := c.Read(ctx)
	if err != nil || !bytes.Equal(p, msg) {
		t.Fatalf("push of %d bytes: got %d bytes, %v", len(msg), len(p), err)
	}
}
