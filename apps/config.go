package apps

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/switchboard-dev/switchboard/scope"
)

// AppConfig is one app in the config file's "apps" section.
type AppConfig struct {
	// ID names the app: [a-z0-9][a-z0-9.-]{0,62}. Clients reach a server
	// app as wsapp://ID/.
	ID string `json:"id"`
	// Name is shown to people (the chooser, status). Optional.
	Name string `json:"name,omitempty"`
	// CredentialHash is HashCredential's output for the app's secret;
	// never the secret itself.
	CredentialHash string `json:"credential_hash,omitempty"`
	// Origins are web origins (scheme://host[:port]) whose pages are this
	// app; the browser sets Origin and pages cannot forge it.
	Origins []string `json:"origins,omitempty"`
	// Listen are the scopes the app may listen on: "/path/" or
	// "host/path/", the path starting and ending with "/". A scope covers
	// the scopes below it.
	Listen []string `json:"listen,omitempty"`
	// Servers are the ids of the server apps this app may connect to.
	Servers []string `json:"servers,omitempty"`
	// Admit says, on the app's server side, who may connect to it.
	Admit Admit `json:"admit,omitzero"`
	// WsappOnly makes the app's listen scopes reachable only through
	// wsapp:// (where its manifest and admit rule decide): a plain ws://
	// client of the scope is refused, whoever it is.
	WsappOnly bool `json:"wsapp_only,omitempty"`
}

// Admit is a server app's own rule for its callers. The zero value admits
// nobody. A caller is admitted when any field admits it, and the caller's
// side must allow the connection too (its servers list, or a chooser
// token).
type Admit struct {
	// Apps are the ids of the apps admitted.
	Apps []string `json:"apps,omitempty"`
	// Origins are web origins admitted, whether or not they belong to an
	// app.
	Origins []string `json:"origins,omitempty"`
	// Any admits every app and origin.
	Any bool `json:"any,omitempty"`
	// Tokens admits any app holding a valid chooser token for this app:
	// the device owner picked it in the chooser, or the operator issued it.
	Tokens bool `json:"tokens,omitempty"`
}

// DecodeStrict decodes one JSON value from r into v: unknown keys and
// trailing data are errors. The broker's config loader can use it for the
// whole file.
func DecodeStrict(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("decode JSON: trailing data after the value")
	}
	return nil
}

// parseScope reads a listen scope, "/path/" or "host/path/", with the
// scope package's parser, so that apps and the broker never disagree on
// what a scope is.
func parseScope(raw string) (scope.Scope, error) {
	if strings.Contains(raw, "://") {
		return scope.Scope{}, fmt.Errorf("scope %q: want /path/ or host/path/", raw)
	}
	return scope.Parse(raw, true)
}
