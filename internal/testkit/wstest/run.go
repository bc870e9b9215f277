package wstest

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"
)

// Options describe the endpoint under test. The endpoint is an echo: it
// sends every text and binary message back as one message of the same type.
type Options struct {
	// MaxMessageSize is the endpoint's message limit in bytes: a message of
	// this size is echoed, one byte more is closed with 1009. Required, and
	// at least MinMessageSize.
	MaxMessageSize int
	// TLS configures the client for a wss:// URL (its roots above all).
	TLS *tls.Config
	// Header is added to every handshake (an Origin, a credential, a
	// subprotocol offer).
	Header http.Header
	// Timeout bounds each read and write; DefaultTimeout if zero.
	Timeout time.Duration
	// Skip names cases not to run, each with the reason the test log shows.
	// A name that matches no case fails the run, so that a skip cannot
	// outlive its case unnoticed.
	Skip map[string]string
	// Relay says the endpoint relays messages to an echo service of its
	// own, asynchronously (the Switchboard broker): replies due before the
	// connection ends (the client closed, or broke a rule) may be cut short
	// by the close, since the echo can arrive after it. Replies that do
	// arrive must still be right and in order; cases that stay open must
	// get all of them.
	Relay bool
}

// MinMessageSize is the smallest message limit the cases fit: some echo
// messages of up to this size.
const MinMessageSize = 1024

// End says how a case must end once its replies have arrived.
type End int

const (
	// EndOpen: the connection is still open and quiet. The kit then sends
	// close 1000 and expects a close frame back and the end of TCP.
	EndOpen End = iota
	// EndClosed: the case sent a close frame. The endpoint must answer with
	// a close frame (code in Want.Codes, or any valid one if Codes is nil)
	// and end the TCP connection; nothing else may come first.
	EndClosed
	// EndFail: the endpoint must fail the connection: a close frame with a
	// code in Want.Codes, or, if Want.Drop, the TCP connection ended
	// without one. Any other frame, an echo above all, fails the case.
	EndFail
)

func (e End) String() string {
	switch e {
	case EndOpen:
		return "open"
	case EndClosed:
		return "closed"
	case EndFail:
		return "fail"
	}
	return fmt.Sprintf("End(%d)", int(e))
}

// Want is the expected outcome of a case.
type Want struct {
	// Replies are the messages that must come back first, in this order:
	// echoes (whole messages) and pongs. Pings from the endpoint are
	// answered and skipped.
	Replies []Message
	End     End
	// Codes are the close codes allowed (EndClosed: nil means any valid
	// code; EndFail: required).
	Codes []int
	// Drop allows an EndFail case to end with the TCP connection dropped
	// instead of a close frame.
	Drop bool
}

// Case is one conformance check on a fresh connection.
type Case struct {
	// Name is "category/what", unique, and the subtest name.
	Name string
	// Send are the frames written after the handshake, all at once from a
	// goroutine of their own while the replies are read.
	Send []Frame
	// Chop, when positive, writes the frames in pieces of Chop bytes.
	Chop int
	Want Want
}

// Run runs every case of Cases(opts) against the echo endpoint at the ws://
// URL url, each as a subtest on its own connection.
func Run(t *testing.T, url string, opts Options) {
	t.Helper()
	if opts.MaxMessageSize < MinMessageSize {
		t.Fatalf("wstest: Options.MaxMessageSize must be at least %d (got %d)", MinMessageSize, opts.MaxMessageSize)
	}
	cases := Cases(opts)
	for name := range opts.Skip {
		if !slices.ContainsFunc(cases, func(c Case) bool { return c.Name == name }) {
			t.Errorf("wstest: Options.Skip names %q, which is no case", name)
		}
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			if reason, ok := opts.Skip[c.Name]; ok {
				t.Skip(reason)
			}
			if err := RunCase(t, url, opts, c); err != nil {
				t.Fatalf("%s: %v", c.Name, err)
			}
		})
	}
}

