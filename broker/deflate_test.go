package broker_test

import (
	"bytes"
	"compress/flate"
	"net/http"
	"testing"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/internal/testkit/streamtest"
	"github.com/switchboard-dev/switchboard/internal/testkit/wstest"
)

// deflated compresses p as one permessage-deflate message: a sync flush,
// without its last four bytes (RFC 7692 7.2.1).
func deflated(t *testing.T, p []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestSpeed)
	if _, err := w.Write(p); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte{0, 0, 0xff, 0xff})
}

// TestDeflateOnTheLoops: a plain client that negotiates permessage-deflate
// runs on the epoll loops; its compressed messages are inflated (whole or
// fragmented) and the echo comes back uncompressed; a message that inflates
// past max_message is refused with 1009 however small it is compressed,
// and a compression bit on a continuation is a protocol error.
func TestDeflateOnTheLoops(t *testing.T) {
	e := newEnv(t, broker.Limits{MaxMessage: 64 << 10})
	streamtest.Echo(t, e.ws+"/z/", "")
	offer := http.Header{"Sec-WebSocket-Extensions": {"permessage-deflate; client_max_window_bits"}}
	dial := func() *wstest.Conn {
		c, resp := wstest.Dial(t, e.ws+"/z/x", offer)
		if got := resp.Header.Get("Sec-WebSocket-Extensions"); got == "" {
			t.Fatal("permessage-deflate was not negotiated")
		}
		return c
	}
	c := dial()
	text := bytes.Repeat([]byte("κόσμε hello "), 1000)
	z := deflated(t, text)
	for _, frames := range [][]wstest.Frame{
		{{Fin: true, RSV: wstest.RSV1, Opcode: wstest.OpText, Payload: z}},
		{{RSV: wstest.RSV1, Opcode: wstest.OpText, Payload: z[:len(z)/2]}, {Fin: true, Opcode: wstest.OpContinuation, Payload: z[len(z)/2:]}},
		{{Fin: true, Opcode: wstest.OpText, Payload: []byte("plain")}},
	} {
		if err := c.WriteFrames(frames...); err != nil {
			t.Fatal(err)
		}
		m, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		want := text
		if len(frames) == 1 && frames[0].RSV == 0 {
			want = []byte("plain")
		}
		if m.Opcode != wstest.OpText || !bytes.Equal(m.Payload, want) {
			t.Fatalf("echo %v, want %d bytes of text", m, len(want))
		}
	}

	bomb := dial()
	if err := bomb.WriteFrames(wstest.Frame{Fin: true, RSV: wstest.RSV1, Opcode: wstest.OpBinary, Payload: deflated(t, make([]byte, 4<<20))}); err != nil {
		t.Fatal(err)
	}
	if code, reason := readClose(t, bomb); code != 1009 {
		t.Fatalf("a message inflating past the limit got %d %q, want 1009", code, reason)
	}

	bad := dial()
	if err := bad.WriteFrames(wstest.Frame{RSV: wstest.RSV1, Opcode: wstest.OpText, Payload: z[:10]},
		wstest.Frame{Fin: true, RSV: wstest.RSV1, Opcode: wstest.OpContinuation, Payload: z[10:]}); err != nil {
		t.Fatal(err)
	}
	if code, reason := readClose(t, bad); code != 1002 {
		t.Fatalf("a compression bit on a continuation got %d %q, want 1002", code, reason)
	}
}
