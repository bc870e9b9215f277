package server_test

import (
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/daemon"
)

// TestDashboardSignIn: on a production broker the dashboard's status poll
// gets 401 until it signs in with the admin token; the sign-in sets an
// HttpOnly, SameSite=Strict cookie scoped to the status path, which then
// reads the status and nothing else (no reload, no chooser); a wrong token
// is refused.
func TestDashboardSignIn(t *testing.T) {
	addr, _ := prodBroker(t, daemon.Settings{RefusalFloor: -1})
	base := "http://" + addr
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	get := func(method, path, body string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := get("GET", "/.switchboard/v1/status", ""); r.StatusCode != 401 {
		t.Fatalf("status before sign-in: %d", r.StatusCode)
	}
	if r := get("POST", "/.switchboard/v1/dashboard/login", `{"token":"wrong"}`); r.StatusCode != 401 {
		t.Fatalf("sign-in with a wrong token: %d", r.StatusCode)
	}
	r := get("POST", "/.switchboard/v1/dashboard/login", `{"token":"`+testAdminToken+`"}`)
	if r.StatusCode != 200 {
		t.Fatalf("sign-in: %d", r.StatusCode)
	}
	ck := r.Cookies()
	if len(ck) != 1 || !ck[0].HttpOnly || ck[0].SameSite != http.SameSiteStrictMode || ck[0].Path != "/.switchboard/v1/status" {
		t.Fatalf("session cookie: %+v", ck)
	}
	if r := get("GET", "/.switchboard/v1/status", ""); r.StatusCode != 200 {
		t.Fatalf("status after sign-in: %d", r.StatusCode)
	}
	// The cookie is no admin credential elsewhere, even sent by hand.
	for _, p := range []string{"/.switchboard/v1/reload", "/.switchboard/v1/tokens"} {
		req, _ := http.NewRequest("GET", base+p, nil)
		if p == "/.switchboard/v1/reload" {
			req.Method = "POST"
			req.Header.Set("Content-Type", "application/json")
		}
		req.AddCookie(&http.Cookie{Name: ck[0].Name, Value: ck[0].Value})
		req.AddCookie(&http.Cookie{Name: "sb_chooser", Value: ck[0].Value})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("%s with the dashboard's cookie: %d, want 401", p, resp.StatusCode)
		}
	}
}
