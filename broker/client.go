package broker

import (
	"context"
	"errors"
	"io"
	"net"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/protocol"
)

// clientConn is what a channel needs of its client's connection, whatever
// transport runs it. The channel calls it with Channel.mu held, so none of
// its methods may block or call back into the channel (ping is called
// without the lock, and may take the broker's); the transport calls
// the channel back (received, nextOut, wroteOut, outDone, clientClosed)
// without holding locks of its own that the channel's calls take.
type clientConn interface {
	// wake tells the transport that the channel has messages for the client
	// (Channel.nextOut). A close entry among them ends the connection with
	// the close handshake.
	wake()
	// resume lets the transport read again after Channel.received held a
	// message (backpressure).
	resume()
	// ping sends a ping without waiting for the pong; the transport cuts
	// the client when none comes within timeout. A ping still unanswered
	// makes this call a no-op.
	ping(timeout time.Duration)
	// abort drops the connection without a close handshake (Shutdown's grace
	// is over).
	abort()
}

// checkMessage returns the close code for a client message that breaks a
// rule the transport's library leaves to the broker (0 when none does).
func checkMessage(binary bool, data []byte, max int) (websocket.StatusCode, string) {
	if len(data) > max {
		return websocket.StatusMessageTooBig, "message too big"
	}
	if !binary && !utf8.Valid(data) {
		return websocket.StatusInvalidFramePayloadData, "invalid UTF-8 in a text message"
	}
	return 0, ""
}

// messageFlags returns the Data flags of a client message.
func messageFlags(binary bool) byte {
	if binary {
		return protocol.FlagBinary
	}
	return 0
}

// connGone reports whether err means the connection itself failed or was
// closed (the service is told 1006) rather than that the client broke the
// protocol.
func connGone(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne)
}

// lingerTime bounds the closing handshake after the broker closed a client
// for breaking a rule: the close frame reaches the client before the
// connection is reset, and a client that never answers is cut after it.
const lingerTime = 2 * time.Second