// RunCase runs one case on a new connection to url and returns what did
// not go as c.Want says. A failed handshake ends the test.
func RunCase(t testing.TB, url string, opts Options, c Case) error {
	t.Helper()
	conn, _ := DialTLS(t, url, opts.Header, opts.TLS)
	conn.Timeout = opts.Timeout
	conn.MaxPayload = int64(opts.MaxMessageSize) + 1<<20

	writeDone := make(chan error, 1)
	go func() { writeDone <- conn.WriteChopped(c.Chop, c.Send...) }()
	writeErr := func() error { // waits for the writer; safe to call twice
		err, ok := <-writeDone
		if ok {
			close(writeDone)
		}
		return err
	}
	defer func() {
		_ = conn.Close() // unblocks a writer stuck on an endpoint that stopped reading
		_ = writeErr()
	}()

	for i, want := range c.Want.Replies {
		got, err := conn.ReadMessage()
		if opts.Relay && c.Want.End != EndOpen && (got.Opcode == OpClose || err != nil && IsDrop(err)) {
			if err == nil {
				conn.Unread(got)
			} else if c.Want.End == EndFail && c.Want.Drop {
				return nil
			}
			break // the close overtook the rest of the echoes
		}
		if err != nil {
			return fmt.Errorf("reply %d of %d: want %v, got error: %w", i+1, len(c.Want.Replies), want, err)
		}
		if got.Opcode != want.Opcode || !bytes.Equal(got.Payload, want.Payload) {
			return fmt.Errorf("reply %d of %d: want %v, got %v", i+1, len(c.Want.Replies), want, got)
		}
	}

	switch c.Want.End {
	case EndOpen:
		if err := writeErr(); err != nil {
			return err
		}
		if err := conn.WriteFrames(Frame{Fin: true, Opcode: OpClose, Payload: ClosePayload(1000, "")}); err != nil {
			return fmt.Errorf("send the closing close frame: %w", err)
		}
		if err := expectClose(conn, nil); err != nil {
			return err
		}
	case EndClosed:
		if err := writeErr(); err != nil {
			return err
		}
		if err := expectClose(conn, c.Want.Codes); err != nil {
			return err
		}
	case EndFail:
		if err := expectFail(conn, c.Want); err != nil {
			return err
		}
	default:
		return fmt.Errorf("case has unknown end %v", c.Want.End)
	}
	return expectEnd(conn)
}

// expectClose reads the endpoint's close frame; codes nil means any valid
// code (or none).
func expectClose(conn *Conn, codes []int) error {
	got, err := conn.ReadMessage()
	if err != nil {
		return fmt.Errorf("want a close frame back, got error: %w", err)
	}
	if got.Opcode != OpClose {
		return fmt.Errorf("want a close frame back, got %v", got)
	}
	code, reason, err := ParseClose(got.Payload)
	if err != nil {
		return fmt.Errorf("the endpoint's close frame is invalid: %w", err)
	}
	if codes != nil && !slices.Contains(codes, code) {
		return fmt.Errorf("the endpoint closed with %d %q, want a code in %v", code, reason, codes)
	}
	return nil
}

// expectFail reads the endpoint's answer to a protocol violation and, on a
// close frame, answers it as a client must.
func expectFail(conn *Conn, want Want) error {
	got, err := conn.ReadMessage()
	switch {
	case err != nil && IsDrop(err) && want.Drop:
		return nil
	case err != nil && IsDrop(err):
		return fmt.Errorf("the endpoint dropped the connection (%v), want a close frame with a code in %v", err, want.Codes)
	case err != nil:
		return fmt.Errorf("want a close frame with a code in %v, got error: %w", want.Codes, err)
	case got.Opcode != OpClose:
		return fmt.Errorf("want a close frame with a code in %v, got %v", want.Codes, got)
	}
	code, reason, err := ParseClose(got.Payload)
	if err != nil {
		return fmt.Errorf("the endpoint's close frame is invalid: %w", err)
	}
	if !slices.Contains(want.Codes, code) {
		return fmt.Errorf("the endpoint closed with %d %q, want a code in %v", code, reason, want.Codes)
	}
	// Answer the close; the endpoint may be gone already, which is fine.
	_ = conn.WriteFrames(Frame{Fin: true, Opcode: OpClose, Payload: got.Payload[:2]})
	return nil
}

// expectEnd waits for the endpoint to end the TCP connection, with nothing
// more sent.
func expectEnd(conn *Conn) error {
	_ = conn.NetConn.SetReadDeadline(time.Now().Add(conn.timeout()))
	var b [512]byte
	n, err := conn.Reader.Read(b[:])
	switch {
	case n > 0:
		return fmt.Errorf("the endpoint sent %d more bytes after the close handshake: %q", n, b[:n])
	case IsDrop(err):
		return nil
	case IsTimeout(err):
		return fmt.Errorf("the endpoint did not end the TCP connection within %v of the close handshake", conn.timeout())
	}
	return fmt.Errorf("wait for the end of the connection: %w", err)
}
