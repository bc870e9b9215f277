package config

import (
	"fmt"
	"strings"
	"time"
)

// limit is one numeric setting of the file, by key path.
type limit struct {
	path string
	v    int64
}

// limits lists the file's numeric limits with their key paths.
func (c *File) limits() []limit {
	l := c.Limits
	d := func(x Duration) int64 { return int64(time.Duration(x)) }
	return []limit{
		{"handshake_timeout", d(c.HandshakeTimeout)},
		{"max_header_bytes", int64(c.MaxHeaderBytes)},
		{"max_conns_per_addr", int64(c.MaxConnsPerAddr)},
		{"max_handshakes", int64(c.MaxHandshakes)},
		{"fd_reserve", int64(c.FDReserve)},
		{"limits.max_message", int64(l.MaxMessage)},
		{"limits.accept_timeout", d(l.AcceptTimeout)},
		{"limits.handover_timeout", d(l.HandoverTimeout)},
		{"limits.max_pending_connects", int64(l.MaxPendingConnects)},
		{"limits.window", int64(l.Window)},
		{"limits.channel_buffer", int64(l.ChannelBuffer)},
		{"limits.total_buffer", l.TotalBuffer},
		{"limits.link_buffer", int64(l.LinkBuffer)},
		{"limits.ping_interval", d(l.PingInterval)},
		{"limits.close_timeout", d(l.CloseTimeout)},
		{"limits.refusal_floor", d(l.RefusalFloor)},
		{"limits.refusal_jitter", d(l.RefusalJitter)},
	}
}

// validateLimits refuses negative limits (max_conns_per_addr's -1, "no
// limit", aside): a default never silently replaces them.
func (c *File) validateLimits() []error {
	var errs []error
	if err := CheckAdminToken(c.AdminToken); err != nil {
		errs = append(errs, fmt.Errorf("admin_token: %w", err))
	}
	for _, l := range c.limits() {
		if l.v < 0 && !(l.path == "max_conns_per_addr" && l.v == -1) {
			errs = append(errs, fmt.Errorf("%s: must not be negative", l.path))
		}
	}
	return errs
}

// zeroLimits records a problem for each limit written in the file as 0 (or
// "0s"): leaving the key out gives the default, and 0 would silently mean
// it too.
func (w *walker) zeroLimits(c *File) {
	for _, l := range c.limits() {
		if off, written := w.pos[l.path]; written && l.v == 0 {
			w.add(l.path, off, "must be positive; leave the key out for the default")
		}
	}
}

// MinAdminTokenLen is the shortest admin token a broker accepts.
const MinAdminTokenLen = 32

// CheckAdminToken refuses a guessable admin token: shorter than
// MinAdminTokenLen, or one repeated character.
// "" (no admin token) is allowed: the admin API is then closed, except to
// loopback clients in dev mode.
func CheckAdminToken(tok string) error {
	if tok == "" {
		return nil
	}
	hint := " (make one with: head -c 32 /dev/urandom | base64)"
	if len(tok) < MinAdminTokenLen {
		return fmt.Errorf("the admin token is %d characters; it must be at least %d random characters%s", len(tok), MinAdminTokenLen, hint)
	}
	if strings.Count(tok, tok[:1]) == len(tok) {
		return fmt.Errorf("the admin token is guessable%s", hint)
	}
	return nil
}
