package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/protocol"
	"github.com/switchboard-dev/switchboard/sdk"
)

func init() {
	commands["listen"] = command{runListen, "attach a service (echo, forward, exec) to a scope",
		"listen ws://127.0.0.1:8080/chat/ --to ws://127.0.0.1:3000/"}
}

func runListen(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("listen", flag.ContinueOnError)
	fl.Usage = func() {
		fmt.Fprintf(fl.Output(), "usage: switchboard listen SCOPE_URL (--echo | --to WS_URL | --exec CMD) [flags]\n\n"+
			"Attach a service to the scope SCOPE_URL (e.g. ws://127.0.0.1:8080/echo/) and serve every client:\n"+
			"  --echo       send each message back\n"+
			"  --to URL     forward each client to a local WebSocket server (URL + the client's path after the scope)\n"+
			"  --exec CMD   run \"sh -c CMD\" per client: messages are lines on its stdin, its stdout lines are messages\n\n")
		fl.PrintDefaults()
	}
	echo := fl.Bool("echo", false, "echo every message back to its client")
	to := fl.String("to", "", "forward each accepted client to this local WebSocket `URL`, with the client's path after the scope appended, Origin, Cookie and User-Agent, and X-Forwarded-*/Forwarded headers")
	badGateway := fl.Bool("bad-gateway", false, "with --to: answer 502 when the backend is down, instead of the uniform 404 (tells clients the service exists)")
	execCmd := fl.String("exec", "", "run `CMD` with sh -c for each client: each message is a line on its stdin, each stdout line a text message (websocketd's environment: PATH_INFO, QUERY_STRING, REMOTE_ADDR, HTTP_*, ...)")
	binary := fl.Bool("binary", false, "with --exec: raw bytes both ways, each read of stdout a binary message (websocketd --binary)")
	maxForks := fl.Int("maxforks", 0, "with --exec: at most `N` processes at once; more clients are rejected (0: no limit)")
	passenv := fl.String("passenv", "PATH,LD_LIBRARY_PATH", "with --exec: the variables of listen's environment the process gets, comma-separated (others, such as $SWITCHBOARD_CREDENTIAL, never reach it)")
	var protocols, origins stringList
	fl.Var(&protocols, "protocol", "a subprotocol the service accepts (repeatable, in order of preference); none: any client")
	fl.Var(&origins, "origin", "an admitted client origin, e.g. https://a.example (repeatable); none: any origin")
	label := fl.String("label", "", "version label of this instance, shown by switchboard status and in the logs; an instance with another label takes over the scope (the old one drains and exits), one with the same label stands by")
	takeover := fl.Bool("takeover", false, "take the scope over even from an active instance with the same --label (by default a second copy stands by until the first goes away)")
	credential := fl.String("credential", "", "credential that owns the scope (default $SWITCHBOARD_CREDENTIAL); not needed with serve --dev on loopback")
	grantTok := fl.String("grant", "", "listen grant (a JWT from `switchboard grant mint` or a site's backend) instead of a credential (default $SWITCHBOARD_GRANT)")
	hold := fl.Duration("hold", 0, "while this service restarts, hold new clients' connects up to this long instead of refusing them (capped by the broker's accept timeout; shows that the scope exists)")
	window := fl.Int("window", 0, "bytes of unacknowledged client messages held per channel (0: the broker's default)")
	logF := logFlags(fl)
	caFile := clientTLSFlag(fl)
	pos, err := parseInterspersed(fl, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{msg: "need exactly one scope URL, e.g. ws://127.0.0.1:8080/echo/"}
	}
	modes := 0
	for _, on := range []bool{*echo, *to != "", *execCmd != ""} {
		if on {
			modes++
		}
	}
	if modes != 1 {
		return usageError{msg: "choose exactly one of --echo, --to URL, --exec CMD"}
	}
	log, err := logF.logger()
	if err != nil {
		return err
	}
	if *credential == "" {
		*credential = os.Getenv("SWITCHBOARD_CREDENTIAL")
	}
	if *grantTok == "" {
		*grantTok = os.Getenv("SWITCHBOARD_GRANT")
	}
	svc := &service{
		scopeURL: pos[0], log: log, protocols: protocols, sessions: make(map[uint64]*session),
		opts: sdk.ListenOptions{Protocols: protocols, Origins: origins, Version: *label, Takeover: *takeover,
			Credential: *credential, Grant: *grantTok, Hold: *hold, Window: *window, Logger: log},
	}
	if hc, err := clientHTTP(*caFile); err != nil {
		return err
	} else if hc != nil {
		svc.opts.Dial = &websocket.DialOptions{HTTPClient: hc}
	}
	switch {
	case *echo:
		svc.mode = echoMode{}
	case *to != "":
		if err := checkToURL(*to); err != nil {
			return usageError{msg: err.Error()}
		}
		if err := probeBackend(ctx, *to); err != nil {
			log.Warn("the --to backend is down; clients are rejected until it is up", "to", *to, "err", err)
		}
		tlsConfig, err := clientTLSConfig(*caFile) // --ca-file: for a wss:// backend too
		if err != nil {
			return err
		}
		svc.mode = &toMode{base: *to, badGateway: *badGateway, tlsConfig: tlsConfig}
	default:
		var names []string
		for _, n := range strings.Split(*passenv, ",") {
			if n = strings.TrimSpace(n); n != "" {
				names = append(names, n)
			}
		}
		svc.mode = &execMode{cmd: *execCmd, binary: *binary, maxForks: *maxForks, passenv: names}
	}
	return svc.run(ctx)
}

