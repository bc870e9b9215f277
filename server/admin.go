package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/switchboard-dev/switchboard/apps"
	"github.com/switchboard-dev/switchboard/protocol"
)

// The admin API (status, tokens, reload). Every endpoint needs the admin
// credential (Authorization: Bearer), except for loopback clients in Dev
// mode that name a loopback host; wrong or missing credentials get 401
// with no detail. The chooser (chooser.go) also accepts its session
// cookie. adminguard.go keeps other sites' pages and guessers out.

// TokenRequest is POST /.switchboard/v1/tokens.
type TokenRequest struct {
	Holder string `json:"holder"`
	Target string `json:"target"`
	TTL    string `json:"ttl,omitempty"` // Go duration; default "24h"
}

// TokenResponse answers TokenRequest.
type TokenResponse struct {
	Token   string    `json:"token"`
	ID      string    `json:"id"`
	Expires time.Time `json:"expires"`
}

// RevokeRequest is POST /.switchboard/v1/tokens/revoke: an id, or a
// holder and target.
type RevokeRequest struct {
	ID     string `json:"id,omitempty"`
	Holder string `json:"holder,omitempty"`
	Target string `json:"target,omitempty"`
}

// TokenList answers GET /.switchboard/v1/tokens: the grants this broker
// process issued (the latest 1000; tokens themselves are not kept) and
// the persistent revocations.
type TokenList struct {
	Issued      []IssuedGrant     `json:"issued"`
	Revocations []apps.Revocation `json:"revocations"`
}

// IssuedGrant describes an issued token, without the token.
type IssuedGrant struct {
	ID      string    `json:"id"`
	Holder  string    `json:"holder"`
	Target  string    `json:"target"`
	Issued  time.Time `json:"issued"`
	Expires time.Time `json:"expires"`
	By      string    `json:"by"` // "admin" or "chooser"
}

type issuedGrant = IssuedGrant

const (
	defaultTTL = 24 * time.Hour
)

// adminMux returns the admin API and the chooser as routes with method
// patterns (a wrong method gets 405 with Allow). Every route goes through
// adminGuard (no other site's page reaches it); the admin routes need
// the admin credential, the chooser's its session or the credential.
func (s *Server) adminMux() *http.ServeMux {
	m := http.NewServeMux()
	admin := func(pattern string, h http.HandlerFunc) {
		m.Handle(pattern, s.adminGuard(func(w http.ResponseWriter, r *http.Request) {
			if s.admin(w, r) {
				h(w, r)
			}
		}))
	}
	s.dashboardRoutes(m) // GET v1/status: the admin credential or the dashboard's session
	admin("POST "+protocol.ReservedPrefix+"v1/reload", s.reload)
	admin("GET "+protocol.ReservedPrefix+"v1/tokens", func(w http.ResponseWriter, _ *http.Request) { s.listTokens(w) })
	admin("POST "+protocol.ReservedPrefix+"v1/tokens", func(w http.ResponseWriter, r *http.Request) { s.issueToken(w, r, "admin") })
	admin("POST "+protocol.ReservedPrefix+"v1/tokens/revoke", s.revokeToken)
	s.chooserRoutes(m)
	return m
}

// adminPaths are the paths adminMux serves, so that serveReserved sends
// only those to it (the mux's own 404 would hide the other endpoints).
var adminPaths = map[string]bool{
	protocol.ReservedPrefix + "v1/status": true, protocol.ReservedPrefix + "v1/reload": true,
	protocol.ReservedPrefix + "v1/tokens": true, protocol.ReservedPrefix + "v1/tokens/revoke": true,
	dashboardLogin: true,
	chooserPath:    true, chooserPath + "/login": true, chooserPath + "/info": true, chooserPath + "/issue": true,
}

