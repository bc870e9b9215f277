package sdk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard/protocol"
)

// AttachOptions configures a Service. The zero value (or nil) is
// ListenOptions' defaults with the backoff and drain timeouts below.
type AttachOptions struct {
	ListenOptions
	// MinBackoff and MaxBackoff bound the wait between attach attempts
	// after the link was lost; the wait doubles from MinBackoff up to
	// MaxBackoff, with jitter (each wait is between half and all of it),
	// and starts again from MinBackoff after a successful attach.
	// 0: 100 ms and 10 s.
	MinBackoff, MaxBackoff time.Duration
	// DrainTimeout bounds how long a superseded instance finishes the
	// messages it holds before it detaches (Listener.Drain). 0: 30 s.
	DrainTimeout time.Duration
	// OnAttach, if set, is called in the Service's goroutine after each
	// attach with the new link's Listener (for its URL, Clients, Push),
	// before Accept returns anything from it. It must not block for long.
	OnAttach func(*Listener)
}

// ServiceState is where a Service is in its life.
type ServiceState int

const (
	Attaching   ServiceState = iota // the first attach is under way
	Attached                        // a link is up (Listener is not nil; Listener.Active is false while it stands by)
	Reattaching                     // the link was lost; attaching again with backoff
	Superseded                      // a newer instance took over; this one drained and detached
	Closed                          // Close was called, or the broker refused the service for good
)

func (s ServiceState) String() string {
	switch s {
	case Attaching:
		return "attaching"
	case Attached:
		return "attached"
	case Reattaching:
		return "reattaching"
	case Superseded:
		return "superseded"
	case Closed:
		return "closed"
	}
	return fmt.Sprintf("ServiceState(%d)", int(s))
}

// ErrSuperseded is a Service's Err after a newer instance of the same scope
// took over and this one drained and detached.
var ErrSuperseded = errors.New("sdk: a newer instance took over the scope")

// Service is a service instance that stays attached to its scope: when the
// link is lost (network, broker restart) it attaches again with backoff
// and jitter, and the broker hands it the channels that stayed open
// (Accept returns them with Request.Resumed, their unacknowledged messages
// follow). When a newer instance of the scope takes over, it finishes what
// it holds (Drain) and detaches. Accept, Listener and State work across
// links. A Channel belongs to one link: when its link is lost, Read and
// Write return ErrLinkClosed, and the same channel comes back from Accept
// as a resumed request once the Service is attached again (Channel.LastSeq
// and ResumeAfter keep a handler's place).
type Service struct {
	scopeURL string
	opts     AttachOptions // static
	log      *slog.Logger

	ctx    context.Context // ends on Close
	cancel context.CancelFunc
	done   chan struct{} // closed when the Service ended
	err    error         // why; written before done closes

	mu      sync.Mutex
	l       *Listener         // the current link; nil while attaching; guarded by mu
	handled map[uint64]uint64 // channel → last seq handled on the lost link; guarded by mu
	past    Stats             // request counts of the links before l; guarded by mu
	state   ServiceState      // guarded by mu
	changed chan struct{}     // closed when l or state changes; guarded by mu
}

