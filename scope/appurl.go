package scope

import (
	"fmt"
	"net/url"
)

// MaxAppIDLen is the longest app id; a token is always longer.
const MaxAppIDLen = 63

// ValidAppID reports whether id is a well-formed app id.
func ValidAppID(id string) error {
	if id == "" || len(id) > MaxAppIDLen {
		return fmt.Errorf("app id %q must be 1 to %d characters", id, MaxAppIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '.' || c == '-')
		if !ok {
			return fmt.Errorf("app id %q: want lower-case letters, digits, '.' and '-', starting with a letter or digit", id)
		}
	}
	return nil
}

// AppURL is a parsed wsapp:// URL. Authority is an app id, or a chooser
// token when Token is set (tokens are longer than any app id).
type AppURL struct {
	Authority string
	Token     bool
	Path      string // "/" when the URL has none
	RawQuery  string
}

// ParseAppURL reads wsapp://ID/path or wsapp://TOKEN/path.
func ParseAppURL(raw string) (AppURL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return AppURL{}, fmt.Errorf("parse app URL: %w", err)
	}
	if u.Scheme != "wsapp" {
		return AppURL{}, fmt.Errorf("app URL %q: scheme must be wsapp", raw)
	}
	if u.User != nil || u.Port() != "" || u.Fragment != "" || u.Opaque != "" {
		return AppURL{}, fmt.Errorf("app URL %q: want wsapp://ID/path", raw)
	}
	a := AppURL{Authority: u.Host, Path: u.EscapedPath(), RawQuery: u.RawQuery}
	if a.Path == "" {
		a.Path = "/"
	}
	if len(a.Authority) > MaxAppIDLen {
		a.Token = true
		return a, nil
	}
	if err := ValidAppID(a.Authority); err != nil {
		return AppURL{}, fmt.Errorf("app URL %q: %w", raw, err)
	}
	return a, nil
}
