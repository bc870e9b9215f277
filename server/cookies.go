package server

import (
	"net/http"
	"strings"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/protocol"
)

// Cookies between services and the broker. Every scope of a host shares
// one web origin, so a service's cookies are kept in its own scope: a
// Set-Cookie from a service's accept or custom response keeps its path
// under the service's scope (none given: the scope's path), may not name
// a Domain (host-only cookies) nor the broker's own chooser cookie, and
// is dropped otherwise, with a warning. The chooser's session cookie is
// never forwarded to a service.

// serviceCookies returns d's headers with the Set-Cookie headers that
// leave the service's scope dropped, and the others kept in it.
func (s *Server) serviceCookies(d *broker.Decision) {
	if d.Outcome != broker.Accepted && d.Outcome != broker.Responded {
		return
	}
	out := d.Headers[:0:0]
	for _, h := range d.Headers {
		if !strings.EqualFold(h.Name, "Set-Cookie") {
			out = append(out, h)
			continue
		}
		v, why := scopedCookie(h.Value, d.Scope.Path)
		if why != "" {
			s.log.Warn("service cookie dropped", "scope", d.Scope.String(), "why", why)
			continue
		}
		out = append(out, protocol.Header{Name: "Set-Cookie", Value: v})
	}
	d.Headers = out
}

// scopedCookie checks one Set-Cookie value against the scope's path and
// returns it (with Path set when it had none), or why it is dropped.
func scopedCookie(v, scopePath string) (string, string) {
	c, err := http.ParseSetCookie(v)
	if err != nil {
		return "", "malformed Set-Cookie"
	}
	switch {
	case c.Name == sessionCookie:
		return "", "the broker's own cookie name"
	case strings.HasPrefix(c.Name, "__Host-"):
		return "", "__Host- cookies are for the whole host (Path=/)"
	case c.Domain != "":
		return "", "Domain is not allowed: cookies stay host-only"
	case c.Path == "":
		c.Path = scopePath
	case !inScope(c.Path, scopePath):
		return "", "Path " + c.Path + " is outside the scope " + scopePath
	}
	out := c.String()
	if out == "" {
		return "", "malformed Set-Cookie"
	}
	return out, ""
}

// inScope reports whether cookie path p lies within the scope path sp
// (which ends with "/"): p is sp, sp without its final "/", or under sp.
func inScope(p, sp string) bool {
	if strings.Contains(p, "/../") || strings.HasSuffix(p, "/..") || strings.Contains(p, "/./") {
		return false
	}
	return strings.HasPrefix(p, sp) || p == strings.TrimSuffix(sp, "/")
}

// withoutBrokerCookies removes the broker's own cookies (the chooser
// session) from a Cookie header value; "" when none is left.
func withoutBrokerCookies(v string) string {
	parts := strings.Split(v, ";")
	kept := parts[:0]
	for _, p := range parts {
		name, _, _ := strings.Cut(strings.TrimSpace(p), "=")
		if name == sessionCookie || strings.TrimSpace(p) == "" {
			continue
		}
		kept = append(kept, strings.TrimSpace(p))
	}
	return strings.Join(kept, "; ")
}
