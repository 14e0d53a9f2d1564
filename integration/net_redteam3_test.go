package integration

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nucleus-run/nucleus/network"
	"github.com/nucleus-run/nucleus/network/firewall"
	"github.com/nucleus-run/nucleus/network/ipam"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// csum is the Internet checksum of b.
func csum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// synPacket is an IPv4 TCP SYN from src:sport to dst:dport.
func synPacket(src, dst net.IP, sport, dport uint16) []byte {
	tcp := make([]byte, 20)
	binary.BigEndian.PutUint16(tcp[0:], sport)
	binary.BigEndian.PutUint16(tcp[2:], dport)
	binary.BigEndian.PutUint32(tcp[4:], 0x01020304)
	tcp[12] = 5 << 4
	tcp[13] = 0x02 // SYN
	binary.BigEndian.PutUint16(tcp[14:], 65535)
	pseudo := append(append(append([]byte{}, src.To4()...), dst.To4()...), 0, unix.IPPROTO_TCP, 0, 20)
	binary.BigEndian.PutUint16(tcp[16:], csum(append(pseudo, tcp...)))
	ip := make([]byte, 20)
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], 40)
	ip[8] = 64
	ip[9] = unix.IPPROTO_TCP
	copy(ip[12:], src.To4())
	copy(ip[16:], dst.To4())
	binary.BigEndian.PutUint16(ip[10:], csum(ip))
	return append(ip, tcp...)
}

// lanSYN plays a LAN neighbour of the host: from network namespace ns it
// sends, on its interface ifname, a TCP SYN from src to dst:dport framed
// for the host's MAC hostMAC (the host is the next hop, whatever dst is;
// a raw frame, as no route to 127/8 can be made there), and says whether
// a SYN-ACK from dst:dport comes back within a few seconds.
func lanSYN(t *testing.T, ns, ifname string, hostMAC net.HardwareAddr, src, dst net.IP, dport uint16) bool {
	t.Helper()
	target, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	var ifi *net.Interface
	var fd int
	var ierr, serr error
	inNetns(t, target, func() {
		ifi, ierr = net.InterfaceByName(ifname)
		fd, serr = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_IP)))
	})
	if ierr != nil || serr != nil {
		t.Fatalf("in %s: %v %v", ns, ierr, serr)
	}
	defer unix.Close(fd)
	ll := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: ifi.Index, Halen: 6}
	copy(ll.Addr[:], hostMAC)
	if err := unix.Bind(fd, ll); err != nil {
		t.Fatal(err)
	}
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 1})
	sport := uint16(40000 + time.Now().UnixNano()%20000)
	deadline := time.Now().Add(4 * time.Second)
	buf := make([]byte, 2048)
	for try := 0; time.Now().Before(deadline); try++ {
		if try%2 == 0 {
			if err := unix.Sendto(fd, synPacket(src, dst, sport, dport), 0, ll); err != nil {
				t.Fatalf("send: %v", err)
			}
		}
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			continue
		}
		p := buf[:n]
		if n < 40 || p[9] != unix.IPPROTO_TCP {
			continue
		}
		tcp := p[int(p[0]&0xf)*4:]
		if len(tcp) >= 14 && binary.BigEndian.Uint16(tcp[0:]) == dport && binary.BigEndian.Uint16(tcp[2:]) == sport && tcp[13]&0x12 == 0x12 {
			return true
		}
	}
	return false
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// TestNetPublishLoopbackNotFromLAN (red team S1, CVE-2020-8558 class): a
// port published on 127.0.0.1 alone is not reachable by a LAN neighbour
// that sends a SYN to 127.0.0.1 through the host's MAC. The same
// neighbour reaching a port published on every address shows the frames
// get through.
func TestNetPublishLoopbackNotFromLAN(t *testing.T) {
	requireNet(t)
	srv := newNetHost(t, 63)
	r := newRunner(t)
	bundle := httpdBundle(t, "lan-lo")
	r.OK("sandbox", "--detach", "--bundle", bundle.Dir, "--id", "n3-lanlo", "--net", "bridge",
		"--publish", "127.0.0.1:18363:8080", "--publish", "18364:8080", "--", "httpd", "-f", "-p", "8080", "-h", "/www")
	t.Cleanup(func() { r.Run(nil, "delete", "--force", "n3-lanlo") })
	address(t, r, "n3-lanlo", false)
	waitFor(t, "the published port on 127.0.0.1", func() bool { return hostFetch(t, "127.0.0.1", 18363) == "lan-lo" })
	hv, err := net.InterfaceByName("nt-h63")
	if err != nil {
		t.Fatal(err)
	}
	src := net.ParseIP(srv.IP)
	if !lanSYN(t, srv.NS, "nt-s63", hv.HardwareAddr, src, net.ParseIP(srv.HostIP), 18364) {
		t.Fatalf("the neighbour gets no SYN-ACK from %s:18364 (published on every address): the probe is broken", srv.HostIP)
	}
	if lanSYN(t, srv.NS, "nt-s63", hv.HardwareAddr, src, net.ParseIP("127.0.0.1"), 18363) {
		t.Errorf("a LAN neighbour reaches 127.0.0.1:18363, published on the host's loopback only")
	}
	r.OK("delete", "--force", "n3-lanlo")
	assertNoNetLeftovers(t, r.Root, "n3-lanlo")
}

