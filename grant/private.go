package grant

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard/broker"
)

// Private is the operator's policy for private scopes asked for without a
// credential: new WebSocketListener() or new BrowserSocket(f) in a page
// that holds neither credential nor grant. Such a page gets a fresh,
// unguessable scope "/~TOKEN/"; whoever has its URL may connect.
//
// The Origin header is what a browser sends and cannot fake; a non-browser
// program can send any, so Origins keeps other sites' pages out, while
// PerAddress is what bounds any one host.
type Private struct {
	// Origins that may create private scopes; "*" admits any, a link with
	// no Origin header included. Empty admits none.
	Origins []string
	// PerAddress bounds live private scopes per client IP address.
	PerAddress int
	// PerOrigin bounds live private scopes per page origin.
	PerOrigin int
	// Lifetime ends each private scope's link after this long (its page
	// may ask for a new one).
	Lifetime time.Duration

	mu       sync.Mutex
	byAddr   map[netip.Addr]int // guarded by mu
	byOrigin map[string]int     // guarded by mu
}

// Defaults of Private's bounds.
const (
	DefaultPerAddress      = 8
	DefaultPerOrigin       = 1000
	DefaultPrivateLifetime = time.Hour
)

// NewPrivate returns the policy with zero bounds set to their defaults.
func NewPrivate(origins []string, perAddress, perOrigin int, lifetime time.Duration) *Private {
	if perAddress <= 0 {
		perAddress = DefaultPerAddress
	}
	if perOrigin <= 0 {
		perOrigin = DefaultPerOrigin
	}
	if lifetime <= 0 {
		lifetime = DefaultPrivateLifetime
	}
	return &Private{Origins: origins, PerAddress: perAddress, PerOrigin: perOrigin, Lifetime: lifetime,
		byAddr: make(map[netip.Addr]int), byOrigin: make(map[string]int)}
}

// OwnerPrivate is the owner of an anonymous private scope's registration.
const OwnerPrivate = "private"

func (p *Private) admit(req broker.AuthRequest) (string, error) {
	if !slices.Contains(p.Origins, "*") && (req.Origin == "" || !slices.Contains(p.Origins, req.Origin)) {
		o := req.Origin
		if o == "" {
			o = "no origin"
		}
		return "", fmt.Errorf("private scopes without a credential or grant are not open to %s on this broker (private_scopes.origins)", o)
	}
	addr := req.Remote.Addr()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.byAddr[addr] >= p.PerAddress {
		return "", fmt.Errorf("too many private scopes from this address (%d, private_scopes.per_address)", p.PerAddress)
	}
	if p.byOrigin[req.Origin] >= p.PerOrigin {
		return "", fmt.Errorf("too many private scopes for origin %s (%d, private_scopes.per_origin)", req.Origin, p.PerOrigin)
	}
	if req.Terms == nil {
		return "", errors.New("private scope: the broker gave no terms") // cannot happen: the broker always does
	}
	p.byAddr[addr]++
	p.byOrigin[req.Origin]++
	var once sync.Once
	req.Terms.Release = func() {
		once.Do(func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			if p.byAddr[addr]--; p.byAddr[addr] <= 0 {
				delete(p.byAddr, addr)
			}
			if p.byOrigin[req.Origin]--; p.byOrigin[req.Origin] <= 0 {
				delete(p.byOrigin, req.Origin)
			}
		})
	}
	req.Terms.Expires = time.Now().Add(p.Lifetime)
	req.Terms.ExpiredMessage = "private scope lifetime ended (private_scopes.lifetime)"
	return OwnerPrivate, nil
}

// Live reports the live private scopes for an address and an origin.
func (p *Private) Live(addr netip.Addr, origin string) (perAddr, perOrigin int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.byAddr[addr], p.byOrigin[origin]
}
