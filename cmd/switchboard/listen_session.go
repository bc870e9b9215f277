package main

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/sdk"
)

// session is one client of `switchboard listen`, with its local side (the
// echo, a forwarded connection, a process). It outlives a service link:
// when the link breaks, the next link gets the channel handed over and the
// session goes on with it.
type session struct {
	svc    *service
	id     uint64
	loc    local
	ctx    context.Context // the session's life, for local pumps
	cancel context.CancelFunc

	mu       sync.Mutex
	ch       *sdk.Channel          // the channel on the current link; nil while detached; guarded by mu
	attached chan struct{}         // closed once ch is set; guarded by mu
	last     uint64                // seq of the last client message handled; guarded by mu
	ended    bool                  // the channel is closed (finish, or the client's connection broke); guarded by mu
	closedBy *websocket.CloseError // the client closed first; guarded by mu
}

// handoverWait bounds how long a local side that ended waits for a link to
// close its channel on.
const handoverWait = 35 * time.Second

// closeWait bounds how long the local side of a client that closed may
// go on sending before it is stopped (the broker stops waiting for the
// answer after its close timeout, 3 s by default, anyway).
const closeWait = 10 * time.Second

func (svc *service) newSession(_ context.Context, id uint64, loc local) *session {
	ctx, cancel := context.WithCancel(context.Background())
	s := &session{svc: svc, id: id, loc: loc, ctx: ctx, cancel: cancel, attached: make(chan struct{})}
	svc.mu.Lock()
	svc.sessions[id] = s
	svc.mu.Unlock()
	svc.wg.Add(1)
	go func() {
		defer svc.wg.Done()
		defer cancel()
		loc.run(ctx, s)
	}()
	return s
}

func (s *session) attach(ch *sdk.Channel) {
	ch.HoldClose() // the local side's late output still goes out after the client's close: finish answers it
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		close(s.attached)
	}
	s.ch = ch
}

func (s *session) detach(ch *sdk.Channel) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == ch && ch != nil {
		s.ch = nil
		s.attached = make(chan struct{})
	}
}

// detached reports whether the session has no channel on a live link.
func (s *session) detached() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ch == nil
}

func (s *session) lastSeq() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// current waits for the session's channel on a live link.
func (s *session) current(ctx context.Context) (*sdk.Channel, error) {
	for {
		s.mu.Lock()
		ch, wait := s.ch, s.attached
		s.mu.Unlock()
		if ch != nil {
			return ch, nil
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// readLoop hands the client's messages on ch to the local side; each one is
// acknowledged (by the next Read) only after the local side took it.
func (s *session) readLoop(ctx context.Context, ch *sdk.Channel) {
	for {
		typ, p, err := ch.Read(ctx)
		if err != nil {
			var ce websocket.CloseError
			switch {
			case errors.As(err, &ce):
				s.clientClosed(ce.Code, ce.Reason)
			case errors.Is(err, sdk.ErrChannelClosed):
			default: // the link ended: the channel goes on with the next one
				s.detach(ch)
			}
			return
		}
		if err := s.loc.deliver(ctx, ch, typ, p); err != nil {
			if errors.Is(err, sdk.ErrLinkClosed) || errors.Is(err, sdk.ErrClosed) || ctx.Err() != nil {
				s.detach(ch)
			} else {
				s.svc.log.Info("local side refused a message", "channel", s.id, "err", err)
			}
			return // not acknowledged: delivered again after a handover
		}
		s.mu.Lock()
		s.last = ch.LastSeq()
		s.mu.Unlock()
	}
}

// send writes a message from the local side to the client, waiting for a
// link while detached.
func (s *session) send(typ websocket.MessageType, p []byte) error {
	for {
		ch, err := s.current(s.ctx)
		if err != nil {
			return err
		}
		err = ch.Write(s.ctx, typ, p)
		if errors.Is(err, sdk.ErrLinkClosed) {
			s.detach(ch)
			continue
		}
		return err
	}
}

// finish closes the channel because the local side ended; after the
// client's close, it answers that close: a normal end (1000) echoes the
// client's code and reason, a failure (an --exec process that failed)
// says so.
func (s *session) finish(code websocket.StatusCode, reason string) {
	s.mu.Lock()
	ended := s.ended
	s.ended = true
	by := s.closedBy
	s.mu.Unlock()
	if ended {
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, handoverWait)
	defer cancel()
	if ch, err := s.current(ctx); err == nil {
		if by == nil {
			s.svc.log.Info("channel closed by service", "channel", s.id, "code", int(code), "reason", reason)
		} else if code == websocket.StatusNormalClosure {
			code, reason = sendable(by.Code), by.Reason
		}
		ch.Close(code, reason)
	}
	s.remove()
}

// clientClosed tells the local side that the client closed (once, even
// when a handed-over channel brings the close again); it answers through
// finish. A client whose connection broke needs no answer.
func (s *session) clientClosed(code websocket.StatusCode, reason string) {
	s.mu.Lock()
	first := s.closedBy == nil && !s.ended
	if first {
		s.closedBy = &websocket.CloseError{Code: code, Reason: reason}
	}
	if code == websocket.StatusAbnormalClosure {
		s.ended = true
	}
	s.mu.Unlock()
	if !first {
		return // a handed-over channel brought the close again: finish answers on the current one
	}
	s.svc.log.Info("channel closed by client", "channel", s.id, "code", int(code), "reason", reason)
	if code == websocket.StatusAbnormalClosure {
		s.remove()
	} else {
		time.AfterFunc(closeWait, func() { // a local side that does not end is stopped
			s.mu.Lock()
			ended := s.ended
			s.mu.Unlock()
			if !ended {
				s.loc.stop()
				s.cancel()
			}
		})
	}
	s.loc.clientClosed(s, code, reason)
}

// clientClosedFirst reports whether the client closed before the local
// side ended.
func (s *session) clientClosedFirst() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closedBy != nil
}

// remove marks the session ended and forgets it.
func (s *session) remove() {
	s.mu.Lock()
	s.ended = true
	s.mu.Unlock()
	s.svc.mu.Lock()
	if s.svc.sessions[s.id] == s {
		delete(s.svc.sessions, s.id)
	}
	s.svc.mu.Unlock()
}

// sendable maps a client's close code to one a WebSocket close frame may
// carry.
func sendable(code websocket.StatusCode) websocket.StatusCode {
	switch {
	case code == websocket.StatusNoStatusRcvd, code == websocket.StatusAbnormalClosure, code == websocket.StatusTLSHandshake:
		return websocket.StatusNormalClosure
	case code < 1000 || code >= 5000:
		return websocket.StatusNormalClosure
	}
	return code
}
