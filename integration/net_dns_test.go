package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nucleus-run/nucleus/network"
	"github.com/nucleus-run/nucleus/network/dns"
	"github.com/nucleus-run/nucleus/network/firewall"
	"github.com/nucleus-run/nucleus/network/ipam"
)

// The resolver with real containers: names are resolved by an owned
// dnsmasq in a network namespace the test creates, which also holds two
// owned web servers, api.test and other.test. Nothing is sent anywhere
// else.

// dnsHosts is the test's server namespace: a veth to the host, dnsmasq on
// dnsIP, api.test's server on apiIP and other.test's on otherIP.
type dnsHosts struct {
	ns, dnsIP, apiIP, otherIP string
	api6, other6              string
}

// dnsTTL is the TTL dnsmasq gives its names.
const dnsTTL = 2

func newDNSHosts(t *testing.T) *dnsHosts {
	t.Helper()
	requireCmd(t, "ip")
	dnsmasq := requireCmd(t, "dnsmasq")
	py := requireCmd(t, "python3")
	suffix := fmt.Sprintf("%04x", os.Getpid()&0xffff)
	h := &dnsHosts{ns: "nd-" + suffix, dnsIP: "198.19.53.2", apiIP: "198.19.53.2", otherIP: "198.19.53.3",
		api6: "fd00:5353::2", other6: "fd00:5353::3"}
	hostIf, nsIf := "ndh"+suffix, "ndn"+suffix
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	run("netns", "add", h.ns)
	t.Cleanup(func() {
		exec.Command("ip", "link", "del", hostIf).Run()
		exec.Command("ip", "netns", "del", h.ns).Run()
	})
	run("link", "add", hostIf, "type", "veth", "peer", "name", nsIf)
	run("link", "set", nsIf, "netns", h.ns)
	run("addr", "add", "198.19.53.1/24", "dev", hostIf)
	run("addr", "add", "fd00:5353::1/64", "dev", hostIf, "nodad")
	run("link", "set", hostIf, "up")
	for _, a := range []string{h.apiIP + "/24", h.otherIP + "/24"} {
		run("-n", h.ns, "addr", "add", a, "dev", nsIf)
	}
	for _, a := range []string{h.api6 + "/64", h.other6 + "/64"} {
		run("-n", h.ns, "addr", "add", a, "dev", nsIf, "nodad")
	}
	run("-n", h.ns, "link", "set", nsIf, "up")
	run("-n", h.ns, "link", "set", "lo", "up")
	run("-n", h.ns, "route", "add", "default", "via", "198.19.53.1")
	run("-n", h.ns, "-6", "route", "add", "default", "via", "fd00:5353::1")

	start := func(args ...string) {
		t.Helper()
		cmd := exec.Command("ip", append([]string{"netns", "exec", h.ns}, args...)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
			if t.Failed() {
				t.Logf("%s:\n%s", args[0], out.String())
			}
		})
	}
	start(dnsmasq, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--pid-file=",
		"--listen-address="+h.dnsIP, "--bind-interfaces", fmt.Sprintf("--local-ttl=%d", dnsTTL),
		"--host-record=api.test,"+h.apiIP+","+h.api6, "--host-record=other.test,"+h.otherIP+","+h.other6, "--log-queries", "--log-facility=-")
	for name, ip := range map[string]string{"api": h.apiIP, "other": h.otherIP} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "index.html"), []byte(name+"-server\n"), 0o644)
		start(py, "-m", "http.server", "80", "--bind", ip, "--directory", dir)
	}
	// Both servers answer the host: a denial below is the firewall's.
	for name, ip := range map[string]string{"api": h.apiIP, "other": h.otherIP} {
		waitForUpTo(t, 20*time.Second, name+"'s server to answer the host", func() bool {
			return httpGet("http://"+ip+"/") == name+"-server\n"
		})
	}
	return h
}

