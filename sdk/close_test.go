package sdk_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/internal/testkit/wstest"
	"github.com/switchboard-dev/switchboard/sdk"
)

// TestHoldCloseSendsLateReplies: a channel held open with HoldClose goes on
// writing after the client's close (Read returned its CloseError): the
// client, which closed right after its messages, still reads the late
// replies, then the close that the service's Close answers with. After
// that Close, Write fails.
func TestHoldCloseSendsLateReplies(t *testing.T) {
	tb := startBroker(t, broker.Limits{})
	l := tb.listen("/hold/", nil)
	afterAnswer := make(chan error, 1)
	serve(t, l, func(r *sdk.Request) error {
		ctx := context.Background()
		ch, err := r.Accept(ctx, "", nil)
		if err != nil {
			return err
		}
		ch.HoldClose()
		var got [][]byte
		for {
			_, p, err := ch.Read(ctx)
			if err != nil {
				if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
					return err
				}
				break
			}
			got = append(got, p)
		}
		for _, p := range got { // only now, after the client's close
			if err := ch.Write(ctx, websocket.MessageText, append([]byte("late "), p...)); err != nil {
				return err
			}
		}
		if err := ch.Close(4000, "done"); err != nil {
			return err
		}
		afterAnswer <- ch.Write(ctx, websocket.MessageText, []byte("too late"))
		return nil
	})

	// A raw client: coder/websocket's Close would discard what arrives
	// during its closing handshake, the very messages this test is about.
	c, _ := wstest.Dial(t, tb.url+"/hold/x", nil)
	text := func(s string) wstest.Frame { return wstest.Frame{Fin: true, Opcode: wstest.OpText, Payload: []byte(s)} }
	if err := c.WriteFrames(text("a"), text("b"), wstest.Frame{Fin: true, Opcode: wstest.OpClose, Payload: wstest.ClosePayload(1000, "")}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"late a", "late b"} {
		if m, err := c.ReadMessage(); err != nil || m.Opcode != wstest.OpText || string(m.Payload) != want {
			t.Fatalf("client read %v %q (%v), want %q", m.Opcode, m.Payload, err, want)
		}
	}
	m, err := c.ReadMessage()
	if err != nil || m.Opcode != wstest.OpClose || !bytes.Equal(m.Payload, wstest.ClosePayload(4000, "done")) {
		t.Fatalf("client read %v %q (%v), want the service's close 4000 done", m.Opcode, m.Payload, err)
	}
	if err := <-afterAnswer; !errors.Is(err, sdk.ErrChannelClosed) {
		t.Fatalf("Write after Close: %v, want ErrChannelClosed", err)
	}
}
