package broker

import (
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/scope"
)

func TestScopeMatch(t *testing.T) {
	var r registry
	regs := map[string]*Registration{}
	for _, s := range []string{"/", "/a/", "/a/b/", "h.example/a/", "/x%20y/"} {
		sc, err := scope.Parse(s, true)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		regs[s] = &Registration{scope: sc}
		r.put(sc, regs[s])
	}
	for _, c := range []struct{ host, path, want string }{
		{"any", "/", "/"},
		{"any", "/zzz", "/"},
		{"any", "/a", "/a/"}, // equals the scope without its final slash
		{"any", "/a/", "/a/"},
		{"any", "/ab", "/"},
		{"any", "/a/b", "/a/b/"},
		{"any", "/a/bc", "/a/"},
		{"any", "/a/b/c/d", "/a/b/"},
		{"h.example", "/a/x", "h.example/a/"},
		{"H.EXAMPLE", "/a/x", "h.example/a/"},
		{"h.example", "/a/b/x", "/a/b/"}, // longer path wins over host
		{"any", "/x%20y/z", "/x%20y/"},
	} {
		got := r.match(c.host, c.path)
		if got != regs[c.want] {
			name := "<nil>"
			if got != nil {
				name = got.scope.String()
			}
			t.Errorf("match(%s, %s) = %s, want %s", c.host, c.path, name, c.want)
		}
	}
	if allocs := testing.AllocsPerRun(100, func() { r.match("any", "/a/b/c/d") }); allocs != 0 {
		t.Errorf("match allocates %v times", allocs)
	}
}

// FuzzScope checks that any scope the parser accepts matches itself and
// every path under it, and that matching never panics.
func FuzzScope(f *testing.F) {
	for _, s := range []string{"/", "/a/", "h.example/a/b/", "ws://127.0.0.1:8080/echo/", "/%2F/", "/.switchboard/"} {
		f.Add(s, "/a/b")
	}
	f.Fuzz(func(t *testing.T, raw, path string) {
		sc, err := scope.Parse(raw, true)
		var r registry
		if err == nil {
			reg := &Registration{scope: sc}
			r.put(sc, reg)
			if r.match(sc.Host, sc.Path) != reg || r.match(sc.Host, sc.Path+"x/y") != reg {
				t.Fatalf("scope %+v does not match itself", sc)
			}
			if strings.HasPrefix(sc.Path, "/.switchboard/") {
				t.Fatalf("reserved scope accepted: %q", raw)
			}
		}
		_ = r.match("h", path)
	})
}
