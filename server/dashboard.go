package server

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"time"

	"github.com/switchboard-dev/switchboard/protocol"
)

// The dashboard (web/start.js) on a production broker: it polls the admin
// status, which needs the admin credential. Its sign-in trades the admin
// token once for a session cookie, as the chooser's login does: HttpOnly
// (page scripts never hold the token), SameSite=Strict, scoped to the
// status path, held in memory, and good for reading the status only.

const (
	dashboardCookie = "sb_dashboard"
	statusPath      = protocol.ReservedPrefix + "v1/status"
	dashboardLogin  = protocol.ReservedPrefix + "v1/dashboard/login"
	dashboardPrefix = "dashboard:" // dashboard sessions' keys in the session map, never a chooser's
)

// dashboardRoutes adds the status (admin credential or dashboard session)
// and the dashboard's sign-in to m.
func (s *Server) dashboardRoutes(m *http.ServeMux) {
	m.Handle("GET "+statusPath, s.adminGuard(func(w http.ResponseWriter, r *http.Request) {
		if s.dashboardSessionValid(r) || s.admin(w, r) {
			s.serveStatus(w, r)
		}
	}))
	m.Handle("POST "+dashboardLogin, s.adminGuard(s.dashboardSignIn))
}

func (s *Server) dashboardSessionValid(r *http.Request) bool {
	c, err := r.Cookie(dashboardCookie)
	if err != nil || c.Value == "" {
		return false
	}
	s.apps.mu.Lock()
	defer s.apps.mu.Unlock()
	exp, ok := s.apps.sessions[dashboardPrefix+c.Value]
	return ok && time.Now().Before(exp)
}

// dashboardSignIn trades the admin token (JSON "token") for the
// dashboard's session cookie. Failed tries count against the address's
// allowance, as every admin credential check does.
func (s *Server) dashboardSignIn(w http.ResponseWriter, r *http.Request) {
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
		s.guesses.failed(r, "dashboard sign-in")
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
	s.apps.sessions[dashboardPrefix+id] = now.Add(sessionTTL)
	s.apps.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: dashboardCookie, Value: id, Path: statusPath, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: int(sessionTTL / time.Second)})
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}
