package integration

import (
	"encoding/binary"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/nucleus-run/nucleus/network"
	"github.com/nucleus-run/nucleus/network/firewall"
	"github.com/nucleus-run/nucleus/network/ipam"
)

// hostFetch fetches host:port from the host (busybox nc), "refused" if
// nothing answers.
func hostFetch(t *testing.T, host string, port int) string {
	t.Helper()
	out, _ := exec.Command(busyboxPath(t), "sh", "-c", fetchScript(host, port)).Output()
	return strings.TrimSpace(string(out))
}

// httpdBundle is a bundle whose /www/index.html says body.
func httpdBundle(t *testing.T, body string) *Bundle {
	t.Helper()
	b := newBundle(t)
	www := filepath.Join(b.Rootfs, "www")
	os.MkdirAll(www, 0o755)
	os.WriteFile(filepath.Join(www, "index.html"), []byte(body+"\n"), 0o644)
	return b
}

// TestNetPublishConflicts (red-team F5): --publish of a port a host socket
// listens on, or that another container publishes already, is refused
// with one line naming --publish and the port, and leaves nothing behind;
// the host's service keeps its port.
func TestNetPublishConflicts(t *testing.T) {
	requireNet(t)
	r := newRunner(t)
	for _, c := range []struct{ network, addr string }{{"tcp", "0.0.0.0:18191"}, {"tcp", "127.0.0.1:18192"}, {"tcp", "[::]:18193"}, {"udp", "0.0.0.0:18194"}} {
		var closer interface{ Close() error }
		var err error
		if c.network == "udp" {
			closer, err = net.ListenPacket("udp", c.addr)
		} else {
			closer, err = net.Listen("tcp", c.addr)
		}
		if err != nil {
			t.Fatalf("host listener %s: %v", c.addr, err)
		}
		_, port, _ := net.SplitHostPort(c.addr)
		bundle := newBundle(t)
		id := "n2-pubhost-" + port
		r.Fail([]string{"--publish", port}, "sandbox", "--bundle", bundle.Dir, "--id", id, "--net", "bridge",
			"--publish", port+":8080/"+c.network, "--", "true")
		assertNoNetLeftovers(t, r.Root, id)
		assertNoLeftovers(t, r.Root, id, bundle.Dir)
		closer.Close()
	}
	// A port published on one host address does not clash with a
	// listener on another one.
	ln, err := net.Listen("tcp", "127.0.0.1:18195")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// (An owned host's interface gives the host another address: a
	// gateway's may not be published on.)
	hostIP := newNetHost(t, 165).HostIP
	bundle := httpdBundle(t, "first")
	r.OK("sandbox", "--detach", "--bundle", bundle.Dir, "--id", "n2-pub1", "--net", "bridge", "--publish", hostIP+":18195:8080",
		"--", "httpd", "-f", "-p", "8080", "-h", "/www")
	t.Cleanup(func() { r.Run(nil, "delete", "--force", "n2-pub1") })
	waitFor(t, "the published port", func() bool { return hostFetch(t, hostIP, 18195) == "first" })

	// Another container publishing the same port is refused; its
	// first container keeps answering.
	second := httpdBundle(t, "second")
	for _, spec := range []string{"18195:8080", hostIP + ":18195:8080"} {
		r.Fail([]string{"--publish", "18195"}, "sandbox", "--detach", "--bundle", second.Dir, "--id", "n2-pub2", "--net", "bridge",
			"--publish", spec, "--", "httpd", "-f", "-p", "8080", "-h", "/www")
		assertNoNetLeftovers(t, r.Root, "n2-pub2")
		assertNoLeftovers(t, r.Root, "n2-pub2", second.Dir)
	}
	// Another protocol on the same port is no conflict.
	r.OK("sandbox", "--bundle", second.Dir, "--id", "n2-pub3", "--net", "bridge", "--publish", "18195:8080/udp", "--", "true")
	if got := hostFetch(t, hostIP, 18195); got != "first" {
		t.Errorf("the first container's published port now answers %q", got)
	}
	r.OK("delete", "--force", "n2-pub1")
	assertNoNetLeftovers(t, r.Root, "n2-pub1")
	assertNoNetLeftovers(t, r.Root, "n2-pub3")
}

