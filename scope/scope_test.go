package scope

import "testing"

func TestParseRejects(t *testing.T) {
	for _, s := range []string{"", "a", "/a", "/.switchboard/x/", "//", "/a//b/", "/a/../b/", "/a b/", "ws://h/a?q=1", "ws://h/a"} {
		if _, err := Parse(s, false); err == nil {
			t.Errorf("Parse(%q) accepted", s)
		}
	}
}
