package sdk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/internal/bufpool"
	"github.com/switchboard-dev/switchboard/protocol"
)

// errProtocol marks a frame from the broker that breaks the protocol.
var errProtocol = errors.New("protocol violation by the broker")

// readLoop is the only reader of the link: it splits each message into
// frames and dispatches them. It never blocks on a handler: channel queues
// are bounded by the window the broker honours.
func (l *Listener) readLoop() {
	scratch := bufpool.Get(64 << 10)
	defer func() { bufpool.Put(scratch) }()
	for {
		typ, msg, err := l.readMessage(&scratch)
		if err != nil {
			l.fail(fmt.Errorf("read service link: %w", err))
			return
		}
		if typ != websocket.MessageBinary {
			err = fmt.Errorf("%w: text message on the link", errProtocol)
		} else {
			err = l.handleMessage(msg)
		}
		if err != nil {
			var le *LinkError
			if !errors.As(err, &le) {
				l.protocolError(err)
			}
			l.fail(err)
			l.conn.CloseNow()
			return
		}
	}
}

// readMessage reads the next link message into scratch, a buffer reused
// for every message, and returns a copy of exactly its size: the frames'
// payloads in it stay with their channels until handlers are done with
// them. (websocket.Conn.Read would allocate each message several times
// over as it grows it.) A scratch buffer grown past 1 MiB is not kept.
func (l *Listener) readMessage(scratch **[]byte) (websocket.MessageType, []byte, error) {
	typ, r, err := l.conn.Reader(l.ctx)
	if err != nil {
		return 0, nil, err
	}
	b := *scratch
	*b = (*b)[:0]
	b, err = bufpool.ReadAll(r, b)
	var msg []byte
	if err == nil {
		msg = bytes.Clone(*b)
	}
	if cap(*b) > 1<<20 {
		bufpool.Put(b)
		b = bufpool.Get(64 << 10)
	}
	*scratch = b
	return typ, msg, err
}

// protocolError tells the broker why this side ends the link (Error 1,
// close 1002), best effort.
func (l *Listener) protocolError(err error) {
	f := protocol.Error{Code: protocol.ErrCodeProtocol, Message: err.Error()}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = l.conn.Write(ctx, websocket.MessageBinary, f.Append(nil))
	_ = l.conn.Close(websocket.StatusProtocolError, "malformed frame")
}

// handleMessage dispatches every frame of one link message.
func (l *Listener) handleMessage(msg []byte) error {
	for len(msg) > 0 {
		t, body, rest, err := protocol.Next(msg)
		if err != nil {
			return fmt.Errorf("%w: %w", errProtocol, err)
		}
		if err := l.handleFrame(t, body); err != nil {
			return err
		}
		msg = rest
	}
	return nil
}

func (l *Listener) handleFrame(t protocol.Type, body []byte) error {
	var err error
	switch t {
	case protocol.TypeData:
		var f protocol.Data
		if err = f.Decode(body); err == nil {
			err = l.onData(&f)
		}
	case protocol.TypeCredit:
		var f protocol.Credit
		if err = f.Decode(body); err == nil {
			l.mu.Lock()
			c := l.channels[f.Channel]
			l.mu.Unlock()
			if c != nil {
				c.addCredit(f.Bytes)
			}
		}
	case protocol.TypeClose:
		var f protocol.Close
		if err = f.Decode(body); err == nil {
			l.mu.Lock()
			c := l.channels[f.Channel]
			l.mu.Unlock()
			if c != nil {
				c.remoteClose(websocket.StatusCode(f.Code), f.Reason)
			}
		}
	case protocol.TypeConnect:
		var f protocol.Connect
		if err = f.Decode(body); err == nil {
			l.onConnect(&f)
		}
	case protocol.TypeOpen:
		var f protocol.ChannelInfo
		if err = f.Decode(body); err == nil {
			l.onOpen(&f)
		}
	case protocol.TypeState:
		var f protocol.State
		if err = f.Decode(body); err == nil {
			l.mu.Lock()
			if l.active != f.Active {
				l.active = f.Active
				close(l.changed)
				l.changed = make(chan struct{})
			}
			l.mu.Unlock()
			l.log.Info("instance state", "scope", l.welcome.Scope, "active", f.Active)
		}
	case protocol.TypeURL:
		var f protocol.URL
		if err = f.Decode(body); err == nil {
			l.mu.Lock()
			if l.url != f.PublicURL {
				l.url = f.PublicURL
				close(l.urlCh)
				l.urlCh = make(chan struct{})
			}
			l.mu.Unlock()
			l.log.Info("public URL changed", "scope", l.welcome.Scope, "url", f.PublicURL)
		}
	case protocol.TypeClients:
		var f protocol.Clients
		if err = f.Decode(body); err == nil {
			cs := make([]ClientInfo, len(f.Clients))
			for i := range f.Clients {
				cs[i] = infoOf(&f.Clients[i])
			}
			l.mu.Lock()
			reply := l.lists[f.Request]
			l.mu.Unlock()
			if reply != nil {
				select {
				case reply <- cs:
				default:
				}
			}
		}
	case protocol.TypeError:
		var f protocol.Error
		if err = f.Decode(body); err == nil {
			return &LinkError{Code: f.Code, Message: f.Message}
		}
	default:
		return fmt.Errorf("%w: unexpected %s frame", errProtocol, t)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", errProtocol, err)
	}
	return nil
}

