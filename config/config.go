// Package config reads the broker's configuration file: strict JSON
// (unknown keys are errors), validated as a whole. It turns the file into
// the broker's and server's config structs and knows nothing of flags.
package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/switchboard-dev/switchboard/apps"
	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/grant"
	"github.com/switchboard-dev/switchboard/scope"
)

// File is the configuration file. Every field is optional.
type File struct {
	// Listen is the address to listen on (the --listen flag wins).
	Listen string `json:"listen,omitempty"`
	// Dev lets loopback processes register unclaimed scopes without a
	// credential and use the admin API (the --dev flag also sets it).
	Dev bool `json:"dev,omitempty"`
	// Node names this broker in logs and status.
	Node string `json:"node,omitempty"`
	// AdminToken guards the admin API; clients send
	// "Authorization: Bearer TOKEN".
	AdminToken string `json:"admin_token,omitempty"`
	// Compression makes permessage-deflate negotiable. Default true.
	Compression *bool `json:"compression,omitempty"`
	// HandshakeTimeout bounds reading a client's handshake headers.
	// Default "10s".
	HandshakeTimeout Duration `json:"handshake_timeout,omitempty"`
	// MaxHeaderBytes bounds the handshake headers; more gets 431.
	// Default 16384.
	MaxHeaderBytes int `json:"max_header_bytes,omitempty"`
	// MaxConnsPerAddr bounds concurrent client connections from one IP
	// address (429 beyond). Default 4096; -1 for none.
	MaxConnsPerAddr int `json:"max_conns_per_addr,omitempty"`
	// MaxHandshakes bounds connections whose headers have not arrived
	// (the oldest is closed beyond it). Default 1024.
	MaxHandshakes int `json:"max_handshakes,omitempty"`
	// FDReserve is the file descriptors kept free for the broker's links,
	// admin API and files. Default 128.
	FDReserve int `json:"fd_reserve,omitempty"`
	// Limits are the broker's limits; see broker.Limits.
	Limits Limits `json:"limits,omitempty"`
	// Credentials own scopes: a service presenting the secret may listen on
	// them.
	Credentials []Credential `json:"credentials,omitempty"`
	// Apps are the apps with their manifests; see docs/CONFIG.md and
	// package apps. Re-read on reload.
	Apps []apps.AppConfig `json:"apps,omitempty"`
	// Grants lists the keys that verify listen grants (JWTs a site's
	// backend mints for its pages); see docs/BROWSER.md.
	Grants *grant.Config `json:"grants,omitempty"`
	// PrivateScopes lets pages without a credential or grant create fresh
	// private scopes; off unless set. See docs/BROWSER.md.
	PrivateScopes *grant.PrivateConfig `json:"private_scopes,omitempty"`
	// TokenKey is the chooser-token key file (32 bytes, created 0600 on
	// first start). Default: token.key next to the config file.
	TokenKey string `json:"token_key,omitempty"`
	// Revocations is the revoked-token list file. Default:
	// revocations.json next to the config file.
	Revocations string `json:"revocations,omitempty"`
}

// Limits mirrors broker.Limits with JSON names and durations as strings.
type Limits struct {
	MaxMessage         int      `json:"max_message,omitempty"`
	AcceptTimeout      Duration `json:"accept_timeout,omitempty"`
	HandoverTimeout    Duration `json:"handover_timeout,omitempty"`
	MaxPendingConnects int      `json:"max_pending_connects,omitempty"`
	Window             int      `json:"window,omitempty"`
	ChannelBuffer      int      `json:"channel_buffer,omitempty"`
	TotalBuffer        int64    `json:"total_buffer,omitempty"`
	LinkBuffer         int      `json:"link_buffer,omitempty"`
	PingInterval       Duration `json:"ping_interval,omitempty"`
	CloseTimeout       Duration `json:"close_timeout,omitempty"`
	// RefusalFloor and RefusalJitter time refused handshakes (server.Config).
	RefusalFloor  Duration `json:"refusal_floor,omitempty"`
	RefusalJitter Duration `json:"refusal_jitter,omitempty"`
}

// Credential lets whoever holds a secret listen on some scopes. Only the
// secret's hash is stored, in the one form every credential of the broker
// uses (an app's too): "sha256$" and 64 hex digits, from
// apps.HashCredential. Secrets are random (switchboard credential new
// makes one), so a fast hash cannot be reversed by guessing.
type Credential struct {
	Name           string   `json:"name"`
	CredentialHash string   `json:"credential_hash"`
	Scopes         []string `json:"scopes"`
}

// Duration is a time.Duration written as a string such as "30s".
type Duration time.Duration