// TestNetPublishStaleAfterKill (red-team F6): a container killed with
// SIGKILL keeps its published port's rules until delete; a new container
// (of another state root) that gets the same address must not receive
// that port's traffic, and may publish the port itself.
func TestNetPublishStaleAfterKill(t *testing.T) {
	requireNet(t)
	r1, r2 := newRunner(t), newRunner(t)
	old := httpdBundle(t, "old-container")
	r1.OK("sandbox", "--detach", "--bundle", old.Dir, "--id", "n2-stale-a", "--net", "bridge", "--publish", "18196:8080",
		"--", "httpd", "-f", "-p", "8080", "-h", "/www")
	t.Cleanup(func() { r1.Run(nil, "delete", "--force", "n2-stale-a") })
	ip := address(t, r1, "n2-stale-a", false)
	waitFor(t, "the published port", func() bool { return hostFetch(t, ipam.Gateway4.String(), 18196) == "old-container" })
	pid := r1.corePid("n2-stale-a")
	syscall.Kill(pid, syscall.SIGKILL)
	veth := firewall.VethPrefix + network.Hash(r1.Root, "n2-stale-a")
	waitFor(t, "the killed container's veth to go", func() bool { return exec.Command("ip", "link", "show", veth).Run() != nil })
	// gc (of any state root) sweeps its published port's rules.
	r2.OK("gc")
	for _, rl := range chainRules(t, "publish") {
		if strings.Contains(rl, "18196") {
			t.Errorf("gc left the killed container's publish rule: %s", rl)
		}
	}

	// The second root's lowest free address is the killed one's: its
	// leases below it are taken (by placeholders this test writes).
	if err := os.MkdirAll(ipam.Dir(r2.Root), 0o700); err != nil {
		t.Fatal(err)
	}
	base, want := binary.BigEndian.Uint32(ipam.Subnet4.IP.To4()), binary.BigEndian.Uint32(net.ParseIP(ip).To4())
	for n := base + 2; n < want; n++ {
		b := make(net.IP, 4)
		binary.BigEndian.PutUint32(b, n)
		os.WriteFile(filepath.Join(ipam.Dir(r2.Root), b.String()), []byte("n2-placeholder"), 0o600)
	}
	fresh := httpdBundle(t, "new-container")
	r2.OK("sandbox", "--detach", "--bundle", fresh.Dir, "--id", "n2-stale-b", "--net", "bridge", "--", "httpd", "-f", "-p", "8080", "-h", "/www")
	t.Cleanup(func() { r2.Run(nil, "delete", "--force", "n2-stale-b") })
	if got := address(t, r2, "n2-stale-b", false); got != ip {
		t.Fatalf("the new container got %s, not the killed one's %s (someone else took it)", got, ip)
	}
	// Its server answers on its address (so a refusal below is the
	// firewall's doing).
	waitFor(t, "the new container's server", func() bool { return hostFetch(t, ip, 8080) == "new-container" })
	if got := hostFetch(t, ipam.Gateway4.String(), 18196); got != "refused" {
		t.Fatalf("the killed container's published port reaches the new container at its address: %q", got)
	}
	// The port is free again for the new owner of the address.
	r2.OK("delete", "--force", "n2-stale-b")
	r2.OK("sandbox", "--detach", "--bundle", fresh.Dir, "--id", "n2-stale-c", "--net", "bridge", "--publish", "18196:8080",
		"--", "httpd", "-f", "-p", "8080", "-h", "/www")
	t.Cleanup(func() { r2.Run(nil, "delete", "--force", "n2-stale-c") })
	waitFor(t, "the port published again", func() bool { return hostFetch(t, ipam.Gateway4.String(), 18196) == "new-container" })
	r1.OK("delete", "--force", "n2-stale-a")
	r2.OK("delete", "--force", "n2-stale-c")
	for _, c := range []struct {
		r  *Runner
		id string
	}{{r1, "n2-stale-a"}, {r2, "n2-stale-b"}, {r2, "n2-stale-c"}} {
		assertNoNetLeftovers(t, c.r.Root, c.id)
	}
	if got := hostFetch(t, ipam.Gateway4.String(), 18196); got != "refused" {
		t.Errorf("port 18196 answers after every container is deleted: %q", got)
	}
}

