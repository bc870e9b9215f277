// Package behaviour is the one behaviour suite of the service libraries:
// scenarios.json says, once, what the Go SDK and the JS library must both
// do on a service link (credit, cumulative ack, drop past a sequence gap,
// dedupe, drain when no longer active, the batch limit, reattach, answering
// the client's close after the replies), and Run
// plays each scenario as the broker against a library's echo service over a
// real WebSocket link. sdk's and web's tests run it against their library.
package behaviour

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/protocol"
)

//go:embed scenarios.json
var scenariosJSON []byte

// Scenario is one behaviour, as scenarios.json writes it.
type Scenario struct {
	Name   string `json:"name"`
	Covers string `json:"covers"`
	Window uint64 `json:"window"` // Welcome.window; 0: 256 KiB
	Steps  []Step `json:"steps"`
}

// Step is one thing the broker does or expects; exactly one field is set.
type Step struct {
	Attach     *struct{} `json:"attach"`     // wait for the service's link and Hello, answer Welcome
	Send       []Frame   `json:"send"`       // send these frames at once (in as few link messages as the contract allows)
	Data       *Frame    `json:"data"`       // the next message the service sends on the channel is this one
	Acked      *Frame    `json:"acked"`      // the service has acknowledged the channel up to seq (cumulatively)
	Closed     *Frame    `json:"closed"`     // the service closed the channel with code (after everything it sent on it: no Data follows a Close)
	LinkClosed *struct{} `json:"linkClosed"` // the service closes its link
	DropLink   *struct{} `json:"dropLink"`   // the broker drops the link (as a broker restart would)
}

// Frame is a frame in scenarios.json: type and the fields it uses.
type Frame struct {
	Type    string `json:"type"`
	Channel uint64 `json:"channel"`
	Seq     uint64 `json:"seq"`
	Text    string `json:"text"`
	Repeat  string `json:"repeat"` // with Size: a payload of Size bytes of Repeat
	Size    int    `json:"size"`
	Bytes   uint64 `json:"bytes"`
	Active  bool   `json:"active"`
	Code    uint64 `json:"code"`
}

func (f *Frame) payload() []byte {
	if f.Repeat != "" {
		return bytes.Repeat([]byte(f.Repeat), f.Size/len(f.Repeat))
	}
	return []byte(f.Text)
}

func (f *Frame) encode() ([]byte, error) {
	switch f.Type {
	case "open":
		ci := protocol.ChannelInfo{Channel: f.Channel, Origin: "https://behaviour.example", Target: fmt.Sprintf("ws://127.0.0.1/b/%d", f.Channel)}
		return ci.Append(nil), nil
	case "data":
		return protocol.AppendData(nil, f.Channel, f.Seq, 0, f.payload()), nil
	case "credit":
		return protocol.AppendCredit(nil, f.Channel, f.Bytes), nil
	case "state":
		return (&protocol.State{Active: f.Active}).Append(nil), nil
	case "close":
		return (&protocol.Close{Channel: f.Channel, Code: f.Code}).Append(nil), nil
	}
	return nil, fmt.Errorf("scenario frame type %q is not one the broker sends", f.Type)
}

// Scenarios returns the suite.
func Scenarios() ([]Scenario, error) {
	var doc struct {
		Scenarios []Scenario `json:"scenarios"`
	}
	if err := json.Unmarshal(scenariosJSON, &doc); err != nil {
		return nil, fmt.Errorf("scenarios.json: %w", err)
	}
	return doc.Scenarios, nil
}

// Service starts a library's echo service attached to scopeURL (the broker
// is the harness) and returns a function that stops it. The echo accepts
// every connect request and every handed-over channel and sends every
// message back; its library attaches again by itself when the link is
// lost.
type Service func(t *testing.T, scopeURL string) (stop func())

const maxMessage = 1 << 20

// Run plays every scenario against the service that start makes, each as
// a subtest.
func Run(t *testing.T, start Service) {
	scenarios, err := Scenarios()
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range scenarios {
		t.Run(sc.Name, func(t *testing.T) { runScenario(t, sc, start) })
	}
}

