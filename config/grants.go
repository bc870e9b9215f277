package config

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/grant"
	"github.com/switchboard-dev/switchboard/scope"
)

// validateGrants checks the "grants" and "private_scopes" sections' shape
// (key files are read when the broker starts, by ListenAuth) and that no
// key may grant a scope that a credential or an app owns.
func (c *File) validateGrants() []error {
	var errs []error
	if g := c.Grants; g != nil {
		if len(g.Keys) == 0 {
			errs = append(errs, errors.New("grants.keys is empty: list at least one key, or drop the grants section"))
		}
		ids := map[string]bool{}
		for i, k := range g.Keys {
			if k.ID == "" {
				errs = append(errs, fmt.Errorf("grants.keys[%d].id: is required", i))
			} else if ids[k.ID] {
				errs = append(errs, fmt.Errorf("grants.keys[%d].id: %q is listed twice", i, k.ID))
			}
			ids[k.ID] = true
			if len(k.Scopes) == 0 {
				errs = append(errs, fmt.Errorf("grants.keys[%d].scopes: is empty", i))
			}
			for _, raw := range k.Scopes {
				ks, err := scope.Parse(raw, true)
				if err != nil {
					errs = append(errs, fmt.Errorf("grants.keys[%d].scopes: %w", i, err))
					continue
				}
				errs = append(errs, c.grantOverlaps(i, ks)...)
			}
		}
	}
	if p := c.PrivateScopes; p != nil {
		if _, err := p.Policy(); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

func (c *File) grantOverlaps(i int, ks scope.Scope) []error {
	var errs []error
	for _, cr := range c.Credentials {
		for _, s := range cr.Scopes {
			if cs, err := scope.Parse(s, true); err == nil && ks.Overlaps(cs) {
				errs = append(errs, fmt.Errorf("grants.keys[%d].scopes: %s overlaps scope %s of credential %s", i, ks, cs, cr.Name))
			}
		}
	}
	for _, a := range c.Apps {
		for _, s := range a.Listen {
			if as, err := scope.Parse(s, true); err == nil && ks.Overlaps(as) {
				errs = append(errs, fmt.Errorf("grants.keys[%d].scopes: %s overlaps listen scope %s of app %s", i, ks, as, a.ID))
			}
		}
	}
	return errs
}

// ListenAuth holds the listen-grant keys and the private-scope policy of
// a config file; its Authorizer wraps the broker's Authorize, and Reload
// takes new keys from a re-read file (key rotation).
type ListenAuth struct {
	dir      string
	verifier atomic.Pointer[grant.Verifier]
	private  *grant.Private // static: counts live across reloads
}

// ListenAuth loads the file's grant keys (files relative to the config
// file at configPath) and its private-scope policy.
func (c *File) ListenAuth(configPath string) (*ListenAuth, error) {
	la := &ListenAuth{dir: filepath.Dir(configPath)}
	if configPath == "" {
		la.dir = ""
	}
	if err := la.Reload(c); err != nil {
		return nil, err
	}
	if c.PrivateScopes != nil {
		p, err := c.PrivateScopes.Policy()
		if err != nil {
			return nil, err
		}
		la.private = p
	}
	return la, nil
}

// Reload takes the keys of a re-read file; on error the old keys stay.
func (la *ListenAuth) Reload(c *File) error {
	if c.Grants == nil {
		la.verifier.Store(nil)
		return nil
	}
	v, err := c.Grants.Verifier(la.dir)
	if err != nil {
		return err
	}
	la.verifier.Store(v)
	return nil
}

// Keeps decides, at a reload, on a registration owned through a grant or
// the private-scope policy (decided false for other owners): a grant's
// stays while a key of its owner is still listed (each grant ends at its
// own exp anyway); an anonymous private scope stays for its lifetime.
func (la *ListenAuth) Keeps(owner string) (kept, decided bool) {
	switch {
	case owner == grant.OwnerPrivate:
		return true, true
	case strings.HasPrefix(owner, grant.OwnerPrefix):
		v := la.verifier.Load()
		return v != nil && v.HasOwner(strings.TrimPrefix(owner, grant.OwnerPrefix)), true
	}
	return false, false
}

// Authorizer wraps next (the credential and app authorizer).
func (la *ListenAuth) Authorizer(next grant.AuthFunc) grant.AuthFunc {
	return func(ctx context.Context, req broker.AuthRequest) (string, error) {
		return grant.Authorizer(la.verifier.Load(), la.private, next)(ctx, req)
	}
}
