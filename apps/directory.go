package apps

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"

	"github.com/switchboard-dev/switchboard/scope"
)

// Identity is a verified caller: an app (proved by its credential or by an
// origin that belongs to it) or only a web origin. The server app's connect
// request carries it; the credential never leaves the broker.
type Identity struct {
	App    string // app id; "" when the caller is only a web origin
	Origin string // normalized web origin; "" when not a browser
}

// Reason says why a check failed, for logs and metric labels. A denial is
// shown to the caller exactly like "no such app"; only the operator sees
// the reason.
type Reason string

// Reasons returned in a *DenyError.
const (
	ReasonUnknownApp    Reason = "unknown_app"     // no such app (server, caller or listener)
	ReasonNotInServers  Reason = "not_in_servers"  // the caller's manifest does not list the server
	ReasonNotAdmitted   Reason = "not_admitted"    // the server's admit rule refuses the caller
	ReasonBadScope      Reason = "bad_scope"       // the scope asked for is malformed
	ReasonScopeNotOwned Reason = "scope_not_owned" // no listen scope of the app covers it
	ReasonScopeOfOther  Reason = "scope_of_other"  // another app owns an overlapping scope
	ReasonTokenInvalid  Reason = "token_invalid"   // malformed, altered, another holder's, or another key's
	ReasonTokenExpired  Reason = "token_expired"
	ReasonTokenRevoked  Reason = "token_revoked"
)

// DenyError is a refusal with its reason. Msg is for the operator's log;
// it never names a token's target.
type DenyError struct {
	Reason Reason
	Msg    string
}

func (e *DenyError) Error() string { return e.Msg }

// ReasonOf returns the Reason of a *DenyError in err's chain, "" for nil,
// and "error" for anything else.
func ReasonOf(err error) Reason {
	if err == nil {
		return ""
	}
	var d *DenyError
	if errors.As(err, &d) {
		return d.Reason
	}
	return "error"
}

func deny(r Reason, format string, args ...any) error {
	return &DenyError{Reason: r, Msg: fmt.Sprintf(format, args...)}
}

// Directory is a validated, immutable set of apps. It is safe for
// concurrent use; a reload builds a new one and swaps it in whole.
type Directory struct {
	// All fields are static after NewDirectory.
	apps     map[string]*entry
	ids      []string // sorted
	byHash   map[[sha256.Size]byte]string
	byOrigin map[string]string
}

type entry struct {
	cfg          AppConfig // normalized deep copy
	listen       []scope.Scope
	servers      map[string]bool
	admitApps    map[string]bool
	admitOrigins map[string]bool
}

