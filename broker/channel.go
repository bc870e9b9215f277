package broker

import (
	"errors"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/internal/bufpool"
	"github.com/switchboard-dev/switchboard/protocol"
)

// Channel is one accepted client connection. It belongs to its registration
// and outlives the instances that serve it.
type Channel struct {
	b    *Broker
	reg  *Registration
	id   uint64               // static
	info protocol.ChannelInfo // static
	path string               // static: the request path in canonical form, as routing matched it

	mu   sync.Mutex
	conn clientConn // set by Serve; nil while the client handshake completes

	// Client → service, guarded by mu. q holds every client message not yet
	// acknowledged, in sequence order; q[:sent] went to inst.
	inst      *Instance
	servedBy  uint64  // id of the last instance inst was
	q         []inMsg // q[qh:] is the live part
	qh        int
	sent      int
	inflight  int // payload bytes of q[:sent]
	buffered  int // payload bytes of q
	nextSeq   uint64
	closeSent bool    // the client's Close went to inst
	held      *[]byte // a client message read while q had no room for it (backpressure)
	heldFlags byte
	blocked   bool // held is set: the transport reads nothing more from the client

	// Service → client, guarded by mu. out[head:] waits for the writer.
	out      []outMsg
	head     int
	outBytes int // all queued bytes
	outData  int // queued bytes of Data frames, which the service sent on credit
	owed     int // bytes written to the client, not yet credited to the service

	clientGone    bool // the client's connection ended
	halfClosed    bool // the client sent its close frame and waits for the service's (clientClosing)
	serviceClosed bool // the service (or the broker) closed the channel
	done          bool // removed from the registration
}

type inMsg struct {
	seq    uint64
	flags  byte
	data   *[]byte // pooled; nil for a close entry
	close  bool
	code   uint64
	reason string
}

type outMsg struct {
	push   bool // sent by Push, outside the service's credit
	typ    websocket.MessageType
	data   *[]byte // pooled
	close  bool
	code   websocket.StatusCode
	reason string
}

func newChannel(reg *Registration, inst *Instance, info protocol.ChannelInfo, path string) *Channel {
	return &Channel{b: reg.b, reg: reg, id: info.Channel, info: info, path: path, inst: inst, servedBy: inst.id}
}

// received takes a message the transport read from the client. When the
// channel's buffer (or the broker's total) has no room for it, the channel
// holds it and the transport must read nothing more from this client until
// the channel calls its resume: that stops reading from this client only.
func (ch *Channel) received(flags byte, data *[]byte) recvResult {
	ch.mu.Lock()
	if ch.serviceClosed {
		// The transport stops reading this client and only writes the
		// close: nothing more can come from either side, so the channel
		// leaves its registration now (a client blocked by backpressure
		// would otherwise never report its end, and a handover that
		// timed out would leave its channels behind for the next
		// instance).
		bufpool.Put(data)
		finish := !ch.done
		ch.done = true
		ch.mu.Unlock()
		if finish {
			ch.reg.removeChannel(ch)
		}
		return recvClosed
	}
	defer ch.mu.Unlock()
	if !ch.roomLocked(len(*data)) {
		ch.held, ch.heldFlags, ch.blocked = data, flags, true
		return recvHeld
	}
	ch.queueLocked(flags, data)
	return recvQueued
}

// recvResult is what the transport does after Channel.received.
type recvResult int

const (
	recvQueued recvResult = iota // read on
	recvHeld                     // stop reading until resume
	recvClosed                   // the channel is closed: stop reading, the writer closes the client
)

// roomLocked reports whether q takes n more bytes. A channel holding
// nothing takes any message the size limit allows.
func (ch *Channel) roomLocked(n int) bool {
	lim := ch.b.cfg.Limits
	return ch.buffered == 0 || (ch.buffered+n <= lim.ChannelBuffer && ch.b.buffered.Load()+int64(n) <= lim.TotalBuffer)
}

func (ch *Channel) queueLocked(flags byte, data *[]byte) {
	n := len(*data)
	ch.nextSeq++
	ch.q = append(ch.q, inMsg{seq: ch.nextSeq, flags: flags, data: data})
	ch.buffered += n
	ch.b.buffered.Add(int64(n))
	ch.pumpLocked()
	ch.b.m.msgIn.Inc()
	ch.b.m.bytesIn.Add(float64(n))
}

