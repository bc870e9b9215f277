package server

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard/apps"
	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/protocol"
	"github.com/switchboard-dev/switchboard/scope"
)

// Apps is the app state the server consults: the directory of apps and
// manifests, swapped whole on reload, and the chooser-token sealer and
// revocation list. Connections already accepted are never re-checked, so
// a swap changes permissions for new connections only.
type Apps struct {
	dir atomic.Pointer[apps.Directory]

	// Sealer issues and opens chooser tokens (with the revocations
	// applied). Static; nil: tokens are refused and cannot be issued.
	Sealer *apps.Sealer
	// Revocations is the persistent revocation list. Static; nil: tokens
	// cannot be revoked.
	Revocations *apps.Revocations
}

// NewApps returns the app state with dir as its directory (nil: no apps).
func NewApps(dir *apps.Directory, sealer *apps.Sealer, revs *apps.Revocations) *Apps {
	a := &Apps{Sealer: sealer, Revocations: revs}
	if dir == nil {
		dir, _ = apps.NewDirectory(nil)
	}
	a.dir.Store(dir)
	return a
}

// Directory returns the current directory. Safe for concurrent use.
func (a *Apps) Directory() *apps.Directory { return a.dir.Load() }

// Swap replaces the directory; connections already accepted are kept.
func (a *Apps) Swap(d *apps.Directory) { a.dir.Store(d) }

// appsServer is the server's app-related state.
type appsServer struct {
	denials *prometheus.CounterVec // static

	mu     sync.Mutex
	issued []issuedGrant // guarded by mu; the latest maxIssued grants
	// sessions are chooser login sessions: random cookie value → expiry.
	sessions map[string]time.Time // guarded by mu
}

// maxIssued bounds the issued-grant log kept for the admin API.
const maxIssued = 1000

func newAppsServer(reg prometheus.Registerer) *appsServer {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	a := &appsServer{
		denials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_app_denials_total",
			Help: "wsapp:// connections refused by the app rules, by reason (clients see the same response as for an unknown scope).",
		}, []string{"reason"}),
		sessions: make(map[string]time.Time),
	}
	reg.MustRegister(a.denials)
	return a
}

// appPrefix is the client endpoint for wsapp:// URLs:
// /.switchboard/v1/app/{ID-or-TOKEN}/{path}.
const appPrefix = protocol.ReservedPrefix + "v1/app/"

// serveApp runs the connect flow of a wsapp:// URL: it identifies the
// caller, resolves the target (an app id or a chooser token), checks both
// sides' rules, and offers the connection to the target app's
// registration. Every refusal is the uniform rejection.
func (s *Server) serveApp(w http.ResponseWriter, r *http.Request, start time.Time) {
	if !isUpgrade(r) {
		s.refuse(w, r, start)
		return
	}
	remote, ok := s.admitHandshake(w, r)
	if !ok {
		return
	}
	slot := s.holdAddr(remote.Addr())
	defer slot.release()
	r = withSlot(r, slot)

	hs, err := s.appHandshake(r)
	if err != nil {
		reason := string(apps.ReasonOf(err))
		s.apps.denials.WithLabelValues(reason).Inc()
		s.rejects.note(reason, appPrefix, r.RemoteAddr) // aggregated: a flood costs a line per reason per 10 s
		s.log.Debug("wsapp connection refused", "reason", reason, "remote", r.RemoteAddr, "err", err)
		s.refuse(w, r, start)
		return
	}
	s.connect(w, r, hs, start)
}

// manifestOnPlainRoute returns the check of a plain ws:// client against
// the app manifests (nil when the broker has no apps). Reaching an app's
// scope by its URL must not get round what wsapp:// enforces: a page whose
// origin belongs to an app is held to that app's servers and to the
// target's admit rule, as on wsapp://; and an app with wsapp_only is
// reachable through wsapp:// alone. Registrations not owned by an app,
// and callers that are no app, are not the manifests' business.
func (s *Server) manifestOnPlainRoute(r *http.Request) func(owner string) bool {
	if s.cfg.Apps == nil {
		return nil
	}
	origin := r.Header.Get("Origin")
	return func(owner string) bool {
		target, ok := strings.CutPrefix(owner, apps.OwnerPrefix)
		if !ok {
			return true
		}
		dir := s.cfg.Apps.Directory()
		if app, ok := dir.App(target); ok && app.WsappOnly {
			s.apps.denials.WithLabelValues("wsapp_only").Inc()
			return false
		}
		caller, isApp := dir.ByOrigin(origin)
		if !isApp {
			return true
		}
		if err := dir.MayConnect(caller, target); err != nil {
			reason := string(apps.ReasonOf(err))
			s.apps.denials.WithLabelValues(reason).Inc()
			s.log.Info("plain connection to an app refused by the manifests", "reason", reason, "remote", r.RemoteAddr, "err", err)
			return false
		}
		return true
	}
}

