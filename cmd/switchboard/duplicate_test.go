package main

import (
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
)

// TestListenDuplicateStandsBy: two copies of the same `listen` (same scope,
// same credential, same label: two supervisors, a script run twice) on a
// production broker. The second does not take the scope over: it says on
// stderr and in the logs that it stands by, and the first keeps serving.
// When the first is killed, the standby takes over, with the clients'
// channels. A deliberate replacement still works: --takeover (or another
// --label) supersedes the active copy, which drains and exits 0.
func TestListenDuplicateStandsBy(t *testing.T) {
	b := startProdBroker(t)
	scope := b.ws + "/svc/dup/"
	first, _ := testutil.StartListen(t, scope, "--exec", "while read l; do echo first $l; done", "--credential", b.secret, "--label", "v1")
	c := dial(t, scope+"a")
	send(t, c, websocket.MessageText, "1")
	expect(t, c, websocket.MessageText, "first 1")

	second := testutil.Start(t, "listen", scope, "--exec", "while read l; do echo second $l; done", "--credential", b.secret, "--label", "v1")
	second.WaitLine(`switchboard: standing by for ws://\S+/svc/dup/: another instance with the same label serves it`)
	second.WaitLine(`level=WARN msg="another instance with the same label is active on this scope; standing by`)
	b.p.WaitLine(`level=WARN msg="instance attached as a standby: an instance with the same label is active`)
	// switchboard status shows both: the first active, the copy waiting.
	st, stderr, code := testutil.Run(t, "", nil, "status", "--broker", b.http, "--admin-token", testAdminToken)
	if code != 0 || !regexp.MustCompile(`instance \d+\s+active\s+version "v1"`).MatchString(st) ||
		!regexp.MustCompile(`instance \d+\s+waiting\s+version "v1"`).MatchString(st) {
		t.Fatalf("status (%d) does not show one active and one waiting v1:\n%s%s", code, st, stderr)
	}
	// The first copy was not superseded: it serves the old client and new ones.
	send(t, c, websocket.MessageText, "2")
	expect(t, c, websocket.MessageText, "first 2")
	c2 := dial(t, scope+"b")
	send(t, c2, websocket.MessageText, "3")
	expect(t, c2, websocket.MessageText, "first 3")
	for _, line := range first.Lines() {
		if strings.Contains(line, "newer instance took over") {
			t.Fatalf("the active copy was superseded by a duplicate: %s", line)
		}
	}

	// The active copy dies: the standby takes over, and new clients reach it.
	first.Signal(syscall.SIGKILL)
	first.Wait()
	second.WaitLine(`switchboard: listening on ws://\S+ \(the active instance went away; this standby took over\)`)
	c3 := dial(t, scope+"c")
	send(t, c3, websocket.MessageText, "4")
	expect(t, c3, websocket.MessageText, "second 4")

	// A deliberate replacement with the same label: --takeover supersedes
	// the active copy, which finishes and exits 0.
	testutil.StartListen(t, scope, "--echo", "--credential", b.secret, "--label", "v1", "--takeover")
	if code := second.Wait(); code != 0 {
		t.Fatalf("superseded listen exited %d", code)
	}
	second.WaitLine(`newer instance took over`)
	c4 := dial(t, scope+"d")
	send(t, c4, websocket.MessageText, "5")
	expect(t, c4, websocket.MessageText, "5")
}
