package wstest

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// Opcodes of RFC 6455 section 5.2. The reserved ones (3-7, 0xB-0xF) are
// deliberately not named: cases use the numbers.
const (
	OpContinuation byte = 0x0
	OpText         byte = 0x1
	OpBinary       byte = 0x2
	OpClose        byte = 0x8
	OpPing         byte = 0x9
	OpPong         byte = 0xA
)

// Reserved bits as they go in Frame.RSV.
const (
	RSV1 byte = 4
	RSV2 byte = 2
	RSV3 byte = 1
)

// maxControlPayload is the largest payload a control frame may carry.
const maxControlPayload = 125

// Frame is one WebSocket frame exactly as it goes on the wire. Nothing is
// checked: building invalid frames is the point.
type Frame struct {
	Fin    bool
	RSV    byte // the three reserved bits as a number 0..7 (RSV1 = 4, RSV2 = 2, RSV3 = 1)
	Opcode byte // any 4-bit value
	// Payload is sent as is (masked on the wire unless Unmasked).
	Payload []byte
	// Unmasked sends the frame without a mask, which a client must never do.
	Unmasked bool
	// Length, when nonzero, is written in the header instead of len(Payload):
	// a frame that announces more than it carries.
	Length uint64
}

// Message is what the kit reads back from the endpoint: a whole data
// message (fragments joined), a pong, or a close frame (Opcode OpClose, the
// raw close payload).
type Message struct {
	Opcode  byte
	Payload []byte
}

func (m Message) String() string {
	p := m.Payload
	suffix := ""
	if len(p) > 32 {
		p, suffix = p[:32], "..."
	}
	return fmt.Sprintf("%s(%d bytes %q%s)", opName(m.Opcode), len(m.Payload), p, suffix)
}

func opName(op byte) string {
	switch op {
	case OpContinuation:
		return "continuation"
	case OpText:
		return "text"
	case OpBinary:
		return "binary"
	case OpClose:
		return "close"
	case OpPing:
		return "ping"
	case OpPong:
		return "pong"
	}
	return fmt.Sprintf("opcode-%d", op)
}

// AppendFrame appends the wire form of f to dst, masked with key unless
// f.Unmasked. Lengths use the shortest form, as RFC 6455 requires.
func AppendFrame(dst []byte, f Frame, key [4]byte) []byte {
	b0 := f.Opcode&0x0F | (f.RSV&0x7)<<4
	if f.Fin {
		b0 |= 0x80
	}
	var b1 byte
	if !f.Unmasked {
		b1 = 0x80
	}
	n := uint64(len(f.Payload))
	if f.Length != 0 {
		n = f.Length
	}
	switch {
	case n <= 125:
		dst = append(dst, b0, b1|byte(n))
	case n <= 0xFFFF:
		dst = append(dst, b0, b1|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, b0, b1|127)
		dst = binary.BigEndian.AppendUint64(dst, n)
	}
	if f.Unmasked {
		return append(dst, f.Payload...)
	}
	dst = append(dst, key[:]...)
	start := len(dst)
	dst = append(dst, f.Payload...)
	for i := range f.Payload {
		dst[start+i] ^= key[i&3]
	}
	return dst
}

// EncodeFrames returns the wire form of frames, each masked with a fresh
// random key (unless Unmasked).
func EncodeFrames(frames ...Frame) []byte {
	var out []byte
	for _, f := range frames {
		var key [4]byte
		_, _ = rand.Read(key[:])
		out = AppendFrame(out, f, key)
	}
	return out
}

// ReadFrame reads one frame as a server sends it. A server frame that is
// masked, has reserved bits set or carries more than maxPayload bytes is an
// error: the kit does not negotiate extensions.
func ReadFrame(r *bufio.Reader, maxPayload int64) (Frame, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return Frame{}, err
	}
	f := Frame{
		Fin:    hdr[0]&0x80 != 0,
		RSV:    hdr[0] >> 4 & 0x7,
		Opcode: hdr[0] & 0x0F,
	}
	masked := hdr[1]&0x80 != 0
	n := uint64(hdr[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return Frame{}, fmt.Errorf("read 16-bit length: %w", err)
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return Frame{}, fmt.Errorf("read 64-bit length: %w", err)
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if masked {
		return Frame{}, errors.New("server sent a masked frame")
	}
	if f.RSV != 0 {
		return Frame{}, fmt.Errorf("server sent reserved bits %03b without an extension", f.RSV)
	}
	if n > uint64(maxPayload) {
		return Frame{}, fmt.Errorf("server frame of %d bytes is over the %d the kit accepts", n, maxPayload)
	}
	f.Payload = make([]byte, n)
	if _, err := io.ReadFull(r, f.Payload); err != nil {
		return Frame{}, fmt.Errorf("read %d-byte payload: %w", n, err)
	}
	return f, nil
}

// ClosePayload builds the payload of a close frame: the code in two bytes,
// then the reason, unchecked.
func ClosePayload(code uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}

// ParseClose checks a close payload received from the endpoint and returns
// its code (1005 when the payload is empty) and reason.
func ParseClose(p []byte) (code int, reason string, err error) {
	if len(p) == 0 {
		return 1005, "", nil
	}
	if len(p) == 1 {
		return 0, "", errors.New("close payload of 1 byte")
	}
	code = int(binary.BigEndian.Uint16(p))
	if !ValidCloseCode(code) {
		return code, "", fmt.Errorf("close code %d may not be sent on the wire", code)
	}
	if !utf8.Valid(p[2:]) {
		return code, "", fmt.Errorf("close reason %q is not valid UTF-8", p[2:])
	}
	return code, string(p[2:]), nil
}

// ValidCloseCode reports whether a close frame may carry code (RFC 6455
// section 7.4 and the IANA registry: 1000-1003, 1007-1014, 3000-4999).
func ValidCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003:
		return true
	case code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}
