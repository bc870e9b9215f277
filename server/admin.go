package server

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard/apps"
)

// The admin API (tokens, reload) and the chooser. Every endpoint needs the
// admin credential (Authorization: Bearer), except for loopback clients in
// Dev mode; the chooser also accepts its login session cookie. Wrong or
// missing credentials get 401 with no detail.

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
	sessionCookie = "sb_chooser"
	chooserPath   = "/.switchboard/chooser"
	sessionTTL    = 12 * time.Hour
	maxSessions   = 1000
	defaultTTL    = 24 * time.Hour
)

// serveAdmin serves the admin API and the chooser; it reports false for
// paths that are not its own.
func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request, sub string) bool {
	switch sub {
	case "/v1/reload":
		if s.admin(w, r) && method(w, r, http.MethodPost) {
			s.reload(w, r)
		}
	case "/v1/tokens":
		if !s.admin(w, r) {
			return true
		}
		switch r.Method {
		case http.MethodGet:
			s.listTokens(w)
		case http.MethodPost:
			s.issueToken(w, r, "admin")
		default:
			w.Header().Set("Allow", "GET, POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		}
	case "/v1/tokens/revoke":
		if s.admin(w, r) && method(w, r, http.MethodPost) {
			s.revokeToken(w, r)
		}
	case "/chooser":
		s.chooserPage(w, r)
	case "/chooser/login":
		if method(w, r, http.MethodPost) && sameOrigin(w, r) {
			s.chooserLogin(w, r)
		}
	case "/chooser/info":
		if s.chooserAuth(w, r) && method(w, r, http.MethodGet) {
			s.chooserInfo(w, r)
		}
	case "/chooser/issue":
		if s.chooserAuth(w, r) && method(w, r, http.MethodPost) && sameOrigin(w, r) {
			s.chooserIssue(w, r)
		}
	default:
		return false
	}
	return true
}

func method(w http.ResponseWriter, r *http.Request, m string) bool {
	if r.Method == m {
		return true
	}
	w.Header().Set("Allow", m)
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}

// sameOrigin refuses state-changing browser requests from other origins
// (the session cookie is SameSite=Strict as well).
func sameOrigin(w http.ResponseWriter, r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true // not a browser, or a same-origin GET-like request
	}
	if u, err := url.Parse(o); err == nil && strings.EqualFold(u.Host, r.Host) {
		return true
	}
	http.Error(w, "cross-origin request refused", http.StatusForbidden)
	return false
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
	if _, ok := dir.App(target); !ok {
		return TokenResponse{}, fmt.Errorf("no app %q", target)
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

// chooserAuth admits the admin credential, a chooser session, or a
// loopback client in Dev mode; otherwise 401 with no detail.
func (s *Server) chooserAuth(w http.ResponseWriter, r *http.Request) bool {
	if s.sessionValid(r) {
		return true
	}
	return s.admin(w, r)
}

func (s *Server) sessionValid(r *http.Request) bool {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return false
	}
	s.apps.mu.Lock()
	defer s.apps.mu.Unlock()
	exp, ok := s.apps.sessions[c.Value]
	return ok && time.Now().Before(exp)
}

// chooserLogin trades the admin token (form field or JSON "token") for an
// HttpOnly, SameSite=Strict session cookie held in memory.
func (s *Server) chooserLogin(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Token string `json:"token"`
	}
	if !readJSON(w, r, &body) {
		return
	}
	tok := s.cfg.AdminToken
	if tok == "" || subtle.ConstantTimeCompare([]byte(body.Token), []byte(tok)) != 1 {
		s.log.Info("chooser login refused", "remote", r.RemoteAddr)
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	var b [32]byte
	_, _ = rand.Read(b[:])
	id := base64.RawURLEncoding.EncodeToString(b[:])
	now := time.Now()
	s.apps.mu.Lock()
	for k, exp := range s.apps.sessions {
		if !now.Before(exp) {
			delete(s.apps.sessions, k)
		}
	}
	if len(s.apps.sessions) >= maxSessions {
		for k := range s.apps.sessions { // drop an arbitrary one
			delete(s.apps.sessions, k)
			break
		}
	}
	s.apps.sessions[id] = now.Add(sessionTTL)
	s.apps.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: chooserPath, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: int(sessionTTL / time.Second)})
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// chooserPage serves web/chooser.html. It needs no credential itself: it
// asks for the admin token when the API answers 401.
func (s *Server) chooserPage(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Web == nil {
		http.NotFound(w, r)
		return
	}
	page, err := fs.ReadFile(s.cfg.Web, "chooser.html")
	if err != nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	_, _ = w.Write(page)
}

// ChooserInfo answers GET /.switchboard/chooser/info?app=HOLDER.
type ChooserInfo struct {
	Holder  ChooserApp   `json:"holder"`
	Choices []ChooserApp `json:"choices"`
	// Dev is set when no login is needed (loopback in Dev mode).
	Dev bool `json:"dev"`
}

// ChooserApp is an app as the chooser shows it.
type ChooserApp struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Origins []string `json:"origins,omitempty"`
}

func (s *Server) chooserInfo(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Apps == nil {
		http.Error(w, "this broker has no apps", http.StatusNotFound)
		return
	}
	dir := s.cfg.Apps.Directory()
	holder := r.URL.Query().Get("app")
	a, ok := dir.App(holder)
	if !ok {
		http.Error(w, "no such app", http.StatusNotFound)
		return
	}
	out := ChooserInfo{Holder: ChooserApp{ID: a.ID, Name: a.Name, Origins: a.Origins}, Choices: []ChooserApp{},
		Dev: s.cfg.Dev && isLoopback(r)}
	for _, c := range dir.Choosable(holder) {
		out.Choices = append(out.Choices, ChooserApp{ID: c.ID, Name: c.Name})
	}
	writeJSON(w, http.StatusOK, out)
}

// ChooserIssue is POST /.switchboard/chooser/issue.
type ChooserIssue struct {
	Holder  string   `json:"holder"`
	Targets []string `json:"targets"`
	TTL     string   `json:"ttl,omitempty"`
}

// ChooserTokens answers ChooserIssue, one token per target in order.
type ChooserTokens struct {
	Tokens []TokenResponse `json:"tokens"`
}

func (s *Server) chooserIssue(w http.ResponseWriter, r *http.Request) {
	sealer, dir, ok := s.tokenState(w)
	if !ok {
		return
	}
	var req ChooserIssue
	if !readJSON(w, r, &req) {
		return
	}
	ttl, ok := parseTTL(w, req.TTL)
	if !ok {
		return
	}
	choosable := map[string]bool{}
	for _, c := range dir.Choosable(req.Holder) {
		choosable[c.ID] = true
	}
	if len(req.Targets) == 0 || len(req.Targets) > len(choosable) {
		http.Error(w, "pick at least one app the chooser offers", http.StatusBadRequest)
		return
	}
	out := ChooserTokens{}
	for _, t := range req.Targets {
		if !choosable[t] {
			http.Error(w, fmt.Sprintf("app %q is not offered to %q", t, req.Holder), http.StatusBadRequest)
			return
		}
	}
	for _, t := range req.Targets {
		resp, err := s.issue(dir, sealer, req.Holder, t, ttl, "chooser")
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		out.Tokens = append(out.Tokens, resp)
	}
	writeJSON(w, http.StatusOK, out)
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
