package portmap

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/huin/goupnp"
	"github.com/huin/goupnp/dcps/internetgateway2"
	"github.com/huin/goupnp/soap"
	"github.com/huin/goupnp/ssdp"
)

// igdConnection is what WANIPConnection1, WANIPConnection2 and
// WANPPPConnection1 clients of goupnp have in common.
type igdConnection interface {
	AddPortMappingCtx(ctx context.Context, remoteHost string, externalPort uint16, protocol string, internalPort uint16, internalClient string, enabled bool, description string, leaseSeconds uint32) error
	DeletePortMappingCtx(ctx context.Context, remoteHost string, externalPort uint16, protocol string) error
	GetSpecificPortMappingEntryCtx(ctx context.Context, remoteHost string, externalPort uint16, protocol string) (internalPort uint16, internalClient string, enabled bool, description string, leaseSeconds uint32, err error)
	GetExternalIPAddressCtx(ctx context.Context) (string, error)
}

// UPnPError is a SOAP fault from a UPnP IGD: the gateway answered, and said no.
type UPnPError struct {
	Action      string
	Code        int
	Description string
}

func (e *UPnPError) Error() string {
	text := upnpErrorText(e.Code)
	if text == "" {
		text = e.Description
	}
	return fmt.Sprintf("upnp %s refused: error %d (%s)", e.Action, e.Code, text)
}

func upnpErrorText(code int) string {
	switch code {
	case 402:
		return "Invalid Args"
	case 501:
		return "Action Failed"
	case 606:
		return "Action not authorized: gateway policy refuses this mapping"
	case 714:
		return "NoSuchEntryInArray: no such mapping"
	case 715:
		return "WildCardNotPermittedInSrcIP"
	case 716:
		return "WildCardNotPermittedInExtPort"
	case 718:
		return "ConflictInMappingEntry: the external port is mapped to another host"
	case 724:
		return "SamePortValuesRequired: gateway wants external port = internal port"
	case 725:
		return "OnlyPermanentLeasesSupported"
	case 726:
		return "RemoteHostOnlySupportsWildcard"
	case 727:
		return "ExternalPortOnlySupportsWildcard"
	case 728:
		return "NoPortMapsAvailable"
	case 729:
		return "ConflictWithOtherMechanisms"
	case 732:
		return "WildCardNotPermittedInIntPort"
	}
	return ""
}

// upnpErr turns a goupnp SOAP fault into *UPnPError; other errors (HTTP,
// timeouts) are wrapped as they are.
func upnpErr(action string, err error) error {
	var fault *soap.SOAPFaultError
	if errors.As(err, &fault) && fault.Detail.UPnPError.Errorcode != 0 {
		return &UPnPError{Action: action, Code: fault.Detail.UPnPError.Errorcode, Description: fault.Detail.UPnPError.ErrorDescription}
	}
	return fmt.Errorf("upnp %s: %w", action, err)
}

// upnpBackend maps one TCP port on a UPnP Internet Gateway Device.
type upnpBackend struct {
	cfg       *Config
	conn      igdConnection
	service   string     // URN of the connection service in use
	host      netip.Addr // the device's address
	local     netip.Addr // our address towards it: the mapping's internal client
	permanent bool       // the gateway only accepts lease 0 (error 725)
}

// discoverUPnP finds an IGD by SSDP (about 2 s) and picks its WAN connection
// service, preferring the device at the default gateway's address.
func discoverUPnP(ctx context.Context, gw netip.Addr, cfg *Config) (*upnpBackend, error) {
	roots, err := goupnp.DiscoverDevicesCtx(ctx, ssdp.UPNPRootDevice)
	if err != nil {
		return nil, fmt.Errorf("upnp: SSDP search: %w", err)
	}
	var found []*upnpBackend
	var probeErrs []error
	for _, r := range roots {
		if r.Err != nil {
			probeErrs = append(probeErrs, r.Err)
			continue
		}
		b := igdFromRoot(r.Root, r.Location.Hostname(), cfg)
		if b != nil {
			found = append(found, b)
		}
	}
	if len(found) == 0 {
		if len(probeErrs) > 0 {
			return nil, fmt.Errorf("upnp: no Internet Gateway Device answered SSDP (%d devices failed: %w)", len(probeErrs), errors.Join(probeErrs...))
		}
		return nil, fmt.Errorf("upnp: no Internet Gateway Device answered SSDP within 2s")
	}
	pick := found[0]
	for _, b := range found {
		if b.host == gw {
			pick = b
			break
		}
	}
	local, err := localAddrTowards(pick.host)
	if err != nil {
		return nil, fmt.Errorf("upnp: %w", err)
	}
	pick.local = local
	return pick, nil
}

