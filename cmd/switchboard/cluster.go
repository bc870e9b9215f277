package main

import (
	"flag"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

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

// setup makes the cluster link before the broker exists; the daemon
// starts it with the broker and shuts it down.
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
