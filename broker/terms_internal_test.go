package broker

import (
	"context"
	"testing"
)

// TestLinkOriginIsCanonical: the link's Origin reaches Authorize in
// canonical form; what is no origin stays as it came.
func TestLinkOriginIsCanonical(t *testing.T) {
	for in, want := range map[string]string{
		"https://App.Example:443": "https://app.example",
		"http://app.example:8080": "http://app.example:8080",
		"null":                    "null",
		"":                        "",
	} {
		if got := linkOrigin(WithLinkOrigin(context.Background(), in)); got != want {
			t.Errorf("WithLinkOrigin(%q) gives %q, want %q", in, got, want)
		}
	}
}