func (s *Server) serveStatus(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(s.status())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		http.Error(w, "bad JSON: "+err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Reload == nil {
		http.Error(w, "reload is not available on this broker", http.StatusNotImplemented)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	if err := s.cfg.Reload(ctx); err != nil {
		s.log.Warn("reload failed; keeping the previous configuration", "err", err)
		http.Error(w, err.Error(), http.StatusUnprocessableEntity)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"reloaded": true})
}

// tokenState returns the sealer and directory, or answers 501.
func (s *Server) tokenState(w http.ResponseWriter) (*apps.Sealer, *apps.Directory, bool) {
	if s.cfg.Apps == nil || s.cfg.Apps.Sealer == nil {
		http.Error(w, "chooser tokens are not available: the broker has no token key (start it with --config)", http.StatusNotImplemented)
		return nil, nil, false
	}
	return s.cfg.Apps.Sealer, s.cfg.Apps.Directory(), true
}

// issue seals one grant after checking that both apps exist.
func (s *Server) issue(dir *apps.Directory, sealer *apps.Sealer, holder, target string, ttl time.Duration, by string) (TokenResponse, error) {
	if _, ok := dir.App(holder); !ok {
		return TokenResponse{}, fmt.Errorf("no app %q", holder)
	}
	t, ok := dir.App(target)
	if !ok {
		return TokenResponse{}, fmt.Errorf("no app %q", target)
	}
	if !t.Admit.Tokens && !t.Admit.Any {
		// A token for it would be refused at every use (its admit rule
		// decides, token or not): say so now.
		return TokenResponse{}, fmt.Errorf("app %q does not admit token holders: its manifest needs \"admit\": {\"tokens\": true} (or \"any\") before a token to it is of use", target)
	}
	tok, g, err := sealer.Issue(holder, target, ttl)
	if err != nil {
		return TokenResponse{}, err
	}
	s.apps.mu.Lock()
	s.apps.issued = append(s.apps.issued, IssuedGrant{ID: g.ID, Holder: holder, Target: target, Issued: g.Issued, Expires: g.Expires, By: by})
	if n := len(s.apps.issued); n > maxIssued {
		s.apps.issued = append([]IssuedGrant(nil), s.apps.issued[n-maxIssued:]...)
	}
	s.apps.mu.Unlock()
	s.log.Info("chooser token issued", "grant", g.ID, "holder", holder, "target", target, "expires", g.Expires, "by", by)
	return TokenResponse{Token: tok, ID: g.ID, Expires: g.Expires}, nil
}

func (s *Server) issueToken(w http.ResponseWriter, r *http.Request, by string) {
	sealer, dir, ok := s.tokenState(w)
	if !ok {
		return
	}
	var req TokenRequest
	if !readJSON(w, r, &req) {
		return
	}
	ttl, ok := parseTTL(w, req.TTL)
	if !ok {
		return
	}
	resp, err := s.issue(dir, sealer, req.Holder, req.Target, ttl, by)
	if err != nil {
		http.Error(w, "issue token: "+err.Error(), http.StatusBadRequest)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) listTokens(w http.ResponseWriter) {
	out := TokenList{Issued: []IssuedGrant{}, Revocations: []apps.Revocation{}}
	s.apps.mu.Lock()
	out.Issued = append(out.Issued, s.apps.issued...)
	s.apps.mu.Unlock()
	if s.cfg.Apps != nil && s.cfg.Apps.Revocations != nil {
		out.Revocations = append(out.Revocations, s.cfg.Apps.Revocations.List()...)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Apps == nil || s.cfg.Apps.Revocations == nil {
		http.Error(w, "revocation is not available: the broker has no revocation list (start it with --config)", http.StatusNotImplemented)
		return
	}
	var req RevokeRequest
	if !readJSON(w, r, &req) {
		return
	}
	revs := s.cfg.Apps.Revocations
	var err error
	switch {
	case req.ID != "" && req.Holder == "" && req.Target == "":
		err = revs.RevokeID(req.ID)
	case req.ID == "" && req.Holder != "" && req.Target != "":
		err = revs.RevokePair(req.Holder, req.Target)
	default:
		err = errors.New("want either id, or holder and target")
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.log.Info("chooser token revoked", "grant", req.ID, "holder", req.Holder, "target", req.Target)
	writeJSON(w, http.StatusOK, map[string]bool{"revoked": true})
}

// parseTTL reads a token lifetime ("" is defaultTTL); a bad one gets 400.
func parseTTL(w http.ResponseWriter, v string) (time.Duration, bool) {
	if v == "" {
		return defaultTTL, true
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		http.Error(w, "bad ttl: "+err.Error(), http.StatusBadRequest)
		return 0, false
	}
	return d, true
}
