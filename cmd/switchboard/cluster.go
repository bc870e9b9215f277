package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard/cluster"
)

// clusterFlags are serve's clustering flags.
type clusterFlags struct {
	url    string
	prefix string
	// TLS and credentials for NATS; secrets are read from files.
	caFile, certFile, keyFile     string
	user, passwordFile, tokenFile string
	nkeyFile, credsFile           string
	// Data links between nodes.
	data, dataAdvertise string
	c                   *cluster.Cluster
}

func (f *clusterFlags) register(fl *flag.FlagSet) {
	fl.StringVar(&f.url, "cluster", "", "NATS URL(s) of the cluster, e.g. nats://127.0.0.1:4222 (comma-separated); empty: a single node")
	fl.StringVar(&f.prefix, "cluster-prefix", "switchboard", "NATS subject prefix, to run several clusters on one NATS")
	fl.StringVar(&f.caFile, "cluster-ca-file", "", "PEM file of the CAs of the NATS servers' certificates (TLS; tls:// URLs)")
	fl.StringVar(&f.certFile, "cluster-cert-file", "", "this node's client certificate for NATS (PEM; with --cluster-key-file)")
	fl.StringVar(&f.keyFile, "cluster-key-file", "", "the key of --cluster-cert-file (PEM)")
	fl.StringVar(&f.user, "cluster-user", "", "NATS user (with --cluster-password-file)")
	fl.StringVar(&f.passwordFile, "cluster-password-file", "", "file holding the NATS password of --cluster-user")
	fl.StringVar(&f.tokenFile, "cluster-token-file", "", "file holding a NATS authentication token")
	fl.StringVar(&f.nkeyFile, "cluster-nkey-file", "", "file holding this node's NATS user nkey seed (SU…)")
	fl.StringVar(&f.credsFile, "cluster-creds-file", "", "NATS credentials file (user JWT and seed, NATS in operator mode)")
	fl.StringVar(&f.data, "cluster-data", "", "host:port to listen on for data links from other nodes (mutual TLS, certificates pinned through NATS): cross-node messages go node to node instead of through NATS; empty: through NATS")
	fl.StringVar(&f.dataAdvertise, "cluster-data-advertise", "", "host:port other nodes dial for --cluster-data, when it is not that address (e.g. it listens on every interface)")
}

// secret reads a one-line secret from file ("" for no file).
func secret(file, what string) (string, error) {
	if file == "" {
		return "", nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("cluster %s: %w", what, err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("cluster %s: %s is empty", what, file)
	}
	return s, nil
}

// setup makes the cluster link before the broker exists; the daemon
// starts it with the broker and shuts it down.
func (f *clusterFlags) setup(node string, log *slog.Logger, reg prometheus.Registerer) error {
	if f.url == "" {
		switch {
		case f.data != "":
			return usageError{msg: "--cluster-data needs --cluster"}
		case f.dataAdvertise != "":
			return usageError{msg: "--cluster-data-advertise needs --cluster (and --cluster-data)"}
		}
		return nil
	}
	password, err := secret(f.passwordFile, "password")
	if err != nil {
		return err
	}
	token, err := secret(f.tokenFile, "token")
	if err != nil {
		return err
	}
	if f.user != "" && password == "" {
		return usageError{msg: "--cluster-user needs --cluster-password-file"}
	}
	c, err := cluster.New(cluster.Config{URL: f.url, Node: node, Prefix: f.prefix, Logger: log, Registerer: reg,
		CAFile: f.caFile, CertFile: f.certFile, KeyFile: f.keyFile, User: f.user, Password: password, Token: token,
		NKeySeedFile: f.nkeyFile, CredsFile: f.credsFile, DataListen: f.data, DataAdvertise: f.dataAdvertise})
	if err != nil {
		return err
	}
	f.c = c
	return nil
}