// TestNetPublishLoopback: a published port answers from the host on
// 127.0.0.1, both when published on every address and on 127.0.0.1 alone;
// route_localnet is set on that container's host-side veth only (not host
// wide), and nothing from a container may go to the host's loopback.
func TestNetPublishLoopback(t *testing.T) {
	requireNet(t)
	r := newRunner(t)
	bundle := httpdBundle(t, "loopback-ok")
	r.OK("sandbox", "--detach", "--bundle", bundle.Dir, "--id", "n2-lo", "--net", "bridge", "--publish", "18197:8080",
		"--publish", "127.0.0.1:18198:8080", "--", "httpd", "-f", "-p", "8080", "-h", "/www")
	t.Cleanup(func() { r.Run(nil, "delete", "--force", "n2-lo") })
	address(t, r, "n2-lo", false)
	waitFor(t, "the published port on 127.0.0.1", func() bool { return hostFetch(t, "127.0.0.1", 18197) == "loopback-ok" })
	if got := hostFetch(t, "127.0.0.1", 18198); got != "loopback-ok" {
		t.Errorf("published on 127.0.0.1:18198: %q", got)
	}
	// And over IPv6, on the gateway's ULA address (the guard lets it in
	// as for IPv4).
	if got := hostFetch(t, ipam.Gateway6.String(), 18197); got != "loopback-ok" {
		t.Errorf("published port on [%s]:18197: %q", ipam.Gateway6, got)
	}
	if got := hostFetch(t, ipam.Gateway4.String(), 18198); got != "refused" {
		t.Errorf("published on 127.0.0.1 only, answers on the gateway: %q", got)
	}
	veth := firewall.VethPrefix + network.Hash(r.Root, "n2-lo")
	if v := readTrim("/proc/sys/net/ipv4/conf/" + veth + "/route_localnet"); v != "1" {
		t.Errorf("route_localnet on %s: %q", veth, v)
	}
	if v := readTrim("/proc/sys/net/ipv4/conf/all/route_localnet"); v != "0" {
		t.Errorf("route_localnet set host-wide: %q", v)
	}
	// route_localnet would let a packet from the container to 127.0.0.1
	// in: the first hook drops any (the container has no route there
	// nor the right to add one, so this is read from the ruleset).
	found := false
	for _, rl := range chainRules(t, "antispoof") {
		found = found || strings.Contains(rl, `"127.0.0.0"`) && strings.Contains(rl, `"daddr"`) && strings.Contains(rl, `"nv*"`) && strings.Contains(rl, `"drop"`)
	}
	if !found {
		t.Errorf("no drop of 127.0.0.0/8 from the containers' veths in chain antispoof: %v", chainRules(t, "antispoof"))
	}
	r.OK("delete", "--force", "n2-lo")
	assertNoNetLeftovers(t, r.Root, "n2-lo")
	if got := hostFetch(t, "127.0.0.1", 18197); got != "refused" {
		t.Errorf("127.0.0.1:18197 answers after delete: %q", got)
	}
}

// TestNetIPv6Egress: IPv6 egress beyond the host. The owned host sits
// behind an interface of the host on which the test sets no forwarding:
// the replies coming in there reach the container only if nucleus made
// the host an IPv6 router, which it does keeping router advertisements
// accepted where they were (accept_ra 1 becomes 2 first). An allowed
// IPv6 prefix connects; without the rule the same host is refused.
func TestNetIPv6Egress(t *testing.T) {
	requireNet(t)
	r := newRunner(t)
	h := newNetHost(t, 201)
	hostSide := "nt-h201"
	// As on a host no nucleus changed yet: IPv6 forwarding off, and
	// router advertisements accepted on the owned host's interface.
	os.WriteFile("/proc/sys/net/ipv6/conf/all/forwarding", []byte("0"), 0o644)
	os.WriteFile("/proc/sys/net/ipv6/conf/"+hostSide+"/force_forwarding", []byte("0"), 0o644)
	os.WriteFile("/proc/sys/net/ipv6/conf/"+hostSide+"/accept_ra", []byte("1"), 0o644)
	bundle := newBundle(t)
	res := r.OK("sandbox", "--bundle", bundle.Dir, "--id", "n2-v6out", "--net", "bridge", "--allow", "[fd4e:7400:201::/64]:8080/tcp",
		"--", "sh", "-c", fetchScript(h.IP6, 8080))
	if got := strings.TrimSpace(res.Stdout); got != h.Body {
		t.Fatalf("allowed IPv6 host beyond the host: %q, want %q", got, h.Body)
	}
	if v := readTrim("/proc/sys/net/ipv6/conf/" + hostSide + "/accept_ra"); v != "2" {
		t.Errorf("accept_ra of an interface that accepted router advertisements: %q, want 2 (still accepted with forwarding on)", v)
	}
	res = r.OK("sandbox", "--bundle", bundle.Dir, "--id", "n2-v6deny", "--net", "bridge", "--", "sh", "-c", fetchScript(h.IP6, 8080))
	if got := strings.TrimSpace(res.Stdout); got != "refused" {
		t.Fatalf("IPv6 host reached without a rule: %q", got)
	}
	assertNoNetLeftovers(t, r.Root, "n2-v6out")
	assertNoNetLeftovers(t, r.Root, "n2-v6deny")
}

