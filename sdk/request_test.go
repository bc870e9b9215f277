package sdk_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
	"github.com/switchboard-dev/switchboard/sdk"
)

// dialStatus dials path and returns the HTTP status of a refused handshake
// (0 when it was accepted) and how long the answer took.
func dialStatus(t *testing.T, url string, protocols ...string) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: protocols})
	if err == nil {
		c.CloseNow()
		return 0, time.Since(start)
	}
	if resp == nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	return resp.StatusCode, time.Since(start)
}

// A failed Accept rejects the client at once instead of leaving it to the
// broker's accept timeout (set to a minute here, so a client left waiting
// would fail the test's 20 s bound).
func TestFailedAcceptRejectsAtOnce(t *testing.T) {
	tb := startBroker(t, broker.Limits{AcceptTimeout: time.Minute})
	l := tb.listen("/chat/", &sdk.ListenOptions{Protocols: []string{"chat"}, RequestTimeout: time.Minute})
	errs := make(chan error, 4)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	go func() {
		for i := 0; ; i++ {
			r, err := l.Accept(context.Background())
			if err != nil {
				return
			}
			if i == 0 {
				// The README's old mistake: a fixed subprotocol the
				// client may not have offered.
				_, err = r.Accept(context.Background(), "chat", nil)
			} else {
				_, err = r.Accept(cancelled, "", nil) // a context that ended
			}
			errs <- err
		}
	}()
	for i := 0; i < 2; i++ {
		status, took := dialStatus(t, tb.url+"/chat/x") // offers no subprotocol
		if status != 404 || took > 20*time.Second {
			t.Fatalf("client %d got %d after %v, want 404 at once", i, status, took)
		}
		if err := <-errs; err == nil {
			t.Fatalf("client %d: the failing Accept succeeded", i)
		}
	}
	if s := l.Stats(); s.Refused != 2 || s.Requests != 2 {
		t.Fatalf("stats %+v, want 2 requests refused", s)
	}
}

// Choose cannot pick a subprotocol the client did not offer, so the
// README's loop serves clients that offer none and clients that offer it.
func TestChooseServesEveryClient(t *testing.T) {
	tb := startBroker(t, broker.Limits{})
	l := tb.listen("/choose/", &sdk.ListenOptions{Protocols: []string{"chat"}})
	go func() {
		for {
			r, err := l.Accept(context.Background())
			if err != nil {
				return
			}
			if _, err := r.Accept(context.Background(), r.Choose("chat"), nil); err != nil {
				t.Errorf("accept: %v", err)
			}
		}
	}()
	for _, offer := range [][]string{nil, {"chat"}, {"x", "chat"}} {
		ctx := ctxT(t)
		c, _, err := websocket.Dial(ctx, tb.url+"/choose/r", &websocket.DialOptions{Subprotocols: offer})
		if err != nil {
			t.Fatalf("offer %q: %v", offer, err)
		}
		want := ""
		if len(offer) > 0 {
			want = "chat"
		}
		if c.Subprotocol() != want {
			t.Fatalf("offer %q: subprotocol %q", offer, c.Subprotocol())
		}
		c.CloseNow()
	}
}

// The request queue is bounded: past MaxPending, a client is rejected at
// once; requests that waited past their deadline are dropped, counted, and
// answering one fails with ErrExpired.
func TestRequestQueueBoundedAndExpiring(t *testing.T) {
	const timeout = 2 * time.Second // long enough that a loaded machine queues the third request before the first two expire
	tb := startBroker(t, broker.Limits{AcceptTimeout: timeout})
	l := tb.listen("/q/", &sdk.ListenOptions{MaxPending: 2, RequestTimeout: timeout})
	// Nobody calls Accept: two requests wait, the third is rejected at
	// once (well before the broker's timeout would have), and the two
	// waiting ones get the broker's 404 at its timeout.
	type res struct {
		status int
		took   time.Duration
	}
	results := make(chan res, 3)
	for i := 0; i < 2; i++ {
		go func() { s, d := dialStatus(t, tb.url+"/q/w"); results <- res{s, d} }()
	}
	testutil.WaitFor(t, "two requests waiting", 10*time.Second, func() bool { return l.Stats().Pending == 2 })
	if s, _ := dialStatus(t, tb.url+"/q/over"); s != 404 {
		t.Fatalf("third client got %d, want 404", s)
	}
	if st := l.Stats(); st.Overflow != 1 || st.Pending != 2 {
		t.Fatalf("stats %+v, want 1 overflow and 2 pending", st)
	}
	for i := 0; i < 2; i++ {
		if r := <-results; r.status != 404 {
			t.Fatalf("waiting client got %d", r.status)
		}
	}
	// Both are past their deadline now: Accept drops them and waits for
	// the next request, which it answers.
	got := make(chan *sdk.Request, 1)
	go func() {
		r, err := l.Accept(context.Background())
		if err == nil {
			got <- r
		}
	}()
	testutil.WaitFor(t, "the expired requests dropped", 10*time.Second, func() bool { return l.Stats().Expired == 2 })
	done := make(chan int, 1)
	go func() { s, _ := dialStatus(t, tb.url+"/q/late"); done <- s }()
	r := <-got
	testutil.WaitFor(t, "the request's deadline to pass", 10*time.Second, func() bool { return time.Now().After(r.Deadline()) })
	if _, err := r.Accept(context.Background(), "", nil); !errors.Is(err, sdk.ErrExpired) {
		t.Fatalf("Accept after the deadline: %v, want ErrExpired", err)
	}
	if s := <-done; s != 404 {
		t.Fatalf("late client got %d", s)
	}
	if st := l.Stats(); st.Requests != 4 || st.Expired != 3 || st.Pending != 0 {
		t.Fatalf("stats %+v", st)
	}
}
