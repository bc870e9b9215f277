package scope

import "testing"

// TestCanonicalOrigin: an origin's host is compared in the canonical form
// of CanonicalHost (case, IDNA), as browsers serialise it; the scheme's
// default port goes; a trailing dot stays, since browsers treat it as
// another origin; what is not scheme://host[:port] is an error.
func TestCanonicalOrigin(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"https://Example.COM:443", "https://example.com"},
		{"HTTPS://example.com/", "https://example.com"},
		{"http://example.com:80", "http://example.com"},
		{"http://example.com:443", "http://example.com:443"},
		{"https://example.com:0443", "https://example.com"},
		{"https://BÜCHER.example", "https://xn--bcher-kva.example"},
		{"https://xn--bcher-kva.example", "https://xn--bcher-kva.example"},
		{"http://[::1]:8080", "http://[::1]:8080"},
		{"http://[0:0::1]", "http://[::1]"},
		{"https://example.com.", "https://example.com."},
	} {
		got, err := CanonicalOrigin(c.in)
		if err != nil || got != c.want {
			t.Errorf("CanonicalOrigin(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "null", "example.com", "https://", "https://u@example.com",
		"https://example.com/path", "https://example.com?q", "https://example.com:99999", "https://exa mple.com"} {
		if got, err := CanonicalOrigin(bad); err == nil {
			t.Errorf("CanonicalOrigin(%q) = %q, want an error", bad, got)
		}
	}
}
