package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// dialer opens client WebSocket connections, spreading them over several
// 127.0.0.x source addresses when spread is set, so that more connections
// than one ephemeral port range can be open at once. Every connection is
// closed with SO_LINGER 0, so the harness leaves no TIME_WAIT behind.
type dialer struct {
	clients  []*http.Client
	next     atomic.Uint64
	compress websocket.CompressionMode // CompressionDisabled unless set
}

// withDeflate makes the dialer offer permessage-deflate without context
// takeover.
func (d *dialer) withDeflate() *dialer {
	d.compress = websocket.CompressionNoContextTakeover
	return d
}

// withTLS makes the dialer trust cfg's roots for wss:// URLs.
func (d *dialer) withTLS(cfg *tls.Config) *dialer {
	for _, c := range d.clients {
		c.Transport.(*http.Transport).TLSClientConfig = cfg
	}
	return d
}

// sourceAddrs is how many 127.0.0.x addresses spread connections use
// (127.0.0.2 and up): 16 × ~28,000 ports is room for 100,000 connections.
const sourceAddrs = 16

func newDialer(spread bool) *dialer {
	n := 1
	if spread {
		n = sourceAddrs
	}
	d := &dialer{compress: websocket.CompressionDisabled}
	for i := range n {
		nd := &net.Dialer{Timeout: 30 * time.Second}
		if spread {
			nd.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i))}
		}
		tr := &http.Transport{
			Proxy: nil,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := nd.DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				if tc, ok := c.(*net.TCPConn); ok {
					_ = tc.SetLinger(0)
				}
				return c, nil
			},
		}
		d.clients = append(d.clients, &http.Client{Transport: tr})
	}
	return d
}

func (d *dialer) dial(ctx context.Context, url string) (*websocket.Conn, error) {
	cl := d.clients[d.next.Add(1)%uint64(len(d.clients))]
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		HTTPClient:      cl,
		CompressionMode: d.compress,
	})
	if resp != nil && resp.Body != nil && err != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	return c, nil
}

// dialMany opens n connections with up to par dials in flight.
func (d *dialer) dialMany(ctx context.Context, url string, n, par int) ([]*websocket.Conn, error) {
	conns := make([]*websocket.Conn, n)
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range min(par, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				c, err := d.dial(ctx, url)
				if err != nil {
					once.Do(func() { firstErr = fmt.Errorf("connection %d of %d: %w", i+1, n, err) })
					next.Store(int64(n)) // stop the others
					return
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		closeAll(conns)
		return nil, firstErr
	}
	return conns, nil
}

func closeAll(conns []*websocket.Conn) {
	for _, c := range conns {
		if c != nil {
			c.CloseNow()
		}
	}
}

// roundTrip writes msg and reads one message back, discarding it.
func roundTrip(ctx context.Context, c *websocket.Conn, msg []byte) error {
	if err := c.Write(ctx, websocket.MessageBinary, msg); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	_, r, err := c.Reader(ctx)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	return nil
}

// probeEcho connects once and checks that a message comes back unchanged.
func probeEcho(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return fmt.Errorf("dial %s: %w", url, err)
	}
	defer c.CloseNow()
	want := []byte("switchboard bench probe")
	if err := c.Write(ctx, websocket.MessageText, want); err != nil {
		return fmt.Errorf("write probe: %w", err)
	}
	_, got, err := c.Read(ctx)
	if err != nil {
		return fmt.Errorf("read probe echo: %w", err)
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("probe echo: got %q, want %q", got, want)
	}
	return nil
}

// echoResult is one ping-pong measurement.
type echoResult struct {
	roundTrips     int64
	elapsed        time.Duration
	cpuSeconds     float64 // all target processes
	perSec         float64
	cpuMicrosPerRT float64
	cpuByProc      map[string]float64 // µs per round trip, by process (tree) name
}

// runEcho drives conns connections in closed-loop ping-pong with size-byte
// messages for dur and reads the target's CPU time around it.
func runEcho(ctx context.Context, r *running, conns, size int, dur time.Duration) (echoResult, error) {
	cs, err := newDialer(conns > 10000).dialMany(ctx, r.wsBase+"c", conns, 64)
	if err != nil {
		return echoResult{}, err
	}
	defer closeAll(cs)
	msg := make([]byte, size)
	var total atomic.Int64
	var stop atomic.Bool
	errc := make(chan error, len(cs))
	var wg sync.WaitGroup
	before, _ := r.usage()
	beforeEach := r.usageEach()
	start := time.Now()
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := int64(0)
			for !stop.Load() {
				if err := roundTrip(ctx, c, msg); err != nil {
					errc <- err
					break
				}
				n++
			}
			total.Add(n)
		}()
	}
	select {
	case <-time.After(dur):
	case <-ctx.Done():
	}
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(start)
	after, _ := r.usage()
	afterEach := r.usageEach()
	close(errc)
	if err := <-errc; err != nil {
		return echoResult{}, fmt.Errorf("echo with %d connections: %w", conns, err)
	}
	res := echoResult{roundTrips: total.Load(), elapsed: elapsed, cpuSeconds: after.cpuSeconds - before.cpuSeconds}
	res.perSec = float64(res.roundTrips) / elapsed.Seconds()
	if res.roundTrips > 0 {
		res.cpuMicrosPerRT = res.cpuSeconds * 1e6 / float64(res.roundTrips)
		res.cpuByProc = map[string]float64{}
		for name, a := range afterEach {
			res.cpuByProc[name] = (a - beforeEach[name]) * 1e6 / float64(res.roundTrips)
		}
	}
	return res, nil
}

// runConnect opens and drops connections from par workers for dur and
// returns completed handshakes per second. For Switchboard a handshake
// includes the service's accept round trip.
func runConnect(ctx context.Context, r *running, par int, dur time.Duration) (float64, error) {
	d := newDialer(false)
	var total atomic.Int64
	var stop atomic.Bool
	errc := make(chan error, par)
	var wg sync.WaitGroup
	start := time.Now()
	for range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				c, err := d.dial(ctx, r.wsBase+"connect")
				if err != nil {
					errc <- err
					return
				}
				c.CloseNow()
				total.Add(1)
			}
		}()
	}
	select {
	case <-time.After(dur):
	case <-ctx.Done():
	}
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(start)
	close(errc)
	if err := <-errc; err != nil {
		return 0, fmt.Errorf("connect rate: %w", err)
	}
	return float64(total.Load()) / elapsed.Seconds(), nil
}