// mode makes the local side of a session for a client.
type mode interface {
	// open is called for a new client: it prepares the local side and
	// returns it with the subprotocol to accept. An error rejects the
	// client.
	open(ctx context.Context, svc *service, r *sdk.Request) (local, string, error)
	// resume is called for a channel handed over from an instance this
	// process knows nothing of (it crashed or is another process). A nil
	// local closes the channel with 1011.
	resume(r *sdk.Request) local
}

// local is the service side of one client: the echo, the forwarded
// connection or the process.
type local interface {
	// deliver handles one client message; the message is acknowledged
	// after it returns nil.
	deliver(ctx context.Context, ch *sdk.Channel, typ websocket.MessageType, p []byte) error
	// run pumps the local side's output to the client through s.send until
	// the local side ends, then calls s.finish. Called once per session,
	// in its own goroutine; nil-safe modes return at once.
	run(ctx context.Context, s *session)
	// clientClosed tells the local side that the client closed (1006: its
	// connection broke). A local side that still has output sends it and
	// then calls s.finish, which answers the client's close (the broker
	// relays what the service sends until then, up to its close timeout);
	// one with nothing running calls s.finish at once.
	clientClosed(s *session, code websocket.StatusCode, reason string)
	// stop ends the local side at once (process exit).
	stop()
}

// drainTimeout bounds how long a superseded instance finishes what it
// holds before it detaches.
const drainTimeout = 30 * time.Second

// service is one `switchboard listen`: an sdk.Service (which keeps the
// instance attached, reattaching with backoff when the link breaks and
// draining when a newer instance takes over) and the sessions it keeps
// across links.
type service struct {
	scopeURL  string
	opts      sdk.ListenOptions
	protocols []string
	mode      mode
	log       *slog.Logger

	wg sync.WaitGroup // session pumps and per-link reconciles

	mu       sync.Mutex
	sessions map[uint64]*session // by channel id; guarded by mu
	scope    string              // the registered scope path; guarded by mu
}

