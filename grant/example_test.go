package grant_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/grant"
	"github.com/switchboard-dev/switchboard/scope"
)

// mintForPage is what a site's Go backend runs (docs/BROWSER.md): it signs
// a listen grant with golang-jwt and the HS256 key file that the broker's
// config lists for kid "site-1".
func mintForPage(secret []byte, userID, pageOrigin string) (string, error) {
	claims := jwt.MapClaims{
		"aud":          "switchboard",
		"exp":          time.Now().Add(5 * time.Minute).Unix(),
		"iat":          time.Now().Unix(),
		"scopes":       []string{"/site/" + userID + "/"},
		"origin":       pageOrigin,
		"max_channels": 100,
	}
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	t.Header["kid"] = "site-1"
	return t.SignedString(secret)
}

// A Go backend mints a grant; the broker's verifier admits the page.
func Example_goBackend() {
	dir, _ := os.MkdirTemp("", "grant-example")
	defer os.RemoveAll(dir)
	secret, _, _ := grant.GenerateKey("HS256") // switchboard grant key --alg HS256 --out site-1
	_ = os.WriteFile(filepath.Join(dir, "site-1.key"), secret, 0o600)

	tok, err := mintForPage([]byte(strings.TrimSpace(string(secret))), "u42", "https://app.example")
	if err != nil {
		fmt.Println(err)
		return
	}

	// The broker's side: the grants section of its config.
	cfg := grant.Config{Keys: []grant.KeyConfig{{ID: "site-1", Alg: "HS256", Owner: "site", Scopes: []string{"/site/"}, SecretFile: "site-1.key"}}}
	v, err := cfg.Verifier(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	claims, _, err := v.Verify(tok, "https://app.example")
	fmt.Println(claims.Scopes, claims.MaxChannels, err)
	_, _, err = v.Verify(tok, "https://evil.example")
	fmt.Println(err)
	sc, _ := scope.Parse("/site/u42/", false)
	owner, err := grant.Authorizer(v, nil, nil)(context.Background(), broker.AuthRequest{Credential: tok, Scope: sc, Origin: "https://app.example", Terms: &broker.Terms{}})
	fmt.Println(owner, err)
	// Output:
	// [/site/u42/] 100 <nil>
	// listen grant refused: it is bound to origin https://app.example, and this link's origin is https://evil.example
	// grant:site <nil>
}
