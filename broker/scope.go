package broker

import (
	"errors"
	"strings"

	"github.com/switchboard-dev/switchboard/scope"
)

// ErrNoScope is returned when no registration matches a request.
var ErrNoScope = errors.New("no registration matches")

// registry maps scopes to registrations. Guarded by Broker.mu.
type registry struct {
	byPath map[string]*scopeEntry
}

type scopeEntry struct {
	any    *Registration
	byHost map[string]*Registration
}

func (r *registry) get(s scope.Scope) *Registration {
	e := r.byPath[s.Path]
	if e == nil {
		return nil
	}
	if s.Host == "" {
		return e.any
	}
	return e.byHost[s.Host]
}

func (r *registry) put(s scope.Scope, reg *Registration) {
	if r.byPath == nil {
		r.byPath = make(map[string]*scopeEntry)
	}
	e := r.byPath[s.Path]
	if e == nil {
		e = &scopeEntry{}
		r.byPath[s.Path] = e
	}
	if s.Host == "" {
		e.any = reg
		return
	}
	if e.byHost == nil {
		e.byHost = make(map[string]*Registration)
	}
	e.byHost[s.Host] = reg
}

func (r *registry) remove(s scope.Scope, reg *Registration) {
	e := r.byPath[s.Path]
	if e == nil {
		return
	}
	if s.Host == "" {
		if e.any == reg {
			e.any = nil
		}
	} else if e.byHost[s.Host] == reg {
		delete(e.byHost, s.Host)
	}
	if e.any == nil && len(e.byHost) == 0 {
		delete(r.byPath, s.Path)
	}
}

// match finds the longest scope that matches host and path: it tries the
// path itself as a scope ("/a/b" matches "/a/b/"), then each prefix ending in
// "/" from the longest. At equal length a host-specific scope wins. It does
// not allocate for paths under 256 bytes.
func (r *registry) match(host, path string) *Registration {
	if len(r.byPath) == 0 || !strings.HasPrefix(path, "/") {
		return nil
	}
	if !strings.HasSuffix(path, "/") {
		var buf [256]byte
		if len(path) < len(buf) {
			n := copy(buf[:], path)
			buf[n] = '/'
			if reg := r.pick(r.byPath[string(buf[:n+1])], host); reg != nil {
				return reg
			}
		} else if reg := r.pick(r.byPath[path+"/"], host); reg != nil {
			return reg
		}
	}
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '/' {
			if reg := r.pick(r.byPath[path[:i+1]], host); reg != nil {
				return reg
			}
		}
	}
	return nil
}

func (r *registry) pick(e *scopeEntry, host string) *Registration {
	if e == nil {
		return nil
	}
	if len(e.byHost) > 0 {
		for h, reg := range e.byHost {
			if strings.EqualFold(h, host) {
				return reg
			}
		}
	}
	return e.any
}