func runScenario(t *testing.T, sc Scenario, start Service) {
	b := newFakeBroker(t)
	stop := start(t, b.url+"/b/")
	defer stop()
	window := sc.Window
	if window == 0 {
		window = 256 << 10
	}
	var l *link
	for i, st := range sc.Steps {
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("%s: step %d: %s", sc.Name, i+1, fmt.Sprintf(format, args...))
		}
		switch {
		case st.Attach != nil:
			select {
			case l = <-b.links:
			case <-time.After(20 * time.Second):
				fail("the service did not open a link within 20 s")
			}
			if err := l.welcome(window); err != nil {
				fail("%v", err)
			}
		case st.Send != nil:
			var msg []byte
			for _, f := range st.Send {
				enc, err := f.encode()
				if err != nil {
					fail("%v", err)
				}
				if f.Type == "data" {
					l.sent(f.Channel, f.Seq)
				}
				if f.Type == "credit" {
					l.credit(f.Channel, f.Bytes)
				}
				msg = append(msg, enc...)
			}
			if err := l.write(msg); err != nil {
				fail("send: %v", err)
			}
		case st.Data != nil:
			got, err := l.nextData(st.Data.Channel)
			if err != nil {
				fail("%v", err)
			}
			if want := st.Data.payload(); !bytes.Equal(got, want) {
				fail("channel %d: the service sent %q, want %q", st.Data.Channel, abbrev(got), abbrev(want))
			}
		case st.Acked != nil:
			if err := l.waitAcked(st.Acked.Channel, st.Acked.Seq); err != nil {
				fail("%v", err)
			}
		case st.Closed != nil:
			code, err := l.waitClose(st.Closed.Channel)
			if err != nil {
				fail("%v", err)
			}
			if code != st.Closed.Code {
				fail("channel %d: the service closed with %d, want %d", st.Closed.Channel, code, st.Closed.Code)
			}
		case st.LinkClosed != nil:
			if err := l.waitClosed(); err != nil {
				fail("%v", err)
			}
		case st.DropLink != nil:
			l.conn.CloseNow()
			_ = l.waitClosed()
		default:
			fail("empty step")
		}
		if err := l.violation(); err != nil {
			fail("%v", err)
		}
	}
}

func abbrev(p []byte) string {
	if len(p) > 24 {
		return fmt.Sprintf("%s… (%d bytes)", p[:16], len(p))
	}
	return string(p)
}

// fakeBroker accepts service links and hands each to the scenario.
type fakeBroker struct {
	url   string
	links chan *link
}

func newFakeBroker(t *testing.T) *fakeBroker {
	b := &fakeBroker{links: make(chan *link, 4)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != protocol.LinkPath {
			http.NotFound(w, r)
			return
		}
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{protocol.Subprotocol}})
		if err != nil {
			return
		}
		c.SetReadLimit(int64(protocol.MaxLinkMessage(maxMessage))) // the contract: more fails the read
		l := &link{conn: c, changed: make(chan struct{}), done: make(chan struct{}), window: make(map[uint64]int64),
			contiguous: make(map[uint64]uint64), acked: make(map[uint64]uint64), data: make(map[uint64][][]byte),
			closed: make(map[uint64]uint64)}
		go l.read()
		b.links <- l
		<-l.done
	}))
	t.Cleanup(srv.Close)
	b.url = "ws" + strings.TrimPrefix(srv.URL, "http")
	return b
}

// link is one service link as the harness sees it.
type link struct {
	conn *websocket.Conn
	done chan struct{} // closed when the link ended

	mu         sync.Mutex
	hello      *protocol.Hello
	win        int64               // Welcome.window
	window     map[uint64]int64    // channel → credit the service has left
	contiguous map[uint64]uint64   // channel → highest seq sent with every one before it on this link
	acked      map[uint64]uint64   // channel → highest seq acknowledged
	data       map[uint64][][]byte // channel → messages the service sent, not yet checked
	closed     map[uint64]uint64   // channel → code of the Close the service sent
	bad        error               // the first invariant the service broke
	changed    chan struct{}       // closed on any change
}

const wait = 20 * time.Second

func (l *link) read() {
	defer close(l.done)
	for {
		_, msg, err := l.conn.Read(context.Background())
		if err != nil {
			if websocket.CloseStatus(err) == -1 && !strings.Contains(err.Error(), "EOF") && !strings.Contains(err.Error(), "closed") {
				l.broke(fmt.Errorf("read link: %w", err)) // e.g. a message past the limit
			}
			l.notify()
			return
		}
		for len(msg) > 0 {
			typ, body, rest, err := protocol.Next(msg)
			if err != nil {
				l.broke(fmt.Errorf("malformed frame from the service: %w", err))
				break
			}
			msg = rest
			l.frame(typ, body)
		}
		l.notify()
	}
}

