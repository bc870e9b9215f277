package scope

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"golang.org/x/net/idna"
)

// Every place that compares a scope with a request — the broker's routing,
// the config's ownership checks, the apps policy, the SDK — compares
// canonical forms made here, so that two spellings of one URL can never
// land in two owners' scopes.
//
// A canonical path (RFC 3986, sections 6.2.2.1 to 6.2.2.3):
//   - percent-encodings of unreserved characters (ALPHA DIGIT - . _ ~) are
//     decoded, all other percent-encodings are kept with upper-case hex
//     ("%c3%a9" becomes "%C3%A9", "%41" becomes "A", "%2f" stays "%2F");
//   - bytes that may not appear literally in a path (space, controls,
//     non-ASCII, `"<>\^{|}` and the backquote) are percent-encoded;
//   - dot segments ("." and "..", also spelt "%2e") are removed; ".." above
//     the root stays at the root.
//
// A canonical host is lower case, without a port, a trailing dot or
// brackets, with international names in their ASCII (IDNA "xn--") form.

// ErrBadPath is wrapped by CanonicalPath's errors.
var ErrBadPath = errors.New("not a valid request path")

const upperhex = "0123456789ABCDEF"

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// literal reports whether c may appear unencoded in a canonical path:
// RFC 3986's pchar and "/", less "%".
func literal(c byte) bool {
	if unreserved(c) {
		return true
	}
	return strings.IndexByte("!$&'()*+,;=:@/", c) >= 0
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// normalizeEscapes returns p with its percent-encodings in canonical form.
func normalizeEscapes(p string) (string, error) {
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '%':
			if i+2 >= len(p) {
				return "", fmt.Errorf("%w: %q has a truncated percent-encoding", ErrBadPath, p)
			}
			hi, ok1 := unhex(p[i+1])
			lo, ok2 := unhex(p[i+2])
			if !ok1 || !ok2 {
				return "", fmt.Errorf("%w: %q has an invalid percent-encoding", ErrBadPath, p)
			}
			d := hi<<4 | lo
			if unreserved(d) {
				b.WriteByte(d)
			} else {
				b.WriteByte('%')
				b.WriteByte(upperhex[d>>4])
				b.WriteByte(upperhex[d&15])
			}
			i += 2
		case literal(c):
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(upperhex[c>>4])
			b.WriteByte(upperhex[c&15])
		}
	}
	return b.String(), nil
}

// removeDotSegments is RFC 3986 section 5.2.4 for an absolute path whose
// escapes are already canonical (so "%2e" is already ".").
func removeDotSegments(p string) string {
	if !strings.Contains(p, "/.") {
		return p
	}
	segs := strings.Split(p[1:], "/")
	out := make([]string, 0, len(segs))
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case ".":
			if last {
				out = append(out, "")
			}
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	return "/" + strings.Join(out, "/")
}

// CanonicalPath returns the canonical form of an escaped absolute request
// path (no query): the form in which scopes and request paths are compared
// and in which a service is told the path.
func CanonicalPath(raw string) (string, error) {
	if !strings.HasPrefix(raw, "/") {
		return "", fmt.Errorf("%w: %q does not start with /", ErrBadPath, raw)
	}
	p, err := normalizeEscapes(raw)
	if err != nil {
		return "", err
	}
	return removeDotSegments(p), nil
}

// HasDotSegments reports whether the escaped path p has a "." or ".."
// segment in any spelling.
func HasDotSegments(p string) bool {
	n, err := normalizeEscapes(p)
	if err != nil {
		return false
	}
	for _, s := range strings.Split(n, "/") {
		if s == "." || s == ".." {
			return true
		}
	}
	return false
}

// CanonicalHost returns the canonical form of a host, with or without a
// port ("Host.Example.:8080" becomes "host.example", "BÜCHER.example"
// becomes "xn--bcher-kva.example", "[::1]:80" becomes "::1").
func CanonicalHost(h string) (string, error) {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.Trim(h, "[]"), ".")
	if h == "" {
		return "", errors.New("empty host")
	}
	if strings.Contains(h, ":") { // an IPv6 literal
		ip := net.ParseIP(h)
		if ip == nil {
			return "", fmt.Errorf("host %q is not a host name or address", h)
		}
		return ip.String(), nil
	}
	a, err := idna.Lookup.ToASCII(h)
	if err != nil {
		// Names with "_" (common in internal DNS) fail the lookup
		// profile's rules; keep them, lower-cased, when they are ASCII.
		if !isASCIIName(h) {
			return "", fmt.Errorf("host %q: %w", h, err)
		}
		a = h
	}
	return strings.ToLower(a), nil
}

func isASCIIName(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i] | 0x20
		if !('a' <= c && c <= 'z' || '0' <= h[i] && h[i] <= '9' || h[i] == '-' || h[i] == '.' || h[i] == '_') {
			return false
		}
	}
	return true
}
