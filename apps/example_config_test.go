package apps

import (
	"strings"
	"testing"
	"time"
)

// TestExampleJSON checks the documented config: it decodes strictly,
// validates, and means what the docs say of it.
func TestExampleJSON(t *testing.T) {
	var cfg []AppConfig
	if err := DecodeStrict(strings.NewReader(ExampleJSON), &cfg); err != nil {
		t.Fatal(err)
	}
	d, err := NewDirectory(cfg)
	if err != nil {
		t.Fatal(err)
	}
	notes, ok := d.ByOrigin("https://notes.example")
	if !ok {
		t.Fatal("notes.example is not notes")
	}
	wantReason(t, d.MayConnect(notes, "chat"), "")
	wantReason(t, d.MayConnect(Identity{App: "camera"}, "chat"), ReasonNotInServers)
	wantReason(t, d.MayConnectWithGrant(Identity{App: "camera"}, Grant{Holder: "camera", Target: "chat"}), "")
	wantReason(t, d.MayConnect(Identity{Origin: "https://friends.example"}, "chat"), "")
	wantReason(t, d.MayListen("chat", "", "/chat/general/"), "")
	wantReason(t, d.MayListen("camera", "", "/chat/"), ReasonScopeOfOther)

	// A token issued for camera reaches chat through the same check.
	s, err := NewSealer(make([]byte, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	tok, _, _ := s.Issue("camera", "chat", time.Hour)
	g, err := s.Open(tok, "camera", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	wantReason(t, d.MayConnectWithGrant(Identity{App: "camera"}, g), "")
}
