package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Version is the service protocol version this package speaks. A Hello with
// another version is refused with ErrCodeVersion.
const Version = 1

// Subprotocol is the WebSocket subprotocol a service link negotiates.
const Subprotocol = "switchboard.v1"

// ReservedPrefix is the path prefix of the broker's own endpoints; no scope
// may claim it.
const ReservedPrefix = "/.switchboard/"

// LinkPath is where services open their link.
const LinkPath = ReservedPrefix + "v1/link"

// Type identifies a frame.
type Type uint8

// Frame types. The direction is service → broker (S→B), broker → service
// (B→S) or both.
const (
	TypeHello   Type = 0x01 // S→B: first frame on a link: who and what scope
	TypeWelcome Type = 0x02 // B→S: answer to Hello: instance id, state, windows
	TypeError   Type = 0x03 // both: fatal link error; the sender closes the link next
	TypeState   Type = 0x04 // B→S: the instance became active or was superseded
	TypeURL     Type = 0x05 // B→S: the public URL changed (only to services whose Hello set HelloURLUpdates)

	TypeConnect Type = 0x10 // B→S: a client asks to connect (the connect request)
	TypeAccept  Type = 0x11 // S→B: accept a connect request
	TypeRespond Type = 0x12 // S→B: answer a connect request with a custom HTTP response
	TypeReject  Type = 0x13 // S→B: reject a connect request
	TypeOpen    Type = 0x14 // B→S: an open channel this instance now serves (handover)

	TypeData   Type = 0x20 // both: one WebSocket message of a channel
	TypeAck    Type = 0x21 // S→B: client messages up to seq are handled
	TypeCredit Type = 0x22 // B→S: the service may send this many more bytes to a channel
	TypeClose  Type = 0x23 // both: close a channel with code and reason
	TypePush   Type = 0x24 // S→B: send one message to every channel whose target URL has a prefix

	TypeList    Type = 0x30 // S→B: ask for the registration's client list
	TypeClients Type = 0x31 // B→S: the client list
)

func (t Type) String() string {
	switch t {
	case TypeHello:
		return "hello"
	case TypeWelcome:
		return "welcome"
	case TypeError:
		return "error"
	case TypeState:
		return "state"
	case TypeURL:
		return "url"
	case TypeConnect:
		return "connect"
	case TypeAccept:
		return "accept"
	case TypeRespond:
		return "respond"
	case TypeReject:
		return "reject"
	case TypeOpen:
		return "open"
	case TypeData:
		return "data"
	case TypeAck:
		return "ack"
	case TypeCredit:
		return "credit"
	case TypeClose:
		return "close"
	case TypePush:
		return "push"
	case TypeList:
		return "list"
	case TypeClients:
		return "clients"
	}
	return fmt.Sprintf("type(0x%02x)", uint8(t))
}

// Flags of a Data or Push frame.
const (
	FlagBinary byte = 1 << 0 // the message is binary; otherwise text (UTF-8)
)

// Hello flags.
const (
	HelloPrivate uint64 = 1 << 0 // ask the broker for a fresh private scope; Scope gives the broker URL and the path to make it under ("/" for most)
	// HelloURLUpdates says the service understands URL frames: the broker
	// then tells it whenever the public URL of its scope changes (a port
	// mapping made, lost or moved). Services without it never get one.
	HelloURLUpdates uint64 = 1 << 1
	// HelloStandby asks the broker not to take over from a live active
	// instance with the same label: the new instance then attaches as a
	// standby (Welcome.active = 0) and becomes active when that one goes
	// away. Without it (or with another label) the newest instance takes
	// over, which is how a new version replaces the old one.
	HelloStandby uint64 = 1 << 2
)

