package daemon_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/config"
	"github.com/switchboard-dev/switchboard/daemon"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
	"github.com/switchboard-dev/switchboard/protocol"
	"github.com/switchboard-dev/switchboard/sdk"
)

func writeFile(t *testing.T, path string, creds ...config.Credential) {
	t.Helper()
	var b strings.Builder
	b.WriteString(`{"admin_token": "admin-0123456789abcdef0123456789", "credentials": [`)
	for i, c := range creds {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`{"name": "` + c.Name + `", "credential_hash": "` + c.CredentialHash + `", "scopes": ["` + strings.Join(c.Scopes, `","`) + `"]}`)
	}
	b.WriteString("]}")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

func newCred(t *testing.T, name, scope string) (config.Credential, string) {
	t.Helper()
	secret, hash, err := config.NewCredential()
	if err != nil {
		t.Fatal(err)
	}
	return config.Credential{Name: name, CredentialHash: hash, Scopes: []string{scope}}, secret
}

// TestReloadCredentials: a production broker (config file, no --dev)
// applies credential changes on reload: a credential that remains keeps
// its link, a removed one's link is ended as unauthorized, one whose
// secret changed loses its link, a new one can attach at once, and the log
// says what changed.
func TestReloadCredentials(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	keep, keepSecret := newCred(t, "keep", "/keep/")
	gone, goneSecret := newCred(t, "gone", "/gone/")
	rekey, rekeySecret := newCred(t, "rekey", "/rekey/")
	writeFile(t, path, keep, gone, rekey)

	f, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	s := daemon.FromFile(path, f)
	s.Listen = "127.0.0.1:0"
	logs := &testutil.SyncBuffer{}
	d, err := daemon.New(s, daemon.Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := d.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- d.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	base := "ws://" + ln.Addr().String()
	attach := func(scope, secret string) (*sdk.Listener, error) {
		actx, acancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer acancel()
		l, err := sdk.Listen(actx, base+scope, &sdk.ListenOptions{Credential: secret})
		if err == nil {
			t.Cleanup(func() { l.Close() })
		}
		return l, err
	}
	lKeep, err := attach("/keep/", keepSecret)
	if err != nil {
		t.Fatal(err)
	}
	lGone, err := attach("/gone/", goneSecret)
	if err != nil {
		t.Fatal(err)
	}
	lRekey, err := attach("/rekey/", rekeySecret)
	if err != nil {
		t.Fatal(err)
	}
	added, addedSecret := newCred(t, "added", "/added/")
	if _, err := attach("/added/", addedSecret); err == nil {
		t.Fatal("a credential not yet in the file attached")
	}

	rekeyed, rekeyedSecret := newCred(t, "rekey", "/rekey/")
	writeFile(t, path, keep, added, rekeyed)
	if err := d.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}

	for name, l := range map[string]*sdk.Listener{"removed": lGone, "re-keyed": lRekey} {
		select {
		case <-l.Done():
			var le *sdk.LinkError
			if !errors.As(l.Err(), &le) || le.Code != protocol.ErrCodeUnauthorized {
				t.Errorf("the %s credential's link ended with %v, want unauthorized", name, l.Err())
			}
		case <-time.After(10 * time.Second):
			t.Errorf("the %s credential's link survived the reload", name)
		}
	}
	select {
	case <-lKeep.Done():
		t.Fatalf("the link of a credential that remains ended: %v", lKeep.Err())
	default:
	}
	if !lKeep.Active() {
		t.Fatal("the remaining credential's instance is no longer active")
	}
	if _, err := attach("/added/", addedSecret); err != nil {
		t.Fatalf("a credential added by the reload: %v", err)
	}
	if _, err := attach("/rekey/", rekeySecret); err == nil {
		t.Fatal("the old secret of a re-keyed credential still attaches")
	}
	if _, err := attach("/rekey/", rekeyedSecret); err != nil {
		t.Fatalf("the new secret of a re-keyed credential: %v", err)
	}
	testutil.WaitFor(t, "the reload log line", 5*time.Second, func() bool {
		l := logs.String()
		return strings.Contains(l, `msg="configuration reloaded"`) && strings.Contains(l, "credentials_added=added") &&
			strings.Contains(l, "credentials_removed=gone") && strings.Contains(l, "credentials_changed=rekey") &&
			strings.Contains(l, "links_ended_on=")
	})

	// A file that does not load changes nothing.
	os.WriteFile(path, []byte(`{"credentials": [{"nme": "x"}]}`), 0o600)
	if err := d.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), `did you mean "name"`) {
		t.Fatalf("reload of a bad file: %v", err)
	}
	if _, err := attach("/keep2/", keepSecret); err == nil {
		t.Fatal("scope outside the credential")
	}
}

// TestDefaultsInOnePlace: a Settings left zero gets the documented
// defaults, the same ones serve uses.
func TestDefaultsInOnePlace(t *testing.T) {
	d, err := daemon.New(daemon.Settings{}, daemon.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Shutdown(context.Background())
	s := d.Settings()
	if s.Listen != daemon.DefaultListen || s.HandshakeTimeout != daemon.DefaultHandshakeTimeout ||
		s.MaxHeaderBytes != daemon.DefaultMaxHeaderBytes || s.MaxConnsPerAddr != daemon.DefaultMaxConnsPerAddr ||
		s.ShutdownGrace != daemon.DefaultShutdownGrace || s.Compression == nil || !*s.Compression || s.Node != "local" {
		t.Fatalf("defaults: %+v", s)
	}
}
