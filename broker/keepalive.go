package broker

import (
	"context"
	"sync"
	"time"
)

// keepalive pings every client once per PingInterval, from a small pool of
// workers, so that dead peers and idle NAT mappings are found without a
// goroutine per connection. A client whose reader is held back by
// backpressure is not pinged (its pong could not be read in time).
func (b *Broker) keepalive() {
	interval := b.cfg.Limits.PingInterval
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-b.shutdown:
			return
		case <-t.C:
		}
		b.pingAll(interval)
	}
}

const pingWorkers = 32

func (b *Broker) pingAll(timeout time.Duration) {
	b.mu.RLock()
	regs := b.registrationsLocked()
	b.mu.RUnlock()

	work := make(chan *Channel)
	var wg sync.WaitGroup
	for i := 0; i < pingWorkers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ch := range work {
				ch.ping(b.ctx, timeout)
			}
		}()
	}
	defer func() {
		close(work)
		wg.Wait()
	}()
	for _, reg := range regs {
		stop := false
		reg.each(func(ch *Channel) {
			if stop {
				return
			}
			select {
			case work <- ch:
			case <-b.shutdown:
				stop = true
			}
		})
		if stop {
			return
		}
	}
}

func (ch *Channel) ping(ctx context.Context, timeout time.Duration) {
	ch.mu.Lock()
	conn, skip := ch.conn, ch.blocked || ch.clientGone || ch.serviceClosed
	ch.mu.Unlock()
	if conn == nil || skip {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := conn.Ping(pctx); err != nil {
		ch.mu.Lock()
		blocked := ch.blocked
		ch.mu.Unlock()
		if !blocked {
			ch.b.log.Debug("client keepalive failed", "channel", ch.id, "err", err)
			conn.CloseNow() // the reader reports 1006 to the service
		}
	}
}