// serveAppScope tells an app where it listens: POST the app's credential
// as the body (text/plain, so a page on any origin needs no preflight);
// the answer is {"app": ID, "scope": its first listen scope}. The browser
// library's setMessageHandler without a scope asks here (seed 000's
// server app names no scope). A wrong credential gets 403 with no detail.
func (s *Server) serveAppScope(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodPost {
		http.Error(w, "POST the app credential as the body", http.StatusMethodNotAllowed)
		return
	}
	secret, err := io.ReadAll(io.LimitReader(r.Body, 1024))
	if err != nil || s.cfg.Apps == nil {
		http.Error(w, "Forbidden", http.StatusForbidden)
		return
	}
	dir := s.cfg.Apps.Directory()
	id, ok := dir.Authenticate(strings.TrimSpace(string(secret)))
	app, found := dir.App(id.App)
	if !ok || !found {
		http.Error(w, "Forbidden", http.StatusForbidden)
		return
	}
	if len(app.Listen) == 0 {
		http.Error(w, "app "+app.ID+" has no listen scope in its manifest", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"app": app.ID, "scope": app.Listen[0]})
}

// denyf is a refusal that package apps has no reason for.
func denyf(reason, msg string) error {
	return &apps.DenyError{Reason: apps.Reason(reason), Msg: msg}
}

// appHandshake checks a wsapp request and builds the handshake offered to
// the target app's registration. Its errors are for the operator only.
func (s *Server) appHandshake(r *http.Request) (*broker.Handshake, error) {
	if s.cfg.Apps == nil {
		return nil, denyf("no_apps", "this broker has no apps configured")
	}
	dir := s.cfg.Apps.Directory()
	rest := strings.TrimPrefix(r.URL.EscapedPath(), appPrefix)
	authority, path, _ := strings.Cut(rest, "/")
	path = "/" + path
	if authority == "" || scope.HasDotSegments(path) || strings.Contains(path, "//") {
		// The path is not logged: its first segment may be a chooser token.
		return nil, denyf("bad_url", "malformed wsapp path (dot segments, empty segments or no app)")
	}
	caller, err := callerOf(dir, r)
	if err != nil {
		return nil, err
	}

	target := authority
	if len(authority) > scope.MaxAppIDLen { // a chooser token
		if s.cfg.Apps.Sealer == nil || caller.App == "" {
			return nil, apps.ErrTokenInvalid
		}
		g, err := s.cfg.Apps.Sealer.Open(authority, caller.App, time.Now())
		if err != nil {
			return nil, err
		}
		if err := dir.MayConnectWithGrant(caller, g); err != nil {
			return nil, err
		}
		target = g.Target
	} else {
		if err := scope.ValidAppID(authority); err != nil {
			return nil, denyf(string(apps.ReasonUnknownApp), err.Error())
		}
		if err := dir.MayConnect(caller, authority); err != nil {
			return nil, err
		}
	}
	app, _ := dir.App(target)
	if len(app.Listen) == 0 {
		return nil, denyf("no_listen_scope", caller.String()+" may connect, but the target app has no listen scope to route to")
	}
	sc, err := scope.Parse(app.Listen[0], true)
	if err != nil {
		return nil, denyf("bad_scope", err.Error())
	}
	hs, err := s.appTarget(r, caller, sc, path)
	if err != nil {
		return nil, err
	}
	hs.Owner = apps.Owner(target) // only the target app's own registration may take it
	return hs, nil
}

// callerOf identifies the caller: by credential (query "credential" or
// "Authorization: Bearer"), else by the Origin header. A wrong credential
// is a refusal, never a fall back to the origin.
func callerOf(dir *apps.Directory, r *http.Request) (apps.Identity, error) {
	secret := r.URL.Query().Get("credential")
	if secret == "" {
		secret, _ = strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	origin := r.Header.Get("Origin")
	if secret != "" {
		id, ok := dir.Authenticate(secret)
		if !ok {
			return apps.Identity{}, denyf("bad_credential", "unknown app credential")
		}
		if origin != "" {
			if n, err := scope.CanonicalOrigin(origin); err == nil {
				id.Origin = n
			}
		}
		return id, nil
	}
	if origin != "" {
		id, _ := dir.ByOrigin(origin)
		if id.Origin == "" {
			return apps.Identity{}, denyf("bad_origin", "malformed Origin "+origin)
		}
		return id, nil
	}
	return apps.Identity{}, nil // anonymous: only admit.any lets it in
}

// appTarget builds the handshake for the target's registration: the path
// is the scope's path plus the rest of the wsapp path, App is the verified
// caller, and the caller's credential is removed from the query and the
// headers, so the service never sees it (nor a token: it is only in the
// path this replaces).
func (s *Server) appTarget(r *http.Request, caller apps.Identity, sc scope.Scope, rest string) (*broker.Handshake, error) {
	q := r.URL.Query()
	q.Del("credential")
	r2 := r.Clone(r.Context())
	r2.Header.Del("Authorization")
	r2.URL.Path, r2.URL.RawPath, r2.URL.RawQuery = "", sc.Path+strings.TrimPrefix(rest, "/"), q.Encode()
	r2.URL.Path, _ = url.PathUnescape(r2.URL.RawPath)
	hs, err := handshakeOf(r2, remoteAddr(r))
	if err != nil {
		return nil, denyf("bad_url", "malformed wsapp path")
	}
	if sc.Host != "" {
		hs.Host = sc.Host
	}
	hs.App = caller.App
	return hs, nil
}
