package broker

import "github.com/switchboard-dev/switchboard/protocol"

// PublicURLChanged tells this node's services whose public URL changed
// (Config.PublicURL now answers differently, e.g. a port mapping was made,
// lost or moved) the new URL with a URL frame. Only services that asked
// for them (Hello flag HelloURLUpdates) get one; the others learn it when
// they next attach. It returns how many services were told.
func (b *Broker) PublicURLChanged() int {
	if b.cfg.PublicURL == nil {
		return 0
	}
	b.mu.RLock()
	insts := make([]*Instance, 0, len(b.links))
	for _, inst := range b.links {
		insts = append(insts, inst)
	}
	b.mu.RUnlock()
	told := 0
	for _, inst := range insts {
		old := inst.sentURL.Load()
		if !inst.urlUpdates || inst.dead.Load() || old == nil { // nil: Welcome not sent yet
			continue
		}
		u := b.cfg.PublicURL(inst.urlBase)
		if *old == u {
			continue
		}
		inst.sentURL.Store(&u)
		inst.sendFrame(&protocol.URL{PublicURL: u})
		told++
	}
	if told > 0 {
		b.log.Info("told services their new public URL", "services", told)
	}
	return told
}
