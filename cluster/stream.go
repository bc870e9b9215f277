package cluster

import (
	"encoding/binary"
	"strconv"
	"sync"
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
	for _, m := range []map[streamKey]uint64{c.sendSeq, c.recvSeq} {
		for k := range m {
			if k.inst == id {
				delete(m, k)
			}
		}
	}
	for k := range c.partial {
		if k.inst == id {
			delete(c.partial, k)
		}
	}
	c.seqMu.Unlock()
}

// sendStream publishes frames on one data stream, in fragments that fit
// the server's max_payload.
func (c *Cluster) sendStream(node, inst uint64, to bool, frames []byte) {
	nc := c.conn()
	if nc == nil {
		return
	}
	subj := c.streamSubject(streamKey{node, inst, to})
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
		buf := stampBufs.Get().(*[]byte)
		*buf = c.stamp(*buf, node, inst, to, flags, frames[:n])
		c.publish(subj, *buf)
		if cap(*buf) <= 4<<20 {
			*buf = (*buf)[:0]
			stampBufs.Put(buf)
		}
		frames = frames[n:]
		if len(frames) == 0 {
			return
		}
		flags |= fragCont
	}
}

// stamp writes the header and frames into b (reused) and returns it.
func (c *Cluster) stamp(b []byte, node, inst uint64, to bool, flags byte, frames []byte) []byte {
	c.seqMu.Lock()
	k := streamKey{node, inst, to}
	c.sendSeq[k]++
	seq := c.sendSeq[k]
	c.seqMu.Unlock()
	b = binary.AppendUvarint(b[:0], c.num)
	b = binary.AppendUvarint(b, seq)
	b = append(b, flags)
	return append(b, frames...)
}

// unstamp checks a message's sequence number and joins fragments. It
// returns the batch when this message completes one (whole), and whether
// messages were lost before it.
func (c *Cluster) unstamp(inst uint64, to bool, data []byte) (src uint64, frames []byte, lost, whole bool) {
	src, k1 := binary.Uvarint(data)
	if k1 <= 0 {
		return 0, nil, false, false
	}
	seq, k2 := binary.Uvarint(data[k1:])
	if k2 <= 0 || len(data) < k1+k2+1 {
		return 0, nil, false, false
	}
	flags, frames := data[k1+k2], data[k1+k2+1:]
	c.seqMu.Lock()
	defer c.seqMu.Unlock()
	k := streamKey{src, inst, to}
	last, seen := c.recvSeq[k]
	c.recvSeq[k] = seq
	lost = seen && seq != last+1 && seq != 1 // 1: the sender restarted
	buf, started := c.partial[k]
	if lost || seq == 1 {
		delete(c.partial, k)
		buf, started = nil, false
	}
	if flags&fragCont != 0 && !started {
		return src, nil, lost, false // the batch's start was lost
	}
	if flags&fragMore != 0 {
		c.partial[k] = append(buf, frames...)
		return src, nil, lost, false
	}
	delete(c.partial, k)
	if started {
		frames = append(buf, frames...)
	}
	return src, frames, lost, true
}