// Attach starts a Service for scopeURL (see Listen). It returns once the
// first attach succeeded; ctx bounds only that first attach, which is
// retried with backoff while the broker cannot be reached or is shutting
// down. A refusal (credential, scope) is returned at once as a
// *LinkError.
func Attach(ctx context.Context, scopeURL string, opts *AttachOptions) (*Service, error) {
	s := &Service{scopeURL: scopeURL, done: make(chan struct{}), changed: make(chan struct{})}
	if opts != nil {
		s.opts = *opts
	}
	if s.opts.MinBackoff <= 0 {
		s.opts.MinBackoff = 100 * time.Millisecond
	}
	if s.opts.MaxBackoff < s.opts.MinBackoff {
		s.opts.MaxBackoff = max(10*time.Second, s.opts.MinBackoff)
	}
	if s.opts.DrainTimeout <= 0 {
		s.opts.DrainTimeout = 30 * time.Second
	}
	s.log = s.opts.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	l, err := s.attach(ctx)
	if err != nil {
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.setLink(l, Attached)
	go s.run(l)
	return s, nil
}

// permanent reports whether a failed attach will fail again: the broker
// refused the service (anything but shutting down or an internal error).
func permanent(err error) bool {
	var le *LinkError
	return errors.As(err, &le) && le.Code != protocol.ErrCodeShutdown && le.Code != protocol.ErrCodeInternal
}

// attach tries Listen until it succeeds, the broker refuses for good, or
// ctx ends.
func (s *Service) attach(ctx context.Context) (*Listener, error) {
	backoff := s.opts.MinBackoff
	var retries retrySummary
	for {
		l, err := Listen(ctx, s.scopeURL, &s.opts.ListenOptions)
		if err == nil {
			retries.succeeded(s.log)
			if s.opts.OnAttach != nil {
				s.opts.OnAttach(l)
			}
			return l, nil
		}
		if permanent(err) {
			return nil, err
		}
		// Jitter: many services losing one broker do not all come back
		// at the same instant.
		wait := backoff/2 + rand.N(backoff/2+1)
		retries.failed(s.log, err, wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("attach %s: %w (last error: %w)", s.scopeURL, ctx.Err(), err)
		case <-t.C:
		}
		backoff = min(2*backoff, s.opts.MaxBackoff)
	}
}

// run keeps the Service attached until Close, a permanent refusal, or a
// newer instance taking over.
func (s *Service) run(l *Listener) {
	for {
		superseded := s.serve(l)
		if s.ctx.Err() != nil {
			l.Close()
			s.end(ErrClosed, Closed)
			return
		}
		if superseded {
			s.end(ErrSuperseded, Superseded)
			return
		}
		l.Close()
		s.log.Warn("service link lost; reattaching", "scope", s.scopeURL, "err", l.Err())
		handled, st := l.handled(), l.Stats()
		s.mu.Lock()
		s.handled = handled
		s.past.add(st)
		s.past.Pending = 0 // they went with the link: the broker rejected them
		s.mu.Unlock()
		s.setLink(nil, Reattaching)
		next, err := s.attach(s.ctx)
		if err != nil {
			if s.ctx.Err() != nil {
				err = ErrClosed
			}
			s.end(err, Closed)
			return
		}
		s.setLink(next, Attached)
		l = next
	}
}

// serve waits until l's link ends, Close, or l is superseded; superseded
// listeners drain and detach here.
func (s *Service) serve(l *Listener) (superseded bool) {
	// From the state Welcome gave: a State frame may have changed it
	// before this loop first looks.
	wasActive := l.welcome.Active
	if !wasActive {
		s.log.Warn("another instance with the same label is active on this scope; standing by (it takes over if that one goes away; give a different label, or Takeover, to replace it)",
			"scope", s.scopeURL, "label", s.opts.Version, "instance", l.Instance())
	}
	for {
		changed := l.ActiveChanged()
		active := l.Active()
		if active && !wasActive {
			s.log.Info("standby became active", "scope", s.scopeURL, "instance", l.Instance())
		}
		if wasActive && !active {
			s.log.Info("a newer instance took over; finishing and detaching", "scope", s.scopeURL)
			ctx, cancel := context.WithTimeout(s.ctx, s.opts.DrainTimeout)
			err := l.Drain(ctx)
			cancel()
			if err != nil {
				s.log.Warn("detached before every message was handled", "scope", s.scopeURL, "err", err)
			}
			l.Close()
			return true
		}
		wasActive = active
		select {
		case <-s.ctx.Done():
			return false
		case <-l.Done():
			return false
		case <-changed:
		}
	}
}

func (s *Service) setLink(l *Listener, st ServiceState) {
	s.mu.Lock()
	s.l, s.state = l, st
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

func (s *Service) end(err error, st ServiceState) {
	s.err = err
	s.setLink(nil, st)
	close(s.done)
	s.cancel()
}

// Stats returns the request counts of every link the Service had (see
// Listener.Stats); Pending is the current link's.
func (s *Service) Stats() Stats {
	s.mu.Lock()
	st, l := s.past, s.l
	s.mu.Unlock()
	if l != nil {
		st.add(l.Stats())
	}
	return st
}

// State is where the Service is now.
func (s *Service) State() ServiceState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// StateChanged returns a channel that is closed the next time State or
// Listener changes.
func (s *Service) StateChanged() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// Listener is the current link, or nil while the Service is attaching
// again or after it ended.
func (s *Service) Listener() *Listener {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.l
}

// Done is closed when the Service ended: Close, a newer instance took over
// (Err is ErrSuperseded), or the broker refused it for good.
func (s *Service) Done() <-chan struct{} { return s.done }

// Err says why the Service ended; nil while it runs.
func (s *Service) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Accept returns the next connect request or handed-over channel of
// whichever link is up, waiting across reattaches. It fails when ctx ends
// or the Service ended.
func (s *Service) Accept(ctx context.Context) (*Request, error) {
	for {
		s.mu.Lock()
		l, changed := s.l, s.changed
		s.mu.Unlock()
		if l != nil {
			r, err := l.Accept(ctx)
			if err == nil && r.Resumed {
				// A channel this Service served on the lost link: messages
				// handled there (acknowledged, though the Ack may not have
				// reached the broker) are dropped when they come again.
				s.mu.Lock()
				seq := s.handled[r.Channel]
				s.mu.Unlock()
				r.ch.ResumeAfter(seq)
			}
			if err == nil || ctx.Err() != nil {
				return r, err
			}
			// The link ended: wait for the next one (or the end).
			select {
			case <-changed:
			case <-s.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			continue
		}
		select {
		case <-changed:
		case <-s.done:
			return nil, s.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Close detaches the current instance (its channels stay with the
// registration for the next one) and ends the Service.
func (s *Service) Close() error {
	s.cancel()
	<-s.done
	return nil
}

// retrySummary keeps attach retries to a few log lines: the first failure
// at WARN, then one WARN a minute saying how many tries failed since, and
// one INFO when attaching works again. Each try is at DEBUG.
type retrySummary struct {
	tries     int       // failed tries since the last success
	since     time.Time // the first failure
	lastShown time.Time
}

func (r *retrySummary) failed(log *slog.Logger, err error, next time.Duration) {
	now := time.Now()
	r.tries++
	switch {
	case r.tries == 1:
		r.since, r.lastShown = now, now
		log.Warn("attach failed; retrying with backoff (summarised every minute)", "err", err, "in", next)
	case now.Sub(r.lastShown) >= time.Minute:
		r.lastShown = now
		log.Warn("attach still failing", "tries", r.tries, "since", r.since.Format(time.RFC3339), "last_err", err, "next_in", next)
	default:
		log.Debug("attach failed; retrying", "try", r.tries, "err", err, "in", next)
	}
}

func (r *retrySummary) succeeded(log *slog.Logger) {
	if r.tries > 0 {
		log.Info("attached after retrying", "tries", r.tries, "for", time.Since(r.since).Round(time.Millisecond))
	}
	*r = retrySummary{}
}
