package cluster_test

import (
	"crypto/rand"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/apps"
	"github.com/switchboard-dev/switchboard/broker"
	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
)

// tokenNode is a node's chooser-token state: the cluster's shared key, its
// own revocation file, shared with the cluster as the daemon does.
type tokenNode struct {
	path   string
	revs   *apps.Revocations
	sealer *apps.Sealer
}

func newTokenNode(t *testing.T, key []byte) *tokenNode {
	t.Helper()
	path := filepath.Join(t.TempDir(), "revoked.json")
	revs, err := apps.OpenRevocations(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := apps.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return &tokenNode{path: path, revs: revs, sealer: s.WithRevocations(revs)}
}

func (tn *tokenNode) share() func(*cluster.Cluster) {
	return func(c *cluster.Cluster) { c.ShareRevocations(tn.revs) }
}

func (tn *tokenNode) revoked(tok string) bool {
	_, err := tn.sealer.Open(tok, "camera", time.Now())
	return errors.Is(err, apps.ErrTokenRevoked)
}

// TestRevocationsReachEveryNode: a token revoked on node t1 no longer
// opens on t2 (which writes the revocation to its own file), and a node
// that joins later learns every revocation made before it came.
func TestRevocationsReachEveryNode(t *testing.T) {
	ns := startNATS(t, -1)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	tn1, tn2, tn3 := newTokenNode(t, key), newTokenNode(t, key), newTokenNode(t, key)
	n1 := startNode(t, "t1", ns.ClientURL(), broker.Limits{}, tn1.share())
	n2 := startNode(t, "t2", ns.ClientURL(), broker.Limits{}, tn2.share())
	testutil.WaitFor(t, "peers", 20*time.Second, func() bool { return len(n1.c.Peers()) == 1 && len(n2.c.Peers()) == 1 })

	byID, g, err := tn1.sealer.Issue("camera", "chat", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	byPair, _, err := tn2.sealer.Issue("camera", "mail", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{byID, byPair} {
		if tn1.revoked(tok) || tn2.revoked(tok) {
			t.Fatal("a fresh token is revoked")
		}
	}
	if err := tn1.revs.RevokeID(g.ID); err != nil {
		t.Fatal(err)
	}
	if err := tn2.revs.RevokePair("camera", "mail"); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "each revocation on the other node", 20*time.Second, func() bool {
		return tn2.revoked(byID) && tn1.revoked(byPair)
	})
	reopened, err := apps.OpenRevocations(tn2.path)
	if err != nil || len(reopened.List()) != 2 {
		t.Fatalf("t2's file after the merge: %v %+v", err, reopened)
	}

	startNode(t, "t3", ns.ClientURL(), broker.Limits{}, tn3.share()) // joins after both
	testutil.WaitFor(t, "the late node to learn both", 20*time.Second, func() bool {
		return tn3.revoked(byID) && tn3.revoked(byPair)
	})
}