func (l *Listener) onData(f *protocol.Data) error {
	l.mu.Lock()
	c := l.channels[f.Channel]
	l.mu.Unlock()
	if c == nil {
		return nil // closed a moment ago: the two sides race
	}
	return c.push(f.Seq, typeOf(f.Flags), f.Payload)
}

func (l *Listener) onConnect(f *protocol.Connect) {
	r := &Request{
		Channel: f.Channel, Remote: f.Remote, Origin: f.Origin, Target: f.Target, App: f.App,
		FirstLine: f.FirstLine, Protocols: f.Protocols, Headers: f.Headers, Body: f.Body, l: l,
		deadline: time.Now().Add(l.reqTimeout),
	}
	l.queueRequest(r)
}

func (l *Listener) onOpen(f *protocol.ChannelInfo) {
	l.mu.Lock()
	_, known := l.channels[f.Channel]
	l.mu.Unlock()
	if known {
		// Told again (the broker's view of this instance was rebuilt, e.g.
		// after a cluster link outage): keep the channel and its place;
		// redelivered messages are dropped as duplicates.
		return
	}
	info := infoOf(f)
	c := l.newChannel(info)
	r := &Request{
		Channel: f.Channel, Remote: f.Remote, Origin: f.Origin, Target: f.Target, App: f.App,
		Resumed: true, Protocol: f.Protocol, l: l, ch: c,
	}
	r.answered.Store(true)
	l.mu.Lock()
	l.channels[f.Channel] = c
	l.mu.Unlock()
	l.log.Debug("channel handed over", "channel", f.Channel, "target", f.Target)
	l.queueRequest(r)
}

// writeLoop is the only writer of the link. It takes every queued frame at
// once and writes them as few link messages as the link contract allows.
func (l *Listener) writeLoop() {
	defer close(l.writerDone)
	var spare []byte
	for {
		stopping := false
		select {
		case <-l.wake:
		case <-l.stop:
			stopping = true
		case <-l.ctx.Done():
			return
		}
		// Let handlers that are about to queue frames do so first: under
		// load this turns many small link writes into one.
		runtime.Gosched()
		l.outMu.Lock()
		ctrl := l.ctrl
		l.ctrl = nil
		b := l.out
		l.out = spare[:0]
		// Acknowledgements are cumulative: one per channel and batch, after
		// every frame queued before them (an echo is on the wire before
		// the Ack of the message it answers).
		for ch, seq := range l.acks {
			b = protocol.AppendAck(b, ch, seq)
			delete(l.acks, ch)
		}
		close(l.room)
		l.room = make(chan struct{})
		l.outMu.Unlock()
		if len(ctrl) > 0 {
			if err := l.writeBatches(ctrl); err != nil {
				l.fail(fmt.Errorf("write service link: %w", err))
				return
			}
		}
		if err := l.writeBatches(b); err != nil {
			l.fail(fmt.Errorf("write service link: %w", err))
			return
		}
		if cap(b) <= 4*outLimit {
			spare = b[:0]
		} else {
			spare = nil
		}
		if stopping {
			return
		}
	}
}

// writeBatches writes b, cut at frame boundaries into link messages of at
// most the link contract's limit (protocol.MaxLinkMessage).
func (l *Listener) writeBatches(b []byte) error {
	for len(b) > 0 {
		n, err := protocol.CutBatch(b, l.linkLimit)
		if err != nil {
			return fmt.Errorf("queued frame: %w", err) // cannot happen: we encoded it
		}
		if err := l.conn.Write(l.ctx, websocket.MessageBinary, b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// enqueueAck queues a cumulative acknowledgement of channel up to seq.
func (l *Listener) enqueueAck(channel, seq uint64) {
	l.outMu.Lock()
	if seq > l.acks[channel] {
		l.acks[channel] = seq
	}
	l.outMu.Unlock()
	signal(l.wake)
}

// enqueueControl queues a control frame in order with the data (a Close
// must follow the messages before it); it never waits for room.
func (l *Listener) enqueueControl(frame []byte) error {
	return l.enqueueFrame(frame, false)
}

// enqueueAnswer queues a frame that does not belong to a channel's stream
// (Accept, Respond, Reject, List) ahead of queued data, so that answers to
// connect requests are not stuck behind megabytes of messages.
func (l *Listener) enqueueAnswer(frame []byte) error {
	return l.enqueueFrame(frame, true)
}

func (l *Listener) enqueueFrame(frame []byte, first bool) error {
	if len(frame) > l.linkLimit {
		return fmt.Errorf("%w: a %d-byte frame exceeds the largest link message (%d bytes)", ErrTooBig, len(frame), l.linkLimit)
	}
	select {
	case <-l.done:
		return l.linkErr()
	case <-l.stop:
		return ErrClosed
	default:
	}
	l.outMu.Lock()
	if first {
		l.ctrl = append(l.ctrl, frame...)
	} else {
		l.out = append(l.out, frame...)
	}
	l.outMu.Unlock()
	signal(l.wake)
	return nil
}

// enqueueFunc queues a data-bearing frame, which add appends to the queue
// (saving a copy on the data path), waiting while the writer's queue holds
// outLimit bytes or more.
func (l *Listener) enqueueFunc(ctx context.Context, add func([]byte) []byte) error {
	for {
		select {
		case <-l.done:
			return l.linkErr()
		case <-l.stop:
			return ErrClosed
		default:
		}
		l.outMu.Lock()
		if len(l.out) < outLimit {
			l.out = add(l.out)
			l.outMu.Unlock()
			signal(l.wake)
			return nil
		}
		room := l.room
		l.outMu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return ctx.Err()
		case <-l.done:
			return l.linkErr()
		}
	}
}
