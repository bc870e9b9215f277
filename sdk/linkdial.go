package sdk

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard/internal/rawconn"
)

// linkHTTPClient dials a service link when ListenOptions.Dial brings no
// HTTPClient of its own: http.DefaultTransport's settings (proxy from the
// environment, TLS), with the TCP connection reading and writing through
// internal/rawconn, so that the link's batched writes and reads do not
// hand the scheduler's P to another thread (on Linux; elsewhere it is a
// plain connection).
var linkHTTPClient = sync.OnceValue(func() *http.Client {
	tr, ok := http.DefaultTransport.(*http.Transport)
	if ok {
		tr = tr.Clone()
	} else {
		tr = &http.Transport{Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: false}
	}
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return rawconn.Wrap(c), nil
	}
	return &http.Client{Transport: tr}
})
