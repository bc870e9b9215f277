package cluster

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// Configuration reloads across the cluster.
//
// Every node runs from its own config file; the operator gives every node
// the same credentials, apps and grants. A reload made on any node (SIGHUP
// or POST /.switchboard/v1/reload) is numbered with a generation (later
// than every generation the node has heard of) and published on
// PREFIX.reload: every other node re-reads its own file at once. Each
// heartbeat carries the node's generation and a digest of the
// configuration it applies, so a node that missed the message (cut off
// from NATS, or not yet started) re-reads its file as soon as it hears of
// a newer generation, and nodes at the same generation whose digests
// differ say so (a WARN log line and
// switchboard_cluster_config_mismatch_peers): one of them was given
// another file, or refused it.

// reloadMsg is the payload of PREFIX.reload.
type reloadMsg struct {
	Node   string `json:"node"`
	Gen    uint64 `json:"gen"`
	Digest string `json:"digest"`
}

// ShareReloads makes configuration reloads cluster-wide: digest is the
// configuration this node runs now; reload re-reads its file when another
// node reloaded and returns the digest of the configuration then in force
// (the old one, with the error, if the file was refused). Call it before
// Start; call Reloaded after every reload the operator asked of this node.
func (c *Cluster) ShareReloads(digest string, reload func(ctx context.Context) (string, error)) {
	c.mu.Lock()
	c.cfgDigest, c.reload = digest, reload
	c.mu.Unlock()
}

// Reloaded tells the other nodes that this node's configuration was
// reloaded (now digest): they re-read their files.
func (c *Cluster) Reloaded(digest string) {
	c.mu.Lock()
	c.cfgGen = max(uint64(time.Now().UnixMilli()), c.cfgGen+1, c.cfgSeen+1)
	c.cfgSeen = c.cfgGen
	c.cfgDigest = digest
	msg := reloadMsg{Node: c.cfg.Node, Gen: c.cfgGen, Digest: digest}
	c.mu.Unlock()
	data, _ := json.Marshal(msg)
	c.publish(c.subject("reload"), data)
	c.checkDigests()
}

func (c *Cluster) onReload(m *nats.Msg) {
	c.msgsIn.Inc()
	var msg reloadMsg
	if err := json.Unmarshal(m.Data, &msg); err != nil || msg.Node == c.cfg.Node {
		return
	}
	c.reloadFor(msg.Node, msg.Gen)
}

// reloadFor asks the reload goroutine to re-read the file for generation
// gen (from node), unless this node is there already.
func (c *Cluster) reloadFor(node string, gen uint64) {
	c.mu.Lock()
	if c.reload == nil || gen <= c.cfgSeen {
		c.mu.Unlock()
		return
	}
	c.cfgSeen = gen
	c.mu.Unlock()
	select {
	case c.reloads <- reloadReq{node, gen}:
	default: // one is queued: it reads the file after this request anyway
		select {
		case <-c.reloads:
		default:
		}
		c.reloads <- reloadReq{node, gen}
	}
}

type reloadReq struct {
	node string
	gen  uint64
}

// reloader re-reads the config file when another node reloaded, one
// request at a time, outside the NATS handlers.
func (c *Cluster) reloader() {
	defer c.wg.Done()
	for {
		var r reloadReq
		select {
		case <-c.stop:
			return
		case r = <-c.reloads:
		}
		c.mu.Lock()
		reload := c.reload
		c.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		digest, err := reload(ctx)
		cancel()
		c.mu.Lock()
		c.cfgGen = max(c.cfgGen, r.gen)
		c.cfgDigest = digest
		c.mu.Unlock()
		if err != nil {
			c.log.Warn("another node reloaded its configuration; this node's file was refused, the running configuration is kept", "by", r.node, "err", err)
		} else {
			c.log.Info("configuration reloaded because another node reloaded", "by", r.node, "digest", digest)
		}
		c.checkDigests()
	}
}

// peerConfig notes a peer's configuration from its heartbeat: a newer
// generation means a reload this node missed.
func (c *Cluster) peerConfig(num uint64, gen uint64, digest string) {
	c.mu.Lock()
	p := c.peers[num]
	changed := p != nil && (p.digest != digest || p.gen != gen)
	if p != nil {
		p.gen, p.digest = gen, digest
	}
	c.mu.Unlock()
	if p == nil {
		return
	}
	if gen > 0 {
		c.reloadFor(p.name, gen)
	}
	if changed {
		c.checkDigests()
	}
}

// checkDigests counts the peers whose configuration differs from this
// node's, and logs each that newly does. Only nodes at the same reload
// generation are compared: one behind is about to re-read its file.
func (c *Cluster) checkDigests() {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, p := range c.peers {
		differs := p.gen == c.cfgGen && p.digest != "" && c.cfgDigest != "" && p.digest != c.cfgDigest
		if differs {
			n++
			if !p.warned {
				c.log.Warn("another node runs a different configuration (credentials, apps or grants): give every node the same file and reload", "peer", p.name, "peer_digest", p.digest, "digest", c.cfgDigest)
			}
		}
		p.warned = differs
	}
	c.cfgMismatch.Set(float64(n))
}

func newMismatchGauge() prometheus.Gauge {
	return prometheus.NewGauge(prometheus.GaugeOpts{Name: "switchboard_cluster_config_mismatch_peers",
		Help: "Peers whose configuration (credentials, apps, grants) differs from this node's."})
}
