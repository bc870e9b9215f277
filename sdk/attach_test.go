package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
	"github.com/switchboard-dev/switchboard/protocol"
	"github.com/switchboard-dev/switchboard/sdk"
)

// echoService serves svc with echo until it ends.
func echoService(t *testing.T, svc *sdk.Service) {
	done := make(chan struct{})
	t.Cleanup(func() { svc.Close(); <-done })
	go func() {
		defer close(done)
		for {
			r, err := svc.Accept(context.Background())
			if err != nil {
				return
			}
			go echo(r)
		}
	}()
}

// A newer instance takes over: the older Service drains, detaches and
// ends with ErrSuperseded; its clients go on with the newer one.
func TestServiceSupersededDrains(t *testing.T) {
	tb := startBroker(t, broker.Limits{})
	opts := func() *sdk.AttachOptions {
		return &sdk.AttachOptions{ListenOptions: sdk.ListenOptions{Credential: secret, Logger: tb.log}}
	}
	old, err := sdk.Attach(ctxT(t), tb.url+"/sup/", opts())
	if err != nil {
		t.Fatal(err)
	}
	echoService(t, old)
	c := tb.dial("/sup/a")
	mustWrite(t, c, websocket.MessageText, "one")
	mustRead(t, c, websocket.MessageText, "one")

	newer := opts()
	newer.Version = "v2" // another label takes over
	next, err := sdk.Attach(ctxT(t), tb.url+"/sup/", newer)
	if err != nil {
		t.Fatal(err)
	}
	echoService(t, next)
	select {
	case <-old.Done():
	case <-ctxT(t).Done():
		t.Fatal("the superseded Service did not end")
	}
	if !errors.Is(old.Err(), sdk.ErrSuperseded) || old.State() != sdk.Superseded || old.Listener() != nil {
		t.Fatalf("old Service: err %v state %s", old.Err(), old.State())
	}
	if _, err := old.Accept(ctxT(t)); !errors.Is(err, sdk.ErrSuperseded) {
		t.Fatalf("Accept on the superseded Service: %v", err)
	}
	// The client's channel was handed to the newer instance.
	mustWrite(t, c, websocket.MessageText, "two")
	mustRead(t, c, websocket.MessageText, "two")
	if next.State() != sdk.Attached {
		t.Fatalf("newer Service state %s", next.State())
	}
}

// A second instance with the same label (an accidental copy) stands by
// instead of taking over: the first keeps serving; when it goes away the
// standby becomes active and gets the channels. Takeover replaces the
// active one deliberately.
func TestServiceSameLabelStandsBy(t *testing.T) {
	tb := startBroker(t, broker.Limits{})
	opts := func(takeover bool) *sdk.AttachOptions {
		return &sdk.AttachOptions{ListenOptions: sdk.ListenOptions{Credential: secret, Logger: tb.log, Version: "v1", Takeover: takeover}}
	}
	first, err := sdk.Attach(ctxT(t), tb.url+"/dup/", opts(false))
	if err != nil {
		t.Fatal(err)
	}
	echoService(t, first)
	c := tb.dial("/dup/a")
	mustWrite(t, c, websocket.MessageText, "one")
	mustRead(t, c, websocket.MessageText, "one")

	second, err := sdk.Attach(ctxT(t), tb.url+"/dup/", opts(false))
	if err != nil {
		t.Fatal(err)
	}
	echoService(t, second)
	if second.State() != sdk.Attached || second.Listener().Active() {
		t.Fatalf("the copy: state %s, active %v; want attached, standing by", second.State(), second.Listener().Active())
	}
	if !first.Listener().Active() {
		t.Fatal("the first instance lost the scope to a copy with its label")
	}
	mustWrite(t, c, websocket.MessageText, "two")
	mustRead(t, c, websocket.MessageText, "two")
	c2 := tb.dial("/dup/b")
	mustWrite(t, c2, websocket.MessageText, "new")
	mustRead(t, c2, websocket.MessageText, "new")
	if a, b := first.Stats().Requests, second.Stats().Requests; a != 2 || b != 0 {
		t.Fatalf("connect requests: first %d, standby %d; want 2, 0", a, b)
	}

	// The active one goes: the standby takes over with the channel.
	first.Close()
	testutil.Eventually(t, "the standby to become active", func() bool {
		l := second.Listener()
		return l != nil && l.Active()
	})
	mustWrite(t, c, websocket.MessageText, "three")
	mustRead(t, c, websocket.MessageText, "three")

	// Takeover replaces an instance with the same label.
	third, err := sdk.Attach(ctxT(t), tb.url+"/dup/", opts(true))
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	echoService(t, third)
	if !third.Listener().Active() {
		t.Fatal("Takeover did not take over")
	}
	select {
	case <-second.Done():
	case <-ctxT(t).Done():
		t.Fatal("the instance taken over did not end")
	}
	if !errors.Is(second.Err(), sdk.ErrSuperseded) {
		t.Fatalf("taken-over Service: %v", second.Err())
	}
}

