package sdk

import (
	"context"
	"fmt"
	"sync"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/protocol"
)

// Channel is one accepted client connection, served by this listener. Read
// and Write may be called concurrently with each other; concurrent Reads
// (or Writes) are allowed but their order is undefined.
//
// Lock order: c.mu before l.mu and l.outMu; never c.mu while holding l.mu.
type Channel struct {
	l      *Listener
	id     uint64     // static
	info   ClientInfo // static
	window int64      // static: the service's send window (Welcome.window)
	limit  int        // static: most queued bytes the broker may send

	mu          sync.Mutex
	queue       []message     // received, not yet read; guarded by mu
	queued      int           // payload bytes in queue; guarded by mu
	readable    chan struct{} // closed when a message or a close comes; nil while no Read waits; guarded by mu
	writable    chan struct{} // closed when credit or a close comes; nil while no Write waits; guarded by mu
	received    uint64        // highest seq received; guarded by mu
	delivered   uint64        // seq of the last message Read returned; guarded by mu
	acked       uint64        // highest seq acknowledged; guarded by mu
	skip        uint64        // ResumeAfter: messages up to it are dropped; guarded by mu
	credit      int64         // bytes this side may still send; guarded by mu
	closeErr    error         // the client closed: a websocket.CloseError; guarded by mu
	closedLocal bool          // this side closed; guarded by mu
	answered    bool          // the client's close was answered with a Close; guarded by mu
	hold        bool          // HoldClose: only Close answers the client's close; guarded by mu
}

type message struct {
	seq uint64
	typ websocket.MessageType
	p   []byte
}

func (l *Listener) newChannel(info ClientInfo) *Channel {
	w := int64(l.welcome.Window)
	return &Channel{
		l: l, id: info.Channel, info: info, window: w, credit: w,
		limit: 2*max(l.window, int(w)) + int(l.welcome.MaxMessage),
	}
}

// dropChannel forgets c; frames the broker still sends for it are ignored.
func (l *Listener) dropChannel(c *Channel) {
	l.mu.Lock()
	if l.channels[c.id] == c {
		delete(l.channels, c.id)
	}
	l.mu.Unlock()
}

// ID is the channel id the broker gave the client.
func (c *Channel) ID() uint64 { return c.id }

// Info describes the client: origin, target URL, subprotocol, address.
func (c *Channel) Info() ClientInfo { return c.info }

// Waiting. Read waits for a message or a close, Write for credit or a
// close, each on a signal made only when someone waits: the link's reader
// then costs nothing on the data path, and credit does not wake a Read.

// wakeLocked wakes the waiting Reads (read) and Writes (write).
func (c *Channel) wakeLocked(read, write bool) {
	if read && c.readable != nil {
		close(c.readable)
		c.readable = nil
	}
	if write && c.writable != nil {
		close(c.writable)
		c.writable = nil
	}
}

// broadcastLocked wakes every waiter: the channel closed.
func (c *Channel) broadcastLocked() { c.wakeLocked(true, true) }

// waitLocked returns a signal closed at the next change a Read (write
// false) or a Write waits for.
func (c *Channel) waitLocked(write bool) <-chan struct{} {
	p := &c.readable
	if write {
		p = &c.writable
	}
	if *p == nil {
		*p = make(chan struct{})
	}
	return *p
}

// push queues a message from the broker (reader goroutine).
func (c *Channel) push(seq uint64, typ websocket.MessageType, p []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closedLocal || c.closeErr != nil {
		return nil
	}
	if c.received != 0 && seq > c.received+1 {
		// A gap: frames were lost between brokers of a cluster. Drop it
		// unacknowledged; the broker resends from the first missing one.
		return nil
	}
	if c.queued+len(p) > c.limit {
		return fmt.Errorf("%w: channel %d: %d bytes beyond the window", errProtocol, c.id, c.queued+len(p))
	}
	if seq > c.received {
		c.received = seq
	}
	c.queue = append(c.queue, message{seq: seq, typ: typ, p: p})
	c.queued += len(p)
	c.wakeLocked(true, false)
	return nil
}

func (c *Channel) addCredit(n uint64) {
	c.mu.Lock()
	c.credit += int64(n)
	c.wakeLocked(false, true)
	c.mu.Unlock()
}

