package apps

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard/scope"
)

// Revocation is one entry of the revocation list: a grant id, or a
// holder/target pair. A pair revocation withdraws every token for the pair
// issued up to At; tokens issued later (the owner chose again) work.
type Revocation struct {
	ID     string    `json:"id,omitempty"`
	Holder string    `json:"holder,omitempty"`
	Target string    `json:"target,omitempty"`
	At     time.Time `json:"at"`
}

type pair struct{ holder, target string }

// revocationFile is the file's JSON form.
type revocationFile struct {
	Version     int          `json:"version"`
	Revocations []Revocation `json:"revocations"`
}

// Revocations is the persistent list of revoked chooser tokens. Every
// change is written to its file (atomically: a temporary file renamed into
// place) before it takes effect. It is safe for concurrent use.
type Revocations struct {
	path string // static

	mu    sync.RWMutex
	watch func(Revocation)   // guarded by mu: told of each revocation made here
	list  []Revocation       // guarded by mu, in the order made
	ids   map[string]bool    // guarded by mu
	pairs map[pair]time.Time // guarded by mu
}

// OpenRevocations reads the revocation file at path; a missing file is an
// empty list (the file is created on the first revocation).
func OpenRevocations(path string) (*Revocations, error) {
	r := &Revocations{path: path, ids: map[string]bool{}, pairs: map[pair]time.Time{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read revocations: %w", err)
	}
	var f revocationFile
	if err := DecodeStrict(bytes.NewReader(b), &f); err != nil {
		return nil, fmt.Errorf("revocations %s: %w", path, err)
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("revocations %s: unknown version %d", path, f.Version)
	}
	for i, rv := range f.Revocations {
		if err := checkRevocation(rv); err != nil {
			return nil, fmt.Errorf("revocations %s: entry %d: %w", path, i, err)
		}
		r.addLocked(rv)
	}
	return r, nil
}

func checkRevocation(rv Revocation) error {
	switch {
	case rv.ID != "" && rv.Holder == "" && rv.Target == "":
		b, err := lowerBase32.DecodeString(rv.ID)
		if err != nil || len(b) != idSize {
			return fmt.Errorf("grant id %q is not a grant id", rv.ID)
		}
		return nil
	case rv.ID == "" && rv.Holder != "" && rv.Target != "":
		if err := scope.ValidAppID(rv.Holder); err != nil {
			return fmt.Errorf("holder: %w", err)
		}
		if err := scope.ValidAppID(rv.Target); err != nil {
			return fmt.Errorf("target: %w", err)
		}
		return nil
	}
	return errors.New("want either id, or holder and target")
}

func (r *Revocations) addLocked(rv Revocation) {
	if rv.ID != "" {
		r.ids[rv.ID] = true
	} else {
		p := pair{rv.Holder, rv.Target}
		if rv.At.After(r.pairs[p]) {
			r.pairs[p] = rv.At
		}
	}
	r.list = append(r.list, rv)
}

// RevokeID revokes the grant with this id. Revoking it again is harmless.
func (r *Revocations) RevokeID(id string) error {
	return r.revoke(Revocation{ID: id, At: time.Now()})
}

// RevokePair revokes every token issued so far that lets holder reach
// target.
func (r *Revocations) RevokePair(holder, target string) error {
	return r.revoke(Revocation{Holder: holder, Target: target, At: time.Now()})
}

func (r *Revocations) revoke(rv Revocation) error {
	added, err := r.add(rv)
	if err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	r.mu.RLock()
	watch := r.watch
	r.mu.RUnlock()
	if added && watch != nil {
		watch(rv)
	}
	return nil
}

// Watch has f told of every revocation made on this node from now on
// (the cluster sends them to the other nodes).
func (r *Revocations) Watch(f func(Revocation)) {
	r.mu.Lock()
	r.watch = f
	r.mu.Unlock()
}

// Merge adds a revocation made on another node, unless it changes
// nothing here; it is written to the file like one made here.
func (r *Revocations) Merge(rv Revocation) error {
	if _, err := r.add(rv); err != nil {
		return fmt.Errorf("merge revocation: %w", err)
	}
	return nil
}

// add validates, persists and applies rv; it reports false when rv
// changes nothing (an id already revoked, a pair revoked as late).
func (r *Revocations) add(rv Revocation) (bool, error) {
	if err := checkRevocation(rv); err != nil {
		return false, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if rv.ID != "" && r.ids[rv.ID] {
		return false, nil
	}
	if at, ok := r.pairs[pair{rv.Holder, rv.Target}]; rv.ID == "" && ok && !rv.At.After(at) {
		return false, nil
	}
	next := append(slices.Clone(r.list), rv)
	if err := writeRevocations(r.path, next); err != nil {
		return false, err
	}
	r.addLocked(rv)
	return true, nil
}

// Revoked reports whether g has been revoked, by its id or by its pair.
func (r *Revocations) Revoked(g Grant) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.ids[g.ID] {
		return true
	}
	at, ok := r.pairs[pair{g.Holder, g.Target}]
	return ok && !g.Issued.After(at)
}

// List returns the revocations in the order they were made.
func (r *Revocations) List() []Revocation {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Clone(r.list)
}

// writeRevocations replaces the file at path with list: it writes a
// temporary file in the same directory, syncs it, renames it over path and
// syncs the directory, so a crash leaves the old list or the new one.
func writeRevocations(path string, list []Revocation) error {
	b, err := json.MarshalIndent(revocationFile{Version: 1, Revocations: list}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode revocations: %w", err)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".revocations-*") // mode 0600
	if err != nil {
		return fmt.Errorf("write revocations: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write revocations: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync revocations: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close revocations: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replace revocations: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("sync revocations directory: %w", err)
	}
	return nil
}

// syncDir makes a rename or link in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