// A refusal is not retried: Attach returns the broker's reason at once.
func TestServiceRefusedAtOnce(t *testing.T) {
	tb := startBroker(t, broker.Limits{})
	start := time.Now()
	_, err := sdk.Attach(ctxT(t), tb.url+"/nocred/", &sdk.AttachOptions{ListenOptions: sdk.ListenOptions{Credential: "wrong"}})
	var le *sdk.LinkError
	if !errors.As(err, &le) || le.Code != protocol.ErrCodeUnauthorized {
		t.Fatalf("Attach with a wrong credential: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("refusal took %v", d)
	}
}

// Close ends the Service: its instance detaches, the channel stays with
// the registration, and Accept fails with ErrClosed.
func TestServiceClose(t *testing.T) {
	tb := startBroker(t, broker.Limits{})
	svc, err := sdk.Attach(ctxT(t), tb.url+"/close/", &sdk.AttachOptions{ListenOptions: sdk.ListenOptions{Credential: secret}})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Listener() == nil || svc.State() != sdk.Attached {
		t.Fatalf("state %s", svc.State())
	}
	accepted := make(chan error, 1)
	go func() { _, err := svc.Accept(context.Background()); accepted <- err }()
	svc.Close()
	if err := <-accepted; !errors.Is(err, sdk.ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
	if svc.State() != sdk.Closed || !errors.Is(svc.Err(), sdk.ErrClosed) {
		t.Fatalf("state %s err %v", svc.State(), svc.Err())
	}
}

// cutProxy forwards TCP connections to target until cut closes every
// connection it carries (a network outage); new connections work again.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
	return p
}

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// The service's link is cut (a network outage) while a client stays
// connected to the broker and keeps sending: the Service attaches again by
// itself, gets the channel back, and every message is echoed once, in order.
func TestServiceResumesChannelsAfterLinkLoss(t *testing.T) {
	tb := startBroker(t, broker.Limits{})
	proxy := newCutProxy(t, strings.TrimPrefix(tb.url, "ws://"))
	svc, err := sdk.Attach(ctxT(t), "ws://"+proxy.ln.Addr().String()+"/cut/", &sdk.AttachOptions{
		ListenOptions: sdk.ListenOptions{Credential: secret, Logger: tb.log},
		MinBackoff:    20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	echoService(t, svc)
	c := tb.dial("/cut/a")
	mustWrite(t, c, websocket.MessageText, "m0")
	mustRead(t, c, websocket.MessageText, "m0")

	first := svc.Listener()
	proxy.cut()
	testutil.WaitFor(t, "the Service to notice the lost link", 10*time.Second, func() bool { return svc.Listener() != first })
	for i := 1; i <= 20; i++ { // sent while the service is away or coming back
		mustWrite(t, c, websocket.MessageText, fmt.Sprintf("m%d", i))
	}
	for i := 1; i <= 20; i++ {
		mustRead(t, c, websocket.MessageText, fmt.Sprintf("m%d", i))
	}
	if svc.State() != sdk.Attached || svc.Listener() == nil {
		t.Fatalf("state %s", svc.State())
	}
	// One connect request over both links, counted once.
	if st := svc.Stats(); st.Requests != 1 || st.Pending != 0 {
		t.Fatalf("stats %+v", st)
	}
}