func httpGet(url string) string {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// httpIn fetches / from ip:80 inside the container with busybox nc.
func httpIn(in func(...string) Result, ip string) Result {
	return in("sh", "-c", `printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 "$0" 80`, ip)
}

// nftSet lists the elements of one of the inet nucleus sets.
func nftSet(t *testing.T, name string) []string {
	t.Helper()
	out, err := exec.Command("nft", "-j", "list", "set", "inet", firewall.TableName, name).CombinedOutput()
	if err != nil {
		t.Fatalf("nft list set %s: %v: %s", name, err, out)
	}
	var doc struct {
		Nftables []struct {
			Set *struct {
				Elem []struct {
					Elem struct {
						Val any `json:"val"`
					} `json:"elem"`
				} `json:"elem"`
			} `json:"set"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("nft -j: %v: %s", err, out)
	}
	var elems []string
	for _, o := range doc.Nftables {
		if o.Set != nil {
			for _, e := range o.Set.Elem {
				elems = append(elems, fmt.Sprint(e.Elem.Val))
			}
		}
	}
	return elems
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestNetDNSAllowedDeniedAndTTL: an allowed name resolves and connects, a
// denied name is REFUSED (and its owned server, which would answer, stays
// unreachable), the answer's address leaves the set when its TTL runs out
// and then no longer connects; the resolver exits with the last container.
func TestNetDNSAllowedDeniedAndTTL(t *testing.T) {
	r := newRunner(t)
	requireCmd(t, "nft")
	hosts := newDNSHosts(t)
	b := newBundle(t)
	id := "nd-names"
	r.OK("sandbox", "--detach", "--id", id, "--bundle", b.Dir, "--net", "bridge", "--allow", "api.test", "--dns", hosts.dnsIP)
	t.Cleanup(func() { r.Run(nil, "delete", "--force", id) })
	set, set6 := "n4-"+network.Hash(r.Root, id), "n6-"+network.Hash(r.Root, id)
	if !dns.Running(r.Root) {
		t.Fatalf("no resolver for a container with names in its allowlist")
	}

	in := func(args ...string) Result { return r.Run(nil, append([]string{"exec", id}, args...)...) }
	// The resolver answers on the bridge gateway, which the container's
	// resolv.conf names (the first lookup goes through it; the others
	// name the gateway).
	gw := ipam.Gateway4.String()
	// Before the name is resolved its address is not allowed.
	if res := httpIn(in, hosts.apiIP); res.Code == 0 || strings.Contains(res.Stdout, "api-server") {
		t.Fatalf("reached api.test's server before resolving the name: %q", res.Stdout)
	}
	res := in("nslookup", "api.test")
	if res.Code != 0 || !strings.Contains(res.Stdout, "Address: "+hosts.apiIP) {
		t.Fatalf("nslookup api.test: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	// Over IPv6 too: the container is known by its IPv6 address.
	if res := in("nslookup", "api.test", ipam.Gateway6.String()); res.Code != 0 || !strings.Contains(res.Stdout, "Address: "+hosts.api6) {
		t.Fatalf("nslookup api.test %s: exit %d\n%s%s", ipam.Gateway6, res.Code, res.Stdout, res.Stderr)
	}
	if !contains(nftSet(t, set), hosts.apiIP) {
		t.Fatalf("%s lacks %s after the answer: %v", set, hosts.apiIP, nftSet(t, set))
	}
	if !contains(nftSet(t, set6), hosts.api6) {
		t.Fatalf("%s lacks %s after the answer: %v", set6, hosts.api6, nftSet(t, set6))
	}
	// Busybox's wget (static glibc) crashes in a bare rootfs: connect to
	// the address the resolver answered with nc.
	if res := httpIn(in, hosts.apiIP); !strings.Contains(res.Stdout, "\r\n\r\napi-server\n") {
		t.Fatalf("GET http://%s/ after resolving api.test: exit %d %q %s", hosts.apiIP, res.Code, res.Stdout, res.Stderr)
	}

	res = in("nslookup", "other.test", gw)
	if res.Code == 0 || !strings.Contains(res.Stdout+res.Stderr, "REFUSED") {
		t.Fatalf("nslookup other.test: exit %d, want REFUSED\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	if res := httpIn(in, hosts.otherIP); res.Code == 0 || strings.Contains(res.Stdout, "other-server") {
		t.Fatalf("the container reached other.test's server, which it may not: %q", res.Stdout)
	}
	if got := httpGet("http://" + hosts.otherIP + "/"); got != "other-server\n" {
		t.Fatalf("other.test's server no longer answers the host (%q): the denial above proves nothing", got)
	}

	// The kernel drops the address when dnsmasq's TTL runs out; a new
	// connection is then refused until the name is resolved again.
	waitForUpTo(t, 30*time.Second, hosts.apiIP+" to leave "+set, func() bool { return !contains(nftSet(t, set), hosts.apiIP) })
	waitForUpTo(t, 30*time.Second, hosts.api6+" to leave "+set6, func() bool { return !contains(nftSet(t, set6), hosts.api6) })
	if res := httpIn(in, hosts.apiIP); res.Code == 0 || strings.Contains(res.Stdout, "api-server") {
		t.Fatalf("connected to %s after its TTL ran out: %q", hosts.apiIP, res.Stdout)
	}

	// Resolvers of other state roots share the listen address and may
	// have answered (and logged) it instead.
	logData, _ := os.ReadFile(dns.LogPath(r.Root))
	if !strings.Contains(string(logData), "other.test. A denied") && len(otherResolvers(r.Root)) == 0 {
		t.Errorf("resolver log does not name the denied query:\n%s", logData)
	}

	// Killed, the resolver takes DNS with it, not the isolation; the next
	// container with names starts a new one, which serves both.
	pidData, _ := os.ReadFile(filepath.Join(network.Dir(r.Root), "dns.pid"))
	var pid int
	fmt.Sscan(string(pidData), &pid)
	if pid <= 1 {
		t.Fatalf("dns.pid: %q", pidData)
	}
	// It runs with nftables and port 53 only (network/dns keeps no more).
	if status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); !strings.Contains(string(status), "CapEff:\t0000000000001400\n") {
		t.Errorf("resolver's capabilities:\n%s", status)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	waitForUpTo(t, 10*time.Second, "the killed resolver to be gone", func() bool { return !dns.Running(r.Root) })
	// (Unless another state root's resolver runs: sharing the gateway,
	// it answers every root's containers.)
	others := otherResolvers(r.Root)
	if len(others) == 0 {
		if res := in("timeout", "10", "nslookup", "api.test", gw); res.Code == 0 {
			t.Fatalf("resolved with the resolver killed:\n%s", res.Stdout)
		}
	} else {
		t.Logf("resolvers of other state roots run (%v): not checking that DNS is gone", others)
	}
	if res := httpIn(in, hosts.otherIP); res.Code == 0 {
		t.Fatalf("reached other.test's server with the resolver killed: %q", res.Stdout)
	}
	id2 := "nd-names2"
	r.OK("sandbox", "--detach", "--id", id2, "--bundle", b.Dir, "--net", "bridge", "--allow", "api.test", "--dns", hosts.dnsIP)
	t.Cleanup(func() { r.Run(nil, "delete", "--force", id2) })
	if res := in("nslookup", "api.test", gw); res.Code != 0 || !strings.Contains(res.Stdout, "Address: "+hosts.apiIP) {
		t.Fatalf("nslookup api.test after a new resolver started: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}

	r.OK("delete", "--force", id)
	if !dns.Running(r.Root) {
		t.Fatalf("the resolver exited with a container still needing it")
	}
	r.OK("delete", "--force", id2)
	waitForUpTo(t, 30*time.Second, "the resolver to exit with the last container", func() bool { return !dns.Running(r.Root) })
	if left, _ := filepath.Glob(filepath.Join(dns.Dir(r.Root), "*.json")); len(left) != 0 {
		t.Errorf("resolver configs left after delete: %v", left)
	}
	if _, err := net.InterfaceByName(firewall.VethPrefix + network.Hash(r.Root, id)); err == nil {
		t.Errorf("veth left after delete")
	}
	// Nothing of the host-wide registry stays once no resolver runs.
	if _, err := os.Stat(dns.RootsDir); err == nil && len(otherResolvers(r.Root)) == 0 {
		t.Errorf("%s left after the last resolver exited", dns.RootsDir)
	}
	for _, p := range []string{"/run/nucleus/dns-roots", "/run/nucleus/firewall.lock", "/run/nucleus-firewall.lock"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left on the host", p)
		}
	}
}

// otherResolvers lists the state roots other than root whose resolvers
// share the gateway address.
func otherResolvers(root string) []string {
	var others []string
	links, _ := os.ReadDir(dns.RootsDir)
	for _, l := range links {
		if target, err := os.Readlink(filepath.Join(dns.RootsDir, l.Name())); err == nil && target != root {
			others = append(others, target)
		}
	}
	return others
}
