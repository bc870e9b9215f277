// Command echoserver is the benchmark's direct target: a plain WebSocket echo
// server built with github.com/coder/websocket (the library of the broker's
// service links and wss:// clients; its ws:// clients are on epoll loops).
// It is the ceiling every relay is compared with, and the backend that nginx,
// HAProxy and Pushpin proxy to.
//
// It listens on one or more loopback ports (several ports let a proxy open
// more than one port range's worth of upstream connections) and prints
// "listening ADDR[,ADDR...]" on stdout once every port accepts. Every
// message a client sends is echoed back. A POST to /broadcast writes one
// message to every connected client whose path ends in "/fan" and answers
// with the number written: the fan-out trigger for peers without a push API.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "first address to listen on")
	extra := flag.Int("extra-ports", 0, "additional ephemeral loopback ports to listen on")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, log, *listen, *extra); err != nil {
		fmt.Fprintf(os.Stderr, "echoserver: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger, addr string, extra int) error {
	s := &server{log: log, fans: map[*websocket.Conn]struct{}{}}
	lns := make([]net.Listener, 0, 1+extra)
	addrs := make([]string, 0, 1+extra)
	for i := 0; i <= extra; i++ {
		a := addr
		if i > 0 {
			a = "127.0.0.1:0"
		}
		ln, err := net.Listen("tcp", a)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", a, err)
		}
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /broadcast", s.broadcast)
	mux.HandleFunc("/", s.echo)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	var wg sync.WaitGroup
	errc := make(chan error, len(lns))
	for _, ln := range lns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serve %s: %w", ln.Addr(), err)
			}
		}()
	}
	fmt.Printf("listening %s\n", strings.Join(addrs, ","))
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	_ = hs.Close() // hijacked WebSocket conns are not tracked by Shutdown
	wg.Wait()
	return err
}

// server holds the fan-out set; echo connections need no shared state.
type server struct {
	log  *slog.Logger
	mu   sync.Mutex
	fans map[*websocket.Conn]struct{} // guarded by mu
}

func (s *server) echo(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		InsecureSkipVerify: true,
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		return
	}
	defer c.CloseNow()
	if strings.HasSuffix(r.URL.Path, "/fan") {
		s.mu.Lock()
		s.fans[c] = struct{}{}
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			delete(s.fans, c)
			s.mu.Unlock()
		}()
	}
	ctx := r.Context()
	for {
		typ, p, err := c.Read(ctx)
		if err != nil {
			return
		}
		if err := c.Write(ctx, typ, p); err != nil {
			return
		}
	}
}

// broadcast writes one message (size bytes, default 64) to every fan-out
// client, from a bounded pool of writers, and answers with the count.
func (s *server) broadcast(w http.ResponseWriter, r *http.Request) {
	size, _ := strconv.Atoi(r.URL.Query().Get("size"))
	if size <= 0 {
		size = 64
	}
	msg := make([]byte, size)
	s.mu.Lock()
	conns := make([]*websocket.Conn, 0, len(s.fans))
	for c := range s.fans {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	work := make(chan *websocket.Conn)
	var wg sync.WaitGroup
	var mu sync.Mutex
	sent := 0
	for range min(64, len(conns)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				if c.Write(ctx, websocket.MessageBinary, msg) == nil {
					mu.Lock()
					sent++
					mu.Unlock()
				}
			}
		}()
	}
	for _, c := range conns {
		work <- c
	}
	close(work)
	wg.Wait()
	fmt.Fprintf(w, "%d\n", sent)
}
