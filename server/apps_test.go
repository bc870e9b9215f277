package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard/apps"
	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/config"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
	"github.com/switchboard-dev/switchboard/sdk"
	"github.com/switchboard-dev/switchboard/server"
)

// These tests run the real broker and server on 127.0.0.1 with a config
// file of apps, a real service attached with the sdk, and real WebSocket
// clients: one test per rule of the apps model.

// testApps: chat is a server (admits notes and token holders); notes lists
// chat; camera needs a token; spy lists chat but chat does not admit it;
// echo is a second server that admits anyone.
func testApps(s testutil.AppSecrets, chatAdmits ...string) []apps.AppConfig {
	return []apps.AppConfig{
		{ID: "chat", Name: "Chat server", CredentialHash: s.Hash("chat"), Listen: []string{"/chat/"},
			Admit: apps.Admit{Apps: chatAdmits, Tokens: true}},
		{ID: "notes", Name: "Notes", CredentialHash: s.Hash("notes"), Origins: []string{"https://notes.example"}, Servers: []string{"chat"}},
		{ID: "camera", Name: "Camera", CredentialHash: s.Hash("camera")},
		{ID: "spy", Name: "Spy", CredentialHash: s.Hash("spy"), Servers: []string{"chat"}},
		{ID: "echo", Name: "Echo", CredentialHash: s.Hash("echo"), Listen: []string{"/echo/"}, Admit: apps.Admit{Any: true}},
	}
}

type env struct {
	t       *testing.T
	dir     string
	cfgPath string
	http    string // http://127.0.0.1:port
	ws      string // ws://127.0.0.1:port
	reg     *prometheus.Registry
	st      *server.Apps
	b       *broker.Broker
	hs      *http.Server
	done    chan struct{}

	mu    sync.Mutex
	conns []*websocket.Conn // clients to cut before shutdown
}

