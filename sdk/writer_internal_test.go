package sdk

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/protocol"
)

// TestWriterCutsAtLinkLimit queues, in one step, far more frames than the
// largest link message and checks that the writer sends them as messages
// within protocol.MaxLinkMessage, in order. The broker end is a plain
// WebSocket server whose read limit is the contract's.
func TestWriterCutsAtLinkLimit(t *testing.T) {
	const maxMessage = 1 << 20
	limit := protocol.MaxLinkMessage(maxMessage)
	got := make(chan []byte, 64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{protocol.Subprotocol}})
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(int64(limit))
		ctx := r.Context()
		if _, _, err := c.Read(ctx); err != nil { // Hello
			return
		}
		wel := protocol.Welcome{Version: 1, Instance: 1, Scope: "/x/", PublicURL: "ws://fake/x/", Active: true, Window: 1 << 20, MaxMessage: maxMessage}
		if err := c.Write(ctx, websocket.MessageBinary, wel.Append(nil)); err != nil {
			return
		}
		defer close(got)
		for {
			_, p, err := c.Read(ctx)
			if err != nil {
				got <- []byte("read: " + err.Error())
				return
			}
			got <- p
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := Listen(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/x/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	// 5 × 250 KB and 3 × 900 KB, queued under one lock so that the writer
	// finds them all at once.
	var want [][]byte
	l.outMu.Lock()
	for i := 0; i < 8; i++ {
		size := 250 << 10
		if i >= 5 {
			size = 900 << 10
		}
		p := bytes.Repeat([]byte{byte('a' + i)}, size)
		want = append(want, p)
		l.out = protocol.AppendData(l.out, uint64(i+1), 0, protocol.FlagBinary, p)
	}
	queued := len(l.out)
	l.outMu.Unlock()
	signal(l.wake)
	if queued <= 2*limit {
		t.Fatalf("queued only %d bytes", queued)
	}

	for n := 0; n < len(want); {
		var msg []byte
		select {
		case msg = <-got:
		case <-ctx.Done():
			t.Fatalf("after %d of %d frames: %v", n, len(want), ctx.Err())
		}
		if bytes.HasPrefix(msg, []byte("read: ")) {
			t.Fatalf("after %d of %d frames the broker end failed: %s", n, len(want), msg)
		}
		if len(msg) > limit {
			t.Fatalf("link message of %d bytes, limit %d", len(msg), limit)
		}
		for len(msg) > 0 {
			typ, body, rest, err := protocol.Next(msg)
			if err != nil {
				t.Fatal(err)
			}
			msg = rest
			var d protocol.Data
			if typ != protocol.TypeData || d.Decode(body) != nil || !bytes.Equal(d.Payload, want[n]) {
				t.Fatalf("frame %d: %s for channel %d, not the message queued", n, typ, d.Channel)
			}
			n++
		}
	}
}