func igdFromRoot(root *goupnp.RootDevice, host string, cfg *Config) *upnpBackend {
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return nil
	}
	loc := root.URLBase
	b := &upnpBackend{cfg: cfg, host: addr.Unmap()}
	if cs, _ := internetgateway2.NewWANIPConnection2ClientsFromRootDevice(root, &loc); len(cs) > 0 {
		b.conn, b.service = cs[0], internetgateway2.URN_WANIPConnection_2
		return b
	}
	if cs, _ := internetgateway2.NewWANIPConnection1ClientsFromRootDevice(root, &loc); len(cs) > 0 {
		b.conn, b.service = cs[0], internetgateway2.URN_WANIPConnection_1
		return b
	}
	if cs, _ := internetgateway2.NewWANPPPConnection1ClientsFromRootDevice(root, &loc); len(cs) > 0 {
		b.conn, b.service = cs[0], internetgateway2.URN_WANPPPConnection_1
		return b
	}
	return nil
}

// localAddrTowards returns the source address the kernel picks to reach dst.
// Connecting a UDP socket sends nothing.
func localAddrTowards(dst netip.Addr) (netip.Addr, error) {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, 9)))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("finding our address towards %s: %w", dst, err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), nil
}

func (b *upnpBackend) protocol() string { return string(UPnP) }
func (b *upnpBackend) gateway() string  { return b.host.String() }

func (b *upnpBackend) externalPort() uint16 {
	if b.cfg.ExternalPort != 0 {
		return uint16(b.cfg.ExternalPort)
	}
	return uint16(b.cfg.InternalPort)
}

func (b *upnpBackend) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, b.cfg.RequestTimeout)
}

func (b *upnpBackend) mapPort(ctx context.Context) (mapping, bool, error) {
	ctx, cancel := b.withTimeout(ctx)
	defer cancel()
	lease := uint32(b.cfg.Lease / time.Second)
	if b.permanent {
		lease = 0
	}
	add := func(lease uint32) error {
		err := b.conn.AddPortMappingCtx(ctx, "", b.externalPort(), "TCP", uint16(b.cfg.InternalPort), b.local.String(), true, b.cfg.Description, lease)
		if err != nil {
			return upnpErr("AddPortMapping", err)
		}
		return nil
	}
	err := add(lease)
	var ue *UPnPError
	if errors.As(err, &ue) && ue.Code == 725 && lease != 0 {
		b.permanent = true
		lease = 0
		err = add(0)
	}
	if err != nil {
		return mapping{}, false, err
	}
	ipText, err := b.conn.GetExternalIPAddressCtx(ctx)
	if err != nil {
		return mapping{}, false, upnpErr("GetExternalIPAddress", err)
	}
	ip, err := netip.ParseAddr(ipText)
	if err != nil {
		return mapping{}, false, fmt.Errorf("upnp GetExternalIPAddress: gateway sent %q: %w", ipText, err)
	}
	return mapping{ExternalIP: ip.Unmap(), ExternalPort: int(b.externalPort()), Lifetime: time.Duration(lease) * time.Second}, false, nil
}

// check asks the gateway for our mapping (GetSpecificPortMappingEntry) and
// for the external address; a missing entry means the gateway restarted or
// dropped it, and the mapping is made again.
func (b *upnpBackend) check(ctx context.Context, cur mapping) (mapping, string, error) {
	cctx, cancel := b.withTimeout(ctx)
	iport, client, _, _, _, err := b.conn.GetSpecificPortMappingEntryCtx(cctx, "", b.externalPort(), "TCP")
	var reason string
	if err != nil {
		var ue *UPnPError
		err = upnpErr("GetSpecificPortMappingEntry", err)
		if !errors.As(err, &ue) || (ue.Code != 714 && ue.Code != 402) {
			cancel()
			return mapping{}, "", err
		}
		reason = "mapping missing on the gateway (restarted?); mapping made again"
	} else if int(iport) != b.cfg.InternalPort || client != b.local.String() {
		reason = fmt.Sprintf("gateway maps the port to %s:%d, not to us; mapping made again", client, iport)
	} else if ipText, err := b.conn.GetExternalIPAddressCtx(cctx); err != nil {
		cancel()
		return mapping{}, "", upnpErr("GetExternalIPAddress", err)
	} else if ip, err := netip.ParseAddr(ipText); err == nil && ip.Unmap() != cur.ExternalIP {
		reason = fmt.Sprintf("external address changed from %s to %s; mapping made again", cur.ExternalIP, ip)
	}
	cancel()
	if reason == "" {
		return cur, "", nil
	}
	mp, _, err := b.mapPort(ctx)
	if err != nil {
		return mapping{}, "", fmt.Errorf("%s, but mapping again failed: %w", reason, err)
	}
	return mp, reason, nil
}

func (b *upnpBackend) unmap(ctx context.Context, _ mapping) error {
	ctx, cancel := b.withTimeout(ctx)
	defer cancel()
	if err := b.conn.DeletePortMappingCtx(ctx, "", b.externalPort(), "TCP"); err != nil {
		return upnpErr("DeletePortMapping", err)
	}
	return nil
}
