package apps

import (
	"errors"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// fixture is the three apps of the config example plus two that the rules
// must refuse: chat is a server, notes a listed client, camera needs a
// token, intruder lists chat without chat admitting it, and site is an app
// known only by its web origin.
type fixture struct {
	dir     *Directory
	secrets map[string]string
}

func newFixture(t testing.TB) fixture {
	t.Helper()
	secrets := map[string]string{}
	hash := func(id string) string {
		s := NewSecret()
		secrets[id] = s
		h, err := HashCredential(s)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	cfg := []AppConfig{
		{ID: "chat", Name: "Chat", CredentialHash: hash("chat"), Listen: []string{"/chat/", "chat.example.com/rooms/"},
			Admit: Admit{Apps: []string{"notes"}, Origins: []string{"https://friends.example"}, Tokens: true}},
		{ID: "notes", Name: "Notes", CredentialHash: hash("notes"), Servers: []string{"chat"}},
		{ID: "camera", Name: "Camera", CredentialHash: hash("camera")},
		{ID: "intruder", CredentialHash: hash("intruder"), Servers: []string{"chat"}},
		{ID: "site", Origins: []string{"HTTPS://Site.Example:443"}, Servers: []string{"chat"}},
	}
	d, err := NewDirectory(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return fixture{dir: d, secrets: secrets}
}

func wantReason(t *testing.T, err error, want Reason) {
	t.Helper()
	if got := ReasonOf(err); got != want {
		t.Fatalf("reason %q (err %v), want %q", got, err, want)
	}
}

func TestAppNotInServersIsRefused(t *testing.T) {
	f := newFixture(t)
	wantReason(t, f.dir.MayConnect(Identity{App: "camera"}, "chat"), ReasonNotInServers)
	wantReason(t, f.dir.MayConnect(Identity{App: "notes"}, "chat"), "")
	// The caller's side holds even when the server admits anyone who asks
	// with a token: a manifest is not a token.
	wantReason(t, f.dir.MayConnect(Identity{App: "chat"}, "notes"), ReasonNotInServers)
}

func TestServerAdmitRefusesCaller(t *testing.T) {
	f := newFixture(t)
	wantReason(t, f.dir.MayConnect(Identity{App: "intruder"}, "chat"), ReasonNotAdmitted)
	// site lists chat, but chat admits neither the app nor its origin.
	site, ok := f.dir.ByOrigin("https://site.example")
	if !ok || site.App != "site" {
		t.Fatalf("ByOrigin = %+v, %v", site, ok)
	}
	wantReason(t, f.dir.MayConnect(site, "chat"), ReasonNotAdmitted)
	// A web origin with no app is admitted by admit.origins alone.
	friend, ok := f.dir.ByOrigin("https://FRIENDS.example:443")
	if ok || friend != (Identity{Origin: "https://friends.example"}) {
		t.Fatalf("ByOrigin(friend) = %+v, %v", friend, ok)
	}
	wantReason(t, f.dir.MayConnect(friend, "chat"), "")
	wantReason(t, f.dir.MayConnect(Identity{Origin: "https://stranger.example"}, "chat"), ReasonNotAdmitted)
	wantReason(t, f.dir.MayConnect(Identity{}, "chat"), ReasonNotAdmitted)
}

func TestMayConnectUnknownApps(t *testing.T) {
	f := newFixture(t)
	wantReason(t, f.dir.MayConnect(Identity{App: "notes"}, "nosuch"), ReasonUnknownApp)
	wantReason(t, f.dir.MayConnect(Identity{App: "gone"}, "chat"), ReasonUnknownApp)
}

func TestMayConnectWithGrant(t *testing.T) {
	f := newFixture(t)
	g := Grant{ID: "x", Holder: "camera", Target: "chat"}
	wantReason(t, f.dir.MayConnectWithGrant(Identity{App: "camera"}, g), "")
	wantReason(t, f.dir.MayConnectWithGrant(Identity{App: "notes"}, g), ReasonTokenInvalid)
	wantReason(t, f.dir.MayConnectWithGrant(Identity{Origin: "https://friends.example"}, g), ReasonTokenInvalid)
	// notes does not admit token holders.
	g2 := Grant{ID: "y", Holder: "camera", Target: "notes"}
	err := f.dir.MayConnectWithGrant(Identity{App: "camera"}, g2)
	wantReason(t, err, ReasonNotAdmitted)
	if strings.Contains(err.Error(), "notes") {
		t.Fatalf("grant error names the target: %v", err)
	}
}

func TestMayListen(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct {
		app, host, path string
		want            Reason
	}{
		{"chat", "", "/chat/", ""},
		{"chat", "", "/chat/room1/", ""},
		{"chat", "any.example", "/chat/", ""},
		{"chat", "Chat.Example.com", "/rooms/a/", ""},
		{"chat", "other.example", "/rooms/a/", ReasonScopeNotOwned},
		{"chat", "", "/rooms/", ReasonScopeNotOwned},
		{"notes", "", "/chat/", ReasonScopeOfOther},
		{"notes", "", "/chat/x/", ReasonScopeOfOther},
		{"notes", "", "/", ReasonScopeOfOther},
		{"notes", "", "/notes/", ReasonScopeNotOwned},
		{"nosuch", "", "/notes/", ReasonUnknownApp},
		{"chat", "", "/chat", ReasonBadScope},
		{"chat", "", "/chat/../x/", ReasonBadScope},
		{"chat", "", "/.switchboard/v1/", ReasonBadScope},
	} {
		err := f.dir.MayListen(c.app, c.host, c.path)
		if ReasonOf(err) != c.want {
			t.Errorf("MayListen(%s, %q, %q) = %v, want reason %q", c.app, c.host, c.path, err, c.want)
		}
	}
}

func TestNewDirectoryValidation(t *testing.T) {
	h := func() string { s, _ := HashCredential(NewSecret()); return s }
	shared := h()
	for _, c := range []struct {
		name string
		apps []AppConfig
		want string
	}{
		{"bad id", []AppConfig{{ID: "Chat", CredentialHash: h()}}, "lower-case"},
		{"id starts with dash", []AppConfig{{ID: "-x", CredentialHash: h()}}, "starting with"},
		{"long id", []AppConfig{{ID: strings.Repeat("a", 64), CredentialHash: h()}}, "1 to 63"},
		{"duplicate id", []AppConfig{{ID: "a", CredentialHash: h()}, {ID: "a", CredentialHash: h()}}, "duplicate app id"},
		{"no way in", []AppConfig{{ID: "a"}}, "neither credential_hash nor origins"},
		{"raw secret", []AppConfig{{ID: "a", CredentialHash: NewSecret()}}, "must start with"},
		{"short hash", []AppConfig{{ID: "a", CredentialHash: "sha256$abcd"}}, "64 hex digits"},
		{"shared secret", []AppConfig{{ID: "a", CredentialHash: shared}, {ID: "b", CredentialHash: shared}}, "same credential as app a"},
		{"shared origin", []AppConfig{{ID: "a", Origins: []string{"https://x.example"}}, {ID: "b", Origins: []string{"https://X.example:443"}}}, "already belongs to app a"},
		{"bad origin", []AppConfig{{ID: "a", Origins: []string{"https://x.example/path"}}}, "scheme://host"},
		{"bad admit origin", []AppConfig{{ID: "a", CredentialHash: h(), Admit: Admit{Origins: []string{"x.example"}}}}, "admit.origins"},
		{"scope without slash", []AppConfig{{ID: "a", CredentialHash: h(), Listen: []string{"/a"}}}, "start and end with /"},
		{"scope without path", []AppConfig{{ID: "a", CredentialHash: h(), Listen: []string{"host.example"}}}, "want /path/ or host/path/"},
		{"reserved scope", []AppConfig{{ID: "a", CredentialHash: h(), Listen: []string{"/.switchboard/x/"}}}, "reserved prefix"},
		{"overlap", []AppConfig{{ID: "a", CredentialHash: h(), Listen: []string{"/x/"}}, {ID: "b", CredentialHash: h(), Listen: []string{"/x/y/"}}}, "overlaps scope /x/ of app a"},
		{"overlap host", []AppConfig{{ID: "a", CredentialHash: h(), Listen: []string{"h.example/x/"}}, {ID: "b", CredentialHash: h(), Listen: []string{"/"}}}, "overlaps"},
		{"unknown server", []AppConfig{{ID: "a", CredentialHash: h(), Servers: []string{"b"}}}, `servers: no app "b"`},
		{"unknown admitted", []AppConfig{{ID: "a", CredentialHash: h(), Admit: Admit{Apps: []string{"b"}}}}, `admit.apps: no app "b"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, err := NewDirectory(c.apps)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("NewDirectory = %v, %v; want error containing %q", d, err, c.want)
			}
		})
	}
	// Two apps may listen on the same path on different hosts, and one app
	// may own nested scopes.
	_, err := NewDirectory([]AppConfig{
		{ID: "a", CredentialHash: h(), Listen: []string{"a.example/x/", "a.example/x/y/"}},
		{ID: "b", CredentialHash: h(), Listen: []string{"b.example/x/"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Every problem is reported, not just the first.
	_, err = NewDirectory([]AppConfig{{ID: "A"}, {ID: "b"}, {ID: "c", CredentialHash: h(), Servers: []string{"zz"}}})
	if err == nil || strings.Count(err.Error(), "\n") < 2 {
		t.Fatalf("want three joined errors, got %v", err)
	}
}

func TestAuthenticate(t *testing.T) {
	f := newFixture(t)
	for id, s := range f.secrets {
		got, ok := f.dir.Authenticate(s)
		if !ok || got != (Identity{App: id}) {
			t.Fatalf("Authenticate(secret of %s) = %+v, %v", id, got, ok)
		}
	}
	h, _ := HashCredential(f.secrets["chat"])
	for _, s := range []string{"", "chat", NewSecret(), f.secrets["chat"] + "x", f.secrets["chat"][:len(f.secrets["chat"])-1], h} {
		if got, ok := f.dir.Authenticate(s); ok || got != (Identity{}) {
			t.Fatalf("Authenticate(%q) = %+v, %v", s, got, ok)
		}
	}
}

// TestAuthenticateTiming checks that a miss costs what a hit costs: no
// early return for unknown or short secrets. It compares medians of
// interleaved batches, with a wide margin for noisy machines; returning
// early on a miss makes misses tens of times cheaper and fails it.
func TestAuthenticateTiming(t *testing.T) {
	f := newFixture(t)
	known := f.secrets["notes"]
	unknown := NewSecret()
	const batches, per = 41, 200
	measure := func(s string) time.Duration {
		start := time.Now()
		for range per {
			f.dir.Authenticate(s)
		}
		return time.Since(start)
	}
	var hits, misses, empties []time.Duration
	for range batches {
		hits = append(hits, measure(known))
		misses = append(misses, measure(unknown))
		empties = append(empties, measure(""))
	}
	// The fastest batch of each: load on a shared machine only adds time,
	// so the minimum is the cost with the least noise in it (a median
	// of interleaved batches still failed once on a loaded machine).
	h, m, e := slices.Min(hits), slices.Min(misses), slices.Min(empties)
	t.Logf("fastest batch of %d: hit %v, miss %v, empty %v", per, h, m, e)
	for _, other := range []time.Duration{m, e} {
		if other*4 < h || other > h*4 {
			t.Fatalf("a miss costs %v against %v for a hit: the difference tells which secrets exist", other, h)
		}
	}
}

func TestByOrigin(t *testing.T) {
	f := newFixture(t)
	for _, o := range []string{"https://site.example", "HTTPS://SITE.EXAMPLE:443", "https://site.example/"} {
		if id, ok := f.dir.ByOrigin(o); !ok || id != (Identity{App: "site", Origin: "https://site.example"}) {
			t.Errorf("ByOrigin(%q) = %+v, %v", o, id, ok)
		}
	}
	for _, o := range []string{"http://site.example", "https://site.example:8443"} {
		if id, ok := f.dir.ByOrigin(o); ok || id.App != "" {
			t.Errorf("ByOrigin(%q) = %+v, %v: another origin", o, id, ok)
		}
	}
	for _, o := range []string{"null", "", "site.example", "https://u@site.example"} {
		if id, ok := f.dir.ByOrigin(o); ok || id != (Identity{}) {
			t.Errorf("ByOrigin(%q) = %+v, %v: not an origin", o, id, ok)
		}
	}
}

func TestAppReturnsCopy(t *testing.T) {
	f := newFixture(t)
	a, ok := f.dir.App("chat")
	if !ok || a.Name != "Chat" || a.Listen[1] != "chat.example.com/rooms/" {
		t.Fatalf("App(chat) = %+v, %v", a, ok)
	}
	a.Admit.Apps[0] = "intruder"
	wantReason(t, f.dir.MayConnect(Identity{App: "intruder"}, "chat"), ReasonNotAdmitted)
	if b, _ := f.dir.App("chat"); b.Admit.Apps[0] != "notes" {
		t.Fatal("changing App's result changed the directory")
	}
	if s, _ := f.dir.App("site"); s.Origins[0] != "https://site.example" {
		t.Fatalf("origins not normalized: %v", s.Origins)
	}
	if ids := f.dir.IDs(); !sort.StringsAreSorted(ids) || len(ids) != 5 {
		t.Fatalf("IDs = %v", ids)
	}
}

func TestChoosable(t *testing.T) {
	f := newFixture(t)
	var got []string
	for _, a := range f.dir.Choosable("camera") {
		got = append(got, a.ID)
	}
	if !slices.Equal(got, []string{"chat"}) {
		t.Fatalf("Choosable(camera) = %v", got)
	}
	if c := f.dir.Choosable("notes"); len(c) != 0 { // already lists chat
		t.Fatalf("Choosable(notes) = %v", c)
	}
}

func TestHashCredential(t *testing.T) {
	if _, err := HashCredential("password123"); err == nil {
		t.Fatal("a short secret was accepted")
	}
	s1, s2 := NewSecret(), NewSecret()
	if s1 == s2 || !strings.HasPrefix(s1, SecretPrefix) || len(s1) < MinSecretLen {
		t.Fatalf("NewSecret: %q, %q", s1, s2)
	}
	h1, err := HashCredential(s1)
	if err != nil {
		t.Fatal(err)
	}
	h1b, _ := HashCredential(s1)
	h2, _ := HashCredential(s2)
	if h1 != h1b || h1 == h2 || !strings.HasPrefix(h1, "sha256$") || len(h1) != 7+64 || strings.Contains(h1, s1) {
		t.Fatalf("HashCredential: %q %q %q", h1, h1b, h2)
	}
}

func TestDecodeStrict(t *testing.T) {
	var a AppConfig
	if err := DecodeStrict(strings.NewReader(`{"id":"x","admit":{"any":true}}`), &a); err != nil || !a.Admit.Any {
		t.Fatalf("DecodeStrict = %v, %+v", err, a)
	}
	for _, in := range []string{`{"id":"x","server":["y"]}`, `{"id":"x","admit":{"all":true}}`, `{"id":"x"} {}`, `{"id":"x"`, ``} {
		if err := DecodeStrict(strings.NewReader(in), &a); err == nil {
			t.Errorf("DecodeStrict(%q) accepted it", in)
		}
	}
}

func TestReasonOf(t *testing.T) {
	if ReasonOf(nil) != "" || ReasonOf(errors.New("x")) != "error" {
		t.Fatal("ReasonOf of nil or a plain error")
	}
}
