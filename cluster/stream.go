package cluster

import (
	"encoding/binary"
	"strconv"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard/broker"
)

// Data-subject messages start with the sending node's number, a sequence
// number per stream and a fragment byte, so that a message lost on the way
// (NATS dropped it, or the connection broke and came back) is noticed
// instead of silently skipped: lost frames toward an instance are sent
// again (resync), lost frames toward clients close their channels with
// 1012.
//
// A batch larger than the NATS server's max_payload (1 MB by default, less
// than a link batch of the default max_message) is sent as several
// messages: each but the last says more follow, each but the first that it
// continues a batch. The receiver joins them and hands the broker whole
// batches only; a batch whose start was lost is dropped with the gap.

const (
	fragMore = 1 << iota // more fragments of this batch follow
	fragCont             // this message continues a batch
)

// stampOverhead bounds the header: two uvarints and the fragment byte.
const stampOverhead = 2*binary.MaxVarintLen64 + 1

// stampBufs holds the buffers messages are stamped in: NATS copies what
// it publishes, so a buffer is reused at once.
var stampBufs = sync.Pool{New: func() any { return new([]byte) }}

// streamSubject is the subject of the stream to or from inst on node.
func (c *Cluster) streamSubject(k streamKey) string {
	if s, ok := c.subjects.Load(k); ok {
		return s.(string)
	}
	if k.node == 0 { // no node is 0: the push stream, to every node
		return c.subject("push")
	}
	dir := "from"
	if k.to {
		dir = "to"
	}
	s := c.subject("n", strconv.FormatUint(k.node, 10), dir, strconv.FormatUint(k.inst, 10))
	c.subjects.Store(k, s)
	return s
}

// forgetInstance drops what this node keeps of the streams to and from an
// instance that detached (subjects, sequence numbers, fragments), so that
// they do not pile up as instances come and go.
func (c *Cluster) forgetInstance(id uint64) {
	c.subjects.Range(func(k, _ any) bool {
		if k.(streamKey).inst == id {
			c.subjects.Delete(k)
		}
		return true
	})
	c.seqMu.Lock()
	for k := range c.sendSeq {
		if k.inst == id {
			delete(c.sendSeq, k)
		}
	}
	for k := range c.inStreams {
		if k.inst == id {
			delete(c.inStreams, k)
		}
	}
	c.seqMu.Unlock()
}

// sendStream sends frames on one data stream, over the data link to node
// when there is one, else on NATS, in fragments that fit the server's
// max_payload (so that a fragment can fall back to NATS).
func (c *Cluster) sendStream(node, inst uint64, to bool, frames []byte) {
	nc := c.conn()
	if nc == nil {
		return
	}
	var link *outLink
	if node != 0 && c.dp != nil {
		link = c.dp.link(node)
	}
	room := int(nc.MaxPayload()) - stampOverhead
	if room < 4<<10 {
		room = 1 << 20 // not connected yet: NATS's default (the buffer is sent when it is)
	}
	var flags byte
	for {
		n := min(len(frames), room)
		if n < len(frames) {
			flags |= fragMore
		} else {
			flags &^= fragMore
		}
		var stampBuf [stampOverhead]byte
		stamp, seq := c.stamp(stampBuf[:0], node, inst, to, flags)
		// A stream's first message goes over NATS: a receiver takes a
		// message 1 as a new stream (the sender restarted), so it must
		// never come twice, as a link's failed write would resend it.
		if link == nil || seq == 1 || !link.send(to, inst, stamp, frames[:n]) {
			link = nil
			buf := stampBufs.Get().(*[]byte)
			*buf = append(append((*buf)[:0], stamp...), frames[:n]...)
			c.publish(c.streamSubject(streamKey{node, inst, to}), *buf)
			if cap(*buf) <= 4<<20 {
				*buf = (*buf)[:0]
				stampBufs.Put(buf)
			}
		}
		frames = frames[n:]
		if len(frames) == 0 {
			return
		}
		flags |= fragCont
	}
}

// stamp appends the header of the stream's next message to b, and returns
// it with the message's sequence number.
func (c *Cluster) stamp(b []byte, node, inst uint64, to bool, flags byte) ([]byte, uint64) {
	c.seqMu.Lock()
	k := streamKey{node, inst, to}
	c.sendSeq[k]++
	seq := c.sendSeq[k]
	c.seqMu.Unlock()
	b = binary.AppendUvarint(b, c.num)
	b = binary.AppendUvarint(b, seq)
	return append(b, flags), seq
}

// holdBytes bounds what one stream holds of messages that came by one
// path (NATS or a data link) ahead of their predecessors on another; they
// wait for them at most a heartbeat interval (expireHolds).
const holdBytes = 16 << 20

// inStream is what a node keeps of one stream it receives.
type inStream struct {
	mu        sync.Mutex
	seen      bool
	last      uint64    // sequence number of the last message taken
	path      uint64    // the path it came by: 0 NATS, else a data link's id
	partial   []byte    // a batch whose fragments are arriving
	held      []heldMsg // by sequence number: messages ahead of their predecessors, from another path
	heldBytes int
	heldSince time.Time
}

type heldMsg struct {
	seq, path uint64
	flags     byte
	frames    []byte
}

