package network

import (
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/nucleus-run/nucleus/opterr"
)

// The host's listening sockets are found, with their addresses, in
// /proc/net/{tcp,tcp6,udp,udp6}; a --publish that would take one's port
// is an option error naming the port.
func TestCheckHostPorts(t *testing.T) {
	tcp4, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp4.Close()
	port := uint16(tcp4.Addr().(*net.TCPAddr).Port)
	got, err := listening("tcp", port)
	if err != nil || len(got) != 1 || !got[0].Equal(net.ParseIP("127.0.0.1")) {
		t.Fatalf("listening tcp %d: %v %v", port, got, err)
	}
	err = checkHostPorts([]Port{{HostPort: port, ContainerPort: 80, Proto: "tcp"}})
	var oe *opterr.Error
	if !errors.As(err, &oe) || oe.Option != "publish" || !strings.Contains(err.Error(), "127.0.0.1:") {
		t.Fatalf("publish on all addresses over a loopback listener: %v", err)
	}
	// Another address, or another protocol, is no clash.
	if err := checkHostPorts([]Port{{HostIP: net.ParseIP("192.0.2.1").To4(), HostPort: port, ContainerPort: 80, Proto: "tcp"},
		{HostPort: port, ContainerPort: 80, Proto: "udp"}}); err != nil {
		t.Fatalf("no clash expected: %v", err)
	}
	if err := checkHostPorts([]Port{{HostIP: net.ParseIP("127.0.0.1").To4(), HostPort: port, ContainerPort: 80, Proto: "tcp"}}); err == nil {
		t.Fatal("publish on the listener's own address: no error")
	}

	if ln6, err := net.Listen("tcp6", "[::1]:0"); err == nil {
		defer ln6.Close()
		p6 := uint16(ln6.Addr().(*net.TCPAddr).Port)
		if got, err := listening("tcp6", p6); err != nil || len(got) != 1 || !got[0].Equal(net.IPv6loopback) {
			t.Fatalf("listening tcp6 %d: %v %v", p6, got, err)
		}
	}
	udp, err := net.ListenPacket("udp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	up := uint16(udp.LocalAddr().(*net.UDPAddr).Port)
	if err := checkHostPorts([]Port{{HostIP: net.ParseIP("192.0.2.1").To4(), HostPort: up, ContainerPort: 53, Proto: "udp"}}); err == nil {
		t.Fatal("publish over a UDP socket on all addresses: no error")
	}
}
