package scope

import (
	"strings"
	"testing"
)

func TestCanonicalPath(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"/", "/"},
		{"/a/b", "/a/b"},
		{"/a/caf%c3%a9/", "/a/caf%C3%A9/"},
		{"/a/café/", "/a/caf%C3%A9/"},
		{"/a/x%20y/", "/a/x%20y/"},
		{"/%61/%7E%2D", "/a/~-"},
		{"/a/%2f/", "/a/%2F/"},
		{"/a/./b", "/a/b"},
		{"/a/../b", "/b"},
		{"/a/%2e%2E/b", "/b"},
		{"/a/.%2e/", "/"},
		{"/../../x", "/x"},
		{"/a/b/..", "/a/"},
		{"/a/b/.", "/a/b/"},
		{"/a/..%2fb", "/a/..%2Fb"}, // one segment named "../b", not a dot segment
		{"/a/b(1)!;=", "/a/b(1)!;="},
	} {
		got, err := CanonicalPath(c.in)
		if err != nil || got != c.want {
			t.Errorf("CanonicalPath(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
		if again, _ := CanonicalPath(got); again != got {
			t.Errorf("CanonicalPath is not idempotent on %q: %q", got, again)
		}
	}
	for _, bad := range []string{"", "a/b", "/a%", "/a%2", "/a%zz"} {
		if got, err := CanonicalPath(bad); err == nil {
			t.Errorf("CanonicalPath(%q) = %q, want an error", bad, got)
		}
	}
}

func TestCanonicalHost(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"Host.Example", "host.example"},
		{"host.example.", "host.example"},
		{"HOST.example.:8080", "host.example"},
		{"bücher.example", "xn--bcher-kva.example"},
		{"BÜCHER.example.", "xn--bcher-kva.example"},
		{"xn--bcher-kva.example", "xn--bcher-kva.example"},
		{"[::1]:80", "::1"},
		{"[0:0::1]", "::1"},
		{"127.0.0.1:9", "127.0.0.1"},
		{"my_host.internal", "my_host.internal"},
	} {
		got, err := CanonicalHost(c.in)
		if err != nil || got != c.want {
			t.Errorf("CanonicalHost(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", ".", "[zz::1]"} {
		if got, err := CanonicalHost(bad); err == nil {
			t.Errorf("CanonicalHost(%q) = %q, want an error", bad, got)
		}
	}
}

// TestParseCanonical: two spellings of one scope are one scope, and a
// scope that no canonical request path could reach is refused.
func TestParseCanonical(t *testing.T) {
	for _, c := range []struct{ a, b string }{
		{"/a/caf%C3%A9/", "/a/café/"},
		{"/a/caf%c3%a9/", "/a/caf%C3%A9/"},
		{"/%7Eu/", "/~u/"},
		{"Host.Example./h/", "host.example/h/"},
		{"ws://HOST.example.:8080/h/", "ws://host.example/h/"},
		{"bücher.example/x/", "xn--bcher-kva.example/x/"},
	} {
		sa, err1 := Parse(c.a, true)
		sb, err2 := Parse(c.b, true)
		if err1 != nil || err2 != nil || sa != sb {
			t.Errorf("Parse(%q) = %+v, %v; Parse(%q) = %+v, %v; want one scope", c.a, sa, err1, c.b, sb, err2)
		}
	}
	for _, s := range []string{"/a/%2e%2e/", "/a/%2E/", "/a/.%2e/", "/%2eswitchboard/x/", "/a/%zz/", "/a/%/"} {
		if sc, err := Parse(s, true); err == nil {
			t.Errorf("Parse(%q) = %+v, want a refusal (no request reaches it)", s, sc)
		}
	}
	// Every request path in the scope, however spelt, matches it.
	sc, _ := Parse("/a/caf%C3%A9/", false)
	for _, raw := range []string{"/a/café/x", "/a/caf%c3%a9/x", "/a/caf%C3%A9", "/a/b/../caf%C3%A9/x"} {
		p, err := CanonicalPath(raw)
		if err != nil || !sc.Matches("", p) {
			t.Errorf("%q (canonical %q, %v) does not match %s", raw, p, err, sc)
		}
	}
	if p, _ := CanonicalPath("/a/caf%C3%A9/../../b/secret"); sc.Matches("", p) || strings.Contains(p, "..") {
		t.Errorf("dot segments escape the scope: %q", p)
	}
}

// FuzzCanonicalPath: the canonical form is idempotent, has no dot
// segments, and every scope the parser accepts contains its own path.
func FuzzCanonicalPath(f *testing.F) {
	for _, s := range []string{"/", "/a/../b", "/%2e%2E/x", "/caf%c3%a9/", "/a/..%2f/", "/a b/%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := CanonicalPath(raw)
		if err != nil {
			return
		}
		if again, err := CanonicalPath(p); err != nil || again != p {
			t.Fatalf("CanonicalPath(%q) = %q, again %q, %v", raw, p, again, err)
		}
		if HasDotSegments(p) {
			t.Fatalf("CanonicalPath(%q) = %q has dot segments", raw, p)
		}
		if sc, err := Parse(raw, false); err == nil && !sc.Matches("", sc.Path) {
			t.Fatalf("scope %q does not match its own path", sc.Path)
		}
	})
}
