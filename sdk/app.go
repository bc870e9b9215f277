package sdk

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/scope"
)

// AppDialOptions configures DialApp. The zero value (or nil) dials as an
// anonymous caller, which only servers that admit anyone accept.
type AppDialOptions struct {
	// Credential is the calling app's secret. It is sent to the broker
	// (Authorization: Bearer), which checks it and tells the server app
	// only the verified app id.
	Credential string
	// Protocols are the intents offered, in order of preference; the
	// server app accepts one of them.
	Protocols []string
	// Dial configures the WebSocket dial (TLS through its HTTPClient,
	// extra headers). nil: defaults. Its Subprotocols are replaced by
	// Protocols.
	Dial *websocket.DialOptions
}

// DialApp connects to another app through the broker at brokerURL
// (ws://host:port or wss://…): target is wsapp://ID/path, or
// wsapp://TOKEN/path with a chooser token. A refusal, for any reason, is an
// error that does not say why: the broker answers it exactly like an app
// that does not exist.
func DialApp(ctx context.Context, brokerURL, target string, opts *AppDialOptions) (*websocket.Conn, error) {
	if opts == nil {
		opts = &AppDialOptions{}
	}
	u, err := AppEndpoint(brokerURL, target)
	if err != nil {
		return nil, err
	}
	var d websocket.DialOptions
	if opts.Dial != nil {
		d = *opts.Dial
	}
	d.Subprotocols = opts.Protocols
	d.HTTPHeader = d.HTTPHeader.Clone()
	if d.HTTPHeader == nil {
		d.HTTPHeader = http.Header{}
	}
	if opts.Credential != "" {
		d.HTTPHeader.Set("Authorization", "Bearer "+opts.Credential)
	}
	c, resp, err := websocket.Dial(ctx, u, &d)
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusNotFound {
			return nil, fmt.Errorf("dial %s: no such app, or not allowed to reach it", redact(target))
		}
		return nil, fmt.Errorf("dial %s: %w", redact(target), err)
	}
	return c, nil
}

// AppEndpoint returns the broker URL that serves a wsapp:// target:
// ws://BROKER/.switchboard/v1/app/ID/path?query.
func AppEndpoint(brokerURL, target string) (string, error) {
	a, err := scope.ParseAppURL(target)
	if err != nil {
		return "", err
	}
	b, err := url.Parse(brokerURL)
	if err != nil {
		return "", fmt.Errorf("broker URL: %w", err)
	}
	switch b.Scheme {
	case "http":
		b.Scheme = "ws"
	case "https":
		b.Scheme = "wss"
	case "ws", "wss":
	default:
		return "", fmt.Errorf("broker URL %q: want ws://, wss://, http:// or https://", brokerURL)
	}
	out := b.Scheme + "://" + b.Host + "/.switchboard/v1/app/" + a.Authority + a.Path
	if a.RawQuery != "" {
		out += "?" + a.RawQuery
	}
	return out, nil
}

// redact shortens a chooser token in a wsapp URL for error messages.
func redact(target string) string {
	a, err := scope.ParseAppURL(target)
	if err != nil || !a.Token {
		return target
	}
	return strings.Replace(target, a.Authority, a.Authority[:8]+"…", 1)
}
