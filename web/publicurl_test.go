package web

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/config"
	"github.com/switchboard-dev/switchboard/daemon"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
)

// TestBrowserPublicURL: on a production broker (a credential, no dev mode),
// the browser library follows the broker's public URL
// (URL frames, 0x05) after it attached. The broker's port mapping is
// played by a PublicURL hook the JS test moves through a control endpoint
// (POST /map?ext=HOST:PORT, POST /map to drop the mapping), which calls
// Broker.PublicURLChanged as the port mapper does; the page's services
// (WebSocketListener, BrowserSocket, registerService) fire urlchange and
// show the new URL (test/publicurl/urlchange.test.mjs).
func TestBrowserPublicURL(t *testing.T) {
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	need(t, "Debian's chromium", chromium)
	need(t, "playwright-core (npm)", filepath.Join("node_modules", "playwright-core", "package.json"))
	need(t, "ws (npm)", filepath.Join("node_modules", "ws", "package.json"))

	var external atomic.Pointer[string]
	public := func(scopeURL string) string {
		if e := external.Load(); e != nil {
			rest := strings.TrimPrefix(strings.TrimPrefix(scopeURL, "ws://"), "wss://")
			if i := strings.IndexByte(rest, '/'); i >= 0 {
				return "ws://" + *e + rest[i:]
			}
		}
		return scopeURL
	}
	// A production broker: a config with one credential (owning "/", which
	// the page is configured with), no dev mode.
	secret, hash, err := config.NewCredential()
	if err != nil {
		t.Fatal(err)
	}
	f := &config.File{Credentials: []config.Credential{{Name: "page", CredentialHash: hash, Scopes: []string{"/"}}}}
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	b, ws := testutil.StartBroker(t, daemon.Settings{File: f}, daemon.Options{PublicURL: public, Web: Files})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /map", func(w http.ResponseWriter, r *http.Request) {
		if ext := r.URL.Query().Get("ext"); ext != "" {
			external.Store(&ext)
		} else {
			external.Store(nil)
		}
		w.Write([]byte(strings.Repeat("x", b.PublicURLChanged()))) // one x per service told
	})
	ctrl := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go ctrl.Serve(ln)
	t.Cleanup(func() { ctrl.Close() })

	runNode(t, []string{
		"SWITCHBOARD_URL=" + "http" + strings.TrimPrefix(ws, "ws"),
		"SWITCHBOARD_CONTROL=http://" + ln.Addr().String(),
		"SWITCHBOARD_CREDENTIAL=" + secret,
		"CHROMIUM=" + chromium,
	}, 2*time.Minute, filepath.Join("test", "publicurl", "urlchange.test.mjs"))
}
