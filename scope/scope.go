package scope

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/switchboard-dev/switchboard/protocol"
)

// Scope is an optional host plus a path prefix that starts and ends with
// "/". A request path matches when it starts with Path or equals Path
// without its final "/".
type Scope struct {
	Host string // canonical host (CanonicalHost); "" matches any host
	Path string // canonical path (CanonicalPath)
}

func (s Scope) String() string { return s.Host + s.Path }

// Parse reads a scope from a service's scope URL
// (ws://broker:8080/echo/) or a bare "/path/" or "host/path/". The host of
// a URL names the broker and is not part of the scope unless hostScoped.
// The scope it returns is in canonical form (see CanonicalPath and
// CanonicalHost): "/caf%c3%a9/" and "/café/" are one scope. A scope that no
// request could reach — one with dot segments in any spelling, an empty
// segment or an invalid percent-encoding — is refused.
func Parse(raw string, hostScoped bool) (Scope, error) {
	var s Scope
	switch {
	case strings.Contains(raw, "://"):
		u, err := url.Parse(raw)
		if err != nil {
			return s, fmt.Errorf("parse scope URL %q: %w", raw, err)
		}
		if u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
			return s, fmt.Errorf("scope URL %q: a scope has no query or fragment", raw)
		}
		s.Path = u.EscapedPath()
		if hostScoped {
			s.Host = u.Hostname()
		}
	case strings.HasPrefix(raw, "/"):
		s.Path = raw
	default:
		host, path, ok := strings.Cut(raw, "/")
		if !ok || host == "" {
			return s, fmt.Errorf("scope %q: want /path/ or host/path/", raw)
		}
		s.Host, s.Path = host, "/"+path
	}
	for i := 0; i < len(s.Path); i++ {
		if c := s.Path[i]; c <= ' ' || c == 0x7f || c == '?' || c == '#' {
			return s, fmt.Errorf("scope path %q has a character not allowed in a path (percent-encode it)", s.Path)
		}
	}
	if HasDotSegments(s.Path) || strings.Contains(s.Path, "//") {
		return s, fmt.Errorf("scope path %q is not clean: no request path has dot segments or empty segments", s.Path)
	}
	if !strings.HasPrefix(s.Path, "/") || !strings.HasSuffix(s.Path, "/") {
		return s, fmt.Errorf("scope path %q must start and end with /", s.Path)
	}
	p, err := CanonicalPath(s.Path)
	if err != nil {
		return s, fmt.Errorf("scope path: %w", err)
	}
	s.Path = p
	if s.Host != "" {
		h, err := CanonicalHost(s.Host)
		if err != nil {
			return s, fmt.Errorf("scope host: %w", err)
		}
		s.Host = h
	}
	return s, s.Validate()
}

// Validate checks that s is a scope in canonical form that stays out of
// the broker's reserved prefix.
func (s Scope) Validate() error {
	p := s.Path
	if !strings.HasPrefix(p, "/") || !strings.HasSuffix(p, "/") {
		return fmt.Errorf("scope path %q must start and end with /", p)
	}
	if strings.HasPrefix(p, protocol.ReservedPrefix) {
		return fmt.Errorf("scope path %q is under the broker's reserved prefix %s", p, protocol.ReservedPrefix)
	}
	if strings.Contains(p, "//") || HasDotSegments(p) {
		return fmt.Errorf("scope path %q is not clean", p)
	}
	if c, err := CanonicalPath(p); err != nil || c != p {
		return fmt.Errorf("scope path %q is not in canonical form (want %q)", p, c)
	}
	if s.Host != "" {
		if h, err := CanonicalHost(s.Host); err != nil || h != s.Host {
			return fmt.Errorf("scope host %q is not a canonical host name (want %q)", s.Host, h)
		}
	}
	return nil
}

// Covers reports whether s includes all of o: any host or the same host,
// and a path prefix of o's.
func (s Scope) Covers(o Scope) bool {
	return (s.Host == "" || s.Host == o.Host) && strings.HasPrefix(o.Path, s.Path)
}

// Overlaps reports whether some request could match both s and o.
func (s Scope) Overlaps(o Scope) bool {
	hostsMeet := s.Host == "" || o.Host == "" || s.Host == o.Host
	return hostsMeet && (strings.HasPrefix(o.Path, s.Path) || strings.HasPrefix(s.Path, o.Path))
}

// Matches reports whether a request for host and path, both canonical,
// falls in s.
func (s Scope) Matches(host, path string) bool {
	if s.Host != "" && !strings.EqualFold(s.Host, host) {
		return false
	}
	return strings.HasPrefix(path, s.Path) || path == s.Path[:len(s.Path)-1]
}
