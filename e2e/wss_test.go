package e2e

import (
	"testing"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/daemon"
	"github.com/switchboard-dev/switchboard/internal/testkit/streamtest"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
	"github.com/switchboard-dev/switchboard/internal/testkit/wstest"
)

// TestConformanceOverWSS runs the raw-frame cases through a broker that
// serves wss:// only: the clients' frames arrive in TLS records, which the
// broker's epoll loops decrypt and parse as they do plain ones (and the
// echo service's link runs over TLS too).
func TestConformanceOverWSS(t *testing.T) {
	_, wss, conf := testutil.StartBrokerTLS(t, daemon.Settings{Limits: broker.Limits{MaxMessage: maxMessage}}, daemon.Options{})
	streamtest.EchoTLS(t, wss+"/echo/", conf)
	wstest.Run(t, wss+"/echo/conformance", wstest.Options{
		MaxMessageSize: maxMessage,
		Relay:          true,
		TLS:            conf,
	})
}