// startEnv writes cfg to dir/config.json (when not nil) and starts a
// broker on it the way `switchboard serve --config` does.
func startEnv(t *testing.T, dir string, cfg *config.File) *env {
	t.Helper()
	e := &env{t: t, dir: dir, cfgPath: filepath.Join(dir, "config.json"), done: make(chan struct{})}
	if cfg != nil {
		testutil.WriteConfig(t, e.cfgPath, cfg)
	}
	c, err := config.Load(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := c.Keys()
	if err != nil {
		t.Fatal(err)
	}
	var live atomic.Pointer[config.Keys]
	live.Store(keys)
	sealer, revs, err := c.OpenTokens(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	e.st = server.NewApps(keys.Directory(), sealer, revs)
	quiet := slog.New(slog.DiscardHandler)
	e.reg = prometheus.NewRegistry()
	e.b = broker.New(broker.Config{Logger: quiet, Registerer: e.reg, Authorize: config.Authorizer(false, live.Load)})
	srv := server.New(server.Config{Broker: e.b, Logger: quiet, Registerer: e.reg, Apps: e.st, AdminToken: c.AdminToken,
		Reload: func(context.Context) error {
			_, k, err := config.Reload(e.cfgPath)
			if err != nil {
				return err
			}
			live.Store(k)
			e.st.Swap(k.Directory())
			return nil
		}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.http, e.ws = "http://"+ln.Addr().String(), "ws://"+ln.Addr().String()
	e.hs = srv.HTTPServer(5*time.Second, 16<<10)
	go func() {
		defer close(e.done)
		_ = e.hs.Serve(ln)
	}()
	t.Cleanup(e.stop)
	return e
}

func (e *env) stop() {
	select {
	case <-e.done:
		return
	default:
	}
	// Clients that do not read would hold the close handshake open.
	e.mu.Lock()
	for _, c := range e.conns {
		c.CloseNow()
	}
	e.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = e.b.Shutdown(ctx)
	_ = e.hs.Shutdown(ctx)
	<-e.done
}

// service attaches a server app with the sdk: it records each connect
// request and echoes every message.
type service struct {
	l    *sdk.Listener
	reqs chan *sdk.Request
	wg   sync.WaitGroup
}

func (e *env) listen(scope, secret string) (*service, error) {
	ctx := context.Background()
	l, err := sdk.Listen(ctx, e.ws+scope, &sdk.ListenOptions{Credential: secret})
	if err != nil {
		return nil, err
	}
	s := &service{l: l, reqs: make(chan *sdk.Request, 64)}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			req, err := l.Accept(ctx)
			if err != nil {
				return
			}
			s.reqs <- req
			proto := ""
			if len(req.Protocols) > 0 {
				proto = req.Protocols[0]
			}
			ch, err := req.Accept(ctx, proto, nil)
			if err != nil {
				continue
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				for {
					typ, p, err := ch.Read(ctx)
					if err != nil {
						return
					}
					if ch.Write(ctx, typ, p) != nil {
						return
					}
				}
			}()
		}
	}()
	e.t.Cleanup(func() {
		l.Close()
		s.wg.Wait()
	})
	return s, nil
}

func (e *env) mustListen(scope, secret string) *service {
	e.t.Helper()
	s, err := e.listen(scope, secret)
	if err != nil {
		e.t.Fatalf("listen on %s: %v", scope, err)
	}
	return s
}

// dial connects to target (a wsapp:// URL) as the app with secret ("" for
// none), with extra headers.
func (e *env) dial(target, secret string, h http.Header) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return sdk.DialApp(ctx, e.ws, target, &sdk.AppDialOptions{Credential: secret, Protocols: []string{"chat.v1"},
		Dial: &websocket.DialOptions{HTTPHeader: h}})
}

// mustEcho checks that c is relayed to the service and back.
func mustEcho(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	_, p, err := c.Read(ctx)
	if err != nil || string(p) != msg {
		t.Fatalf("echo of %q: got %q, %v", msg, p, err)
	}
}

func (e *env) mustConnect(target, secret string) *websocket.Conn {
	e.t.Helper()
	c, err := e.dial(target, secret, nil)
	if err != nil {
		e.t.Fatalf("connect to %s: %v", target, err)
	}
	e.mu.Lock()
	e.conns = append(e.conns, c)
	e.mu.Unlock()
	mustEcho(e.t, c, "hello")
	return c
}

// raw sends a WebSocket handshake for path with headers and returns the
// response bytes without the Date header.
func (e *env) raw(path string, headers ...string) string {
	e.t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(e.http, "http://"), 5*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	req := "GET " + path + " HTTP/1.1\r\nHost: " + strings.TrimPrefix(e.http, "http://") +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	for _, h := range headers {
		req += h + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		e.t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		e.t.Fatalf("read response to %s: %v", path, err)
	}
	defer resp.Body.Close()
	resp.Header.Del("Date")
	body, _ := io.ReadAll(resp.Body)
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\n", resp.Status)
	_ = resp.Header.Write(&b)
	b.Write(body)
	return b.String()
}

// refusedLike checks that a wsapp request gets exactly the bytes of an
// unknown scope, and that the denial was counted with reason.
func (e *env) refusedLike(path string, reason string, headers ...string) {
	e.t.Helper()
	before := e.denials(reason)
	got := e.raw(path, headers...)
	want := e.raw("/no-such-scope/")
	if got != want {
		e.t.Fatalf("%s: response differs from an unknown scope's:\n%s\nwant:\n%s", path, got, want)
	}
	if !strings.HasPrefix(want, "404 ") {
		e.t.Fatalf("unknown scope answered %q", want)
	}
	if after := e.denials(reason); after != before+1 {
		e.t.Fatalf("%s: switchboard_app_denials_total{reason=%q} went from %v to %v, want +1", path, reason, before, after)
	}
}

// denials reads switchboard_app_denials_total{reason} from the registry.
func (e *env) denials(reason string) float64 {
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	v := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "switchboard_app_denials_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					v = m.GetCounter().GetValue()
				}
			}
		}
	}
	return v
}

func appPath(authority, rest string) string { return "/.switchboard/v1/app/" + authority + rest }

func bearer(secret string) string { return "Authorization: Bearer " + secret }

