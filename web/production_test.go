package web

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/grant"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
)

// Page origins of the production suite (test/browser/production.test.mjs):
// Chromium is served these pages by the test (Playwright routes), so they
// are real origins to the browser and to the broker.
const (
	siteOrigin  = "http://site.localhost"
	otherOrigin = "http://other.localhost"
	// prodAdminToken is the production broker's admin token
	// ($SWITCHBOARD_PROD_ADMIN_TOKEN in the browser suite).
	prodAdminToken = "prod-admin-token-0123456789abcdefghijkl"
)

// productionConfig writes the config of a production broker (started with
// it and without --dev): the apps of appsConfig, an HS256 listen-grant key
// whose grants may cover /site/, and private scopes for siteOrigin's pages
// only. It returns the config file and the grant key's secret file, which
// the test backend mints with.
func productionConfig(t *testing.T, appsConfigPath string) (path, grantKey string) {
	t.Helper()
	var cfg map[string]any
	b, err := os.ReadFile(appsConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	// Pages of notes and camera are known by their origins (manifest.test.mjs).
	for _, a := range cfg["apps"].([]any) {
		app := a.(map[string]any)
		switch app["id"] {
		case "notes":
			app["origins"] = []string{"http://notes.localhost"}
		case "camera":
			app["origins"] = []string{"http://camera.localhost"}
		}
	}
	dir := t.TempDir()
	secret, _, err := grant.GenerateKey("HS256")
	if err != nil {
		t.Fatal(err)
	}
	grantKey = filepath.Join(dir, "site-grant.key")
	if err := os.WriteFile(grantKey, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg["grants"] = map[string]any{"max_lifetime": "1h", "keys": []map[string]any{
		{"id": "site-1", "alg": "HS256", "owner": "site", "scopes": []string{"/site/"}, "secret_file": "site-grant.key"},
	}}
	cfg["private_scopes"] = map[string]any{"origins": []string{siteOrigin}, "per_address": 64, "lifetime": "10m"}
	cfg["admin_token"] = prodAdminToken // the dashboard signs in with it (production.test.mjs)
	out, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, "switchboard.json")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, grantKey
}

// startTLSBroker runs a second production broker on config that serves
// TLS (--tls-cert/--tls-key) with a certificate for 127.0.0.1 from a test
// CA (tls.test.mjs). It returns its https:// URL and the CA's PEM file,
// which the Node clients trust; Chromium is told to accept the
// certificate (--ignore-certificate-errors), having no way to be given a
// CA file.
func startTLSBroker(t *testing.T, config string) (url, caFile string) {
	t.Helper()
	ca := testutil.NewCA(t)
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca.Issue(t, 1, cert, key)
	_, url = testutil.StartServe(t, "--config", config, "--tls-cert", cert, "--tls-key", key)
	if !strings.HasPrefix(url, "https://") {
		t.Fatalf("the TLS broker serves %s, want https://", url)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: ca.Pool}
	checkLibrary(t, &http.Client{Transport: tr}, url)
	return url, ca.PEMFile
}