// roomMadeLocked queues the held message once there is room for it (or
// drops it once the channel is closed), and lets the transport read on.
func (ch *Channel) roomMadeLocked() {
	if ch.held == nil {
		return
	}
	if ch.serviceClosed {
		bufpool.Put(ch.held)
	} else if ch.roomLocked(len(*ch.held)) {
		ch.queueLocked(ch.heldFlags, ch.held)
	} else {
		return
	}
	ch.held, ch.blocked = nil, false
	if ch.conn != nil {
		ch.conn.resume()
	}
}

var errChannelClosed = errors.New("channel closed")

// pumpLocked sends waiting client messages to the instance the channel is
// bound to, within its window. A channel moves to the active instance once
// its old instance is gone or has acknowledged everything it was sent, so
// order holds across a takeover.
func (ch *Channel) pumpLocked() {
	active := ch.reg.active.Load()
	if ch.inst != active && (ch.inst == nil || ch.inst.dead.Load() || ch.sent == 0) {
		if ch.inst != nil && ch.inst.dead.Load() {
			ch.instanceGoneLocked(ch.inst)
		}
		ch.inst = active
		if active != nil {
			ch.servedBy = active.id
		}
	}
	inst := ch.inst
	if inst == nil || inst != active || ch.done {
		return // nobody to send to, or draining a superseded instance
	}
	for ch.sent < len(ch.q)-ch.qh && ch.inflight < inst.window {
		m := &ch.q[ch.qh+ch.sent]
		if m.close {
			if !ch.closeSent {
				inst.sendFrame(&protocol.Close{Channel: ch.id, Code: m.code, Reason: m.reason})
				ch.closeSent = true
			}
			break
		}
		inst.sendData(ch.id, m.seq, m.flags, *m.data)
		ch.inflight += len(*m.data)
		ch.sent++
	}
	ch.finishIfAckedLocked()
}

// instanceGoneLocked makes everything sent to a dead instance unsent again,
// to be delivered to the next one with the same sequence numbers.
func (ch *Channel) instanceGoneLocked(inst *Instance) {
	if ch.inst != inst {
		return
	}
	ch.inst = nil
	ch.sent = 0
	ch.inflight = 0
	ch.closeSent = false
}

// ack drops client messages up to seq that inst acknowledged.
func (ch *Channel) ack(inst *Instance, seq uint64) {
	ch.mu.Lock()
	if ch.inst != inst {
		ch.mu.Unlock()
		return
	}
	freed := 0
	i := 0
	for ; i < ch.sent && ch.q[ch.qh+i].seq <= seq; i++ {
		m := &ch.q[ch.qh+i]
		freed += len(*m.data)
		bufpool.Put(m.data)
		*m = inMsg{}
	}
	if i > 0 {
		ch.qh += i
		ch.compactLocked()
		ch.sent -= i
		ch.inflight -= freed
		ch.buffered -= freed
		ch.b.buffered.Add(-int64(freed))
	}
	ch.pumpLocked()
	if i > 0 {
		ch.roomMadeLocked()
	}
	done := ch.done
	ch.mu.Unlock()
	if done {
		ch.reg.removeChannel(ch)
	}
}

// compactLocked moves the live part of q to its front once the dead head is
// as long as the live part, so acks cost amortized O(1) and q's array is
// reused.
func (ch *Channel) compactLocked() {
	live := len(ch.q) - ch.qh
	if ch.qh == 0 || ch.qh < live {
		return
	}
	copy(ch.q, ch.q[ch.qh:])
	for j := live; j < len(ch.q); j++ {
		ch.q[j] = inMsg{}
	}
	ch.q = ch.q[:live]
	ch.qh = 0
}

// finishIfAckedLocked ends a channel whose client is gone once the service
// has the Close and every message before it is acknowledged. A client that
// only sent its close frame still takes the service's messages until the
// service's Close (or the close timeout): its channel stays.
func (ch *Channel) finishIfAckedLocked() {
	if ch.clientGone && ch.closeSent && ch.sent == 0 && len(ch.q)-ch.qh == 1 && !ch.done {
		ch.q[ch.qh] = inMsg{}
		ch.q, ch.qh = ch.q[:0], 0
		ch.done = true
	}
}

