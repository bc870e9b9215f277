package protocol

import (
	"errors"
	"fmt"
	"slices"
)

// Header is one HTTP header line of a handshake. Order and repetition are
// kept as the client sent them.
type Header struct {
	Name  string
	Value string
}

// Hello is the first frame a service sends on its link.
//
//	version:uvarint scope:string label:string credential:string
//	protocols:[string] origins:[string] window:uvarint flags:uvarint [hold:uvarint]
type Hello struct {
	Version    uint64
	Scope      string   // URL of the scope: ws://host:port/path/ (the host part is kept only if it is to be matched)
	Label      string   // version label of this instance, e.g. "v2"; informational
	Credential string   // secret that owns the scope; empty in dev mode
	Protocols  []string // subprotocols (intents) the service accepts, in preference order; empty: none required
	Origins    []string // admitted origins; empty: any
	Window     uint64   // bytes of unacknowledged client data the instance accepts per channel; 0: broker default
	Flags      uint64   // HelloPrivate, HelloURLUpdates, HelloStandby
	// Hold, in milliseconds, asks the broker to hold new clients' connects
	// while the registration has no active instance (a restart), up to
	// this long (capped by the accept timeout), instead of refusing them
	// at once. Optional last field: absent (old services) means 0.
	Hold uint64
}

// Welcome answers a Hello.
//
//	version:uvarint instance:uvarint scope:string public:string
//	active:u8 window:uvarint maxMessage:uvarint
type Welcome struct {
	Version    uint64
	Instance   uint64 // the broker's id for this instance
	Scope      string // the scope as registered (path form, e.g. "/echo/", or "host/path/")
	PublicURL  string // the URL clients connect to (the mapped external address when port mapping is on)
	Active     bool   // whether this instance is the active one
	Window     uint64 // bytes the service may send to one channel before it needs Credit
	MaxMessage uint64 // largest message the broker relays
}

// Error is a fatal link error.
//
//	code:uvarint message:string
type Error struct {
	Code    uint64
	Message string
}

// State tells an instance whether it is active.
//
//	active:u8
type State struct {
	Active bool
}

// URL tells an instance that the public URL of its scope changed since
// Welcome (or the previous URL frame).
//
//	public:string
type URL struct {
	PublicURL string
}

// Connect is a connect request: a client wants to open a channel.
//
//	channel:uvarint remote:string origin:string target:string
//	protocols:[string] app:string firstLine:string headers:[header] body:bytes
type Connect struct {
	Channel   uint64
	Remote    string   // client's address
	Origin    string   // Origin header, or "" if none
	Target    string   // the URL the client asked for (ws://host/path?query)
	Protocols []string // subprotocols the client offered, in its order
	App       string   // verified app id of the caller, "" if anonymous
	FirstLine string   // "GET /path HTTP/1.1"
	Headers   []Header // the handshake headers as received
	Body      []byte   // handshake body (normally empty)
}

// Accept accepts a connect request.
//
//	channel:uvarint protocol:string headers:[header]
type Accept struct {
	Channel  uint64
	Protocol string   // one of the offered subprotocols, or ""
	Headers  []Header // extra response headers; ones that would break the handshake are refused
}

// ErrNotOffered is wrapped by CheckSubprotocol's error.
var ErrNotOffered = errors.New("subprotocol was not offered by the client")

// CheckSubprotocol is the rule for Accept.Protocol: chosen is "" or one of
// the subprotocols the client offered (Connect.Protocols). The broker
// enforces it on every Accept, before a channel exists; the SDK applies the
// same rule before sending one, to tell its caller in its own words.
func CheckSubprotocol(chosen string, offered []string) error {
	if chosen == "" || slices.Contains(offered, chosen) {
		return nil
	}
	return fmt.Errorf("%w: %q (it offered %q)", ErrNotOffered, chosen, offered)
}

// Respond answers a connect request with a custom HTTP response instead of
// the WebSocket upgrade.
//
//	channel:uvarint status:uvarint headers:[header] body:bytes
type Respond struct {
	Channel uint64
	Status  uint64
	Headers []Header
	Body    []byte
}

// Reject rejects a connect request. The client gets the same bytes as for a
// URL that no service owns.
//
//	channel:uvarint
type Reject struct {
	Channel uint64
}

// ChannelInfo describes an open channel: the entries of the client list and
// the body of an Open frame.
//
//	channel:uvarint origin:string target:string protocol:string
//	app:string remote:string since:uvarint(unix ms)
type ChannelInfo struct {
	Channel  uint64
	Origin   string
	Target   string
	Protocol string
	App      string
	Remote   string
	Since    uint64 // unix milliseconds when the client connected
}

// Data is one WebSocket message of a channel. Seq numbers client messages
// from 1 in broker → service frames and is 0 in service → broker frames.
//
//	channel:uvarint seq:uvarint flags:u8 payload:rest
type Data struct {
	Channel uint64
	Seq     uint64
	Flags   byte
	Payload []byte // a view into the decoded message
}

// Ack acknowledges every client message of a channel up to and including Seq.
//
//	channel:uvarint seq:uvarint
type Ack struct {
	Channel uint64
	Seq     uint64
}

// Credit lets the service send Bytes more bytes of payload to a channel.
//
//	channel:uvarint bytes:uvarint
type Credit struct {
	Channel uint64
	Bytes   uint64
}

// Close closes a channel.
//
//	channel:uvarint code:uvarint reason:string
type Close struct {
	Channel uint64
	Code    uint64
	Reason  string
}

// Push sends one message to every channel of the registration whose target
// URL path starts with Prefix ("" is every channel).
//
//	flags:u8 prefix:string payload:rest
type Push struct {
	Flags   byte
	Prefix  string
	Payload []byte
}

// List asks for the client list; the broker answers with Clients carrying the
// same Request.
//
//	request:uvarint
type List struct {
	Request uint64
}

// Clients is the client list of a registration.
//
//	request:uvarint clients:[channelInfo]
type Clients struct {
	Request uint64
	Clients []ChannelInfo
}