// TestNetNameSetNotToContainers (red team S2): an address a DNS answer
// put in a container's name set opens no path to another container,
// whatever its subnet or bridge (the resolver's own filter knows only
// the default subnet): only a CIDR --allow does. The answer of a hostile
// upstream for an allowed name is played by adding the address as the
// resolver does (firewall.AddResolved); the same for an owned host
// outside connects.
func TestNetNameSetNotToContainers(t *testing.T) {
	requireNet(t)
	out := newNetHost(t, 64)
	r2 := newRunner(t)
	r2.Global = []string{"--subnet", "10.91.0.0/24"}
	srv := httpdBundle(t, "other-subnet")
	r2.OK("sandbox", "--detach", "--bundle", srv.Dir, "--id", "n3-s2srv", "--net", "bridge", "--", "httpd", "-f", "-p", "8080", "-h", "/www")
	t.Cleanup(func() { r2.Run(nil, "delete", "--force", "n3-s2srv") })
	ip := address(t, r2, "n3-s2srv", false)
	r1 := newRunner(t)
	cl := newBundle(t, "sleep", "120")
	r1.OK("sandbox", "--detach", "--bundle", cl.Dir, "--id", "n3-s2cl", "--net", "bridge", "--allow", "*.ok.test")
	t.Cleanup(func() { r1.Run(nil, "delete", "--force", "n3-s2cl") })
	address(t, r1, "n3-s2cl", false)
	h := network.Hash(r1.Root, "n3-s2cl")
	for _, a := range []string{ip, out.IP} {
		if err := firewall.AddResolved(h, net.ParseIP(a), "", 0, time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := firewall.AddResolved(h, net.ParseIP(a), "tcp", 8080, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	var got string
	waitFor(t, "the owned host through the name set", func() bool {
		got = strings.TrimSpace(r1.OK("exec", "n3-s2cl", "sh", "-c", fetchScript(out.IP, 8080)).Stdout)
		return got == out.Body
	})
	if got := strings.TrimSpace(r1.OK("exec", "n3-s2cl", "sh", "-c", fetchScript(ip, 8080)).Stdout); got != "refused" {
		t.Errorf("a DNS answer opened a path to a container on another subnet (%s): %q", ip, got)
	}
	// The server does answer a container allowed by CIDR.
	res := r1.OK("sandbox", "--bundle", cl.Dir, "--id", "n3-s2ok", "--net", "bridge", "--allow", ip+"/32:8080/tcp", "--", "sh", "-c", fetchScript(ip, 8080))
	if got := strings.TrimSpace(res.Stdout); got != "other-subnet" {
		t.Errorf("a CIDR --allow to %s: %q", ip, got)
	}
	r1.OK("delete", "--force", "n3-s2cl")
	r2.OK("delete", "--force", "n3-s2srv")
	assertNoNetLeftovers(t, r1.Root, "n3-s2cl")
	assertNoNetLeftovers(t, r2.Root, "n3-s2srv")
}

// TestNetPublishNotOnGateway (red team S5b): a port published on a
// nucleus gateway address would answer the DNS of that bridge's
// containers in place of the resolver: refused in one line naming
// --publish, leaving nothing behind. Nor does a port 53 published on every
// address take a container's DNS to its gateway.
func TestNetPublishNotOnGateway(t *testing.T) {
	requireNet(t)
	r := newRunner(t)
	bundle := newBundle(t, "true")
	for _, gw := range []string{ipam.Gateway4.String(), "[" + ipam.Gateway6.String() + "]"} {
		r.Fail([]string{"--publish"}, "sandbox", "--bundle", bundle.Dir, "--id", "n3-gwpub", "--net", "bridge", "--publish", gw+":53:53/udp")
		assertNoNetLeftovers(t, r.Root, "n3-gwpub")
	}
	// A port 53 published on every address (when no resolver listened
	// yet) would take it too: a container's DNS to a gateway returns
	// from prerouting before the jump to the published ports (read from
	// the ruleset: another session's resolver may hold port 53 here).
	rules := chainRules(t, "prerouting")
	ret, pub := -1, -1
	for i, rl := range rules {
		if ret < 0 && strings.Contains(rl, `"@gateways4"`) && strings.Contains(rl, `"nv*"`) && strings.Contains(rl, `53`) && strings.Contains(rl, `"return"`) {
			ret = i
		}
		if pub < 0 && strings.Contains(rl, `"publish"`) {
			pub = i
		}
	}
	if ret < 0 || pub < 0 || ret > pub {
		t.Errorf("no return of DNS to a gateway before the jump to publish in prerouting: %v", rules)
	}
}

// sendUDPFrom sends n datagrams to dst:port from inside the network
// namespace of process pid (a container's init).
func sendUDPFrom(t *testing.T, pid int, dst string, port, n int) {
	t.Helper()
	target, err := netns.GetFromPid(pid)
	if err != nil {
		t.Fatal(err)
	}
	var fd int
	var serr error
	inNetns(t, target, func() { fd, serr = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0) })
	if serr != nil {
		t.Fatal(serr)
	}
	defer unix.Close(fd)
	sa := &unix.SockaddrInet4{Port: port}
	copy(sa.Addr[:], net.ParseIP(dst).To4())
	for i := 0; i < n; i++ {
		unix.Sendto(fd, []byte("flood"), 0, sa)
	}
}

// dnsRateDrops is the packet count of input's DNS rate-limit drop for
// IPv4 UDP.
func dnsRateDrops(t *testing.T) float64 {
	t.Helper()
	for _, rl := range chainRules(t, "input") {
		if !strings.Contains(rl, `"@dnsrate4"`) || !strings.Contains(rl, `"udp"`) {
			continue
		}
		var exprs []map[string]any
		json.Unmarshal([]byte(rl), &exprs)
		for _, e := range exprs {
			if c, ok := e["counter"].(map[string]any); ok {
				return c["packets"].(float64)
			}
		}
	}
	t.Fatalf("no DNS rate limit in chain input: %v", chainRules(t, "input"))
	return 0
}

// TestNetDNSFloodLimited (red team S4a): a container flooding the
// resolver's address with DNS is cut to DNSRate a second per source; the
// limit is its own, so another container's queries pass meanwhile. And
// each container address has a cap on its conntrack entries (ruleset).
func TestNetDNSFloodLimited(t *testing.T) {
	requireNet(t)
	r := newRunner(t)
	bundle := newBundle(t, "sleep", "120")
	for _, id := range []string{"n3-flood", "n3-quiet"} {
		r.OK("sandbox", "--detach", "--bundle", bundle.Dir, "--id", id, "--net", "bridge")
		t.Cleanup(func() { r.Run(nil, "delete", "--force", id) })
		address(t, r, id, false)
	}
	pid := func(id string) int { return int(r.State(id)["pid"].(float64)) }
	before := dnsRateDrops(t)
	sendUDPFrom(t, pid("n3-flood"), ipam.Gateway4.String(), 53, 5000)
	flooded := dnsRateDrops(t)
	if flooded-before < 1000 {
		t.Errorf("5000 DNS packets from one container at once: %v dropped, want most beyond the burst of %d", flooded-before, 2*firewall.DNSRate)
	}
	// The flooder's bucket is empty; the other container's is not.
	sendUDPFrom(t, pid("n3-quiet"), ipam.Gateway4.String(), 53, 50)
	if after := dnsRateDrops(t); after != flooded {
		t.Errorf("another container's 50 queries were dropped (%v) by the flooder's limit", after-flooded)
	}
	for _, chain := range []string{"forward", "input"} {
		found := false
		for _, rl := range chainRules(t, chain) {
			found = found || strings.Contains(rl, `"@conns4"`) && strings.Contains(rl, fmt.Sprintf(`"ct count":{"inv":true,"val":%d}`, firewall.MaxConns))
		}
		if !found {
			t.Errorf("no conntrack cap of %d per container in chain %s: %v", firewall.MaxConns, chain, chainRules(t, chain))
		}
	}
}

// TestNetConntrackCapped: one container opening more flows than the
// per-container conntrack cap (firewall.MaxConns) to a host it may reach
// gets only that many through; the rest are dropped, so a sandbox cannot
// fill the host's conntrack table (network red team, S4b). The flows go to
// an owned host in a namespace the test creates, which counts the distinct
// source ports it receives.
func TestNetConntrackCapped(t *testing.T) {
	requireNet(t)
	requireCmd(t, "python3")
	r := newRunner(t)
	host := newNetHost(t, 131)
	bundle := newBundle(t, "sleep", "120")
	id := "n3-conns"
	r.OK("sandbox", "--detach", "--bundle", bundle.Dir, "--id", id, "--net", "bridge", "--allow", host.IP)
	t.Cleanup(func() { r.Run(nil, "delete", "--force", id) })
	address(t, r, id, false)
	const flows = firewall.MaxConns + 1500
	counter := exec.Command("ip", "netns", "exec", host.NS, "python3", "-c", `
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 24)
s.bind(("0.0.0.0", 9999))
print("ready", flush=True)
s.settimeout(3)
seen = set()
try:
    while True:
        seen.add(s.recvfrom(64)[1])
except socket.timeout:
    pass
print(len(seen), flush=True)
`)
	out, err := counter.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := counter.Start(); err != nil {
		t.Fatal(err)
	}
	defer counter.Process.Kill()
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "ready" {
		t.Fatalf("the counting host did not start: %q", lines.Text())
	}
	sendFlowsFrom(t, int(r.State(id)["pid"].(float64)), host.IP, 9999, 20000, flows)
	if !lines.Scan() {
		t.Fatal("no count from the counting host")
	}
	got, _ := strconv.Atoi(lines.Text())
	counter.Wait()
	t.Logf("%d flows sent, %d arrived", flows, got)
	if got == 0 {
		t.Fatal("no flow arrived: the test tests nothing")
	}
	if got > firewall.MaxConns {
		t.Fatalf("%d of %d flows from one container got through, more than the cap of %d", got, flows, firewall.MaxConns)
	}
}

// sendFlowsFrom sends one datagram from each of n source ports (from
// firstPort on) in the network namespace of pid to dst:port: n flows.
func sendFlowsFrom(t *testing.T, pid int, dst string, port, firstPort, n int) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	target, err := netns.GetFromPid(pid)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		t.Fatal(err)
	}
	defer netns.Set(orig)
	sa := &unix.SockaddrInet4{Port: port}
	copy(sa.Addr[:], net.ParseIP(dst).To4())
	for i := 0; i < n; i++ {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.Bind(fd, &unix.SockaddrInet4{Port: firstPort + i}); err == nil {
			unix.Sendto(fd, []byte("flow"), 0, sa)
		}
		unix.Close(fd)
	}
}

// inNetns runs fn on a locked OS thread inside target (which it closes),
// then puts the thread back in its own network namespace. A socket fn
// opens stays in target. fn must not stop the test: the thread would be
// left in target.
func inNetns(t *testing.T, target netns.NsHandle, fn func()) {
	t.Helper()
	defer target.Close()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	if err := netns.Set(target); err != nil {
		t.Fatal(err)
	}
	fn()
	if err := netns.Set(orig); err != nil {
		t.Fatal(err)
	}
}
