package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
	"github.com/switchboard-dev/switchboard/sdk"
)

// A message read but not acknowledged by a listener that detaches is
// delivered again, with the same sequence number, to the next listener,
// which gets the channel as a resumed request; the client stays connected.
func TestHandoverRedeliversUnacked(t *testing.T) {
	tb := startBroker(t, broker.Limits{})
	ctx := ctxT(t)
	a := tb.listen("/h/", nil)
	c, ch, r := tb.connect(a, "/h/x")
	mustWrite(t, c, websocket.MessageText, "one")
	mustWrite(t, c, websocket.MessageText, "two")
	if _, p, err := ch.Read(ctx); err != nil || string(p) != "one" {
		t.Fatalf("read one: %q %v", p, err)
	}
	if _, p, err := ch.Read(ctx); err != nil || string(p) != "two" { // acks "one"
		t.Fatalf("read two: %q %v", p, err)
	}
	if ch.LastSeq() != 2 {
		t.Fatalf("LastSeq %d, want 2", ch.LastSeq())
	}
	if err := a.Close(); err != nil {
		t.Fatalf("close a: %v", err)
	}
	if _, _, err := ch.Read(ctx); err == nil {
		t.Fatal("read on a detached listener succeeded")
	}

	b := tb.listen("/h/", nil)
	r2, err := b.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !r2.Resumed || r2.Channel != r.Channel || r2.Target != r.Target {
		t.Fatalf("second listener got %+v, want channel %d resumed", r2, r.Channel)
	}
	ch2, err := r2.Accept(ctx, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, p, err := ch2.Read(ctx); err != nil || string(p) != "two" || ch2.LastSeq() != 2 {
		t.Fatalf("redelivered %q seq %d %v, want two at 2", p, ch2.LastSeq(), err)
	}
	mustWrite(t, c, websocket.MessageText, "three")
	if _, p, err := ch2.Read(ctx); err != nil || string(p) != "three" || ch2.LastSeq() != 3 {
		t.Fatalf("read %q seq %d %v, want three at 3", p, ch2.LastSeq(), err)
	}
	if err := ch2.Write(ctx, websocket.MessageText, []byte("from b")); err != nil {
		t.Fatal(err)
	}
	mustRead(t, c, websocket.MessageText, "from b")
}

// ResumeAfter drops messages a process handled before its link broke.
func TestResumeAfterDropsDuplicates(t *testing.T) {
	tb := startBroker(t, broker.Limits{})
	ctx := ctxT(t)
	a := tb.listen("/d/", nil)
	c, ch, _ := tb.connect(a, "/d/")
	mustWrite(t, c, websocket.MessageText, "1")
	mustWrite(t, c, websocket.MessageText, "2")
	ch.Read(ctx)
	ch.Read(ctx) // "2" handled, never acknowledged
	last := ch.LastSeq()
	a.Close()

	b := tb.listen("/d/", nil)
	r2, _ := b.Accept(ctx)
	ch2, _ := r2.Accept(ctx, "", nil)
	ch2.ResumeAfter(last)
	mustWrite(t, c, websocket.MessageText, "3")
	if _, p, err := ch2.Read(ctx); err != nil || string(p) != "3" {
		t.Fatalf("read %q %v, want 3 (2 dropped)", p, err)
	}
}

// A newer instance takes over: the older one is told, drains and detaches;
// new clients go to the newer one.
func TestTakeoverAndDrain(t *testing.T) {
	tb := startBroker(t, broker.Limits{})
	ctx := ctxT(t)
	a := tb.listen("/t/", &sdk.ListenOptions{Version: "v1"})
	serve(t, a, func(r *sdk.Request) error { return echoTagged(r, "a") })
	c1 := tb.dial("/t/1")
	mustWrite(t, c1, websocket.MessageText, "x")
	mustRead(t, c1, websocket.MessageText, "a:x")

	changed := a.ActiveChanged()
	b := tb.listen("/t/", &sdk.ListenOptions{Version: "v2"})
	serve(t, b, func(r *sdk.Request) error { return echoTagged(r, "b") })
	if !b.Active() {
		t.Fatal("newer instance is not active")
	}
	select {
	case <-changed:
	case <-ctx.Done():
		t.Fatal("older instance was not told")
	}
	if a.Active() {
		t.Fatal("older instance still active")
	}
	if err := a.Drain(ctx); err != nil {
		t.Fatalf("drain: %v", err)
	}
	// The existing channel moves to b; new clients go to b.
	mustWrite(t, c1, websocket.MessageText, "y")
	mustRead(t, c1, websocket.MessageText, "b:y")
	c2 := tb.dial("/t/2")
	mustWrite(t, c2, websocket.MessageText, "z")
	mustRead(t, c2, websocket.MessageText, "b:z")
}

func echoTagged(r *sdk.Request, tag string) error {
	ctx := context.Background()
	ch, err := r.Accept(ctx, "", nil)
	if err != nil {
		return err
	}
	for {
		typ, p, err := ch.Read(ctx)
		if err != nil {
			return nil
		}
		if err := ch.Write(ctx, typ, []byte(tag+":"+string(p))); err != nil {
			return nil
		}
	}
}

// Clients lists the registration's channels; Send reaches one, Push a
// prefix or all.
func TestClientsSendPush(t *testing.T) {
	tb := startBroker(t, broker.Limits{})
	ctx := ctxT(t)
	l := tb.listen("/p/", nil)
	serve(t, l, func(r *sdk.Request) error {
		_, err := r.Accept(context.Background(), "", nil)
		return err
	})
	ca := tb.dial("/p/room1/a")
	cb := tb.dial("/p/room2/b")
	var list []sdk.ClientInfo
	testutil.WaitFor(t, "two clients", 5*time.Second, func() bool {
		var err error
		list, err = l.Clients(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// The broker fills a channel's info once the client's upgrade is
		// done, a moment after the dial returns.
		return len(list) == 2 && list[0].Remote != "" && list[1].Remote != ""
	})
	var idA uint64
	for _, ci := range list {
		if ci.Target == tb.url+"/p/room1/a" {
			idA = ci.Channel
		}
		if time.Since(ci.Since) > time.Minute || ci.Remote == "" {
			t.Fatalf("client info %+v", ci)
		}
	}
	if idA == 0 {
		t.Fatalf("room1 client not listed: %+v", list)
	}
	if err := l.Send(ctx, idA, websocket.MessageText, []byte("just a")); err != nil {
		t.Fatal(err)
	}
	mustRead(t, ca, websocket.MessageText, "just a")
	if err := l.Push(ctx, "/p/room2/", websocket.MessageBinary, []byte("room2")); err != nil {
		t.Fatal(err)
	}
	mustRead(t, cb, websocket.MessageBinary, "room2")
	if err := l.Push(ctx, "", websocket.MessageText, []byte("all")); err != nil {
		t.Fatal(err)
	}
	mustRead(t, ca, websocket.MessageText, "all")
	mustRead(t, cb, websocket.MessageText, "all")
	if err := l.Send(ctx, 999999, websocket.MessageText, nil); err == nil {
		t.Fatal("send to an unknown channel succeeded")
	}
}

// Write waits for credit: a client that does not read holds back its own
// channel only, and writes resume once it reads.
func TestWriteWaitsForCredit(t *testing.T) {
	tb := startBroker(t, broker.Limits{Window: 16 << 10})
	ctx := ctxT(t)
	l := tb.listen("/c/", nil)
	stalled, ch, _ := tb.connect(l, "/c/stalled")
	other, ch2, _ := tb.connect(l, "/c/other")
	msg := make([]byte, 4<<10)
	sent := 0
	for {
		wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		err := ch.Write(wctx, websocket.MessageBinary, msg)
		cancel()
		if err != nil {
			break
		}
		sent++
		if sent > 10000 {
			t.Fatal("writes to a client that does not read never blocked")
		}
	}
	// Kernel buffers take some; the broker holds at most a bounded queue.
	t.Logf("%d messages of 4 KiB sent before Write blocked", sent)
	// The other channel is not held back.
	if err := ch2.Write(ctx, websocket.MessageText, []byte("free")); err != nil {
		t.Fatal(err)
	}
	mustRead(t, other, websocket.MessageText, "free")
	// Reading resumes the stalled channel.
	done := make(chan error, 1)
	go func() { done <- ch.Write(ctx, websocket.MessageText, []byte(fmt.Sprint("end"))) }()
	for i := 0; ; i++ {
		typ, p, err := stalled.Read(ctx)
		if err != nil {
			t.Fatalf("stalled client read %d: %v", i, err)
		}
		if typ == websocket.MessageText {
			if string(p) != "end" || i != sent {
				t.Fatalf("got %q after %d messages, want end after %d", p, i, sent)
			}
			break
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A newer instance attaches while the older one holds an unacknowledged
// message; the older detaches without acknowledging it: the newer one gets
// it (PROTOCOL.md, Instances and takeover).
func TestTakeoverRedeliversUnacked(t *testing.T) {
	tb := startBroker(t, broker.Limits{})
	ctx := ctxT(t)
	a := tb.listen("/u/", nil)
	c, ch, _ := tb.connect(a, "/u/")
	mustWrite(t, c, websocket.MessageText, "held")
	if _, p, err := ch.Read(ctx); err != nil || string(p) != "held" {
		t.Fatalf("read: %q %v", p, err)
	}
	changed := a.ActiveChanged()
	b := tb.listen("/u/", nil)
	<-changed
	a.Close() // "held" was never acknowledged
	r, err := b.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ch2, _ := r.Accept(ctx, "", nil)
	if _, p, err := ch2.Read(ctx); err != nil || string(p) != "held" {
		t.Fatalf("newer instance read %q %v, want the unacknowledged message", p, err)
	}
}

// The link breaks (its TCP connection cut): the listener reports it through
// Done and Err, and a new listener gets the channel and what was not
// acknowledged.
func TestLinkBreakHandsOver(t *testing.T) {
	tb := startBroker(t, broker.Limits{})
	ctx := ctxT(t)
	conns := make(chan net.Conn, 1)
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			conns <- c
		}
		return c, err
	}}}
	a := tb.listen("/b/", &sdk.ListenOptions{Dial: &websocket.DialOptions{HTTPClient: client}})
	tcp := <-conns
	c, ch, _ := tb.connect(a, "/b/")
	mustWrite(t, c, websocket.MessageText, "m1")
	if _, p, err := ch.Read(ctx); err != nil || string(p) != "m1" {
		t.Fatalf("read: %q %v", p, err)
	}
	tcp.Close()
	select {
	case <-a.Done():
	case <-ctx.Done():
		t.Fatal("Done not closed after the link broke")
	}
	if err := a.Err(); err == nil || errors.Is(err, sdk.ErrClosed) {
		t.Fatalf("Err = %v, want the transport error", err)
	}
	if _, _, err := ch.Read(ctx); !errors.Is(err, sdk.ErrLinkClosed) {
		t.Fatalf("Read after the break: %v, want ErrLinkClosed", err)
	}
	b := tb.listen("/b/", nil)
	r, err := b.Accept(ctx)
	if err != nil || !r.Resumed {
		t.Fatalf("accept: %+v %v", r, err)
	}
	ch2, _ := r.Accept(ctx, "", nil)
	if _, p, err := ch2.Read(ctx); err != nil || string(p) != "m1" {
		t.Fatalf("redelivered %q %v, want m1", p, err)
	}
	if err := ch2.Write(ctx, websocket.MessageText, []byte("ok")); err != nil {
		t.Fatal(err)
	}
	mustRead(t, c, websocket.MessageText, "ok")
}
