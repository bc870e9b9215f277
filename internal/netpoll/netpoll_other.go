//go:build !linux

package netpoll

import "errors"

// Poller is Linux's (epoll) only.
type Poller struct{}

// New fails outside Linux.
func New(n int) (*Poller, error) { return nil, errors.New("netpoll: epoll is Linux's") }

// Close does nothing.
func (p *Poller) Close() {}
