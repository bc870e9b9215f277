//go:build !linux

package broker

import "net"

// ServePolled is Linux's (epoll); elsewhere the server uses Serve, and
// this closes the connection.
func (b *Broker) ServePolled(d Decision, conn net.Conn, buffered []byte, deflate bool, release func()) {
	conn.Close()
	if release != nil {
		release()
	}
	b.Abandon(d)
}

func (b *Broker) stopPoller() {}
