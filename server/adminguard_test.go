package server_test

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/config"
	"github.com/switchboard-dev/switchboard/daemon"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
)

// do sends one request to base+path with headers ("Name: value") and
// returns the status.
func do(t *testing.T, method, url, body string, headers ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAdminRefusesOtherSites: in dev mode (loopback needs no token) and in
// production, a page of another site reaches no admin endpoint: a foreign
// Origin gets 403, a text/plain or form POST 415, and a rebound host name
// (Host: rebind.evil.example) no dev-mode bypass.
func TestAdminRefusesOtherSites(t *testing.T) {
	_, devWS := testutil.StartBroker(t, daemon.Settings{RefusalFloor: -1}, daemon.Options{})
	dev := strings.Replace(devWS, "ws://", "http://", 1)
	prodAddr, _ := prodBroker(t, daemon.Settings{RefusalFloor: -1})
	prod := "http://" + prodAddr
	bearer := "Authorization: Bearer " + testAdminToken

	for _, c := range []struct {
		name, base, method, path, body string
		headers                        []string
		want                           int
	}{
		{"dev: own status", dev, "GET", "/.switchboard/v1/status", "", nil, 200},
		{"dev: rebound host", dev, "GET", "/.switchboard/v1/status", "", []string{"Host: rebind.evil.example"}, 401},
		{"dev: foreign origin", dev, "GET", "/.switchboard/v1/status", "", []string{"Origin: https://evil.example"}, 403},
		{"dev: cross-site fetch", dev, "GET", "/.switchboard/v1/tokens", "", []string{"Sec-Fetch-Site: cross-site"}, 403},
		{"dev: text/plain revoke", dev, "POST", "/.switchboard/v1/tokens/revoke", `{"id":"x"}`, []string{"Content-Type: text/plain"}, 415},
		{"dev: foreign revoke", dev, "POST", "/.switchboard/v1/tokens/revoke", `{"id":"x"}`, []string{"Content-Type: text/plain", "Origin: https://evil.example"}, 403},
		{"dev: foreign reload", dev, "POST", "/.switchboard/v1/reload", "", []string{"Origin: null"}, 403},
		{"dev: form issue", dev, "POST", "/.switchboard/v1/tokens", "holder=a", []string{"Content-Type: application/x-www-form-urlencoded"}, 415},
		{"dev: foreign chooser login", dev, "POST", "/.switchboard/chooser/login", `{"token":"x"}`, []string{"Content-Type: application/json", "Origin: https://evil.example"}, 403},
		{"dev: wrong method", dev, "DELETE", "/.switchboard/v1/tokens", "", nil, 405},
		{"prod: status with token", prod, "GET", "/.switchboard/v1/status", "", []string{bearer}, 200},
		{"prod: status, rebound host, token", prod, "GET", "/.switchboard/v1/status", "", []string{bearer, "Host: rebind.evil.example"}, 200},
		{"prod: status without token", prod, "GET", "/.switchboard/v1/status", "", nil, 401},
		{"prod: foreign origin with token", prod, "GET", "/.switchboard/v1/tokens", "", []string{bearer, "Origin: https://evil.example"}, 403},
		{"prod: text/plain reload with token", prod, "POST", "/.switchboard/v1/reload", "x", []string{bearer, "Content-Type: text/plain"}, 415},
	} {
		if got, body := do(t, c.method, c.base+c.path, c.body, c.headers...); got != c.want {
			t.Errorf("%s: %d %q, want %d", c.name, got, strings.TrimSpace(body), c.want)
		}
	}
}

// TestWeakAdminTokenRefused: a short or one-character admin token is
// refused in the file and from flags (the daemon), before anything runs.
func TestWeakAdminTokenRefused(t *testing.T) {
	for _, tok := range []string{"a", "change-me-admin-token", strings.Repeat("a", 40)} {
		if _, err := config.Decode(strings.NewReader(`{"admin_token": "` + tok + `"}`)); err == nil || !strings.Contains(err.Error(), "admin_token") {
			t.Errorf("file with admin_token %q: %v", tok, err)
		}
		if _, err := daemon.New(daemon.Settings{AdminToken: tok, Listen: "127.0.0.1:0"}, daemon.Options{Logger: slog.New(slog.DiscardHandler)}); err == nil {
			t.Errorf("daemon with admin token %q started", tok)
		}
	}
}

// TestAdminGuessesLimited: wrong admin tokens from one address, at the
// admin API and at the chooser login, get 401 ten times, then 429 without
// the token being checked (the right one included); the log has one line
// for the address and one summary, not a line per guess.
func TestAdminGuessesLimited(t *testing.T) {
	var logs testutil.SyncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	f := &config.File{AdminToken: testAdminToken}
	_, ws := testutil.StartBroker(t, daemon.Settings{File: f, AdminToken: f.AdminToken, RefusalFloor: -1}, daemon.Options{Logger: log})
	base := strings.Replace(ws, "ws://", "http://", 1)
	var codes []int
	for i := 0; i < 30; i++ {
		if i%2 == 0 {
			c, _ := do(t, "GET", base+"/.switchboard/v1/status", "", "Authorization: Bearer wrong-guess-number-"+strings.Repeat("x", i))
			codes = append(codes, c)
		} else {
			c, _ := do(t, "POST", base+"/.switchboard/chooser/login", `{"token":"guess"}`, "Content-Type: application/json")
			codes = append(codes, c)
		}
	}
	for i, c := range codes {
		want := http.StatusUnauthorized
		if i >= 10 {
			want = http.StatusTooManyRequests
		}
		if c != want {
			t.Fatalf("guess %d: %d, want %d (all: %v)", i+1, c, want, codes)
		}
	}
	if c, _ := do(t, "GET", base+"/.switchboard/v1/status", "", "Authorization: Bearer "+testAdminToken); c != http.StatusTooManyRequests {
		t.Fatalf("the right token from a limited address: %d, want 429 (not checked)", c)
	}
	if n := strings.Count(logs.String(), "admin token refused"); n != 1 {
		t.Fatalf("%d log lines for one address's guesses, want 1:\n%s", n, logs.String())
	}
}

// TestMetricsNeedAdminInProduction: /metrics (which counts refusals by
// reason) answers 401 to anonymous clients of a production broker, and
// serves the admin token's holder (a Prometheus scraper); dev mode keeps
// it open.
func TestMetricsNeedAdminInProduction(t *testing.T) {
	addr, _ := prodBroker(t, daemon.Settings{RefusalFloor: -1})
	if c, _ := do(t, "GET", "http://"+addr+"/metrics", ""); c != http.StatusUnauthorized {
		t.Fatalf("anonymous /metrics: %d, want 401", c)
	}
	if c, body := do(t, "GET", "http://"+addr+"/metrics", "", "Authorization: Bearer "+testAdminToken); c != 200 || !strings.Contains(body, "switchboard_rejects_total") && !strings.Contains(body, "switchboard_build_info") {
		t.Fatalf("/metrics with the admin token: %d", c)
	}
	_, devWS := testutil.StartBroker(t, daemon.Settings{RefusalFloor: -1}, daemon.Options{})
	if c, _ := do(t, "GET", strings.Replace(devWS, "ws://", "http://", 1)+"/metrics", ""); c != 200 {
		t.Fatalf("dev /metrics: %d, want 200", c)
	}
}