// Error codes carried by an Error frame.
const (
	ErrCodeProtocol     = 1 // malformed or unexpected frame
	ErrCodeVersion      = 2 // unsupported protocol version
	ErrCodeUnauthorized = 3 // credential missing or not valid for the scope
	ErrCodeScope        = 4 // invalid scope, reserved prefix, or owned by another app
	ErrCodeLimit        = 5 // a limit was exceeded (frame size, buffered bytes)
	ErrCodeShutdown     = 6 // the broker is shutting down
	ErrCodeInternal     = 7 // broker-side failure
)

// MaxFrameBody bounds the body of a single frame. It is larger than the
// largest message the broker relays plus the frame's own fields.
const MaxFrameBody = 64 << 20

// LinkOverhead is how many bytes a link message may carry beyond the
// largest relayed message: the fields of the frame around the largest
// payload, and the small frames batched with it.
const LinkOverhead = 64 << 10

// MaxLinkMessage is the largest link message, in either direction, on a
// link to a broker that relays messages of up to maxMessage bytes
// (Welcome.MaxMessage): every writer cuts its batches at it and every
// reader accepts it (docs/PROTOCOL.md, "The link").
func MaxLinkMessage(maxMessage uint64) int {
	return int(min(maxMessage, MaxFrameBody)) + LinkOverhead
}

// CutBatch returns the length of the longest run of whole frames at the
// start of b that fits in limit bytes: where a writer ends one link message.
// It is at least the first frame's length, even when that frame alone is
// larger (the writer's own checks keep single frames within the limit).
func CutBatch(b []byte, limit int) (int, error) {
	n := 0
	for n < len(b) {
		_, _, rest, err := Next(b[n:])
		if err != nil {
			return 0, fmt.Errorf("cut batch at byte %d: %w", n, err)
		}
		k := len(b) - n - len(rest)
		if n > 0 && n+k > limit {
			break
		}
		n += k
	}
	return n, nil
}

// Errors returned by the decoders. They are wrapped with the frame type.
var (
	ErrShort    = errors.New("protocol: truncated frame")
	ErrTooLarge = errors.New("protocol: frame too large")
	ErrOverflow = errors.New("protocol: varint overflows")
	ErrTrailing = errors.New("protocol: trailing bytes in frame body")
)

// Next splits the first frame off msg. It returns the frame type, its body
// (a view into msg) and the rest of msg. A malformed header is an error; the
// body is not interpreted.
func Next(msg []byte) (t Type, body, rest []byte, err error) {
	if len(msg) < 2 {
		return 0, nil, nil, ErrShort
	}
	t = Type(msg[0])
	n, k := binary.Uvarint(msg[1:])
	if k <= 0 {
		if k == 0 {
			return 0, nil, nil, ErrShort
		}
		return 0, nil, nil, ErrOverflow
	}
	if n > MaxFrameBody {
		return 0, nil, nil, ErrTooLarge
	}
	start := 1 + k
	if uint64(len(msg)-start) < n {
		return 0, nil, nil, ErrShort
	}
	end := start + int(n)
	return t, msg[start:end:end], msg[end:], nil
}

// frameHeaderMax is the most bytes a frame header takes: type plus a
// uvarint length of up to 10 bytes.
const frameHeaderMax = 1 + binary.MaxVarintLen64

// begin appends a frame header whose length is filled in by end. It reserves
// the largest varint and end moves the body back, which keeps encoding to a
// single pass without knowing the body length beforehand.
func begin(b []byte, t Type) ([]byte, int) {
	b = append(b, byte(t))
	at := len(b)
	var pad [binary.MaxVarintLen64]byte
	b = append(b, pad[:]...)
	return b, at
}

func end(b []byte, at int) []byte {
	bodyStart := at + binary.MaxVarintLen64
	n := len(b) - bodyStart
	var tmp [binary.MaxVarintLen64]byte
	k := binary.PutUvarint(tmp[:], uint64(n))
	copy(b[at:], tmp[:k])
	copy(b[at+k:], b[bodyStart:])
	return b[:at+k+n]
}
