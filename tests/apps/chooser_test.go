package apps_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/apps"
	"github.com/switchboard-dev/switchboard/config"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
	"github.com/switchboard-dev/switchboard/sdk"
)

const chooserHint = "run web/install-deps.sh (apt: chromium nodejs npm; npm ci in web/)"

// openerPage is the asking app's page, on its own origin: it opens the
// chooser and keeps what the chooser posts back from the broker's origin.
const openerPage = `<!doctype html><meta charset="utf-8"><title>Camera</title>
<button id="choose">Choose apps</button>
<script>
const broker = %q;
document.getElementById('choose').onclick = () => {
  window.open(broker + '/.switchboard/chooser?app=camera&origin=' + encodeURIComponent(location.origin), 'chooser', 'width=520,height=760');
};
window.addEventListener('message', (ev) => {
  if (ev.origin !== broker || ev.data?.type !== 'switchboard-chooser') return;
  window.received = { tokens: ev.data.tokens, keys: Object.keys(ev.data).sort() };
});
</script>`

// TestChooserInChromium: the owner signs in, picks chat for camera, and
// camera's page receives a token that then lets camera (and only camera)
// reach chat. Screenshots go to artifacts/screenshots/chooser*.png.
func TestChooserInChromium(t *testing.T) {
	root := repoRoot(t)
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("Debian's chromium is missing (%s): %s", chromium, chooserHint)
	}
	if _, err := os.Stat(filepath.Join(root, "web", "node_modules", "playwright-core")); err != nil {
		t.Fatalf("web/node_modules/playwright-core is missing: %s", chooserHint)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed: %s", chooserHint)
	}

	// The asking app's page, on another origin than the broker's.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opener := "http://" + ln.Addr().String()

	s := testutil.NewAppSecrets("chat", "camera", "photos", "notes")
	cfg := &config.File{AdminToken: "owner-" + apps.NewSecret(), Apps: []apps.AppConfig{
		{ID: "chat", Name: "Chat server", CredentialHash: s.Hash("chat"), Listen: []string{"/chat/"}, Admit: apps.Admit{Tokens: true}},
		{ID: "camera", Name: "Camera", CredentialHash: s.Hash("camera"), Origins: []string{opener}},
		{ID: "photos", Name: "Photo backup", CredentialHash: s.Hash("photos"), Listen: []string{"/photos/"}, Admit: apps.Admit{Any: true}},
		{ID: "notes", Name: "Notes", CredentialHash: s.Hash("notes")}, // admits nobody: not offered
	}}
	b := startBroker(t, t.TempDir(), cfg)
	page := []byte(fmt.Sprintf(openerPage, b.url))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(page)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(root, "web", "chooser_test.mjs"))
	cmd.Dir = filepath.Join(root, "web")
	cmd.Env = append(os.Environ(), "BROKER="+b.url, "OPENER="+opener+"/", "ADMIN_TOKEN="+cfg.AdminToken,
		"CHROMIUM="+chromium, "SCREENSHOTS="+filepath.Join(root, "artifacts", "screenshots"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("web/chooser_test.mjs: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	if stderr.Len() > 0 {
		t.Logf("web/chooser_test.mjs:\n%s", stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var got struct {
		Received struct {
			Tokens []string `json:"tokens"`
			Keys   []string `json:"keys"`
		} `json:"received"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &got); err != nil {
		t.Fatalf("chooser_test.mjs output %q: %v", stdout.String(), err)
	}
	if len(got.Received.Tokens) != 1 || strings.Join(got.Received.Keys, ",") != "tokens,type" {
		t.Fatalf("the opener received %+v, want one token and only {type, tokens}", got.Received)
	}
	tok := got.Received.Tokens[0]

	// chat attaches with its credential; camera reaches it with the token.
	l, err := sdk.Listen(ctx, b.ws()+"/chat/", &sdk.ListenOptions{Credential: s["chat"]})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan string, 4)
	go func() {
		for {
			req, err := l.Accept(ctx)
			if err != nil {
				return
			}
			accepted <- req.App
			if ch, err := req.Accept(ctx, "", nil); err == nil {
				ch.Close(websocket.StatusNormalClosure, "")
			}
		}
	}()
	c, err := sdk.DialApp(ctx, b.ws(), "wsapp://"+tok+"/", &sdk.AppDialOptions{Credential: s["camera"]})
	if err != nil {
		t.Fatalf("camera with the chooser's token: %v", err)
	}
	c.CloseNow()
	if app := <-accepted; app != "camera" {
		t.Fatalf("chat was told the caller is %q, want camera", app)
	}
	if c, err := sdk.DialApp(ctx, b.ws(), "wsapp://"+tok+"/", &sdk.AppDialOptions{Credential: s["notes"]}); err == nil {
		c.CloseNow()
		t.Fatal("notes used camera's token")
	}
}