func newEnv(t *testing.T) (*env, testutil.AppSecrets) {
	s := testutil.NewAppSecrets("chat", "notes", "camera", "spy", "echo")
	e := startEnv(t, t.TempDir(), &config.File{AdminToken: adminSecret, Apps: testApps(s, "notes")})
	e.mustListen("/chat/", s["chat"])
	return e, s
}

func TestAppListedInServersConnects(t *testing.T) {
	e, s := newEnv(t)
	e.mustConnect("wsapp://chat/room/1", s["notes"])
}

func TestAppNotInServersIsRefused(t *testing.T) {
	e, s := newEnv(t)
	// camera does not list chat (chat would admit it with a token only).
	e.refusedLike(appPath("chat", "/room/1"), "not_in_servers", bearer(s["camera"]))
}

func TestServerAdmitListRefusesCaller(t *testing.T) {
	e, s := newEnv(t)
	// spy lists chat, but chat admits only notes.
	e.refusedLike(appPath("chat", "/"), "not_admitted", bearer(s["spy"]))
}

func TestWrongCredentialIsRefusedNotOrigin(t *testing.T) {
	e, _ := newEnv(t)
	// The Origin is notes's, but a wrong credential never falls back to it.
	e.refusedLike(appPath("chat", "/"), "bad_credential", bearer(apps.NewSecret()), "Origin: https://notes.example")
	e.refusedLike(appPath("chat", "/?credential="+apps.NewSecret()), "bad_credential", "Origin: https://notes.example")
}

func TestOriginIdentifiesBrowserApp(t *testing.T) {
	e, _ := newEnv(t)
	h := http.Header{"Origin": {"https://notes.example"}}
	c, err := e.dial("wsapp://chat/", "", h)
	if err != nil {
		t.Fatalf("notes by origin: %v", err)
	}
	defer c.CloseNow()
	mustEcho(t, c, "by origin")
	e.refusedLike(appPath("chat", "/"), "not_admitted", "Origin: https://evil.example")
}

func TestUnknownAppLooksLikeNoScope(t *testing.T) {
	e, s := newEnv(t)
	e.refusedLike(appPath("nobody", "/"), "unknown_app", bearer(s["notes"]))
}

// TestConnectRequestCarriesAppNotCredential: the server app learns the
// caller's verified id; neither the secret (query or header) nor the
// Authorization header reaches it.
func TestConnectRequestCarriesAppNotCredential(t *testing.T) {
	s := testutil.NewAppSecrets("chat", "notes", "camera", "spy", "echo")
	e := startEnv(t, t.TempDir(), &config.File{Apps: testApps(s, "notes")})
	svc := e.mustListen("/chat/", s["chat"])
	for _, how := range []string{"header", "query"} {
		target, secret := "wsapp://chat/room/7?x=1", s["notes"]
		if how == "query" {
			target, secret = "wsapp://chat/room/7?x=1&credential="+s["notes"], ""
		}
		c, err := e.dial(target, secret, nil)
		if err != nil {
			t.Fatalf("%s: %v", how, err)
		}
		mustEcho(t, c, how)
		c.CloseNow()
		req := <-svc.reqs
		if req.App != "notes" {
			t.Fatalf("%s: connect request App = %q, want notes", how, req.App)
		}
		all := req.Target + req.FirstLine + fmt.Sprint(req.Headers)
		if strings.Contains(all, s["notes"]) || strings.Contains(strings.ToLower(all), "authorization") || strings.Contains(all, "credential") {
			t.Fatalf("%s: the credential reached the service: %s", how, all)
		}
		if !strings.Contains(req.Target, "/chat/room/7?x=1") || !strings.HasPrefix(req.FirstLine, "GET /chat/room/7?x=1 ") {
			t.Fatalf("%s: target %q, first line %q: want the app's scope path", how, req.Target, req.FirstLine)
		}
	}
}