// remoteClose records the client's close. A handler that has finished
// with every message (it is back in Read, or gone) gets it answered at
// once; otherwise Read answers it once it has returned every message
// before it (HoldClose aside).
func (c *Channel) remoteClose(code websocket.StatusCode, reason string) {
	c.mu.Lock()
	if c.closeErr == nil && !c.closedLocal {
		c.closeErr = websocket.CloseError{Code: code, Reason: reason}
		c.broadcastLocked()
	}
	done := c.closedLocal
	if !done && len(c.queue) == 0 && c.delivered == c.acked {
		done = c.answerLocked()
	}
	c.mu.Unlock()
	if done {
		c.l.dropChannel(c)
	}
}

// answerLocked answers the client's close, unless HoldClose leaves that
// to Close: a Close with the client's code goes to the broker after
// everything this side wrote before (the link keeps their order), and the
// broker then sends its close frame to the client. A client whose
// connection broke (1006) needs no answer. It reports whether the channel
// is done with.
func (c *Channel) answerLocked() bool {
	if c.hold || c.answered {
		return !c.hold
	}
	c.answered = true
	ce, _ := c.closeErr.(websocket.CloseError)
	if ce.Code != websocket.StatusAbnormalClosure {
		f := protocol.Close{Channel: c.id, Code: uint64(ce.Code), Reason: ce.Reason}
		_ = c.l.enqueueControl(f.Append(nil)) // fails only once the link is gone, and the channel with it
	}
	return true
}

// HoldClose keeps the channel open for writing after the client closed,
// for replies that come late (from another goroutine or process): Read
// then returns the client's websocket.CloseError without answering it,
// and only Close answers it. Without HoldClose, Read answers the client's
// close once it has returned every message sent before it, so that what
// the handler wrote in reply to them still reaches the client. The broker
// waits for the answer up to its close timeout (limits.close_timeout, 3 s
// by default); a channel held this way is kept until Close.
func (c *Channel) HoldClose() {
	c.mu.Lock()
	c.hold = true
	c.mu.Unlock()
}

// handled returns, per channel, the last message its handler finished
// with (acknowledged on this side): what a Service resumes after.
func (l *Listener) handled() map[uint64]uint64 {
	l.mu.Lock()
	chans := make([]*Channel, 0, len(l.channels))
	for _, c := range l.channels {
		chans = append(chans, c)
	}
	l.mu.Unlock()
	m := make(map[uint64]uint64, len(chans))
	for _, c := range chans {
		c.mu.Lock()
		if c.acked > 0 {
			m[c.id] = c.acked
		}
		c.mu.Unlock()
	}
	return m
}

// unacked reports whether the channel holds messages not yet acknowledged.
func (c *Channel) unacked() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.closedLocal && (len(c.queue) > 0 || c.delivered > c.acked)
}

// ackLocked acknowledges every message up to the last one delivered.
func (c *Channel) ackLocked() {
	if c.delivered <= c.acked {
		return
	}
	c.acked = c.delivered
	c.l.enqueueAck(c.id, c.acked)
	c.l.acked()
}

// Read returns the next client message. Calling Read again acknowledges the
// message returned before (the handler is done with it), as does Ack; a
// message that was never acknowledged is delivered again to the next
// instance if this one goes away. Messages seen before (seq up to LastSeq or
// ResumeAfter) are dropped.
//
// When the client closed, Read returns a websocket.CloseError with the
// client's code and reason (websocket.CloseStatus gives the code), after
// every message the client sent before its close, and answers the close
// (see HoldClose): what the handler wrote before this Read reaches the
// client before the broker's close frame. When the
// link ended, it returns an error wrapping ErrLinkClosed (or ErrClosed).
func (c *Channel) Read(ctx context.Context) (websocket.MessageType, []byte, error) {
	c.mu.Lock()
	for {
		c.ackLocked()
		select {
		case <-c.l.done:
			c.mu.Unlock()
			return 0, nil, c.l.linkErr()
		default:
		}
		if len(c.queue) > 0 {
			m := c.queue[0]
			c.queue[0] = message{}
			c.queue = c.queue[1:]
			c.queued -= len(m.p)
			if m.seq <= c.delivered || m.seq <= c.skip {
				c.delivered = max(c.delivered, m.seq) // a duplicate: acknowledge it unseen
				continue
			}
			c.delivered = m.seq
			c.mu.Unlock()
			return m.typ, m.p, nil
		}
		if c.closedLocal {
			c.mu.Unlock()
			return 0, nil, ErrChannelClosed
		}
		if c.closeErr != nil {
			err := c.closeErr
			done := c.answerLocked()
			c.mu.Unlock()
			if done {
				c.l.dropChannel(c)
			}
			return 0, nil, err
		}
		wait := c.waitLocked(false)
		c.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return 0, nil, ctx.Err()
		case <-c.l.done:
		}
		c.mu.Lock()
	}
}

