package sdk

import (
	"errors"
	"fmt"

	"github.com/switchboard-dev/switchboard/protocol"
)

// LinkError is an Error frame sent by the broker: why it refused or ended
// the service link. Code is one of protocol's ErrCode values, Message the
// broker's explanation (for example that the scope needs a credential).
type LinkError struct {
	Code    uint64
	Message string
}

func (e *LinkError) Error() string {
	hint := ""
	if e.Code == protocol.ErrCodeUnauthorized {
		hint = "; set ListenOptions.Credential to a credential that owns the scope"
	}
	return fmt.Sprintf("switchboard broker: %s (error %d: %s%s)", e.Message, e.Code, codeName(e.Code), hint)
}

func codeName(c uint64) string {
	switch c {
	case protocol.ErrCodeProtocol:
		return "protocol error"
	case protocol.ErrCodeVersion:
		return "unsupported version"
	case protocol.ErrCodeUnauthorized:
		return "unauthorized"
	case protocol.ErrCodeScope:
		return "bad scope"
	case protocol.ErrCodeLimit:
		return "limit exceeded"
	case protocol.ErrCodeShutdown:
		return "broker shutting down"
	case protocol.ErrCodeInternal:
		return "internal error"
	}
	return "unknown"
}

var (
	// ErrClosed is returned by operations on a Listener after Close.
	ErrClosed = errors.New("sdk: listener closed")
	// ErrLinkClosed is returned by channel operations once the service link
	// has ended; the channel itself stays open at the broker and is handed
	// to the next listener of the scope. Listener.Err says why the link
	// ended.
	ErrLinkClosed = errors.New("sdk: service link closed")
	// ErrChannelClosed is returned by operations on a channel this side
	// closed.
	ErrChannelClosed = errors.New("sdk: channel closed")
	// ErrUnknownChannel is returned by Listener.Send for a channel that this
	// listener does not serve.
	ErrUnknownChannel = errors.New("sdk: unknown channel")
	// ErrAnswered is returned when a connect request is answered twice.
	ErrAnswered = errors.New("sdk: connect request already answered")
	// ErrExpired is returned when a connect request is answered after its
	// deadline: the broker has rejected the client already.
	ErrExpired = errors.New("sdk: connect request expired")
	// ErrTooBig is returned for a message larger than the broker relays.
	ErrTooBig = errors.New("sdk: message larger than the broker's maximum")
)
