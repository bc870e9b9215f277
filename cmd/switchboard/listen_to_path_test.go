package main

import (
	"strings"
	"testing"
)

// TestForwardStaysUnderBase (issue 12, hole 3): listen --to never forwards
// a client outside --to's base path, whatever the spelling of the dot
// segments; paths under it keep their meaning.
func TestForwardStaysUnderBase(t *testing.T) {
	const base = "ws://127.0.0.1:9000/app/"
	for _, c := range []struct{ scope, target, want string }{
		{"/pre/", "ws://b/pre/x", "ws://127.0.0.1:9000/app/x"},
		{"/pre/", "ws://b/pre", "ws://127.0.0.1:9000/app/"},
		{"/pre/", "ws://b/pre/a/b?q=1", "ws://127.0.0.1:9000/app/a/b?q=1"},
		{"/pre/", "ws://b/pre/caf%c3%a9", "ws://127.0.0.1:9000/app/caf%C3%A9"},
		{"/pre/", "ws://b/pre/a/../b", "ws://127.0.0.1:9000/app/b"},
		{"h.example/pre/", "ws://h.example/pre/x", "ws://127.0.0.1:9000/app/x"},
	} {
		got, err := forwardURL(base, c.scope, c.target)
		if err != nil || got != c.want {
			t.Errorf("forwardURL(%s, %s) = %q, %v; want %q", c.scope, c.target, got, err, c.want)
		}
	}
	for _, target := range []string{
		"ws://b/pre/../../private/secret",
		"ws://b/pre/%2e%2e/%2E%2E/private/secret",
		"ws://b/pre/..%2f..%2fprivate/secret",
		"ws://b/pre/..%2F..%2Fprivate",
		"ws://b/pre/..%5c..%5cprivate",
		"ws://b/pre/%zz",
		"ws://b/other/x",
	} {
		got, err := forwardURL(base, "/pre/", target)
		if err == nil && !strings.HasPrefix(got, base) || err == nil && strings.Contains(strings.ToLower(got), "private") {
			t.Errorf("forwardURL(/pre/, %s) = %q: outside --to's base", target, got)
		}
	}
}
