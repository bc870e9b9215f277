package broker

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// CloseHold wraps a client's hijacked connection under coder/websocket so
// that the broker can answer the client's close frame later, as the
// polled transport does: coder/websocket answers a close frame as soon as
// it reads one. CloseHold follows the frame boundaries in the bytes the
// library reads; at a client's close frame it gives the library nothing
// more (the frame is kept) and tells the channel, and lets the library
// have the frame once the service's Close arrives or the close timeout
// passes (wsClient releases it). Until then the library goes on writing
// the service's messages. What the client sends after its close frame is
// discarded.
//
// Wrap the connection with NewCloseHold where the library hijacks it
// (server package), and pass the result to Serve as raw.
type CloseHold struct {
	net.Conn
	src io.Reader // the connection, after what the HTTP server had buffered

	// The library's reader only (it holds its read lock).
	hdr     [14]byte
	hn      int   // header bytes gathered
	left    int64 // payload bytes of the current frame still to pass on
	closing bool  // a close frame is being gathered or held
	whole   bool  // ... and all of it is here
	told    bool  // ... and the channel was told (once the library read everything before it)
	code    websocket.StatusCode
	reason  string
	valid   bool
	need    int // its payload length
	frame   []byte
	payload []byte

	mu      sync.Mutex
	onClose func(code websocket.StatusCode, reason string) // guarded by mu
	release chan struct{}
	once    sync.Once
}

// NewCloseHold wraps conn; buffered is what was read from it past the
// handshake already (given back first).
func NewCloseHold(conn net.Conn, buffered []byte) *CloseHold {
	src := io.Reader(conn)
	if len(buffered) > 0 {
		src = io.MultiReader(bytes.NewReader(append([]byte(nil), buffered...)), conn)
	}
	return &CloseHold{Conn: conn, src: src, release: make(chan struct{})}
}

// Release lets the library read the held close frame (and answer it).
func (h *CloseHold) Release() { h.once.Do(func() { close(h.release) }) }

// Close closes the connection and releases a read waiting on the hold.
func (h *CloseHold) Close() error {
	h.Release()
	return h.Conn.Close()
}

func (h *CloseHold) setOnClose(f func(websocket.StatusCode, string)) {
	h.mu.Lock()
	h.onClose = f
	h.mu.Unlock()
}

// Read passes the client's frames on, up to a close frame.
func (h *CloseHold) Read(p []byte) (int, error) {
	for {
		if h.whole {
			if !h.told { // the library has taken every message before the close: tell the channel now
				h.told = true
				h.mu.Lock()
				f := h.onClose
				h.mu.Unlock()
				if f == nil || !h.valid {
					h.Release() // let the library judge it
				} else {
					f(h.code, h.reason)
				}
			}
			<-h.release
			if len(h.frame) == 0 {
				return 0, io.EOF
			}
			n := copy(p, h.frame)
			h.frame = h.frame[n:]
			return n, nil
		}
		n, err := h.src.Read(p)
		pass := h.scan(p[:n])
		if pass > 0 || err != nil {
			return pass, err
		}
	}
}

// scan follows frame boundaries in b, which was just read into the
// caller's buffer, and returns how many of its bytes go to the library;
// the bytes of a close frame (and any after it) are kept.
func (h *CloseHold) scan(b []byte) int {
	for i := 0; i < len(b); {
		if h.closing {
			h.gatherClose(b[i:])
			return i
		}
		if h.left > 0 {
			k := int(min(h.left, int64(len(b)-i)))
			i += k
			h.left -= int64(k)
			continue
		}
		h.hdr[h.hn] = b[i]
		h.hn++
		i++
		size, length, ok := frameHeader(h.hdr[:h.hn])
		if !ok {
			continue
		}
		if h.hdr[0]&0x0f == 0x8 && length <= 125 { // a close frame: keep it from its first byte in b
			start := max(0, i-size)
			h.closing, h.need = true, int(length)
			h.frame = append(h.frame[:0], h.hdr[size-(i-start):size]...)
			h.hn = 0
			h.gatherClose(b[i:])
			return start
		}
		h.hn, h.left = 0, length
	}
	return len(b)
}

// gatherClose keeps the close frame's payload bytes from b (bytes past it
// are dropped) and, once it is whole, reads its code and reason.
func (h *CloseHold) gatherClose(b []byte) {
	if h.whole {
		return
	}
	k := min(h.need-len(h.payload), len(b))
	h.payload = append(h.payload, b[:k]...)
	h.frame = append(h.frame, b[:k]...)
	if len(h.payload) < h.need {
		return
	}
	h.whole = true
	p := append([]byte(nil), h.payload...)
	if h.hdr[1]&0x80 != 0 { // masked, as a client's must be
		size, _, _ := frameHeader(h.hdr[:])
		mask := h.hdr[size-4 : size]
		for j := range p {
			p[j] ^= mask[j%4]
		}
	}
	h.code, h.reason, h.valid = websocket.StatusNoStatusRcvd, "", len(p) != 1
	if len(p) >= 2 {
		h.code, h.reason = websocket.StatusCode(binary.BigEndian.Uint16(p)), string(p[2:])
		sendable, _ := closeFrame(h.code, "")
		h.valid = utf8.ValidString(h.reason) && sendable == h.code // a code a close frame may carry
	}
}

// frameHeader returns the size of the header at the front of b and the
// payload length; ok is false until b holds the whole header.
func frameHeader(b []byte) (size int, length int64, ok bool) {
	if len(b) < 2 {
		return 0, 0, false
	}
	size = 2
	switch l := b[1] & 0x7f; l {
	case 126:
		size = 4
	case 127:
		size = 10
	default:
		length = int64(l)
	}
	if b[1]&0x80 != 0 {
		size += 4
	}
	if len(b) < size {
		return size, 0, false
	}
	switch b[1] & 0x7f {
	case 126:
		length = int64(binary.BigEndian.Uint16(b[2:4]))
	case 127:
		length = int64(binary.BigEndian.Uint64(b[2:10]) & (1<<63 - 1))
	}
	return size, length, true
}
