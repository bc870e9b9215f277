package portmap

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// ErrNoGateway means the host has no IPv4 default route, so there is no
// router to ask for a mapping.
var ErrNoGateway = errors.New("no default gateway: the host has no IPv4 default route")

// defaultGateway reads the IPv4 default gateway from /proc/net/route (of the
// calling process's network namespace).
func defaultGateway() (netip.Addr, error) {
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return netip.Addr{}, fmt.Errorf("finding default gateway: %w", err)
	}
	defer f.Close()
	return parseProcNetRoute(f)
}

// parseProcNetRoute returns the gateway of the default route with the lowest
// metric. Fields are hex in host byte order (little-endian on Linux/amd64).
func parseProcNetRoute(r io.Reader) (netip.Addr, error) {
	const rtfUp, rtfGateway = 0x1, 0x2
	var best netip.Addr
	bestMetric := -1
	s := bufio.NewScanner(r)
	for first := true; s.Scan(); first = false {
		f := strings.Fields(s.Text())
		if first || len(f) < 8 {
			continue // header line "Iface Destination Gateway Flags ..."
		}
		dst, err1 := strconv.ParseUint(f[1], 16, 32)
		flags, err2 := strconv.ParseUint(f[3], 16, 16)
		metric, err3 := strconv.Atoi(f[6])
		mask, err4 := strconv.ParseUint(f[7], 16, 32)
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
			continue
		}
		if dst != 0 || mask != 0 || flags&rtfUp == 0 || flags&rtfGateway == 0 {
			continue
		}
		raw, err := hex.DecodeString(f[2])
		if err != nil || len(raw) != 4 {
			continue
		}
		var ip [4]byte
		binary.BigEndian.PutUint32(ip[:], binary.LittleEndian.Uint32(raw))
		if bestMetric < 0 || metric < bestMetric {
			best, bestMetric = netip.AddrFrom4(ip), metric
		}
	}
	if err := s.Err(); err != nil {
		return netip.Addr{}, fmt.Errorf("reading route table: %w", err)
	}
	if !best.IsValid() {
		return netip.Addr{}, ErrNoGateway
	}
	return best, nil
}