func (l *link) frame(typ protocol.Type, body []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch typ {
	case protocol.TypeHello:
		var h protocol.Hello
		if err := h.Decode(body); err != nil {
			l.brokeLocked(err)
			return
		}
		l.hello = &h
	case protocol.TypeData:
		var d protocol.Data
		if err := d.Decode(body); err != nil {
			l.brokeLocked(err)
			return
		}
		n := int64(len(d.Payload))
		if left := l.window[d.Channel]; left < n && left < l.win {
			l.brokeLocked(fmt.Errorf("channel %d: the service sent %d bytes with %d of credit left (window %d)", d.Channel, n, left, l.win))
		}
		if _, ok := l.closed[d.Channel]; ok {
			l.brokeLocked(fmt.Errorf("channel %d: the service sent Data after its Close", d.Channel))
		}
		l.window[d.Channel] -= n
		l.data[d.Channel] = append(l.data[d.Channel], append([]byte(nil), d.Payload...))
	case protocol.TypeAck:
		var a protocol.Ack
		if err := a.Decode(body); err != nil {
			l.brokeLocked(err)
			return
		}
		if a.Seq > l.contiguous[a.Channel] {
			l.brokeLocked(fmt.Errorf("channel %d: the service acknowledged seq %d, but only up to %d was delivered in order", a.Channel, a.Seq, l.contiguous[a.Channel]))
		}
		l.acked[a.Channel] = max(l.acked[a.Channel], a.Seq)
	case protocol.TypeClose:
		var c protocol.Close
		if err := c.Decode(body); err != nil {
			l.brokeLocked(err)
			return
		}
		if _, ok := l.closed[c.Channel]; !ok {
			l.closed[c.Channel] = c.Code
		}
	case protocol.TypeAccept, protocol.TypeReject, protocol.TypeRespond, protocol.TypeList, protocol.TypePush:
	case protocol.TypeError:
		var e protocol.Error
		_ = e.Decode(body)
		l.brokeLocked(fmt.Errorf("the service sent Error %d: %s", e.Code, e.Message))
	default:
		l.brokeLocked(fmt.Errorf("unexpected %s frame from the service", typ))
	}
}

func (l *link) brokeLocked(err error) {
	if l.bad == nil {
		l.bad = err
	}
}

func (l *link) broke(err error) {
	l.mu.Lock()
	l.brokeLocked(err)
	l.mu.Unlock()
}

func (l *link) notify() {
	l.mu.Lock()
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

func (l *link) violation() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bad
}

// until waits for cond (called with l.mu held) or the deadline.
func (l *link) until(what string, cond func() bool) error {
	deadline := time.After(wait)
	for {
		l.mu.Lock()
		ok, bad, ch := cond(), l.bad, l.changed
		l.mu.Unlock()
		if bad != nil {
			return bad
		}
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-l.done:
			l.mu.Lock()
			ok = cond()
			l.mu.Unlock()
			if ok {
				return nil
			}
			return fmt.Errorf("the link ended while waiting for %s", what)
		case <-deadline:
			return fmt.Errorf("no %s within %s", what, wait)
		}
	}
}

func (l *link) welcome(window uint64) error {
	if err := l.until("Hello", func() bool { return l.hello != nil }); err != nil {
		return err
	}
	l.mu.Lock()
	l.win = int64(window)
	scope := l.hello.Scope
	l.mu.Unlock()
	w := protocol.Welcome{Version: protocol.Version, Instance: 1, Scope: "/b/", PublicURL: scope, Active: true,
		Window: window, MaxMessage: maxMessage}
	return l.write(w.Append(nil))
}

// write sends frames, cut at the link contract as a broker does.
func (l *link) write(msg []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for len(msg) > 0 {
		n, err := protocol.CutBatch(msg, protocol.MaxLinkMessage(maxMessage))
		if err != nil {
			return err
		}
		if err := l.conn.Write(ctx, websocket.MessageBinary, msg[:n]); err != nil {
			return err
		}
		msg = msg[n:]
	}
	return nil
}

// sent records a Data frame the harness sends (for the Ack invariant) and
// opens the channel's credit on first use.
func (l *link) sent(ch, seq uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.contiguous[ch]
	switch {
	case !ok:
		l.contiguous[ch] = seq // the first on this link: a broker resends from the first unacknowledged
	case seq == c+1:
		l.contiguous[ch] = seq
	}
	if _, ok := l.window[ch]; !ok {
		l.window[ch] = l.win
	}
}

func (l *link) credit(ch, n uint64) {
	l.mu.Lock()
	l.window[ch] += int64(n)
	l.mu.Unlock()
}

func (l *link) nextData(ch uint64) ([]byte, error) {
	var p []byte
	err := l.until(fmt.Sprintf("message on channel %d", ch), func() bool {
		if q := l.data[ch]; len(q) > 0 {
			p, l.data[ch] = q[0], q[1:]
			return true
		}
		return false
	})
	return p, err
}

func (l *link) waitAcked(ch, seq uint64) error {
	return l.until(fmt.Sprintf("Ack of channel %d up to %d", ch, seq), func() bool { return l.acked[ch] >= seq })
}

// waitClose waits for the service's Close of ch and returns its code.
func (l *link) waitClose(ch uint64) (uint64, error) {
	var code uint64
	err := l.until(fmt.Sprintf("Close of channel %d", ch), func() bool {
		c, ok := l.closed[ch]
		code = c
		return ok
	})
	return code, err
}

func (l *link) waitClosed() error {
	select {
	case <-l.done:
		return nil
	case <-time.After(wait):
		return fmt.Errorf("the service did not close its link within %s", wait)
	}
}