// UnmarshalJSON reads "1m30s" forms.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"30s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the string form.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// Load reads and validates the file at path. A file with problems gives
// an *Error listing every one.
func Load(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open config: %w", err)
	}
	defer f.Close()
	c, err := Decode(f)
	var ce *Error
	if errors.As(err, &ce) {
		ce.File = path
		return nil, ce
	}
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Validate checks the file as a whole.
func (c *File) Validate() error {
	var errs []error
	owner := map[string]string{}
	type claim struct {
		name  string
		scope scope.Scope
	}
	var claimed []claim
	names := map[string]int{}
	hashes := map[[sha256.Size]byte]string{}
	for i, cr := range c.Credentials {
		if cr.Name == "" {
			errs = append(errs, fmt.Errorf("credentials[%d].name: is required", i))
		} else if j, dup := names[cr.Name]; dup {
			errs = append(errs, fmt.Errorf("credentials[%d].name: %q is also the name of credentials[%d]", i, cr.Name, j))
		} else {
			names[cr.Name] = i
		}
		if sum, err := apps.ParseCredentialHash(cr.CredentialHash); err != nil {
			errs = append(errs, fmt.Errorf("credentials[%d].credential_hash: %w", i, err))
		} else if other, dup := hashes[sum]; dup {
			errs = append(errs, fmt.Errorf("credentials[%d].credential_hash: the same secret as credential %s; give each its own (switchboard credential new)", i, other))
		} else {
			hashes[sum] = cr.Name
		}
		if len(cr.Scopes) == 0 {
			errs = append(errs, fmt.Errorf("credentials[%d].scopes: is empty", i))
		}
		for _, s := range cr.Scopes {
			sc, err := scope.Parse(s, true)
			if err != nil {
				errs = append(errs, fmt.Errorf("credentials[%d].scopes: %w", i, err))
				continue
			}
			if o, dup := owner[sc.String()]; dup && o != cr.Name {
				errs = append(errs, fmt.Errorf("credentials[%d].scopes: scope %s is owned by both %s and %s", i, sc, o, cr.Name))
			} else {
				for _, o := range claimed {
					if o.name != cr.Name && o.scope.String() != sc.String() && o.scope.Overlaps(sc) {
						errs = append(errs, fmt.Errorf("credentials[%d].scopes: scope %s of %s overlaps scope %s of %s: either could listen where they meet; give each credential scopes that do not nest", i, sc, cr.Name, o.scope, o.name))
					}
				}
			}
			owner[sc.String()] = cr.Name
			claimed = append(claimed, claim{cr.Name, sc})
		}
	}
	for i, a := range c.Apps {
		if sum, err := apps.ParseCredentialHash(a.CredentialHash); err == nil {
			if other, dup := hashes[sum]; dup {
				errs = append(errs, fmt.Errorf("apps[%d].credential_hash: the same secret as credential %s; give each its own (switchboard credential new)", i, other))
			}
		}
	}
	errs = append(errs, c.validateApps()...)
	errs = append(errs, c.validateGrants()...)
	errs = append(errs, c.validateLimits()...)
	return errors.Join(errs...)
}

// BrokerLimits returns the limits for broker.Config.
func (c *File) BrokerLimits() broker.Limits {
	l := c.Limits
	return broker.Limits{MaxMessage: l.MaxMessage, AcceptTimeout: time.Duration(l.AcceptTimeout),
		HandoverTimeout: time.Duration(l.HandoverTimeout), MaxPendingConnects: l.MaxPendingConnects,
		Window: l.Window, ChannelBuffer: l.ChannelBuffer, TotalBuffer: l.TotalBuffer, LinkBuffer: l.LinkBuffer,
		PingInterval: time.Duration(l.PingInterval), CloseTimeout: time.Duration(l.CloseTimeout)}
}

// NewCredential makes a credential: a random secret and the hash the
// config file keeps (credential_hash, for a credential or an app).
func NewCredential() (secret, hash string, err error) {
	secret = apps.NewSecret()
	hash, err = apps.HashCredential(secret)
	return secret, hash, err
}

// Example returns a documented example file, for docs and tests.
func Example() []byte {
	return bytes.TrimSpace([]byte(exampleJSON))
}

const exampleJSON = `
{
  "listen": "0.0.0.0:8080",
  "node": "home",
  "admin_token": "change-me-to-32-or-more-random-characters",
  "compression": true,
  "handshake_timeout": "10s",
  "max_header_bytes": 16384,
  "max_conns_per_addr": 4096,
  "max_handshakes": 1024,
  "fd_reserve": 128,
  "limits": {
    "max_message": 1048576,
    "accept_timeout": "10s",
    "handover_timeout": "30s",
    "max_pending_connects": 1024,
    "window": 262144,
    "channel_buffer": 1048576,
    "total_buffer": 268435456,
    "link_buffer": 67108864,
    "ping_interval": "30s",
    "close_timeout": "3s",
    "refusal_floor": "100ms",
    "refusal_jitter": "20ms"
  },
  "credentials": [
    {
      "name": "chat-team",
      "credential_hash": "sha256$4f0dd8a1e5f5f6b6a5c4d0f54c9bd6d07d0b47a2c0f1e2d3c4b5a69788796a5b",
      "scopes": ["/chat/", "chat.example.com/rooms/"]
    }
  ]
}
`
