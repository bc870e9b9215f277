//go:build !linux

// Package rawconn reads and writes TCP connections with raw system calls
// inside Go's poller (Linux; elsewhere it wraps nothing), for the broker's
// accepted connections and the SDK's service link.
package rawconn

import "net"

// IO is Linux's.
type IO struct{}

// New returns nil outside Linux.
func New(net.Conn) *IO { return nil }

// Read is not reached: New returns nil.
func (*IO) Read([]byte) (int, error) { panic("rawconn: no raw I/O outside Linux") }

// Write is not reached: New returns nil.
func (*IO) Write([]byte) (int, error) { panic("rawconn: no raw I/O outside Linux") }

// Wrap returns c.
func Wrap(c net.Conn) net.Conn { return c }