// NewDirectory validates apps as a whole and builds a Directory. It
// reports every problem it finds, joined: bad or duplicate ids, bad
// credential hashes, two apps with one credential or one origin, apps that
// nothing can authenticate as, bad scopes, listen scopes of two apps that
// overlap, and servers or admitted apps that do not exist.
func NewDirectory(apps []AppConfig) (*Directory, error) {
	d := &Directory{
		apps:     make(map[string]*entry, len(apps)),
		byHash:   make(map[[sha256.Size]byte]string),
		byOrigin: make(map[string]string),
	}
	var errs []error
	bad := func(i int, id string, format string, args ...any) {
		errs = append(errs, fmt.Errorf("apps[%d] (%s): %s", i, id, fmt.Sprintf(format, args...)))
	}
	type owned struct {
		app string
		sc  scope.Scope
	}
	var scopes []owned
	for i, a := range apps {
		if err := scope.ValidAppID(a.ID); err != nil {
			bad(i, a.ID, "%v", err)
			continue
		}
		if _, dup := d.apps[a.ID]; dup {
			bad(i, a.ID, "duplicate app id")
			continue
		}
		e := &entry{cfg: cloneConfig(a), servers: set(a.Servers), admitApps: set(a.Admit.Apps), admitOrigins: map[string]bool{}}
		d.apps[a.ID] = e
		d.ids = append(d.ids, a.ID)
		if a.CredentialHash != "" {
			sum, err := parseCredentialHash(a.CredentialHash)
			if err != nil {
				bad(i, a.ID, "%v", err)
			} else if other, dup := d.byHash[sum]; dup {
				bad(i, a.ID, "has the same credential as app %s; give each app its own secret", other)
			} else {
				d.byHash[sum] = a.ID
			}
		}
		if a.CredentialHash == "" && len(a.Origins) == 0 {
			bad(i, a.ID, "has neither credential_hash nor origins, so nothing can prove to be it")
		}
		for j, o := range a.Origins {
			n, err := scope.CanonicalOrigin(o)
			if err != nil {
				bad(i, a.ID, "origins: %v", err)
				continue
			}
			if other, dup := d.byOrigin[n]; dup && other != a.ID {
				bad(i, a.ID, "origin %s already belongs to app %s", n, other)
			}
			d.byOrigin[n] = a.ID
			e.cfg.Origins[j] = n
		}
		for j, o := range a.Admit.Origins {
			n, err := scope.CanonicalOrigin(o)
			if err != nil {
				bad(i, a.ID, "admit.origins: %v", err)
				continue
			}
			e.admitOrigins[n] = true
			e.cfg.Admit.Origins[j] = n
		}
		for j, raw := range a.Listen {
			sc, err := parseScope(raw)
			if err != nil {
				bad(i, a.ID, "listen: %v", err)
				continue
			}
			e.listen = append(e.listen, sc)
			e.cfg.Listen[j] = sc.String()
			for _, o := range scopes {
				if o.app != a.ID && o.sc.Overlaps(sc) {
					bad(i, a.ID, "listen scope %s overlaps scope %s of app %s", sc, o.sc, o.app)
				}
			}
			scopes = append(scopes, owned{a.ID, sc})
		}
	}
	for i, a := range apps {
		if d.apps[a.ID] == nil {
			continue
		}
		for _, s := range a.Servers {
			if d.apps[s] == nil {
				bad(i, a.ID, "servers: no app %q", s)
			}
		}
		for _, s := range a.Admit.Apps {
			if d.apps[s] == nil {
				bad(i, a.ID, "admit.apps: no app %q", s)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("apps: %w", err)
	}
	slices.Sort(d.ids)
	return d, nil
}

// dummyHash is compared against when no app has the presented credential,
// so a miss does the same work as a hit.
var dummyHash = [sha256.Size]byte{}

// Authenticate returns the app whose credential is secret. Its cost is
// one SHA-256 and one map look-up keyed by the hash, whatever the secret
// and however many apps there are; it does not tell which apps exist.
func (d *Directory) Authenticate(secret string) (Identity, bool) {
	sum := hashSecret(secret)
	id, ok := d.byHash[sum]
	want := dummyHash
	if ok {
		want = sum
	}
	if subtle.ConstantTimeCompare(want[:], sum[:]) != 1 || !ok {
		return Identity{}, false
	}
	return Identity{App: id}, true
}

// ByOrigin returns the app whose pages are served from origin. For an
// origin that belongs to no app it returns an Identity with only the
// normalized Origin, and false; for a malformed origin the zero Identity
// and false.
func (d *Directory) ByOrigin(origin string) (Identity, bool) {
	n, err := scope.CanonicalOrigin(origin)
	if err != nil {
		return Identity{}, false
	}
	if id, ok := d.byOrigin[n]; ok {
		return Identity{App: id, Origin: n}, true
	}
	return Identity{Origin: n}, false
}

// App returns a copy of an app's normalized config.
func (d *Directory) App(id string) (AppConfig, bool) {
	e, ok := d.apps[id]
	if !ok {
		return AppConfig{}, false
	}
	return cloneConfig(e.cfg), true
}

// IDs returns every app id, sorted.
func (d *Directory) IDs() []string { return slices.Clone(d.ids) }

// MayListen reports whether app may listen on the scope host+scopePath
// (host "" for any host). The error's Reason says why not.
func (d *Directory) MayListen(app string, host, scopePath string) error {
	sc := scope.Scope{Path: scopePath}
	if host != "" {
		h, err := scope.CanonicalHost(host)
		if err != nil {
			return deny(ReasonBadScope, "app %s may not listen: %v", app, err)
		}
		sc.Host = h
	}
	if err := sc.Validate(); err != nil {
		return deny(ReasonBadScope, "app %s may not listen: %v", app, err)
	}
	e, ok := d.apps[app]
	if !ok {
		return deny(ReasonUnknownApp, "app %s may not listen on %s: no such app", app, sc)
	}
	for _, own := range e.listen {
		if own.Covers(sc) {
			return nil
		}
	}
	for _, id := range d.ids {
		if id == app {
			continue
		}
		for _, other := range d.apps[id].listen {
			if other.Overlaps(sc) {
				return deny(ReasonScopeOfOther, "app %s may not listen on %s: it overlaps scope %s of app %s", app, sc, other, id)
			}
		}
	}
	return deny(ReasonScopeNotOwned, "app %s may not listen on %s: not under any of its listen scopes %v", app, sc, e.cfg.Listen)
}

// MayConnect reports whether caller may connect to the server app. Both
// sides must agree: the caller's manifest lists the server in servers (a
// caller that is only a web origin has no manifest), and the server's
// admit rule admits the caller.
func (d *Directory) MayConnect(caller Identity, server string) error {
	s, ok := d.apps[server]
	if !ok {
		return deny(ReasonUnknownApp, "%s may not connect to %s: no such app", caller, server)
	}
	if caller.App != "" {
		c, ok := d.apps[caller.App]
		if !ok {
			return deny(ReasonUnknownApp, "%s may not connect to %s: the calling app is not configured", caller, server)
		}
		if !c.servers[server] {
			return deny(ReasonNotInServers, "%s may not connect to %s: %s is not in its servers", caller, server, server)
		}
	}
	if !s.admits(caller, false) {
		return deny(ReasonNotAdmitted, "%s may not connect to %s: its admit rule does not admit the caller", caller, server)
	}
	return nil
}

// MayConnectWithGrant reports whether caller may use an opened chooser
// token's grant. The grant stands in for the caller's manifest; the
// server's admit rule must still admit the caller (admit.tokens admits
// every holder). The error never names the target.
func (d *Directory) MayConnectWithGrant(caller Identity, g Grant) error {
	if caller.App == "" || caller.App != g.Holder {
		return deny(ReasonTokenInvalid, "%s may not use grant %s: it belongs to another holder", caller, g.ID)
	}
	if _, ok := d.apps[caller.App]; !ok {
		return deny(ReasonUnknownApp, "%s may not use grant %s: the calling app is not configured", caller, g.ID)
	}
	s, ok := d.apps[g.Target]
	if !ok {
		return deny(ReasonUnknownApp, "%s may not use grant %s: its target app is not configured", caller, g.ID)
	}
	if !s.admits(caller, true) {
		return deny(ReasonNotAdmitted, "%s may not use grant %s: the target's admit rule does not admit the caller", caller, g.ID)
	}
	return nil
}

// Choosable returns the server apps the chooser may offer holder: apps
// that admit token holders (or anyone), other than holder itself and the
// servers its manifest already lists.
func (d *Directory) Choosable(holder string) []AppConfig {
	h, ok := d.apps[holder]
	if !ok {
		return nil
	}
	var out []AppConfig
	for _, id := range d.ids {
		e := d.apps[id]
		if id == holder || h.servers[id] || !(e.cfg.Admit.Tokens || e.cfg.Admit.Any) {
			continue
		}
		out = append(out, cloneConfig(e.cfg))
	}
	return out
}

func (e *entry) admits(caller Identity, token bool) bool {
	a := e.cfg.Admit
	switch {
	case a.Any, token && a.Tokens:
		return true
	case caller.App != "" && e.admitApps[caller.App]:
		return true
	case caller.Origin != "":
		if e.admitOrigins[caller.Origin] {
			return true
		}
		n, err := scope.CanonicalOrigin(caller.Origin)
		return err == nil && e.admitOrigins[n]
	}
	return false
}

// String names the identity for logs: "app chat", "origin https://x",
// "app chat (https://x)".
func (id Identity) String() string {
	switch {
	case id.App != "" && id.Origin != "":
		return "app " + id.App + " (" + id.Origin + ")"
	case id.App != "":
		return "app " + id.App
	case id.Origin != "":
		return "origin " + id.Origin
	}
	return "anonymous caller"
}

func set(ss []string) map[string]bool {
	m := make(map[string]bool, len(ss))
	for _, s := range ss {
		m[s] = true
	}
	return m
}

func cloneConfig(a AppConfig) AppConfig {
	a.Origins = slices.Clone(a.Origins)
	a.Listen = slices.Clone(a.Listen)
	a.Servers = slices.Clone(a.Servers)
	a.Admit.Apps = slices.Clone(a.Admit.Apps)
	a.Admit.Origins = slices.Clone(a.Admit.Origins)
	return a
}
