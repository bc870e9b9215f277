package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/config"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
	"github.com/switchboard-dev/switchboard/server"
)

// TestManifestOnPlainRoute: a page whose origin belongs to an app is held
// to the manifests on a plain ws:// URL of an app's scope as on wsapp://;
// an app with wsapp_only is not reachable by URL at all. Each refusal is
// the uniform one, counted with its reason.
func TestManifestOnPlainRoute(t *testing.T) {
	s := testutil.NewAppSecrets("chat", "notes", "camera", "spy", "echo")
	as := testApps(s, "notes")
	for i := range as {
		switch as[i].ID {
		case "camera":
			as[i].Origins = []string{"https://camera.example"}
		case "spy":
			as[i].Origins = []string{"https://spy.example"}
		case "echo":
			as[i].WsappOnly = true
		}
	}
	e := startEnv(t, t.TempDir(), &config.File{AdminToken: adminSecret, Apps: as})
	e.mustListen("/chat/", s["chat"])
	e.mustListen("/echo/", s["echo"])

	// camera does not list chat: refused on wsapp:// and on the plain URL.
	e.refusedLike(appPath("chat", "/x"), "not_in_servers", "Origin: https://camera.example")
	e.refusedLike("/chat/x", "not_in_servers", "Origin: https://camera.example")
	// spy lists chat, chat does not admit spy.
	e.refusedLike("/chat/x", "not_admitted", "Origin: https://spy.example")
	// echo is wsapp-only: no plain client reaches it, whoever it is.
	e.refusedLike("/echo/x", "wsapp_only")
	e.refusedLike("/echo/x", "wsapp_only", "Origin: https://notes.example")
}

// TestTokenIssueRefusesTargetWithoutTokens: a token to an app whose admit
// rule does not take token holders would be refused at every use; issuing
// one is refused with a message that says what to change.
func TestTokenIssueRefusesTargetWithoutTokens(t *testing.T) {
	e, _ := newEnv(t)
	b, _ := json.Marshal(server.TokenRequest{Holder: "camera", Target: "notes", TTL: "1h"})
	req, _ := http.NewRequest(http.MethodPost, e.http+"/.switchboard/v1/tokens", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+adminSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `app "notes" does not admit token holders`) {
		t.Fatalf("issue to notes: %s %s", resp.Status, body)
	}
	e.issue("camera", "chat", "1h") // chat admits token holders
}

// TestAppScope: an app learns where it listens from its credential (the
// browser library's setMessageHandler without a scope); a wrong one is 403.
func TestAppScope(t *testing.T) {
	e, s := newEnv(t)
	post := func(body string) (int, string, string) {
		resp, err := http.Post(e.http+"/.switchboard/v1/app-scope", "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, strings.TrimSpace(string(b)), resp.Header.Get("Access-Control-Allow-Origin")
	}
	if code, body, acao := post(s["chat"]); code != 200 || body != `{"app":"chat","scope":"/chat/"}` || acao != "*" {
		t.Errorf("chat: %d %s (ACAO %q)", code, body, acao)
	}
	if code, body, _ := post("sb_wrong"); code != http.StatusForbidden || body != "Forbidden" {
		t.Errorf("wrong credential: %d %s", code, body)
	}
	if code, _, _ := post(s["notes"]); code != http.StatusNotFound {
		t.Errorf("an app without listen scope: %d", code)
	}
}
