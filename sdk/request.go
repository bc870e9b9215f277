package sdk

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/protocol"
)

// Request is a connect request: a client's handshake that matched this
// listener's scope, waiting for Accept, Respond or Reject. The broker
// rejects it if no answer comes within its accept timeout (10 s by default;
// see Deadline). A request is never left unanswered by a failing call:
// when Accept or Respond fails, the client is rejected at once.
//
// A Request with Resumed set is not a new client but an open channel handed
// over to this listener (the previous instance went away): Accept returns
// its Channel at once, and messages that no instance acknowledged follow,
// in order.
type Request struct {
	Channel   uint64            // channel id
	Remote    string            // the client's address
	Origin    string            // the client's Origin header
	Target    string            // the URL the client asked for: ws://host/path?query
	App       string            // the verified app id of the client; empty if anonymous
	FirstLine string            // the handshake's request line
	Protocols []string          // subprotocols the client offered, in its order
	Headers   []protocol.Header // the handshake's headers, in order
	Body      []byte            // the handshake's body (usually empty)

	// Resumed is set for a channel handed over by a previous instance;
	// Protocol is then the subprotocol negotiated back then. FirstLine,
	// Protocols, Headers and Body are empty.
	Resumed  bool
	Protocol string

	l        *Listener
	ch       *Channel  // set for Resumed
	deadline time.Time // when the broker gives up on an answer (ListenOptions.RequestTimeout)
	answered atomic.Bool
}

// Deadline is when the broker stops waiting for an answer and rejects the
// client itself (as ListenOptions.RequestTimeout estimates it). Answers
// after it fail with ErrExpired.
func (r *Request) Deadline() time.Time { return r.deadline }

// Choose returns the first subprotocol the client offered that is among
// supported, or "" (no subprotocol) when there is none: a protocol that
// Accept always takes.
func (r *Request) Choose(supported ...string) string {
	for _, p := range r.Protocols {
		if slices.Contains(supported, p) {
			return p
		}
	}
	return ""
}

// refuse rejects the client at once because answering failed, and returns
// err: a failed Accept or Respond never leaves a client waiting for the
// broker's timeout.
func (r *Request) refuse(err error) error {
	r.l.nRefused.Add(1)
	r.sendReject()
	return err
}

// claim marks r answered; it fails for a second answer or an expired
// request.
func (r *Request) claim() error {
	if !r.answered.CompareAndSwap(false, true) {
		return ErrAnswered
	}
	if time.Now().After(r.deadline) {
		r.l.nExpired.Add(1)
		return fmt.Errorf("answer channel %d: %w", r.Channel, ErrExpired)
	}
	return nil
}

// Accept opens the channel. proto is the chosen subprotocol: one of
// r.Protocols, or "" for none (Choose picks one). headers are extra
// response headers; the broker refuses (and rejects the client) names that
// would break the handshake. If Accept fails (a subprotocol the client did
// not offer, ctx ended), the client is rejected at once. For a resumed
// request Accept returns the channel and sends nothing.
func (r *Request) Accept(ctx context.Context, proto string, headers http.Header) (*Channel, error) {
	if r.Resumed {
		return r.ch, nil
	}
	if err := r.claim(); err != nil {
		return nil, err
	}
	// The broker enforces this rule too (it trusts no service); checked
	// here first so that the caller's error says what went wrong.
	if err := protocol.CheckSubprotocol(proto, r.Protocols); err != nil {
		return nil, r.refuse(fmt.Errorf("accept channel %d: %w; the client was rejected", r.Channel, err))
	}
	if err := ctx.Err(); err != nil {
		return nil, r.refuse(fmt.Errorf("accept channel %d: %w; the client was rejected", r.Channel, err))
	}
	info := ClientInfo{Channel: r.Channel, Origin: r.Origin, Target: r.Target, Protocol: proto,
		App: r.App, Remote: r.Remote}
	c := r.l.newChannel(info)
	// The channel must be known before the broker can send its first
	// message, that is before Accept is on the wire.
	r.l.mu.Lock()
	r.l.channels[r.Channel] = c
	r.l.mu.Unlock()
	f := protocolAccept(r.Channel, proto, headers)
	if err := r.l.enqueueAnswer(f); err != nil {
		r.l.dropChannel(c)
		if errors.Is(err, ErrTooBig) { // headers too large for a link message
			return nil, r.refuse(fmt.Errorf("accept channel %d: %w; the client was rejected", r.Channel, err))
		}
		return nil, fmt.Errorf("accept channel %d: %w", r.Channel, err)
	}
	return c, nil
}

func protocolAccept(channel uint64, proto string, headers http.Header) []byte {
	f := protocol.Accept{Channel: channel, Protocol: proto, Headers: headerList(headers)}
	return f.Append(nil)
}

// headerList flattens h in a stable order (sorted names, values in order).
func headerList(h http.Header) []protocol.Header {
	if len(h) == 0 {
		return nil
	}
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	slices.Sort(names)
	var out []protocol.Header
	for _, k := range names {
		for _, v := range h[k] {
			out = append(out, protocol.Header{Name: k, Value: v})
		}
	}
	return out
}

// Respond answers the client with a custom HTTP response instead of a
// WebSocket: status 200–599 except 101, headers and body. The service
// reveals itself this way (e.g. a 401 challenge).
func (r *Request) Respond(ctx context.Context, status int, headers http.Header, body []byte) error {
	if r.Resumed {
		return fmt.Errorf("respond to channel %d: %w (it is open already)", r.Channel, ErrAnswered)
	}
	if err := r.claim(); err != nil {
		return err
	}
	if status < 200 || status > 599 || status == http.StatusSwitchingProtocols {
		return r.refuse(fmt.Errorf("respond to channel %d: status %d not allowed; the client was rejected", r.Channel, status))
	}
	if err := ctx.Err(); err != nil {
		return r.refuse(fmt.Errorf("respond to channel %d: %w; the client was rejected", r.Channel, err))
	}
	f := protocol.Respond{Channel: r.Channel, Status: uint64(status), Headers: headerList(headers), Body: body}
	if err := r.l.enqueueAnswer(f.Append(nil)); err != nil {
		if errors.Is(err, ErrTooBig) {
			return r.refuse(fmt.Errorf("respond to channel %d: %w; the client was rejected", r.Channel, err))
		}
		return fmt.Errorf("respond to channel %d: %w", r.Channel, err)
	}
	return nil
}

// Reject refuses the client; it gets the same 404 response as for a URL
// nobody serves. For a resumed request Reject closes the channel with 1008
// (policy violation).
func (r *Request) Reject(ctx context.Context) error {
	if r.Resumed {
		return r.ch.Close(websocket.StatusPolicyViolation, "rejected")
	}
	if !r.answered.CompareAndSwap(false, true) {
		return ErrAnswered
	}
	if time.Now().After(r.deadline) {
		r.l.nExpired.Add(1)
		return nil // the broker rejected the client already
	}
	f := protocol.Reject{Channel: r.Channel}
	if err := r.l.enqueueAnswer(f.Append(nil)); err != nil {
		if errors.Is(err, ErrClosed) {
			return err
		}
		return fmt.Errorf("reject channel %d: %w", r.Channel, err)
	}
	return nil
}
