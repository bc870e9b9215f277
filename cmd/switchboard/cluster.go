package main

import (
	"context"
	"flag"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/cluster"
)

// clusterFlags are serve's clustering flags.
type clusterFlags struct {
	url    string
	prefix string
	c      *cluster.Cluster
}

func (f *clusterFlags) register(fl *flag.FlagSet) {
	fl.StringVar(&f.url, "cluster", "", "NATS URL(s) of the cluster, e.g. nats://127.0.0.1:4222 (comma-separated); empty: a single node")
	fl.StringVar(&f.prefix, "cluster-prefix", "switchboard", "NATS subject prefix, to run several clusters on one NATS")
}

// setup prepares the node before the broker exists; apply fills the
// broker config.
func (f *clusterFlags) setup(node string, log *slog.Logger, reg prometheus.Registerer) error {
	if f.url == "" {
		return nil
	}
	c, err := cluster.New(cluster.Config{URL: f.url, Node: node, Prefix: f.prefix, Logger: log, Registerer: reg})
	if err != nil {
		return err
	}
	f.c = c
	return nil
}

func (f *clusterFlags) apply(cfg *broker.Config) {
	if f.c != nil {
		cfg.Cluster = f.c
		cfg.NodeNum = f.c.NodeNum()
	}
}

func (f *clusterFlags) start(b *broker.Broker) error {
	if f.c == nil {
		return nil
	}
	return f.c.Start(b)
}

// ready is /readyz's check: a node cut off from NATS serves local traffic
// but is not ready.
func (f *clusterFlags) ready() error {
	if f.c == nil {
		return nil
	}
	return f.c.Ready()
}

func (f *clusterFlags) shutdown(ctx context.Context) error {
	if f.c == nil {
		return nil
	}
	return f.c.Shutdown(ctx)
}
