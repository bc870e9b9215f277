package sdk

import (
	"time"

	"github.com/switchboard-dev/switchboard/protocol"
)

// Defaults of ListenOptions.MaxPending and RequestTimeout: the broker's own
// defaults for pending connect requests and the accept timeout.
const (
	defaultMaxPending     = 1024
	defaultRequestTimeout = 10 * time.Second
)

// Stats counts what a listener did with connect requests. A request the
// service does not answer in time is rejected by the broker; these counts
// say where such requests went.
type Stats struct {
	Requests uint64 // connect requests received
	Expired  uint64 // dropped unanswered past their deadline: the broker had rejected them already
	Overflow uint64 // rejected at once because MaxPending requests were waiting for Accept
	Refused  uint64 // rejected at once because Request.Accept or Respond failed
	Pending  int    // connect requests waiting for Accept now
}

func (s *Stats) add(o Stats) {
	s.Requests += o.Requests
	s.Expired += o.Expired
	s.Overflow += o.Overflow
	s.Refused += o.Refused
	s.Pending = o.Pending
}

// Stats returns the listener's request counts.
func (l *Listener) Stats() Stats {
	l.mu.Lock()
	pending := l.pending
	l.mu.Unlock()
	return Stats{Requests: l.nRequests.Load(), Expired: l.nExpired.Load(), Overflow: l.nOverflow.Load(),
		Refused: l.nRefused.Load(), Pending: pending}
}

// queueRequest keeps a connect request (or a handed-over channel) for
// Accept. New requests are bounded by MaxPending: past it, those already
// past their deadline are dropped and, if that is not enough, the new one
// is rejected at once. Handed-over channels are never dropped: they are
// open already.
func (l *Listener) queueRequest(r *Request) {
	l.mu.Lock()
	if !r.Resumed {
		l.nRequests.Add(1)
		if l.pending >= l.maxPending {
			l.dropExpiredLocked(time.Now())
		}
		if l.pending >= l.maxPending {
			l.mu.Unlock()
			l.nOverflow.Add(1)
			l.log.Warn("connect request rejected: too many waiting for Accept", "channel", r.Channel, "pending", l.maxPending)
			r.answered.Store(true)
			r.sendReject()
			return
		}
		l.pending++
	}
	l.requests = append(l.requests, r)
	l.mu.Unlock()
	signal(l.reqWake)
}

// nextRequestLocked takes the next request that is still worth answering,
// dropping expired ones; nil when none is waiting.
func (l *Listener) nextRequestLocked(now time.Time) *Request {
	for len(l.requests) > 0 {
		r := l.requests[0]
		l.requests[0] = nil
		l.requests = l.requests[1:]
		if r.Resumed {
			return r
		}
		l.pending--
		if now.After(r.deadline) {
			l.nExpired.Add(1)
			l.log.Info("connect request dropped past its deadline", "channel", r.Channel, "target", r.Target)
			continue
		}
		return r
	}
	return nil
}

// dropExpiredLocked removes every new request past its deadline.
func (l *Listener) dropExpiredLocked(now time.Time) {
	kept := l.requests[:0]
	for _, r := range l.requests {
		if !r.Resumed && now.After(r.deadline) {
			l.pending--
			l.nExpired.Add(1)
			continue
		}
		kept = append(kept, r)
	}
	clear(l.requests[len(kept):])
	l.requests = kept
}

// sendReject queues a Reject for r, best effort: if the link is gone, the
// broker rejects the client itself.
func (r *Request) sendReject() {
	f := protocol.Reject{Channel: r.Channel}
	_ = r.l.enqueueAnswer(f.Append(nil))
}
