package broker

import (
	"time"
)

// keepalive pings every client once per PingInterval without waiting for
// the pongs: each transport cuts a client whose pong does not come within
// the interval, so a silent client is cut within two intervals however
// many there are. A client whose reading is held back by backpressure is
// not pinged (its pong could not be read in time).
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

func (b *Broker) pingAll(timeout time.Duration) {
	b.mu.RLock()
	regs := b.registrationsLocked()
	b.mu.RUnlock()
	for _, reg := range regs {
		reg.each(func(ch *Channel) { ch.ping(timeout) })
		select {
		case <-b.shutdown:
			return
		default:
		}
	}
}

// ping asks the client's transport for a ping. It runs without ch.mu held:
// a transport may start a goroutine for it, which takes the broker's lock.
func (ch *Channel) ping(timeout time.Duration) {
	ch.mu.Lock()
	conn, skip := ch.conn, ch.blocked || ch.clientGone || ch.serviceClosed
	ch.mu.Unlock()
	if conn != nil && !skip {
		conn.ping(timeout)
	}
}
