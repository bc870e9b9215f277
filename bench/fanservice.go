package bench

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/sdk"
)

// fanScope is the path of the harness's own fan-out service; its clients
// connect to fanScope + "c".
const fanScope = "/fan/"

// fanService is the Switchboard target's fan-out service: an SDK listener
// in the harness process that accepts every client of its scope, reads
// nothing, and pushes one message to all of them on demand. No CLI command
// pushes on a trigger, so the harness attaches its own service.
type fanService struct {
	l      *sdk.Listener
	log    *slog.Logger
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startFanService attaches the fan-out service to the broker at addr.
func startFanService(ctx context.Context, log *slog.Logger, addr string) (*fanService, error) {
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	scope := "ws://" + addr + fanScope
	l, err := sdk.Listen(actx, scope, &sdk.ListenOptions{Logger: log.With("service", "fan")})
	if err != nil {
		return nil, fmt.Errorf("attach fan-out service %s: %w", scope, err)
	}
	f := &fanService{l: l, log: log}
	var rctx context.Context
	rctx, f.cancel = context.WithCancel(context.Background())
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		f.acceptLoop(rctx)
	}()
	return f, nil
}

// acceptLoop accepts every connect request until the link or ctx ends.
func (f *fanService) acceptLoop(ctx context.Context) {
	for {
		req, err := f.l.Accept(ctx)
		if err != nil {
			return
		}
		if _, err := req.Accept(ctx, "", nil); err != nil {
			f.log.Debug("fan-out service: accept", "channel", req.Channel, "err", err)
		}
	}
}

// push sends one size-byte binary message to every client of the scope.
func (f *fanService) push(ctx context.Context, size int) error {
	if err := f.l.Push(ctx, "", websocket.MessageBinary, make([]byte, size)); err != nil {
		return fmt.Errorf("push to the fan-out service's clients: %w", err)
	}
	return nil
}

// alive returns an error when the service's link has ended.
func (f *fanService) alive() error {
	select {
	case <-f.l.Done():
		return fmt.Errorf("fan-out service link ended: %w", f.l.Err())
	default:
		return nil
	}
}

// close detaches the service and waits for its accept loop.
func (f *fanService) close() {
	if f == nil {
		return
	}
	f.cancel()
	if err := f.l.Close(); err != nil {
		f.log.Debug("fan-out service: close", "err", err)
	}
	f.wg.Wait()
}
