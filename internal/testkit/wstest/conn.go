package wstest

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// DefaultTimeout bounds every read and write of the kit unless the caller
// gives another.
const DefaultTimeout = 5 * time.Second

// websocketGUID is the constant of RFC 6455 section 1.3.
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// AcceptKey returns the Sec-WebSocket-Accept value for a Sec-WebSocket-Key.
func AcceptKey(key string) string {
	h := sha1.Sum([]byte(key + websocketGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// NewKey returns a fresh random Sec-WebSocket-Key.
func NewKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

// HandshakeRequest returns the raw bytes of an RFC 6455 opening handshake
// for host and path (the request target, query included). The default
// headers are Host, Upgrade, Connection, Sec-WebSocket-Key (key) and
// Sec-WebSocket-Version: 13, in that order. A header in extra replaces the
// default of the same name; a name mapped to an empty slice removes it.
// Other extra headers follow, sorted by name, so the request is the same
// bytes every time.
func HandshakeRequest(host, path string, extra http.Header, key string) []byte {
	defaults := [][2]string{
		{"Host", host},
		{"Upgrade", "websocket"},
		{"Connection", "Upgrade"},
		{"Sec-WebSocket-Key", key},
		{"Sec-WebSocket-Version", "13"},
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\n", path)
	for _, kv := range defaults {
		if vs, ok := extra[http.CanonicalHeaderKey(kv[0])]; ok {
			for _, v := range vs {
				fmt.Fprintf(&b, "%s: %s\r\n", kv[0], v)
			}
			continue
		}
		fmt.Fprintf(&b, "%s: %s\r\n", kv[0], kv[1])
	}
	names := make([]string, 0, len(extra))
	for name := range extra {
		if !slices.ContainsFunc(defaults, func(kv [2]string) bool {
			return http.CanonicalHeaderKey(kv[0]) == http.CanonicalHeaderKey(name)
		}) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		for _, v := range extra[name] {
			fmt.Fprintf(&b, "%s: %s\r\n", name, v)
		}
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// RawHandshake dials addr ("host:port"), sends the handshake of
// HandshakeRequest for path and reads the response head. It returns the
// connection, the reader to go on reading frames with and the response,
// whatever its status: the caller checks StatusCode (a rejection's body is
// left unread in the reader). When the status is 101 the
// Sec-WebSocket-Accept value is checked. The connection is closed when the
// test ends. Failing to dial, write or read ends the test.
func RawHandshake(t testing.TB, addr, path string, extraHeaders http.Header) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	return rawHandshake(t, addr, path, extraHeaders, nil)
}

// rawHandshake is RawHandshake, over TLS when tlsConf is not nil.
func rawHandshake(t testing.TB, addr, path string, extraHeaders http.Header, tlsConf *tls.Config) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	var nc net.Conn
	var err error
	if tlsConf != nil {
		nc, err = tls.DialWithDialer(&net.Dialer{Timeout: DefaultTimeout}, "tcp", addr, tlsConf)
	} else {
		nc, err = net.DialTimeout("tcp", addr, DefaultTimeout)
	}
	if err != nil {
		t.Fatalf("wstest: dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	key := NewKey()
	if vs := extraHeaders.Values("Sec-WebSocket-Key"); len(vs) == 1 {
		key = vs[0]
	}
	_ = nc.SetDeadline(time.Now().Add(DefaultTimeout))
	if _, err := nc.Write(HandshakeRequest(addr, path, extraHeaders, key)); err != nil {
		t.Fatalf("wstest: write handshake to %s: %v", addr, err)
	}
	br := bufio.NewReaderSize(nc, 64<<10)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		t.Fatalf("wstest: read handshake response from %s%s: %v", addr, path, err)
	}
	_ = nc.SetDeadline(time.Time{})
	if resp.StatusCode == http.StatusSwitchingProtocols {
		if got, want := resp.Header.Get("Sec-WebSocket-Accept"), AcceptKey(key); got != want {
			t.Fatalf("wstest: Sec-WebSocket-Accept is %q, want %q", got, want)
		}
	}
	return nc, br, resp
}

// ReadRawResponse reads one whole HTTP/1.1 response from r and returns its
// exact bytes: the head, then a body delimited by Content-Length, by
// chunked encoding (trailers included) or, lacking both, by the end of the
// connection. A 101 response has no body.
func ReadRawResponse(r *bufio.Reader) ([]byte, error) {
	var raw []byte
	var status, length = 0, -1
	chunked := false
	for first := true; ; first = false {
		line, err := r.ReadSlice('\n')
		raw = append(raw, line...)
		if err != nil {
			return raw, fmt.Errorf("read response head: %w", err)
		}
		s := strings.TrimRight(string(line), "\r\n")
		if first {
			f := strings.Fields(s)
			if len(f) < 2 {
				return raw, fmt.Errorf("malformed status line %q", s)
			}
			if status, err = strconv.Atoi(f[1]); err != nil {
				return raw, fmt.Errorf("malformed status line %q", s)
			}
			continue
		}
		if s == "" {
			break
		}
		name, value, _ := strings.Cut(s, ":")
		value = strings.TrimSpace(value)
		switch http.CanonicalHeaderKey(strings.TrimSpace(name)) {
		case "Content-Length":
			if length, err = strconv.Atoi(value); err != nil {
				return raw, fmt.Errorf("malformed Content-Length %q", value)
			}
		case "Transfer-Encoding":
			chunked = strings.EqualFold(value, "chunked")
		}
	}
	switch {
	case status == http.StatusSwitchingProtocols || status == http.StatusNoContent ||
		status == http.StatusNotModified || status/100 == 1:
		return raw, nil
	case chunked:
		return readChunked(r, raw)
	case length >= 0:
		body := make([]byte, length)
		n, err := io.ReadFull(r, body)
		raw = append(raw, body[:n]...)
		if err != nil {
			return raw, fmt.Errorf("read %d-byte body: %w", length, err)
		}
		return raw, nil
	}
	body, err := io.ReadAll(r)
	raw = append(raw, body...)
	if err != nil {
		return raw, fmt.Errorf("read body to end of connection: %w", err)
	}
	return raw, nil
}

func readChunked(r *bufio.Reader, raw []byte) ([]byte, error) {
	for {
		line, err := r.ReadSlice('\n')
		raw = append(raw, line...)
		if err != nil {
			return raw, fmt.Errorf("read chunk size: %w", err)
		}
		sizeText, _, _ := strings.Cut(strings.TrimSpace(string(line)), ";")
		size, err := strconv.ParseInt(sizeText, 16, 64)
		if err != nil {
			return raw, fmt.Errorf("malformed chunk size %q", sizeText)
		}
		if size == 0 {
			for { // trailers up to the empty line
				line, err := r.ReadSlice('\n')
				raw = append(raw, line...)
				if err != nil {
					return raw, fmt.Errorf("read trailer: %w", err)
				}
				if strings.TrimRight(string(line), "\r\n") == "" {
					return raw, nil
				}
			}
		}
		chunk := make([]byte, size+2)
		n, err := io.ReadFull(r, chunk)
		raw = append(raw, chunk[:n]...)
		if err != nil {
			return raw, fmt.Errorf("read %d-byte chunk: %w", size, err)
		}
	}
}

// RawResponse dials addr, sends the handshake request of HandshakeRequest
// (with a fixed key when extraHeaders has none, so that two calls send the
// same bytes) and returns the whole raw response, as ReadRawResponse reads
// it. For comparing rejections byte for byte; see StripHeader.
func RawResponse(t testing.TB, addr, path string, extraHeaders http.Header) []byte {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, DefaultTimeout)
	if err != nil {
		t.Fatalf("wstest: dial %s: %v", addr, err)
	}
	defer nc.Close()
	key := "dGhlIHNhbXBsZSBub25jZQ==" // the sample nonce of RFC 6455 section 1.3
	if vs := extraHeaders.Values("Sec-WebSocket-Key"); len(vs) == 1 {
		key = vs[0]
	}
	_ = nc.SetDeadline(time.Now().Add(DefaultTimeout))
	if _, err := nc.Write(HandshakeRequest(addr, path, extraHeaders, key)); err != nil {
		t.Fatalf("wstest: write handshake to %s: %v", addr, err)
	}
	raw, err := ReadRawResponse(bufio.NewReader(nc))
	if err != nil {
		t.Fatalf("wstest: raw response from %s%s: %v (read so far: %q)", addr, path, err, raw)
	}
	return raw
}

// StripHeader returns raw (an HTTP response or request) without the header
// lines named name, compared case-insensitively; the body is untouched.
func StripHeader(raw []byte, name string) []byte {
	end := bytes.Index(raw, []byte("\r\n\r\n"))
	if end < 0 {
		end = len(raw)
	}
	var out []byte
	head := raw[:end]
	for i, line := range bytes.Split(head, []byte("\r\n")) {
		n, _, ok := bytes.Cut(line, []byte(":"))
		if i > 0 && ok && strings.EqualFold(strings.TrimSpace(string(n)), name) {
			continue
		}
		if i > 0 {
			out = append(out, "\r\n"...)
		}
		out = append(out, line...)
	}
	return append(out, raw[end:]...)
}

// Conn is a raw client connection after a successful handshake: frames
// go out exactly as given, and what comes back is read with a deadline.
type Conn struct {
	NetConn net.Conn
	Reader  *bufio.Reader
	// Timeout bounds each ReadMessage and each write; DefaultTimeout if zero.
	Timeout time.Duration
	// MaxPayload is the largest server frame accepted; 64 MiB if zero.
	MaxPayload int64

	writeMu sync.Mutex // one writer at a time: the caller, or ReadMessage answering a ping

	unread *Message // a message put back by Unread, returned by the next ReadMessage
}

// Unread puts m back: the next ReadMessage returns it.
func (c *Conn) Unread(m Message) { c.unread = &m }

// Dial does the opening handshake with the ws:// URL u and fails the test
// unless the endpoint answers 101. The connection is closed when the test
// ends.
func Dial(t testing.TB, u string, extraHeaders http.Header) (*Conn, *http.Response) {
	t.Helper()
	return DialTLS(t, u, extraHeaders, nil)
}

// DialTLS is Dial for ws:// and wss:// URLs: a wss:// one is dialled with
// tlsConf (nil: the system's roots).
func DialTLS(t testing.TB, u string, extraHeaders http.Header, tlsConf *tls.Config) (*Conn, *http.Response) {
	t.Helper()
	addr, path, err := SplitURL(u)
	if err != nil {
		t.Fatalf("wstest: %v", err)
	}
	if strings.HasPrefix(u, "wss:") && tlsConf == nil {
		tlsConf = &tls.Config{}
	} else if !strings.HasPrefix(u, "wss:") {
		tlsConf = nil
	}
	nc, br, resp := rawHandshake(t, addr, path, extraHeaders, tlsConf)
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("wstest: handshake with %s answered %s, want 101", u, resp.Status)
	}
	return &Conn{NetConn: nc, Reader: br}, resp
}

// SplitURL returns the dial address (port defaulted) and the request
// target of a ws:// or wss:// URL.
func SplitURL(u string) (addr, path string, err error) {
	pu, err := url.Parse(u)
	if err != nil {
		return "", "", fmt.Errorf("parse URL %q: %w", u, err)
	}
	port := map[string]string{"ws": "80", "wss": "443"}[pu.Scheme]
	if port == "" {
		return "", "", fmt.Errorf("URL %q: only ws:// and wss:// are supported", u)
	}
	addr = pu.Host
	if pu.Port() == "" {
		addr = net.JoinHostPort(pu.Hostname(), port)
	}
	return addr, pu.RequestURI(), nil
}

func (c *Conn) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}

// WriteFrames sends frames (masked with fresh keys unless Unmasked) in one
// write.
func (c *Conn) WriteFrames(frames ...Frame) error {
	return c.WriteChopped(0, frames...)
}

// WriteChopped sends frames in writes of at most chunk bytes each (all at
// once if chunk <= 0), so that the endpoint sees frames split across reads.
func (c *Conn) WriteChopped(chunk int, frames ...Frame) error {
	b := EncodeFrames(frames...)
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = c.NetConn.SetWriteDeadline(time.Now().Add(c.timeout() + time.Duration(len(b)>>10)*time.Millisecond))
	if chunk <= 0 {
		chunk = len(b)
	}
	for len(b) > 0 {
		n := min(chunk, len(b))
		if _, err := c.NetConn.Write(b[:n]); err != nil {
			return fmt.Errorf("write frames: %w", err)
		}
		b = b[n:]
	}
	return nil
}

// ReadMessage returns the next data message (fragments joined), pong or
// close frame from the endpoint, within the timeout. Pings from the endpoint
// are answered with a pong and skipped. A frame that breaks RFC 6455 is an
// error naming what was wrong.
func (c *Conn) ReadMessage() (Message, error) {
	if m := c.unread; m != nil {
		c.unread = nil
		return *m, nil
	}
	_ = c.NetConn.SetReadDeadline(time.Now().Add(c.timeout()))
	maxPayload := c.MaxPayload
	if maxPayload <= 0 {
		maxPayload = 64 << 20
	}
	var msg *Message
	for {
		f, err := ReadFrame(c.Reader, maxPayload)
		if err != nil {
			return Message{}, err
		}
		switch f.Opcode {
		case OpPing, OpPong, OpClose:
			if !f.Fin || len(f.Payload) > maxControlPayload {
				return Message{}, fmt.Errorf("server sent an invalid %s frame (fin %v, %d bytes)", opName(f.Opcode), f.Fin, len(f.Payload))
			}
			if f.Opcode == OpPing {
				if err := c.WriteFrames(Frame{Fin: true, Opcode: OpPong, Payload: f.Payload}); err != nil {
					return Message{}, fmt.Errorf("answer the server's ping: %w", err)
				}
				continue
			}
			return Message{Opcode: f.Opcode, Payload: f.Payload}, nil
		case OpText, OpBinary:
			if msg != nil {
				return Message{}, fmt.Errorf("server sent a new %s frame inside a fragmented message", opName(f.Opcode))
			}
			msg = &Message{Opcode: f.Opcode, Payload: f.Payload}
		case OpContinuation:
			if msg == nil {
				return Message{}, errors.New("server sent a continuation frame outside a message")
			}
			msg.Payload = append(msg.Payload, f.Payload...)
		default:
			return Message{}, fmt.Errorf("server sent reserved opcode %d", f.Opcode)
		}
		if f.Fin {
			return *msg, nil
		}
	}
}

// Close closes the TCP connection without a close handshake.
func (c *Conn) Close() error { return c.NetConn.Close() }

// IsDrop reports whether err from a read means the endpoint ended the TCP
// connection (end of stream or reset) rather than a timeout or a bad frame.
func IsDrop(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// IsTimeout reports whether err is a read or write deadline passing.
func IsTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
