package cluster_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/internal/testkit/streamtest"
	"github.com/switchboard-dev/switchboard/internal/testkit/testutil"
)

// TestDataLinkBreaks: both nodes' links go through proxies that are cut
// while three numbered streams run. The links are lost (counted), the
// nodes keep dialing, the streams go over NATS meanwhile and, once the
// proxies let the links through again, each resumes in order with no gap
// (numbers sent again after a loss may come back twice), or is closed
// with 1012 (frames toward its client lost in the cut); the links come
// back and carry a new stream, with nothing over NATS.
func TestDataLinkBreaks(t *testing.T) {
	// The proxies close the links' connections (an orderly close), or
	// reset them (as when a host between the nodes fails).
	t.Run("closed", func(t *testing.T) { dataLinkBreaks(t, func(p *testutil.TCPProxy) { p.SetCut(true) }) })
	t.Run("reset", func(t *testing.T) { dataLinkBreaks(t, (*testutil.TCPProxy).Reset) })
}

func dataLinkBreaks(t *testing.T, cut func(*testutil.TCPProxy)) {
	la, pa := proxiedData(t)
	lb, pb := proxiedData(t)
	w, a, b := linkedPair(t, [2]string{la, pa.Addr()}, [2]string{lb, pb.Addr()})
	pointAt(t, pa, a)
	pointAt(t, pb, b)
	waitLinks(t, "links up both ways", a, b)
	streamtest.EchoLabelled(t, b.ws+"/dl/", "v1")
	var ss []*streamtest.Streamer
	for i := range 3 {
		ss = append(ss, streamtest.Stream(t, dial(t, a.node, "/dl/"+strconv.Itoa(i))))
	}
	streamtest.WaitProgress(t, ss, 500)
	if a.linkMsgs(t, "out") == 0 || b.linkMsgs(t, "out") == 0 {
		t.Fatalf("the streams did not go over the links: %v and %v messages out", a.linkMsgs(t, "out"), b.linkMsgs(t, "out"))
	}

	for _, s := range ss {
		s.Mark()
	}
	natsBefore, dialsBefore := w.natsData(t), a.linkErrs(t, "dial")
	cut(pa)
	cut(pb)
	testutil.WaitFor(t, "both links lost", 20*time.Second, func() bool {
		return a.linkErrs(t, "lost") >= 1 && b.linkErrs(t, "lost") >= 1 && a.links(t) <= 0 && b.links(t) <= 0
	})
	for _, n := range []*linkNode{a, b} {
		// One link broke, once (no new link is up while the proxies refuse).
		if links, lost := n.links(t), n.linkErrs(t, "lost"); links != 0 || lost != 1 {
			t.Fatalf("%s after its one link broke: switchboard_cluster_data_links %v, lost %v; want 0 and 1", n.name, links, lost)
		}
	}
	testutil.WaitFor(t, "a to dial again, and fail while cut", 20*time.Second, func() bool {
		return a.linkErrs(t, "dial") > dialsBefore
	})
	testutil.WaitFor(t, "the streams to go over NATS, or be closed", 20*time.Second, func() bool {
		for _, s := range ss {
			if _, _, err := s.Progress(); err != nil {
				return true
			}
		}
		return w.natsData(t) > natsBefore+100
	})

	pa.SetCut(false)
	pb.SetCut(false)
	waitLinks(t, "links up again", a, b)
	for i, s := range ss {
		resumedOr1012(t, "stream "+strconv.Itoa(i)+" across the cut", s)
		s.Mark()
	}
	// Again, now that the links are back: a loss in the cut may be
	// noticed late (messages that came after a gap wait for it), and
	// what went over NATS before the links were back has arrived once
	// the streams got further.
	for i, s := range ss {
		resumedOr1012(t, "stream "+strconv.Itoa(i)+" over the links again", s)
		if d := s.Duplicates(); d != 0 {
			t.Logf("stream %d: %d numbers came back twice (sent again after a loss)", i, d)
		}
	}

	natsBefore, outBefore := w.natsData(t), a.linkMsgs(t, "out")
	s := streamtest.Stream(t, dial(t, a.node, "/dl/new"))
	streamtest.WaitProgress(t, []*streamtest.Streamer{s}, 1000)
	if a.linkMsgs(t, "out") <= outBefore {
		t.Errorf("the new stream did not go over a's new link")
	}
	if d := w.natsData(t) - natsBefore; d != 0 {
		t.Errorf("%d data messages crossed NATS after the links came back", d)
	}
	if d := s.Duplicates(); d != 0 {
		t.Errorf("the new stream: %d echoes came back twice", d)
	}
}
