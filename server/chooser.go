package server

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io/fs"
	"net/http"
	"time"
)

// The chooser: a page on the broker where the device owner picks which
// server apps an app may reach, and the chooser token is issued. Its
// login trades the admin token for an HttpOnly, SameSite=Strict session
// cookie held in memory; failed logins count against the address's
// allowance (adminguard.go).

const (
	sessionCookie = "sb_chooser"
	chooserPath   = "/.switchboard/chooser"
	sessionTTL    = 12 * time.Hour
	maxSessions   = 1000
)

// chooserRoutes adds the chooser's routes to m.
func (s *Server) chooserRoutes(m *http.ServeMux) {
	// The page itself is opened by another site's app (a cross-site
	// navigation); it holds nothing and cannot be framed. Its calls are
	// guarded.
	m.HandleFunc("GET "+chooserPath, s.chooserPage)
	m.Handle("POST "+chooserPath+"/login", s.adminGuard(s.chooserLogin))
	m.Handle("GET "+chooserPath+"/info", s.adminGuard(func(w http.ResponseWriter, r *http.Request) {
		if s.chooserAuth(w, r) {
			s.chooserInfo(w, r)
		}
	}))
	m.Handle("POST "+chooserPath+"/issue", s.adminGuard(func(w http.ResponseWriter, r *http.Request) {
		if s.chooserAuth(w, r) {
			s.chooserIssue(w, r)
		}
	}))
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
	if !s.guesses.allow(w, r) {
		return
	}
	tok := s.cfg.AdminToken
	if tok == "" || subtle.ConstantTimeCompare([]byte(body.Token), []byte(tok)) != 1 {
		s.guesses.failed(r, "chooser login")
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
		Dev: s.devBypass(r)}
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
