package apps

import "testing"

// TestNormalizeOriginHosts: an origin's host is compared in the canonical
// form of package scope (case, IDNA), as browsers serialise it; a
// trailing dot stays, since browsers treat it as another origin.
func TestNormalizeOriginHosts(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"https://Example.COM:443", "https://example.com"},
		{"https://BÜCHER.example", "https://xn--bcher-kva.example"},
		{"https://xn--bcher-kva.example", "https://xn--bcher-kva.example"},
		{"http://[::1]:8080", "http://[::1]:8080"},
		{"https://example.com.", "https://example.com."},
	} {
		got, err := NormalizeOrigin(c.in)
		if err != nil || got != c.want {
			t.Errorf("NormalizeOrigin(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}
