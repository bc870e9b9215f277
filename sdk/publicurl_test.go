package sdk_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/daemon"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
	"github.com/switchboard-dev/switchboard/sdk"
)

// TestPublicURLFollowsTheBroker: a Listener's URL follows the broker's
// public URL (a port mapping made, lost or moved) after it attached, and
// URLChanged says when; a broker whose URL did not change tells nothing.
func TestPublicURLFollowsTheBroker(t *testing.T) {
	var external atomic.Pointer[string]
	public := func(scopeURL string) string {
		if e := external.Load(); e != nil {
			i := strings.Index(scopeURL[len("ws://"):], "/") + len("ws://")
			return "ws://" + *e + scopeURL[i:]
		}
		return scopeURL
	}
	b, ws := testutil.StartBroker(t, daemon.Settings{}, daemon.Options{PublicURL: public})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := sdk.Listen(ctx, ws+"/pub/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.URL() != ws+"/pub/" {
		t.Fatalf("URL before any mapping: %s", l.URL())
	}
	if n := b.PublicURLChanged(); n != 0 {
		t.Fatalf("told %d services of an unchanged URL", n)
	}
	for _, ext := range []string{"203.0.113.9:40123", "198.51.100.4:443"} {
		changed := l.URLChanged()
		e := ext
		external.Store(&e)
		if n := b.PublicURLChanged(); n != 1 {
			t.Fatalf("told %d services, want 1", n)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatal("URLChanged did not fire")
		}
		if want := "ws://" + ext + "/pub/"; l.URL() != want {
			t.Fatalf("URL %s, want %s", l.URL(), want)
		}
	}
	changed := l.URLChanged()
	external.Store(nil) // the mapping is lost: back to the local URL
	b.PublicURLChanged()
	<-changed
	if l.URL() != ws+"/pub/" {
		t.Fatalf("URL after the mapping was lost: %s", l.URL())
	}
}