// toClient queues a service message for the client. Data counts against
// the service's credit; a push does not, but a client whose queue is past
// four windows is closed with 1013 instead of growing without bound.
func (ch *Channel) toClient(flags byte, p []byte, push bool) error {
	ch.mu.Lock()
	if ch.clientGone || ch.serviceClosed {
		ch.mu.Unlock()
		return nil
	}
	window := ch.b.cfg.Limits.Window
	if !push && ch.outData > 2*window {
		ch.mu.Unlock()
		return &linkError{protocol.ErrCodeLimit, fmt.Sprintf("service sent beyond its credit on channel %d", ch.id)}
	}
	if push && ch.outBytes > 4*window {
		ch.mu.Unlock()
		ch.b.log.Info("client too slow for push: closing", "channel", ch.id)
		ch.brokerClose(websocket.StatusTryAgainLater, "client too slow")
		return nil
	}
	ch.out = append(ch.out, outMsg{typ: messageType(flags), data: bufpool.Copy(p), push: push})
	ch.outBytes += len(p)
	if !push {
		ch.outData += len(p)
	}
	ch.startWriterLocked()
	ch.mu.Unlock()
	return nil
}

// startWriterLocked tells the transport that out has messages to write.
func (ch *Channel) startWriterLocked() {
	if ch.head == len(ch.out) || ch.conn == nil {
		return
	}
	ch.conn.wake()
}

// nextOut takes the next message queued for the client: its writer calls
// it until ok is false. An empty queue returns the credit owed to the
// service; once the client is gone (gone), the queue is freed instead.
func (ch *Channel) nextOut() (m outMsg, ok, gone bool) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.clientGone {
		ch.releaseOutLocked()
		return outMsg{}, false, true
	}
	if ch.head == len(ch.out) {
		ch.out = ch.out[:0]
		ch.head = 0
		if ch.owed > 0 {
			ch.creditLocked()
		}
		return outMsg{}, false, false
	}
	m = ch.out[ch.head]
	ch.out[ch.head] = outMsg{}
	ch.head++
	return m, true, false
}

// wroteOut accounts for a data message taken by nextOut once the
// transport wrote it (err nil) or failed to (the client is gone); the
// transport puts m.data back to the pool.
func (ch *Channel) wroteOut(m outMsg, err error) {
	n := len(*m.data)
	ch.mu.Lock()
	ch.outBytes -= n
	if !m.push {
		ch.outData -= n
	}
	if err != nil {
		ch.clientGone = true // the reader sees the same failure and reports it
	} else if !m.push { // a push took no credit, so it gives none back
		ch.owed += n
		if ch.owed >= ch.b.cfg.Limits.Window/4 {
			ch.creditLocked()
		}
	}
	ch.mu.Unlock()
	if err == nil {
		ch.b.m.msgOut.Inc()
		ch.b.m.bytesOut.Add(float64(n))
	}
}

// outDone frees what is still queued once the writer has stopped.
func (ch *Channel) outDone() {
	ch.mu.Lock()
	ch.releaseOutLocked()
	ch.mu.Unlock()
}

// creditLocked returns written bytes to the active instance as credit.
func (ch *Channel) creditLocked() {
	if inst := ch.reg.active.Load(); inst != nil {
		inst.sendCredit(ch.id, ch.owed)
	}
	ch.owed = 0
}

// releaseOutLocked frees queued outgoing messages and resets the queue.
func (ch *Channel) releaseOutLocked() {
	for i := ch.head; i < len(ch.out); i++ {
		bufpool.Put(ch.out[i].data)
		ch.out[i] = outMsg{}
	}
	ch.out = ch.out[:0]
	ch.head = 0
	ch.outBytes, ch.outData = 0, 0
}

// closeFrame returns the code and reason to send in a close frame: a code
// that may not be sent becomes 1000, a reason is cut to fit, on a rune
// boundary.
func closeFrame(code websocket.StatusCode, reason string) (websocket.StatusCode, string) {
	if code < 1000 || code >= 5000 || code == 1004 || code == 1005 || code == 1006 || code == 1015 || (code >= 1016 && code < 3000) {
		code = websocket.StatusNormalClosure
	}
	if len(reason) > 123 {
		reason = reason[:123]
		for !utf8.ValidString(reason) {
			reason = reason[:len(reason)-1]
		}
	}
	return code, reason
}

// serviceClose closes the channel at the service's request: messages already
// queued reach the client first, then the close frame.
func (ch *Channel) serviceClose(code uint64, reason string) {
	ch.closeWith(websocket.StatusCode(code), reason, "service")
}

