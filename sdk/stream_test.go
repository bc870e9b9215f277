package sdk_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/broker"
)

// A client streaming without pause gets every echo, in order.
func TestStreamEcho(t *testing.T) {
	tb := startBroker(t, broker.Limits{})
	l := tb.listen("/s/", nil)
	serve(t, l, echo)
	c := tb.dial("/s/")
	const n = 20000
	start := time.Now()
	go func() {
		for i := 1; i <= n; i++ {
			if err := c.Write(context.Background(), websocket.MessageText, []byte(strconv.Itoa(i))); err != nil {
				return
			}
		}
	}()
	for i := 1; i <= n; i++ {
		mustRead(t, c, websocket.MessageText, strconv.Itoa(i))
	}
	t.Logf("%d echoes in %v", n, time.Since(start))
}
