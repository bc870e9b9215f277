package config

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"

	"github.com/switchboard-dev/switchboard/apps"
	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/scope"
)

// Keys is the broker's one credential lookup: the "credentials" section
// and the apps' credentials, in one secret format (apps.NewSecret), one
// hash format (apps.HashCredential) and one map. It is immutable; a reload
// builds a new one and swaps it in whole.
type Keys struct {
	// All fields are static after (*File).Keys.
	byHash map[[sha256.Size]byte]string // credential hash → owner name
	hashOf map[string][sha256.Size]byte // owner name → its hash
	scopes map[string][]scope.Scope     // credential name → the scopes it owns
	dir    *apps.Directory              // the apps; owners "app:ID"
}

// Keys builds the file's credential lookup, with its apps directory. The
// file must have been validated (Decode and Load do).
func (c *File) Keys() (*Keys, error) {
	dir, err := c.Directory()
	if err != nil {
		return nil, err
	}
	k := &Keys{byHash: map[[sha256.Size]byte]string{}, hashOf: map[string][sha256.Size]byte{},
		scopes: map[string][]scope.Scope{}, dir: dir}
	for _, cr := range c.Credentials {
		sum, err := apps.ParseCredentialHash(cr.CredentialHash)
		if err != nil {
			return nil, fmt.Errorf("credential %s: %w", cr.Name, err)
		}
		k.byHash[sum], k.hashOf[cr.Name] = cr.Name, sum
		for _, s := range cr.Scopes {
			sc, err := scope.Parse(s, true)
			if err != nil {
				return nil, fmt.Errorf("credential %s: %w", cr.Name, err)
			}
			k.scopes[cr.Name] = append(k.scopes[cr.Name], sc)
		}
	}
	for _, a := range c.Apps {
		if sum, err := apps.ParseCredentialHash(a.CredentialHash); err == nil {
			owner := apps.Owner(a.ID)
			k.byHash[sum], k.hashOf[owner] = owner, sum
		}
	}
	return k, nil
}

// Directory returns the apps.
func (k *Keys) Directory() *apps.Directory { return k.dir }

// Lookup returns the owner name of a secret: a credential's name, or
// "app:ID" for an app. Its cost is one hash and one map look-up, whatever
// the secret.
func (k *Keys) Lookup(secret string) (owner string, ok bool) {
	owner, ok = k.byHash[apps.SumSecret(secret)]
	return owner, ok
}

// Owns reports whether owner may hold a registration on sc: a credential
// whose scopes cover it, an app whose manifest lets it listen there, or
// "dev" while no credential or app claims sc.
func (k *Keys) Owns(owner string, sc scope.Scope) bool {
	if owner == "dev" {
		return k.claimant(sc) == ""
	}
	if id, ok := cutOwner(owner); ok {
		return k.dir.MayListen(id, sc.Host, sc.Path) == nil
	}
	for _, o := range k.scopes[owner] {
		if o.Covers(sc) {
			return true
		}
	}
	return false
}

// Unchanged reports whether owner has the same secret in k and in old: a
// reload that gave a credential a new secret ends the links made with the
// old one.
func (k *Keys) Unchanged(old *Keys, owner string) bool {
	if owner == "dev" {
		return true
	}
	a, ok1 := k.hashOf[owner]
	b, ok2 := old.hashOf[owner]
	return ok1 && ok2 && a == b
}

// claimant names who claims a scope overlapping sc ("credential X" or
// "app X"), or "".
func (k *Keys) claimant(sc scope.Scope) string {
	names := make([]string, 0, len(k.scopes))
	for n := range k.scopes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, o := range k.scopes[n] {
			if o.Overlaps(sc) {
				return "credential " + n
			}
		}
	}
	if id := appOwning(k.dir, sc); id != "" {
		return "app " + id
	}
	return ""
}

func cutOwner(owner string) (string, bool) {
	if len(owner) > len(apps.OwnerPrefix) && owner[:len(apps.OwnerPrefix)] == apps.OwnerPrefix {
		return owner[len(apps.OwnerPrefix):], true
	}
	return "", false
}

// ErrNeedsCredential refuses a service that presented no credential, the
// same for every scope (owned by a credential, an app's, or free), so that
// it does not tell who owns what.
var ErrNeedsCredential = errors.New("listening here needs a credential that owns the scope; a dev-mode broker admits loopback services without one on scopes that no credential or app claims")

// Authorizer returns the broker's Authorize function over the current
// keys (keys returns them; they change on reload). A credential must own
// the scope: a credential's scope covering it, or an app's manifest
// letting it listen there (owner "app:ID"). In dev mode, a loopback
// process without a credential may take any scope that no credential and
// no app claims.
func Authorizer(dev bool, keys func() *Keys) func(context.Context, broker.AuthRequest) (string, error) {
	return func(_ context.Context, req broker.AuthRequest) (string, error) {
		k := keys()
		if req.Credential == "" {
			// One answer for every scope, whoever claims it: a caller
			// without a credential learns nothing about ownership.
			if dev && req.Remote.Addr().IsLoopback() && k.claimant(req.Scope) == "" {
				return "dev", nil
			}
			return "", ErrNeedsCredential
		}
		owner, ok := k.Lookup(req.Credential)
		if !ok {
			return "", errors.New("unknown credential")
		}
		if id, isApp := cutOwner(owner); isApp {
			if err := k.dir.MayListen(id, req.Scope.Host, req.Scope.Path); err != nil {
				return "", fmt.Errorf("app %s may not listen on %s (%s)", id, req.Scope, apps.ReasonOf(err))
			}
			return owner, nil
		}
		if !k.Owns(owner, req.Scope) {
			return "", fmt.Errorf("the credential does not own scope %s", req.Scope)
		}
		return owner, nil
	}
}

// Authorizer returns the broker's Authorize function for the file's
// credentials and apps, fixed at this call (a broker that reloads uses
// the package's Authorizer with a changing Keys).
func (c *File) Authorizer(dev bool) func(context.Context, broker.AuthRequest) (string, error) {
	k, err := c.Keys()
	if err != nil { // an unvalidated file: nothing is owned by anyone
		k = &Keys{byHash: map[[sha256.Size]byte]string{}, hashOf: map[string][sha256.Size]byte{}, scopes: map[string][]scope.Scope{}}
		k.dir, _ = apps.NewDirectory(nil)
	}
	return Authorizer(dev, func() *Keys { return k })
}
