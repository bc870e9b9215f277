package daemon

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/switchboard-dev/switchboard/config"
	"github.com/switchboard-dev/switchboard/scope"
)

// Reload re-reads the config file and applies its credentials and apps
// (SIGHUP and POST /.switchboard/v1/reload call it). A file that does not
// load changes nothing. Registrations whose owner keeps its secret and
// its claim on the scope keep their links; the links of a credential or
// app that was removed, whose secret changed, or that no longer owns the
// scope are ended. The log line says what changed. Other settings
// (listen address, limits, admin token) need a restart; a change to one
// is logged as such.
//
// In a cluster the other nodes re-read their own files too (see
// docs/CLUSTER.md).
func (d *Daemon) Reload(ctx context.Context) error {
	digest, err := d.reload(ctx)
	if err == nil && d.o.Cluster != nil {
		d.o.Cluster.Reloaded(digest)
	}
	return err
}

// reloadForCluster re-reads the file because another node of the cluster
// reloaded; it returns the digest of the configuration in force.
func (d *Daemon) reloadForCluster(ctx context.Context) (string, error) {
	return d.reload(ctx)
}

func (d *Daemon) reload(_ context.Context) (string, error) {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	f, keys, err := config.Reload(d.s.ConfigPath)
	if err != nil {
		return d.file.ReloadDigest(), err
	}
	if err := d.listen.Reload(f); err != nil { // grant keys: rotation
		return d.file.ReloadDigest(), err
	}
	old := d.keys.Load()
	oldFile := d.file
	d.keys.Store(keys)
	d.apps.Swap(keys.Directory())
	revoked := d.b.Revoke(func(owner string, sc scope.Scope) bool {
		if kept, decided := d.listen.Keeps(owner); decided {
			return kept
		}
		return keys.Owns(owner, sc) && keys.Unchanged(old, owner)
	})
	attrs := []any{"config", d.s.ConfigPath}
	attrs = append(attrs, diffAttrs("credentials", credentialSet(oldFile), credentialSet(f))...)
	attrs = append(attrs, diffAttrs("apps", appSet(oldFile), appSet(f))...)
	if len(revoked) > 0 {
		attrs = append(attrs, "links_ended_on", strings.Join(revoked, ","))
	}
	if restart := needsRestart(oldFile, f); len(restart) > 0 {
		attrs = append(attrs, "needs_restart", strings.Join(restart, ","))
	}
	d.log.Info("configuration reloaded", attrs...)
	d.file = f
	return f.ReloadDigest(), nil
}

// credentialSet maps each credential name to a fingerprint of what it is.
func credentialSet(f *config.File) map[string]string {
	m := map[string]string{}
	for _, c := range f.Credentials {
		m[c.Name] = c.CredentialHash + "|" + strings.Join(c.Scopes, ",")
	}
	return m
}

// appSet maps each app id to a fingerprint of its entry.
func appSet(f *config.File) map[string]string {
	m := map[string]string{}
	for _, a := range f.Apps {
		m[a.ID] = fmt.Sprintf("%+v", a)
	}
	return m
}

// diffAttrs is the log attributes naming what was added, removed and
// changed between two sets (none when nothing was).
func diffAttrs(what string, old, cur map[string]string) []any {
	var added, removed, changed []string
	for k, v := range cur {
		ov, ok := old[k]
		switch {
		case !ok:
			added = append(added, k)
		case ov != v:
			changed = append(changed, k)
		}
	}
	for k := range old {
		if _, ok := cur[k]; !ok {
			removed = append(removed, k)
		}
	}
	var attrs []any
	for _, x := range []struct {
		name string
		l    []string
	}{{"added", added}, {"removed", removed}, {"changed", changed}} {
		if len(x.l) > 0 {
			sort.Strings(x.l)
			attrs = append(attrs, what+"_"+x.name, strings.Join(x.l, ","))
		}
	}
	if len(attrs) == 0 {
		attrs = append(attrs, what, "unchanged")
	}
	return attrs
}

// needsRestart names the settings that differ between two files and that
// a reload does not apply.
func needsRestart(old, cur *config.File) []string {
	var out []string
	add := func(name string, changed bool) {
		if changed {
			out = append(out, name)
		}
	}
	add("listen", old.Listen != cur.Listen)
	add("dev", old.Dev != cur.Dev)
	add("node", old.Node != cur.Node)
	add("admin_token", old.AdminToken != cur.AdminToken)
	add("compression", !equalPtr(old.Compression, cur.Compression))
	add("handshake_timeout", old.HandshakeTimeout != cur.HandshakeTimeout)
	add("max_header_bytes", old.MaxHeaderBytes != cur.MaxHeaderBytes)
	add("max_conns_per_addr", old.MaxConnsPerAddr != cur.MaxConnsPerAddr)
	add("max_handshakes", old.MaxHandshakes != cur.MaxHandshakes)
	add("fd_reserve", old.FDReserve != cur.FDReserve)
	add("limits", old.Limits != cur.Limits)
	add("token_key", old.TokenKey != cur.TokenKey)
	add("revocations", old.Revocations != cur.Revocations)
	return slices.Clip(out)
}

func equalPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
