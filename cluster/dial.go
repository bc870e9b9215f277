package cluster

import (
	"net"

	"github.com/nats-io/nats.go"

	"github.com/switchboard-dev/switchboard/internal/rawconn"
)

// natsDialer dials NATS servers as nats.go's default dialer does (its
// connect timeout, the system's keepalive), with the TCP connection
// reading and writing through internal/rawconn: nats.go's reader and
// flusher then make their system calls inside Go's poller instead of
// entering the scheduler's system-call state, which woke the runtime's
// monitor every 20 µs and took the P from the thread on each write (a
// tenth of a node's CPU per cross-node message, as it was for the service
// link). TLS, when configured, runs over it as over a plain connection.
type natsDialer struct{ d net.Dialer }

func newNATSDialer() natsDialer {
	return natsDialer{d: net.Dialer{Timeout: nats.GetDefaultOptions().Timeout}}
}

// Dial implements nats.CustomDialer.
func (n natsDialer) Dial(network, address string) (net.Conn, error) {
	c, err := n.d.Dial(network, address)
	if err != nil {
		return nil, err
	}
	return rawconn.Wrap(c), nil
}
