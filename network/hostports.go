package network

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/nucleus-run/nucleus/network/firewall"
	"github.com/nucleus-run/nucleus/network/ipam"
	"github.com/nucleus-run/nucleus/opterr"
)

// procNet is where the host's sockets are listed (the host's network
// namespace: nucleus runs there).
var procNet = "/proc/net"

// checkHostPorts refuses a --publish whose host port a host socket
// listens on: the DNAT rule would take the port from that service
// without a word. A listener on all addresses clashes with any publish of
// the port, one on an address with a publish on all or on it.
func checkHostPorts(ports []Port) error {
	gws, err := firewall.Gateways()
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	gws = append(gws, ipam.Gateway4, ipam.Gateway6)
	for _, p := range ports {
		// A gateway's port 53 is the resolver of that bridge's
		// containers; a DNAT there would answer for it.
		for _, gw := range gws {
			if p.HostIP != nil && p.HostIP.Equal(gw) {
				return opterr.Errorf("publish", "%s: %s is the gateway of a nucleus bridge: publish on another host address", p, p.HostIP)
			}
		}
		files := []string{"tcp", "tcp6"}
		if p.Proto == "udp" {
			files = []string{"udp", "udp6"}
		}
		for _, f := range files {
			addr, err := listening(f, p.HostPort)
			if err != nil {
				return fmt.Errorf("publish: %w", err)
			}
			for _, a := range addr {
				if p.HostIP == nil || a.IsUnspecified() || a.Equal(p.HostIP) {
					return opterr.Errorf("publish", "%s: port %d/%s is in use on the host (a socket listens on %s)",
						p, p.HostPort, p.Proto, net.JoinHostPort(a.String(), strconv.Itoa(int(p.HostPort))))
				}
			}
		}
	}
	return nil
}

// listening lists the local addresses that sockets of /proc/net/<file>
// listen on at port: TCP sockets in LISTEN, UDP ones not connected.
func listening(file string, port uint16) ([]net.IP, error) {
	f, err := os.Open(procNet + "/" + file)
	if os.IsNotExist(err) {
		return nil, nil // no IPv6
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	want := "0A" // TCP_LISTEN
	if strings.HasPrefix(file, "udp") {
		want = "07" // TCP_CLOSE: bound, not connected
	}
	var out []net.IP
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || fields[3] != want {
			continue
		}
		ipHex, portHex, ok := strings.Cut(fields[1], ":")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(portHex, 16, 16); err != nil || uint16(n) != port {
			continue
		}
		if ip := procIP(ipHex); ip != nil {
			out = append(out, ip)
		}
	}
	return out, sc.Err()
}

// procIP decodes an address of /proc/net/tcp*: 32-bit words in host
// order.
func procIP(s string) net.IP {
	b, err := hex.DecodeString(s)
	if err != nil || len(b)%4 != 0 || (len(b) != 4 && len(b) != 16) {
		return nil
	}
	ip := make(net.IP, len(b))
	for i := 0; i < len(b); i += 4 {
		binary.BigEndian.PutUint32(ip[i:], binary.NativeEndian.Uint32(b[i:]))
	}
	if v4 := ip.To4(); v4 != nil {
		return v4
	}
	return ip
}