// TestNetMasquerade: egress leaving the host is masqueraded, over IPv4
// and IPv6: the owned host has no route back to the containers' subnets
// (only its own link), so it can answer only if it sees the host's
// address as the source.
func TestNetMasquerade(t *testing.T) {
	requireNet(t)
	r := newRunner(t)
	h := newNetHost(t, 202)
	for _, args := range [][]string{{"-n", h.NS, "route", "del", "default"}, {"-n", h.NS, "-6", "route", "del", "default"}} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	bundle := newBundle(t)
	res := r.OK("sandbox", "--bundle", bundle.Dir, "--id", "n2-masq", "--net", "bridge", "--allow", "198.19.202.0/24:8080/tcp",
		"--allow", "[fd4e:7400:202::/64]:8080/tcp", "--", "sh", "-c", fetchScript(h.IP, 8080)+"; "+fetchScript(h.IP6, 8080))
	if got := strings.Fields(res.Stdout); len(got) != 2 || got[0] != h.Body || got[1] != h.Body {
		t.Fatalf("through masquerade (IPv4, IPv6): %q, want %q twice", res.Stdout, h.Body)
	}
	assertNoNetLeftovers(t, r.Root, "n2-masq")
}

// TestNetCustomBridge: --bridge NAME makes (or uses) that bridge for the
// gateway addresses; the container's egress works through it as through
// nucleus0.
func TestNetCustomBridge(t *testing.T) {
	requireNet(t)
	r := newRunner(t)
	h := newNetHost(t, 203)
	const br = "n2br0"
	exec.Command("ip", "link", "del", br).Run()
	t.Cleanup(func() { exec.Command("ip", "link", "del", br).Run() })
	bundle := newBundle(t)
	res := r.OK("sandbox", "--bundle", bundle.Dir, "--id", "n2-br", "--net", "bridge", "--bridge", br, "--allow", "198.19.203.0/24:8080/tcp",
		"--", "sh", "-c", fetchScript(h.IP, 8080))
	if got := strings.TrimSpace(res.Stdout); got != h.Body {
		t.Fatalf("through --bridge %s: %q", br, got)
	}
	out, err := exec.Command("ip", "-d", "-br", "addr", "show", br).CombinedOutput()
	if err != nil || !strings.Contains(string(out), ipam.Gateway4.String()+"/") {
		t.Fatalf("bridge %s: %v: %s", br, err, out)
	}
	if out, _ := exec.Command("ip", "-d", "link", "show", br).Output(); !strings.Contains(string(out), "bridge ") {
		t.Errorf("%s is not a bridge: %s", br, out)
	}
	assertNoNetLeftovers(t, r.Root, "n2-br")
}

// TestNetDefaultNone: with no --net, a sandbox of every mode has a
// network namespace with loopback only; the global --default-net
// ($NUCLEUS_NET) changes that default, and --net wins over it.
func TestNetDefaultNone(t *testing.T) {
	requireNet(t)
	r := newRunner(t)
	bundle := newBundle(t)
	ifaces := "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ' '"
	for _, mode := range []string{"agent", "strict-agent", "production"} {
		args := []string{"sandbox", "--mode", mode, "--bundle", bundle.Dir, "--id", "n2-def-" + mode}
		if mode == "production" {
			prof, sum := builtinProfile(t, r)
			args = append(args, "--memory", "256M", "--seccomp-profile", prof, "--seccomp-profile-sha256", sum)
		}
		res := r.OK(append(args, "--", "sh", "-c", ifaces)...)
		if got := strings.TrimSpace(res.Stdout); got != "lo" {
			t.Errorf("--mode %s with no --net: interfaces %q, want lo only", mode, got)
		}
	}
	r.Global = []string{"--default-net", "bridge"}
	res := r.OK("sandbox", "--bundle", bundle.Dir, "--id", "n2-def-br", "--", "sh", "-c", ifaces)
	if got := strings.TrimSpace(res.Stdout); got != "eth0 lo" {
		t.Errorf("--default-net bridge: interfaces %q, want eth0 lo", got)
	}
	res = r.OK("sandbox", "--bundle", bundle.Dir, "--id", "n2-def-none", "--net", "none", "--", "sh", "-c", ifaces)
	if got := strings.TrimSpace(res.Stdout); got != "lo" {
		t.Errorf("--net none over --default-net bridge: interfaces %q, want lo only", got)
	}
	assertNoNetLeftovers(t, r.Root, "n2-def-br")
}