// brokerClose closes the channel from the broker's side and tells the
// service with the same code.
func (ch *Channel) brokerClose(code websocket.StatusCode, reason string) {
	ch.mu.Lock()
	if inst := ch.reg.active.Load(); inst != nil && !ch.serviceClosed && !ch.clientGone {
		inst.sendFrame(&protocol.Close{Channel: ch.id, Code: uint64(code), Reason: reason})
	}
	ch.mu.Unlock()
	ch.closeWith(code, reason, "broker")
}

func (ch *Channel) closeWith(code websocket.StatusCode, reason, by string) {
	ch.mu.Lock()
	if ch.serviceClosed || ch.done {
		ch.mu.Unlock()
		return
	}
	ch.serviceClosed = true
	ch.dropInLocked()
	ch.b.m.closes.WithLabelValues(by, fmt.Sprint(int(code))).Inc()
	if ch.clientGone {
		ch.done = true
		ch.mu.Unlock()
		ch.reg.removeChannel(ch)
		return
	}
	ch.out = append(ch.out, outMsg{close: true, code: code, reason: reason})
	ch.startWriterLocked()
	ch.mu.Unlock()
}

// dropInLocked frees client messages nobody will receive.
func (ch *Channel) dropInLocked() {
	for i := ch.qh; i < len(ch.q); i++ {
		if ch.q[i].data != nil {
			n := len(*ch.q[i].data)
			ch.buffered -= n
			ch.b.buffered.Add(-int64(n))
			bufpool.Put(ch.q[i].data)
		}
		ch.q[i] = inMsg{}
	}
	ch.q, ch.qh = ch.q[:0], 0
	ch.sent, ch.inflight = 0, 0
	ch.roomMadeLocked()
}

// clientClosed records that the client's connection ended with code and
// reason. The service gets a Close after every message before it.
func (ch *Channel) clientClosed(code websocket.StatusCode, reason string) {
	ch.mu.Lock()
	if ch.halfClosed { // the service has its close already (clientClosing): the connection is gone now
		ch.mu.Unlock()
		ch.clientEnded()
		return
	}
	ch.clientGone = true
	if ch.serviceClosed || ch.done { // the service (or broker) closed it: nothing to tell
		ch.done = true
		ch.mu.Unlock()
		ch.reg.removeChannel(ch)
		return
	}
	ch.b.m.closes.WithLabelValues("client", fmt.Sprint(int(code))).Inc()
	ch.q = append(ch.q, inMsg{close: true, code: uint64(code), reason: reason})
	ch.pumpLocked()
	done := ch.done
	ch.mu.Unlock()
	if done {
		ch.reg.removeChannel(ch)
	}
}

// clientClosing records the client's close frame on a transport that lets
// the service answer it (the polled one): the service gets a Close with
// code and reason after every message before it, and what the service
// still sends reaches the client until the service's Close, which the
// transport writes as its close frame (or until the close timeout). The
// transport calls clientEnded once the connection is closed.
func (ch *Channel) clientClosing(code websocket.StatusCode, reason string) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.halfClosed || ch.serviceClosed || ch.done { // our close frame is on its way: nothing to tell
		return
	}
	ch.halfClosed = true
	ch.b.m.closes.WithLabelValues("client", fmt.Sprint(int(code))).Inc()
	ch.q = append(ch.q, inMsg{close: true, code: uint64(code), reason: reason})
	ch.pumpLocked()
}

// clientEnded records that the connection of a client that sent its close
// frame (clientClosing) is closed: the channel ends now if the service
// closed it, or once the service acknowledged everything before the Close.
func (ch *Channel) clientEnded() {
	ch.mu.Lock()
	ch.clientGone = true
	if ch.serviceClosed {
		ch.done = true
	} else {
		ch.finishIfAckedLocked()
	}
	done := ch.done
	ch.mu.Unlock()
	if done {
		ch.reg.removeChannel(ch)
	}
}

func (ch *Channel) status() ChannelStatus {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	cs := ChannelStatus{ID: ch.id, Origin: ch.info.Origin, Target: ch.info.Target, Protocol: ch.info.Protocol,
		App: ch.info.App, Remote: ch.info.Remote, Since: time.UnixMilli(int64(ch.info.Since)),
		Unacked: len(ch.q) - ch.qh, BufferedBytes: ch.buffered, QueuedOut: ch.outBytes}
	if ch.inst != nil {
		cs.Instance = ch.inst.id
	}
	return cs
}
