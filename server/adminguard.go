package server

import (
	"crypto/subtle"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard/scope"
)

// What keeps the admin API, the chooser and /metrics to their owner:
//
//   - adminGuard: a browser page of another site never reaches them. An
//     Origin other than the broker's own (or Sec-Fetch-Site: cross-site or
//     same-site) gets 403, and a POST whose body is not JSON gets 415: a
//     cross-site form or text/plain POST needs no CORS preflight, a JSON
//     one does, and the broker answers none. So CSRF fails in every mode.
//   - admin: the admin credential; or, in Dev mode only, a loopback client
//     that also names a loopback host (localhost, 127.0.0.1, [::1]), so a
//     page that rebinds its own DNS name to 127.0.0.1 gets 401 (DNS
//     rebinding).
//   - guesses: each address (IPv6: its /64) may fail the admin token
//     guessFailures times, then one more each guessRefill; beyond that it
//     gets 429 without the token being checked. Failures are logged once
//     per address and window, then in aggregate.

// adminGuard wraps an admin or chooser handler with the cross-site checks.
func (s *Server) adminGuard(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !sameSite(r) {
			http.Error(w, "cross-origin request refused", http.StatusForbidden)
			return
		}
		if r.Method == http.MethodPost && r.Header.Get("Content-Type") != "" {
			if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
				http.Error(w, "the admin API takes application/json", http.StatusUnsupportedMediaType)
				return
			}
		}
		h(w, r)
	}
}

// sameSite reports whether r may come from the broker's own pages: no
// Origin (not a browser, or a same-origin navigation) or the broker's own.
func sameSite(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}

// admin checks the admin credential; failures get 401 with no detail, and
// an address that failed too often gets 429.
func (s *Server) admin(w http.ResponseWriter, r *http.Request) bool {
	if s.devBypass(r) {
		return true
	}
	got, presented := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if presented {
		if !s.guesses.allow(w, r) {
			return false
		}
		if tok := s.cfg.AdminToken; tok != "" && subtle.ConstantTimeCompare([]byte(got), []byte(tok)) == 1 {
			return true
		}
		s.guesses.failed(r, "admin API")
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="switchboard"`)
	http.Error(w, "Unauthorized", http.StatusUnauthorized)
	return false
}

// devBypass reports whether r may use the admin API without a credential:
// Dev mode, a loopback client, and a loopback host name.
func (s *Server) devBypass(r *http.Request) bool {
	return s.cfg.Dev && isLoopback(r) && loopbackHost(r.Host)
}

func loopbackHost(host string) bool {
	h, err := scope.CanonicalHost(host)
	if err != nil {
		return false
	}
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.Unmap().IsLoopback()
}

// Failed admin-token guesses allowed per address.
const (
	guessFailures  = 10               // at once
	guessRefill    = 6 * time.Second  // one more after each
	guessWindow    = 10 * time.Second // log aggregation
	guessMaxAddrs  = 4096             // addresses tracked; beyond, new ones wait
	guessRetryHint = "60"
)

// guessLimiter counts failed admin-token guesses per address. Memory is
// bounded by guessMaxAddrs entries.
type guessLimiter struct {
	log interface {
		Warn(msg string, args ...any)
	}

	mu      sync.Mutex
	debt    map[netip.Prefix]time.Time // when the address's failures are forgiven; guarded by mu
	logged  map[netip.Prefix]bool      // addresses logged in this window; guarded by mu
	count   int                        // failures not logged one by one; guarded by mu
	refused int                        // guesses refused with 429 in this window; guarded by mu
	timer   *time.Timer                // ends the window; guarded by mu
}

func newGuessLimiter(log interface{ Warn(string, ...any) }) *guessLimiter {
	return &guessLimiter{log: log, debt: map[netip.Prefix]time.Time{}, logged: map[netip.Prefix]bool{}}
}

func guessKey(r *http.Request) netip.Prefix {
	a := remoteAddr(r).Addr()
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64)
	return p
}

// allow reports whether r's address may try the token now; if not, it
// answers 429.
func (g *guessLimiter) allow(w http.ResponseWriter, r *http.Request) bool {
	k, now := guessKey(r), time.Now()
	g.mu.Lock()
	until, known := g.debt[k]
	full := !known && len(g.debt) >= guessMaxAddrs && !g.pruneLocked(now)
	limited := full || (known && until.Sub(now) > (guessFailures-1)*guessRefill)
	if limited {
		g.refused++
		g.windowLocked()
	}
	g.mu.Unlock()
	if limited {
		w.Header().Set("Retry-After", guessRetryHint)
		http.Error(w, "too many failed attempts; try again later", http.StatusTooManyRequests)
	}
	return !limited
}

// failed records a wrong token from r's address.
func (g *guessLimiter) failed(r *http.Request, what string) {
	k, now := guessKey(r), time.Now()
	g.mu.Lock()
	until := g.debt[k]
	if until.Before(now) {
		until = now
	}
	g.debt[k] = until.Add(guessRefill)
	first := !g.logged[k]
	if first {
		g.logged[k] = true
	} else {
		g.count++
	}
	g.windowLocked()
	g.mu.Unlock()
	if first {
		g.log.Warn("admin token refused", "where", what, "remote", r.RemoteAddr,
			"note", "further failures are summarised every 10s")
	}
}

// pruneLocked forgets forgiven addresses and reports whether room was made.
func (g *guessLimiter) pruneLocked(now time.Time) bool {
	for k, until := range g.debt {
		if until.Before(now) {
			delete(g.debt, k)
		}
	}
	return len(g.debt) < guessMaxAddrs
}

func (g *guessLimiter) windowLocked() {
	if g.timer == nil {
		g.timer = time.AfterFunc(guessWindow, g.flush)
	}
}

// flush logs the window's summary.
func (g *guessLimiter) flush() {
	g.mu.Lock()
	count, refused, addrs := g.count, g.refused, len(g.logged)
	g.count, g.refused, g.logged, g.timer = 0, 0, map[netip.Prefix]bool{}, nil
	g.mu.Unlock()
	if count > 0 || refused > 0 {
		g.log.Warn("admin token failures", "failed", count, "refused_over_limit", refused,
			"addresses", addrs, "in", guessWindow)
	}
}

// stop ends the log window (Server.Close).
func (g *guessLimiter) stop() {
	g.mu.Lock()
	t := g.timer
	g.mu.Unlock()
	if t != nil && t.Stop() {
		g.flush()
	}
}
