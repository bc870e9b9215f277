package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/switchboard-dev/switchboard/apps"
	"github.com/switchboard-dev/switchboard/scope"
)

// AppOwnerPrefix starts the owner name of a registration made with an app
// credential: "app:chat".
const AppOwnerPrefix = apps.OwnerPrefix

// Directory builds the apps directory of the file's "apps" section (an
// empty directory when there is none).
func (c *File) Directory() (*apps.Directory, error) {
	d, err := apps.NewDirectory(c.Apps)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// validateApps checks the apps section and that no app's listen scope
// overlaps a scope of the older "credentials" section.
func (c *File) validateApps() []error {
	if len(c.Apps) == 0 {
		return nil
	}
	if _, err := apps.NewDirectory(c.Apps); err != nil {
		return []error{err}
	}
	var errs []error
	for _, a := range c.Apps {
		for _, raw := range a.Listen {
			as, err := scope.Parse(raw, true)
			if err != nil {
				continue // NewDirectory already checked it
			}
			for _, cr := range c.Credentials {
				for _, s := range cr.Scopes {
					cs, err := scope.Parse(s, true)
					if err == nil && (scopeCovers(as, cs) || scopeCovers(cs, as)) {
						errs = append(errs, fmt.Errorf("app %s: listen scope %s overlaps scope %s of credential %s", a.ID, as, cs, cr.Name))
					}
				}
			}
		}
	}
	return errs
}

// TokenPaths returns where the token key and the revocation list live: the
// file's token_key and revocations when set, else token.key and
// revocations.json in $STATE_DIRECTORY (set by systemd's StateDirectory=),
// else next to the config file (configPath), else in
// $XDG_STATE_HOME/switchboard (~/.local/state/switchboard).
func (c *File) TokenPaths(configPath string) (key, revocations string, err error) {
	dir := ""
	if sd := os.Getenv("STATE_DIRECTORY"); sd != "" {
		// Under systemd with StateDirectory= (dist/switchboard.service):
		// /etc may be read-only, and the unit's state directory is the
		// place for state.
		dir, _, _ = strings.Cut(sd, ":")
	} else if configPath != "" {
		dir = filepath.Dir(configPath)
	} else {
		state := os.Getenv("XDG_STATE_HOME")
		if state == "" {
			home, herr := os.UserHomeDir()
			if herr != nil {
				return "", "", fmt.Errorf("token paths: no config file, no $XDG_STATE_HOME and no home directory: %w", herr)
			}
			state = filepath.Join(home, ".local", "state")
		}
		dir = filepath.Join(state, "switchboard")
	}
	key, revocations = c.TokenKey, c.Revocations
	if key == "" {
		key = filepath.Join(dir, "token.key")
	}
	if revocations == "" {
		revocations = filepath.Join(dir, "revocations.json")
	}
	return key, revocations, nil
}

// OpenTokens loads (or creates, 0600) the token key and opens the
// revocation list, creating their directory (0700) when needed. The
// returned Sealer refuses revoked grants.
func (c *File) OpenTokens(configPath string) (*apps.Sealer, *apps.Revocations, error) {
	keyPath, revPath, err := c.TokenPaths(configPath)
	if err != nil {
		return nil, nil, err
	}
	for _, p := range []string{keyPath, revPath} {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return nil, nil, fmt.Errorf("token state directory: %w", err)
		}
	}
	sealer, err := apps.LoadOrCreateKey(keyPath)
	if err != nil {
		return nil, nil, err
	}
	revs, err := apps.OpenRevocations(revPath)
	if err != nil {
		return nil, nil, err
	}
	return sealer.WithRevocations(revs), revs, nil
}

// appOwning returns the app whose listen scope overlaps s, or "".
func appOwning(d *apps.Directory, s scope.Scope) string {
	for _, id := range d.IDs() {
		a, _ := d.App(id)
		for _, raw := range a.Listen {
			as, err := scope.Parse(raw, true)
			if err == nil && (scopeCovers(as, s) || scopeCovers(s, as)) {
				return id
			}
		}
	}
	return ""
}

// scopeCovers reports whether o includes s: any host or the same host, and
// a path prefix of s's.
func scopeCovers(o, s scope.Scope) bool {
	return (o.Host == "" || o.Host == s.Host) && strings.HasPrefix(s.Path, o.Path)
}

// ReloadDigest fingerprints what a reload applies (credentials, apps,
// grant keys), so that cluster nodes can tell whether they run the same
// configuration. It reveals nothing of the file but equality.
func (c *File) ReloadDigest() string {
	data, err := json.Marshal(struct {
		Credentials []Credential     `json:"credentials"`
		Apps        []apps.AppConfig `json:"apps"`
		Grants      any              `json:"grants"`
	}{c.Credentials, c.Apps, c.Grants})
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:8])
}

// errNoConfig is returned by Reload when the broker runs without a file.
var errNoConfig = errors.New("the broker was started without --config: nothing to reload")

// Reload re-reads the file at path for a running broker and builds its
// credential lookup. The caller swaps it in only when err is nil.
func Reload(path string) (*File, *Keys, error) {
	if path == "" {
		return nil, nil, errNoConfig
	}
	c, err := Load(path)
	if err != nil {
		return nil, nil, fmt.Errorf("reload: %w", err)
	}
	k, err := c.Keys()
	if err != nil {
		return nil, nil, fmt.Errorf("reload %s: %w", path, err)
	}
	return c, k, nil
}
