package scope

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// CanonicalOrigin returns the canonical form of a web origin
// ("https://Example.COM:443" becomes "https://example.com"), or an error if
// origin is not scheme://host[:port]. The host is a CanonicalHost (case,
// IDNA: a browser sends "xn--bcher-kva.example" for bücher.example), but a
// trailing dot is kept: to a browser "https://example.com." is another
// origin. The scheme's default port is dropped. "null" is not an origin:
// opaque origins cannot be told apart.
//
// Every place that compares origins — the apps policy, a service's list of
// admitted origins in the broker, the server — compares these forms.
func CanonicalOrigin(origin string) (string, error) {
	u, err := url.Parse(origin)
	if err != nil {
		return "", fmt.Errorf("origin %q: %w", origin, err)
	}
	if u.Scheme == "" || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") ||
		u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", fmt.Errorf("origin %q: want scheme://host[:port]", origin)
	}
	scheme := strings.ToLower(u.Scheme)
	host, err := CanonicalHost(u.Hostname())
	if err != nil {
		return "", fmt.Errorf("origin %q: %w", origin, err)
	}
	if strings.HasSuffix(u.Hostname(), ".") {
		host += "."
	}
	port := u.Port()
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("origin %q: bad port", origin)
		}
		port = strconv.Itoa(n) // "0443" is 443
	}
	if scheme == "https" && port == "443" || scheme == "http" && port == "80" {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host, nil
}