// receive takes one stamped message of the stream to or from inst that
// came by path (0: NATS). owned says the caller gives data away (else it
// is copied when held). Messages are handled in the order they were sent,
// one at a time per stream, whichever path brought them.
func (c *Cluster) receive(path, inst uint64, to bool, data []byte, owned bool) {
	src, k1 := binary.Uvarint(data)
	if k1 <= 0 {
		return
	}
	seq, k2 := binary.Uvarint(data[k1:])
	if k2 <= 0 || len(data) < k1+k2+1 {
		return
	}
	flags, frames := data[k1+k2], data[k1+k2+1:]
	k := streamKey{src, inst, to}
	c.seqMu.Lock()
	s := c.inStreams[k]
	if s == nil {
		s = &inStream{}
		c.inStreams[k] = s
	}
	c.seqMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case seq == 1: // the first (what is held follows it), or the sender restarted
		c.take(s, k, path, seq, flags, frames, false)
	case s.seen && seq <= s.last && path != s.path:
		return // late by another path: its gap was handled
	case s.seen && seq == s.last+1:
		c.take(s, k, path, seq, flags, frames, false)
	case (s.seen && path != s.path || !s.seen && path != 0) && s.heldBytes+len(frames) <= holdBytes:
		// Its predecessors may be on the other path: wait for them.
		if !owned {
			frames = append([]byte(nil), frames...)
		}
		c.hold(s, heldMsg{seq, path, flags, frames})
		return
	default:
		c.take(s, k, path, seq, flags, frames, s.seen)
	}
	c.drain(s, k)
}

// hold keeps m in s.held, in order.
func (c *Cluster) hold(s *inStream, m heldMsg) {
	i := len(s.held)
	for i > 0 && s.held[i-1].seq > m.seq {
		i--
	}
	if i > 0 && s.held[i-1].seq == m.seq {
		return
	}
	if len(s.held) == 0 {
		s.heldSince = time.Now()
	}
	s.held = append(s.held, heldMsg{})
	copy(s.held[i+1:], s.held[i:])
	s.held[i] = m
	s.heldBytes += len(m.frames)
}

// drain takes the held messages that now follow in order.
func (c *Cluster) drain(s *inStream, k streamKey) {
	for len(s.held) > 0 && s.held[0].seq <= s.last+1 {
		m := s.pop()
		if m.seq == s.last+1 {
			c.take(s, k, m.path, m.seq, m.flags, m.frames, false)
		}
	}
}

func (s *inStream) pop() heldMsg {
	m := s.held[0]
	s.held[0] = heldMsg{}
	s.held = s.held[1:]
	s.heldBytes -= len(m.frames)
	if len(s.held) == 0 {
		s.held = nil
	} else {
		s.heldSince = time.Now()
	}
	return m
}

// expireHolds takes the messages held past holdTimeout, reporting the gap
// before them as lost (nothing was lost if the stream had seen nothing).
func (c *Cluster) expireHolds(holdTimeout time.Duration) {
	type waiting struct {
		k streamKey
		s *inStream
	}
	var due []waiting
	c.seqMu.Lock()
	for k, s := range c.inStreams {
		due = append(due, waiting{k, s})
	}
	c.seqMu.Unlock()
	for _, w := range due {
		s := w.s
		s.mu.Lock()
		if len(s.held) > 0 && time.Since(s.heldSince) > holdTimeout {
			for len(s.held) > 0 {
				m := s.pop()
				c.take(s, w.k, m.path, m.seq, m.flags, m.frames, s.seen && m.seq != s.last+1)
			}
		}
		s.mu.Unlock()
	}
}

// take handles the next message of a stream: it joins fragments and hands
// whole batches on; lost says messages before it were lost.
func (c *Cluster) take(s *inStream, k streamKey, path, seq uint64, flags byte, frames []byte, lost bool) {
	s.seen, s.last, s.path = true, seq, path
	started := s.partial != nil
	if lost || seq == 1 {
		s.partial, started = nil, false
	}
	switch {
	case flags&fragCont != 0 && !started:
		c.handle(k, nil, lost, false) // the batch's start was lost
	case flags&fragMore != 0:
		s.partial = append(s.partial, frames...)
		c.handle(k, nil, lost, false)
	default:
		if started {
			frames = append(s.partial, frames...)
		}
		s.partial = nil
		c.handle(k, frames, lost, true)
	}
}

// handle hands a stream's batch (whole) to the broker, and reacts to a
// loss: frames toward a local instance are asked for again, frames from a
// remote one close their channels here.
func (c *Cluster) handle(k streamKey, frames []byte, lost, whole bool) {
	switch {
	case k.inst == 0: // the push stream
		if !whole {
			return
		}
		n, i := binary.Uvarint(frames)
		if i <= 0 || uint64(len(frames)-i) < n {
			return
		}
		c.b.Receive(broker.Message{Kind: broker.PushFrame, Scope: string(frames[i : i+int(n)]), Frames: frames[i+int(n):]})
	case k.to:
		if lost {
			// Frames from the node's proxy were lost: have it resend
			// everything unacknowledged, in order (Open first).
			c.log.Warn("frames toward a local instance were lost; asking their node to resend", "instance", k.inst, "from", k.node)
			c.publish(c.subject("n", strconv.FormatUint(k.node, 10), "resync", strconv.FormatUint(k.inst, 10)), nil)
		}
		if whole {
			c.b.Receive(broker.Message{Kind: broker.ToLocal, Instance: k.inst, Frames: frames})
		}
	default:
		if lost || whole {
			c.b.Receive(broker.Message{Kind: broker.FromRemote, Instance: k.inst, Frames: frames, Lost: lost})
		}
	}
}