func TestListenOnScopeOfOtherAppIsRefused(t *testing.T) {
	e, s := newEnv(t)
	if _, err := e.listen("/chat/sub/", s["camera"]); err == nil {
		t.Fatal("camera listened on chat's scope")
	}
	if _, err := e.listen("/echo/", s["chat"]); err == nil {
		t.Fatal("chat listened on echo's scope")
	}
	if _, err := e.listen("/chat/x/", ""); err == nil {
		t.Fatal("a service without a credential listened under chat's scope")
	}
	e.mustListen("/echo/", s["echo"]) // its own scope works
	st := e.b.Status()
	for _, r := range st.Registrations {
		if r.Scope == "/echo/" && r.Owner != "app:echo" {
			t.Fatalf("owner of /echo/ is %q, want app:echo", r.Owner)
		}
	}
}

func TestAdminAPIWithoutCredentialIs401(t *testing.T) {
	e, _ := newEnv(t)
	var bodies []string
	for _, auth := range []string{"", "Bearer wrong", "Bearer " + adminSecret + "X"} {
		for _, p := range []string{"/.switchboard/v1/tokens", "/.switchboard/v1/reload", "/.switchboard/v1/tokens/revoke", "/.switchboard/chooser/info?app=camera"} {
			m := http.MethodPost
			if strings.Contains(p, "info") {
				m = http.MethodGet
			}
			req, _ := http.NewRequest(m, e.http+p, strings.NewReader(`{"holder":"camera","target":"chat"}`))
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("%s %s with %q: %s", m, p, auth, resp.Status)
			}
			bodies = append(bodies, string(b))
		}
	}
	for _, b := range bodies {
		if b != bodies[0] {
			t.Fatalf("401 bodies differ: %q vs %q", b, bodies[0])
		}
	}
}

