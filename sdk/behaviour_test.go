package sdk_test

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/internal/testkit/behaviour"
	"github.com/switchboard-dev/switchboard/sdk"
)

// TestBehaviour runs the shared behaviour suite (internal/testkit/behaviour,
// scenarios.json) against the Go SDK's echo service: sdk.Attach, which
// keeps it attached, with the README's Accept loop. web's TestBehaviour runs
// the same scenarios against the JS library.
func TestBehaviour(t *testing.T) {
	behaviour.Run(t, func(t *testing.T, scopeURL string) func() {
		ctx, cancel := context.WithCancel(context.Background())
		// Attach returns once attached; the harness answers Hello in the
		// scenario's first step, so attach in the background.
		done := make(chan struct{})
		go func() {
			defer close(done)
			svc, err := sdk.Attach(ctx, scopeURL, &sdk.AttachOptions{MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
			if err != nil {
				if ctx.Err() == nil {
					t.Errorf("attach: %v", err)
				}
				return
			}
			defer svc.Close()
			for {
				r, err := svc.Accept(ctx)
				if err != nil {
					return
				}
				go echo(r)
			}
		}()
		return func() { cancel(); <-done }
	})
}