// Ack acknowledges the message Read returned last, without waiting for the
// next Read.
func (c *Channel) Ack() {
	c.mu.Lock()
	c.ackLocked()
	c.mu.Unlock()
}

// LastSeq is the sequence number of the message Read returned last (client
// messages are numbered 1, 2, 3, … per channel).
func (c *Channel) LastSeq() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.delivered
}

// ResumeAfter tells the channel that messages up to seq were handled before
// (by an earlier listener of this process): Read drops and acknowledges
// them. Call it before the first Read of a resumed channel.
func (c *Channel) ResumeAfter(seq uint64) {
	c.mu.Lock()
	c.skip = max(c.skip, seq)
	c.mu.Unlock()
}

// Write sends one message to the client. It waits (bounded by ctx) while
// the channel is out of credit, i.e. while the client has not yet taken
// the bytes sent before: a slow client holds back only its own channel.
// After the client closed, Write still sends until its close is answered
// (by Read, or by Close after HoldClose), and returns the client's
// websocket.CloseError after that, or at once when the client's connection
// broke (1006).
func (c *Channel) Write(ctx context.Context, typ websocket.MessageType, p []byte) error {
	if uint64(len(p)) > c.l.welcome.MaxMessage {
		return fmt.Errorf("write to channel %d: %w (%d > %d bytes)", c.id, ErrTooBig, len(p), c.l.welcome.MaxMessage)
	}
	n := int64(len(p))
	c.mu.Lock()
	for {
		if c.closedLocal {
			c.mu.Unlock()
			return ErrChannelClosed
		}
		if c.closeErr != nil && (c.answered || websocket.CloseStatus(c.closeErr) == websocket.StatusAbnormalClosure) {
			err := c.closeErr
			c.mu.Unlock()
			return err
		}
		select {
		case <-c.l.done:
			c.mu.Unlock()
			return c.l.linkErr()
		default:
		}
		// A message larger than the window goes when the whole window is
		// available (PROTOCOL.md: a sender may go over by one message).
		if c.credit >= n || c.credit >= c.window {
			c.credit -= n
			break
		}
		wait := c.waitLocked(true)
		c.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.l.done:
		}
		c.mu.Lock()
	}
	c.mu.Unlock()
	flags := flagsOf(typ)
	add := func(b []byte) []byte { return protocol.AppendData(b, c.id, 0, flags, p) }
	if err := c.l.enqueueFunc(ctx, add); err != nil {
		c.addCredit(uint64(n))
		return fmt.Errorf("write to channel %d: %w", c.id, err)
	}
	return nil
}

// Close closes the channel: the broker sends the client the messages
// already written, then a close frame with code and reason. Closing a
// channel the client closed already acknowledges what it holds and
// answers the client's close with code and reason, unless Read answered
// it already.
func (c *Channel) Close(code websocket.StatusCode, reason string) error {
	c.mu.Lock()
	if c.closedLocal {
		c.mu.Unlock()
		return nil
	}
	c.closedLocal = true
	c.queue, c.queued = nil, 0
	remote := c.closeErr != nil
	if remote {
		c.delivered = max(c.delivered, c.received)
		c.ackLocked()
	}
	answered := c.answered || websocket.CloseStatus(c.closeErr) == websocket.StatusAbnormalClosure
	c.answered = true
	c.broadcastLocked()
	c.mu.Unlock()
	c.l.dropChannel(c)
	if remote && answered {
		return nil
	}
	f := protocol.Close{Channel: c.id, Code: uint64(code), Reason: reason}
	if err := c.l.enqueueControl(f.Append(nil)); err != nil {
		return fmt.Errorf("close channel %d: %w", c.id, err)
	}
	return nil
}