// admin calls the admin API with the admin token and decodes a 200 answer.
func (e *env) admin(method, path string, body, out any) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.http+path, rd)
	req.Header.Set("Authorization", "Bearer "+adminSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("%s %s: %s %s", method, path, resp.Status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *env) issue(holder, target, ttl string) server.TokenResponse {
	var tr server.TokenResponse
	e.admin(http.MethodPost, "/.switchboard/v1/tokens", server.TokenRequest{Holder: holder, Target: target, TTL: ttl}, &tr)
	return tr
}

func TestTokenWorksForItsHolderOnly(t *testing.T) {
	e, s := newEnv(t)
	tok := e.issue("camera", "chat", "1h").Token
	e.mustConnect("wsapp://"+tok+"/room", s["camera"])
	// Another app, even one chat admits, cannot use camera's token.
	e.refusedLike(appPath(tok, "/room"), "token_invalid", bearer(s["notes"]))
	e.refusedLike(appPath(tok, "/room"), "token_invalid", bearer(s["spy"]))
	e.refusedLike(appPath(tok, "/room"), "token_invalid") // anonymous
}

func TestTokenOneByteChangeIsRefused(t *testing.T) {
	e, s := newEnv(t)
	tok := e.issue("camera", "chat", "1h").Token
	for _, i := range []int{0, len(tok) / 2, len(tok) - 1} {
		b := []byte(tok)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		e.refusedLike(appPath(string(b), "/"), "token_invalid", bearer(s["camera"]))
	}
	e.refusedLike(appPath(tok[:len(tok)-1], "/"), "token_invalid", bearer(s["camera"]))
}

func TestTokenExpires(t *testing.T) {
	e, s := newEnv(t)
	tr := e.issue("camera", "chat", "1s")
	if time.Until(tr.Expires) > 2*time.Second {
		t.Fatalf("expires %v, want within a second", tr.Expires)
	}
	testutil.WaitFor(t, "the clock to pass the token's expiry", 5*time.Second, func() bool { return time.Now().After(tr.Expires) })
	e.refusedLike(appPath(tr.Token, "/"), "token_expired", bearer(s["camera"]))
}

func TestTokenRevocationSurvivesRestart(t *testing.T) {
	s := testutil.NewAppSecrets("chat", "notes", "camera", "spy", "echo")
	dir := t.TempDir()
	e := startEnv(t, dir, &config.File{AdminToken: adminSecret, Apps: testApps(s, "notes")})
	e.mustListen("/chat/", s["chat"])
	byID, byPair, kept := e.issue("camera", "chat", "1h"), e.issue("camera", "chat", "1h"), e.issue("camera", "echo", "1h")
	e.mustConnect("wsapp://"+byID.Token+"/", s["camera"])
	e.admin(http.MethodPost, "/.switchboard/v1/tokens/revoke", server.RevokeRequest{ID: byID.ID}, nil)
	e.refusedLike(appPath(byID.Token, "/"), "token_revoked", bearer(s["camera"]))
	e.mustConnect("wsapp://"+byPair.Token+"/", s["camera"])
	e.admin(http.MethodPost, "/.switchboard/v1/tokens/revoke", server.RevokeRequest{Holder: "camera", Target: "chat"}, nil)
	e.refusedLike(appPath(byPair.Token, "/"), "token_revoked", bearer(s["camera"]))
	var l server.TokenList
	e.admin(http.MethodGet, "/.switchboard/v1/tokens", nil, &l)
	if len(l.Revocations) != 2 || len(l.Issued) != 3 {
		t.Fatalf("token list: %+v", l)
	}

	e.stop() // restart on the same files
	e2 := startEnv(t, dir, nil)
	e2.mustListen("/chat/", s["chat"])
	e2.mustListen("/echo/", s["echo"])
	e2.refusedLike(appPath(byID.Token, "/"), "token_revoked", bearer(s["camera"]))
	e2.refusedLike(appPath(byPair.Token, "/"), "token_revoked", bearer(s["camera"]))
	e2.mustConnect("wsapp://"+kept.Token+"/", s["camera"]) // same key after the restart
	fresh := e2.issue("camera", "chat", "1h")              // the owner may choose again
	e2.mustConnect("wsapp://"+fresh.Token+"/", s["camera"])
	if fi, err := os.Stat(filepath.Join(dir, "token.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token key: %v, %v", fi, err)
	}
}

// TestTokenDoesNotLeakTarget: tokens for different targets look alike,
// and a refused token gets the same bytes as an unknown app, whatever its
// target.
func TestTokenDoesNotLeakTarget(t *testing.T) {
	e, s := newEnv(t)
	toChat, toEcho := e.issue("camera", "chat", "1h"), e.issue("camera", "echo", "1h")
	if len(toChat.Token) != len(toEcho.Token) || !regexp.MustCompile(`^[a-z2-7]+$`).MatchString(toChat.Token+toEcho.Token) {
		t.Fatalf("tokens differ in form: %q %q", toChat.Token, toEcho.Token)
	}
	for _, tok := range []string{toChat.Token, toEcho.Token} {
		if strings.Contains(tok, "chat") || strings.Contains(tok, "echo") {
			t.Fatalf("token %q names its target", tok)
		}
	}
	// echo has no instance: its token opens, but the connect fails just
	// like a revoked token to chat and an app that does not exist.
	e.admin(http.MethodPost, "/.switchboard/v1/tokens/revoke", server.RevokeRequest{ID: toChat.ID}, nil)
	a := e.raw(appPath(toEcho.Token, "/"), bearer(s["camera"]))
	b := e.raw(appPath(toChat.Token, "/"), bearer(s["camera"]))
	c := e.raw(appPath("nosuchapp", "/"), bearer(s["camera"]))
	if a != b || b != c {
		t.Fatalf("responses differ:\n%s\n%s\n%s", a, b, c)
	}
}

// TestReloadChangesPermissionsForNewConnectionsOnly: after chat stops
// admitting notes, notes's open channel keeps working and a new one is
// refused; admitting it again lets it back in.
func TestReloadChangesPermissionsForNewConnectionsOnly(t *testing.T) {
	e, s := newEnv(t)
	open := e.mustConnect("wsapp://chat/", s["notes"])

	testutil.WriteConfig(t, e.cfgPath, &config.File{AdminToken: adminSecret, Apps: testApps(s /* admits nobody */)})
	e.admin(http.MethodPost, "/.switchboard/v1/reload", nil, nil)
	mustEcho(t, open, "still here")
	e.refusedLike(appPath("chat", "/"), "not_admitted", bearer(s["notes"]))

	// A broken file is refused and the running directory kept.
	if err := os.WriteFile(e.cfgPath, []byte(`{"apps": [{"id": "BAD"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, e.http+"/.switchboard/v1/reload", nil)
	req.Header.Set("Authorization", "Bearer "+adminSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("reload of a broken file: %s", resp.Status)
	}
	e.refusedLike(appPath("chat", "/"), "not_admitted", bearer(s["notes"]))

	testutil.WriteConfig(t, e.cfgPath, &config.File{AdminToken: adminSecret, Apps: testApps(s, "notes")})
	e.admin(http.MethodPost, "/.switchboard/v1/reload", nil, nil)
	e.mustConnect("wsapp://chat/", s["notes"])
	mustEcho(t, open, "and still")
}

// TestChooserSessionAndIssue: the chooser's sign-in gives an HttpOnly,
// SameSite=Strict cookie scoped to the chooser; with it, tokens are issued
// only for apps the chooser offers, and never to a cross-origin request.
func TestChooserSessionAndIssue(t *testing.T) {
	e, s := newEnv(t)
	post := func(path, body string, h ...string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, e.http+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(h); i += 2 {
			req.Header.Set(h[i], h[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if r := post("/.switchboard/chooser/login", `{"token":"nope"}`); r.StatusCode != http.StatusUnauthorized || len(r.Cookies()) != 0 {
		t.Fatalf("wrong admin token: %s %v", r.Status, r.Cookies())
	}
	r := post("/.switchboard/chooser/login", `{"token":"`+adminSecret+`"}`)
	if r.StatusCode != http.StatusOK || len(r.Cookies()) != 1 {
		t.Fatalf("sign-in: %s %v", r.Status, r.Cookies())
	}
	ck := r.Cookies()[0]
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/.switchboard/chooser" || len(ck.Value) < 40 {
		t.Fatalf("session cookie %+v", ck)
	}
	cookie := ck.Name + "=" + ck.Value

	req, _ := http.NewRequest(http.MethodGet, e.http+"/.switchboard/chooser/info?app=camera", nil)
	req.Header.Set("Cookie", cookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var info server.ChooserInfo
	json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	if info.Holder.ID != "camera" || len(info.Choices) != 2 || info.Choices[0].ID != "chat" || info.Choices[1].ID != "echo" {
		t.Fatalf("chooser info for camera: %+v", info)
	}

	if r := post("/.switchboard/chooser/issue", `{"holder":"camera","targets":["notes"]}`, "Cookie", cookie); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("issue for an app the chooser does not offer: %s", r.Status)
	}
	if r := post("/.switchboard/chooser/issue", `{"holder":"camera","targets":["chat"]}`, "Cookie", cookie, "Origin", "https://evil.example"); r.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin issue: %s", r.Status)
	}
	if r := post("/.switchboard/chooser/issue", `{"holder":"camera","targets":["chat"]}`, "Cookie", "sb_chooser=forged"); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("issue with a forged session: %s", r.Status)
	}
	req, _ = http.NewRequest(http.MethodPost, e.http+"/.switchboard/chooser/issue", strings.NewReader(`{"holder":"camera","targets":["chat"],"ttl":"1h"}`))
	req.Header.Set("Cookie", cookie)
	req.Header.Set("Origin", e.http)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var toks server.ChooserTokens
	json.NewDecoder(resp.Body).Decode(&toks)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(toks.Tokens) != 1 {
		t.Fatalf("chooser issue: %s %+v", resp.Status, toks)
	}
	e.mustConnect("wsapp://"+toks.Tokens[0].Token+"/", s["camera"])
	// The session is no admin credential elsewhere.
	req, _ = http.NewRequest(http.MethodGet, e.http+"/.switchboard/v1/tokens", nil)
	req.Header.Set("Cookie", cookie)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("admin API with the chooser session: %s", resp.Status)
	}
}

// adminSecret is the admin token of these tests' brokers.
const adminSecret = "admin-secret-0123456789abcdefghijklmnop"
