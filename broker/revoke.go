package broker

import (
	"github.com/switchboard-dev/switchboard/protocol"
	"github.com/switchboard-dev/switchboard/scope"
)

// Revoke ends the links of this node's instances whose registration may no
// longer be held by its owner (keep returns false), with an Unauthorized
// Error frame. A reload that removed or changed a credential calls it;
// registrations whose owner keep admits are untouched. Channels of a
// revoked registration wait for a new instance like after any detach
// (handover timeout, then 1012). It returns the scopes whose links it
// ended.
func (b *Broker) Revoke(keep func(owner string, scope scope.Scope) bool) []string {
	b.mu.RLock()
	regs := b.registrationsLocked()
	b.mu.RUnlock()
	var revoked []string
	for _, reg := range regs {
		if keep(reg.owner, reg.scope) {
			continue
		}
		reg.mu.Lock()
		var local []*Instance
		for _, inst := range reg.instances {
			if inst.link.local() { // proxies of other nodes' instances are theirs to revoke
				local = append(local, inst)
			}
		}
		reg.mu.Unlock()
		if len(local) == 0 {
			continue
		}
		for _, inst := range local {
			inst.fail(&linkError{protocol.ErrCodeUnauthorized, "the credential of this registration was removed or changed by a configuration reload"})
		}
		b.log.Warn("reload revoked a registration's links", "scope", reg.scope.String(), "owner", reg.owner, "instances", len(local))
		revoked = append(revoked, reg.scope.String())
	}
	return revoked
}
