package broker

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func counterValue(c prometheus.Counter) uint64 {
	var m dto.Metric
	if c.Write(&m) != nil || m.Counter == nil {
		return 0
	}
	return uint64(m.Counter.GetValue())
}

func gaugeValue(g prometheus.Gauge) float64 {
	var m dto.Metric
	if g.Write(&m) != nil || m.Gauge == nil {
		return 0
	}
	return m.Gauge.GetValue()
}

// metrics are the broker's Prometheus collectors. The per-message counters
// are resolved once, so the relay path only does atomic adds.
type metrics struct {
	clients       prometheus.Counter
	channels      prometheus.Gauge
	instances     prometheus.Gauge
	msgIn, msgOut prometheus.Counter // client → service, service → client
	bytesIn       prometheus.Counter
	bytesOut      prometheus.Counter
	rejects       *prometheus.CounterVec
	closes        *prometheus.CounterVec
	acceptLatency prometheus.Histogram
	handovers     prometheus.Counter
	linkErrors    *prometheus.CounterVec
	buffered      prometheus.GaugeFunc
	writeWaits    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, buffered func() float64) *metrics {
	msgs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchboard_messages_total", Help: "Messages relayed, by direction (in: client to service, out: service to client).",
	}, []string{"direction"})
	bytes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchboard_bytes_total", Help: "Payload bytes relayed, by direction.",
	}, []string{"direction"})
	m := &metrics{
		clients: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_client_connections_total", Help: "Client WebSocket connections accepted (channels opened).",
		}),
		channels: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "switchboard_channels", Help: "Open channels.",
		}),
		instances: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "switchboard_instances", Help: "Attached service instances.",
		}),
		msgIn:    msgs.WithLabelValues("in"),
		msgOut:   msgs.WithLabelValues("out"),
		bytesIn:  bytes.WithLabelValues("in"),
		bytesOut: bytes.WithLabelValues("out"),
		rejects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_rejects_total", Help: "Client handshakes refused, by reason (clients see the same response for all).",
		}, []string{"reason"}),
		closes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_channel_closes_total", Help: "Channels closed, by who closed them and the close code.",
		}, []string{"by", "code"}),
		acceptLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "switchboard_accept_latency_seconds", Help: "Time from a connect request to the service's answer.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}),
		handovers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_handovers_total", Help: "Times a registration's channels moved to another instance.",
		}),
		linkErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_link_errors_total", Help: "Service links closed by the broker, by reason.",
		}, []string{"reason"}),
		buffered: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "switchboard_buffered_bytes", Help: "Client message bytes held by the broker (unacknowledged or waiting).",
		}, buffered),
		writeWaits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_client_write_waits_total",
			Help: "Writes to clients on the epoll loops that the socket did not take whole: the rest waited for it to be writable (slow or stalled clients).",
		}),
	}
	reg.MustRegister(m.clients, m.channels, m.instances, msgs, bytes, m.rejects, m.closes,
		m.acceptLatency, m.handovers, m.linkErrors, m.buffered, m.writeWaits)
	return m
}