// run attaches and serves until ctx ends or a newer instance takes over.
func (svc *service) run(ctx context.Context) error {
	defer svc.stopAll()
	s, err := sdk.Attach(ctx, svc.scopeURL, &sdk.AttachOptions{
		ListenOptions: svc.opts, DrainTimeout: drainTimeout,
		OnAttach: func(l *sdk.Listener) {
			if l.Active() {
				fmt.Fprintf(os.Stderr, "switchboard: listening on %s\n", l.URL())
			} else {
				fmt.Fprintf(os.Stderr, "switchboard: standing by for %s: another instance with the same label serves it; this one takes over when it goes away (--takeover or another --label replaces it instead)\n", l.URL())
			}
			svc.mu.Lock()
			svc.scope = l.Scope()
			svc.mu.Unlock()
			svc.wg.Add(2)
			go func() { defer svc.wg.Done(); svc.reconcile(ctx, l.Clients) }()
			go func() { defer svc.wg.Done(); watchLink(ctx, l) }()
		},
	})
	if err != nil {
		var le *sdk.LinkError
		if errors.As(err, &le) && le.Code == protocol.ErrCodeUnauthorized {
			// In the CLI's words (the SDK's error names ListenOptions).
			return fmt.Errorf("switchboard broker: %s (error 3: unauthorized; pass --credential or set $SWITCHBOARD_CREDENTIAL)", le.Message)
		}
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	var wg sync.WaitGroup // channel readers
	for {
		r, err := s.Accept(ctx)
		if err != nil {
			break
		}
		svc.handle(ctx, r, &wg)
	}
	if ctx.Err() != nil {
		svc.log.Info("detaching")
	}
	s.Close()
	wg.Wait()
	switch err := s.Err(); {
	case errors.Is(err, sdk.ErrClosed), errors.Is(err, sdk.ErrSuperseded):
		return nil
	default:
		return err
	}
}

// watchLink says on stderr, in the line the attach printed, each new public
// URL the broker tells this link of (a port mapping made, lost or moved),
// and when a standby becomes active, until the link or ctx ends.
func watchLink(ctx context.Context, l *sdk.Listener) {
	active := l.Active()
	for {
		urlCh, activeCh := l.URLChanged(), l.ActiveChanged()
		select {
		case <-ctx.Done():
			return
		case <-l.Done():
			return
		case <-urlCh:
			fmt.Fprintf(os.Stderr, "switchboard: listening on %s (the public URL changed)\n", l.URL())
		case <-activeCh:
			if now := l.Active(); now && !active {
				fmt.Fprintf(os.Stderr, "switchboard: listening on %s (the active instance went away; this standby took over)\n", l.URL())
			}
			active = l.Active()
		}
	}
}

// reconcile ends sessions whose channels the registration no longer has
// (their clients left while no link was up). The broker sends Open for
// every channel before it answers List, so the list is complete for the
// sessions that were there before the request and are still detached
// when it comes: each of those was handed over to this link by then, or
// is gone. A session that has a channel (its client connected on this
// link, maybe after the list was made) is left alone.
// clients is the link's List request (sdk.Listener.Clients).
func (svc *service) reconcile(ctx context.Context, clients func(context.Context) ([]sdk.ClientInfo, error)) {
	// Only sessions from before the request: a client that connects
	// meanwhile may be missing from the list.
	svc.mu.Lock()
	before := make([]*session, 0, len(svc.sessions))
	for _, s := range svc.sessions {
		before = append(before, s)
	}
	svc.mu.Unlock()
	list, err := clients(ctx)
	if err != nil {
		return
	}
	open := make(map[uint64]bool, len(list))
	for _, c := range list {
		open[c.Channel] = true
	}
	for _, s := range before {
		// A session with a channel is live (it connected on this link).
		if open[s.id] || !s.detached() {
			continue
		}
		svc.log.Info("channel gone while detached", "channel", s.id)
		s.clientClosed(websocket.StatusAbnormalClosure, "gone while detached")
	}
}

// handle answers one connect request or adopts one handed-over channel.
func (svc *service) handle(ctx context.Context, r *sdk.Request, wg *sync.WaitGroup) {
	if r.Resumed {
		ch, _ := r.Accept(ctx, "", nil)
		svc.mu.Lock()
		s := svc.sessions[r.Channel]
		svc.mu.Unlock()
		if s == nil {
			loc := svc.mode.resume(r)
			if loc == nil {
				svc.log.Info("closing a handed-over channel this process has no session for", "channel", r.Channel)
				ch.Close(websocket.StatusInternalError, "session lost")
				return
			}
			s = svc.newSession(ctx, r.Channel, loc)
		}
		svc.log.Info("channel resumed", "channel", r.Channel, "target", r.Target, "after", s.lastSeq())
		ch.ResumeAfter(s.lastSeq())
		s.attach(ch)
		wg.Add(1)
		go func() { defer wg.Done(); s.readLoop(ctx, ch) }()
		return
	}
	loc, proto, err := svc.mode.open(ctx, svc, r)
	if err != nil {
		svc.log.Warn("client rejected: the local side failed", "channel", r.Channel, "target", r.Target, "origin", r.Origin, "err", err)
		if tm, ok := svc.mode.(*toMode); ok && tm.badGateway && errors.Is(err, errBackendDown) {
			r.Respond(ctx, http.StatusBadGateway, http.Header{"Content-Type": {"text/plain; charset=utf-8"}}, []byte("Bad Gateway\n"))
			return
		}
		r.Reject(ctx)
		return
	}
	ch, err := r.Accept(ctx, proto, nil)
	if err != nil {
		loc.stop()
		return
	}
	svc.log.Info("channel open", "channel", r.Channel, "target", r.Target, "origin", r.Origin, "protocol", proto, "remote", r.Remote)
	s := svc.newSession(ctx, r.Channel, loc)
	s.attach(ch)
	wg.Add(1)
	go func() { defer wg.Done(); s.readLoop(ctx, ch) }()
}

// chooseProtocol picks the first subprotocol the client offered that the
// service accepts (any, when --protocol was not given).
func (svc *service) chooseProtocol(offered []string) string {
	for _, p := range offered {
		if len(svc.protocols) == 0 || slices.Contains(svc.protocols, p) {
			return p
		}
	}
	return ""
}

// stopAll ends every session's local side and waits for their pumps.
func (svc *service) stopAll() {
	svc.mu.Lock()
	all := make([]*session, 0, len(svc.sessions))
	for _, s := range svc.sessions {
		all = append(all, s)
	}
	svc.mu.Unlock()
	for _, s := range all {
		s.loc.stop()
		s.cancel()
	}
	svc.wg.Wait()
}

// echoMode sends every message back.
type echoMode struct{}

func (echoMode) open(_ context.Context, svc *service, r *sdk.Request) (local, string, error) {
	return echoLocal{}, svc.chooseProtocol(r.Protocols), nil
}

func (echoMode) resume(*sdk.Request) local { return echoLocal{} }

type echoLocal struct{}

func (echoLocal) deliver(ctx context.Context, ch *sdk.Channel, typ websocket.MessageType, p []byte) error {
	return ch.Write(ctx, typ, p)
}

func (echoLocal) run(context.Context, *session) {}
func (echoLocal) stop()                         {}

// clientClosed answers at once: every echo went out before the client's
// close was read.
func (echoLocal) clientClosed(s *session, _ websocket.StatusCode, _ string) {
	s.finish(websocket.StatusNormalClosure, "") // echoes the client's code
}
