package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nucleus-run/nucleus/network"
	"github.com/nucleus-run/nucleus/network/firewall"
	"github.com/nucleus-run/nucleus/network/ipam"
)

// netHost is a host the test owns: a network namespace with a veth to
// the host, in 198.19.N.0/24 (and fd4e:7400:N::/64), serving HTTP on
// port 8080 with a page that names it.
type netHost struct {
	NS, IP, IP6, HostIP, Body string
}

func requireNet(t *testing.T) {
	t.Helper()
	requireRoot(t)
	requireCmd(t, "ip")
	requireCmd(t, "nft")
}

// newNetHost starts owned host number n (1-250, unique per test).
func newNetHost(t *testing.T, n int) *netHost {
	t.Helper()
	h := &netHost{NS: fmt.Sprintf("nt-srv%d", n), IP: fmt.Sprintf("198.19.%d.2", n), IP6: fmt.Sprintf("fd4e:7400:%d::2", n),
		HostIP: fmt.Sprintf("198.19.%d.1", n), Body: fmt.Sprintf("owned-host-%d", n)}
	hv, sv := fmt.Sprintf("nt-h%d", n), fmt.Sprintf("nt-s%d", n)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
	}
	exec.Command("ip", "netns", "del", h.NS).Run()
	exec.Command("ip", "link", "del", hv).Run()
	run("ip", "netns", "add", h.NS)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", h.NS).Run(); exec.Command("ip", "link", "del", hv).Run() })
	run("ip", "link", "add", hv, "type", "veth", "peer", "name", sv, "netns", h.NS)
	run("ip", "addr", "add", h.HostIP+"/24", "dev", hv)
	run("ip", "-6", "addr", "add", fmt.Sprintf("fd4e:7400:%d::1/64", n), "dev", hv, "nodad")
	run("ip", "link", "set", hv, "up")
	// Replies to a container's IPv6 packets come in here: forward them
	// (on this interface only).
	os.WriteFile(filepath.Join("/proc/sys/net/ipv6/conf", hv, "force_forwarding"), []byte("1"), 0o644)
	run("ip", "-n", h.NS, "addr", "add", h.IP+"/24", "dev", sv)
	run("ip", "-n", h.NS, "-6", "addr", "add", h.IP6+"/64", "dev", sv, "nodad")
	run("ip", "-n", h.NS, "link", "set", sv, "up")
	run("ip", "-n", h.NS, "link", "set", "lo", "up")
	run("ip", "-n", h.NS, "route", "add", "default", "via", h.HostIP)
	run("ip", "-n", h.NS, "-6", "route", "add", "default", "via", fmt.Sprintf("fd4e:7400:%d::1", n))
	www := t.TempDir()
	os.WriteFile(filepath.Join(www, "index.html"), []byte(h.Body+"\n"), 0o644)
	srv := exec.Command("ip", "netns", "exec", h.NS, busyboxPath(t), "httpd", "-f", "-p", "8080", "-h", www)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	// The server answers before any container tries it: a denial is
	// then the firewall's doing.
	waitFor(t, "the owned host's server", func() bool {
		// (busybox's static wget crashes resolving; its nc does not.)
		out, err := exec.Command("ip", "netns", "exec", h.NS, busyboxPath(t), "sh", "-c", fetchScript("127.0.0.1", 8080)).Output()
		return err == nil && strings.Contains(string(out), h.Body)
	})
	return h
}

// fetchScript prints the page at host:port, or "refused" if the
// connection fails (nc gives up after 2 s).
func fetchScript(host string, port int) string {
	return fmt.Sprintf(`printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 %s %d | tail -n 1 | grep . || echo refused`, host, port)
}

// nftTable is `nft -j list table inet nucleus`, parsed.
func nftTable(t *testing.T) []map[string]any {
	t.Helper()
	out, err := exec.Command("nft", "-j", "list", "table", "inet", firewall.TableName).Output()
	if err != nil {
		return nil
	}
	var doc struct {
		Nftables []map[string]any `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("nft -j: %v", err)
	}
	return doc.Nftables
}

// chainRules are the rules of chain, in order, as nft's JSON expressions.
func chainRules(t *testing.T, chain string) []string {
	t.Helper()
	var out []string
	for _, o := range nftTable(t) {
		r, ok := o["rule"].(map[string]any)
		if !ok || r["chain"] != chain {
			continue
		}
		b, _ := json.Marshal(r["expr"])
		out = append(out, string(b))
	}
	return out
}

// assertNoNetLeftovers checks that nothing of container id's network
// remains: no veth, no lease, no chain, set or rule, no record.
func assertNoNetLeftovers(t *testing.T, root, id string) {
	t.Helper()
	h := network.Hash(root, id)
	if out, _ := exec.Command("ip", "-br", "link", "show", firewall.VethPrefix+h).CombinedOutput(); !strings.Contains(string(out), "does not exist") {
		t.Errorf("leftover veth %s: %s", firewall.VethPrefix+h, out)
	}
	held, _ := ipam.Held(root)
	for ip, holder := range held {
		if holder == id {
			t.Errorf("leftover lease %s of %s", ip, id)
		}
	}
	out, _ := exec.Command("nft", "-j", "list", "table", "inet", firewall.TableName).Output()
	if strings.Contains(string(out), h) {
		t.Errorf("leftover rules or sets naming %s in table inet %s", h, firewall.TableName)
	}
	for _, p := range []string{network.RecordPath(root, id), network.NetNSPath(root, id), network.ResolvConfPath(root, id)} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("leftover %s", p)
		}
	}
	dns, _ := filepath.Glob(filepath.Join(network.DNSDir(root), "*"))
	for _, p := range dns {
		if data, _ := os.ReadFile(p); strings.Contains(string(data), `"id":"`+id+`"`) {
			t.Errorf("leftover DNS config %s", p)
		}
	}
}

// address is container id's first address from `state`.
func address(t *testing.T, r *Runner, id string, v6 bool) string {
	t.Helper()
	var ip string
	waitFor(t, "an address in the state of "+id, func() bool {
		st := r.State(id)
		ann, _ := st["annotations"].(map[string]any)
		a, _ := ann[network.Annotation].(string)
		for _, s := range strings.Split(a, ",") {
			if s != "" && strings.Contains(s, ":") == v6 {
				ip = s
				return true
			}
		}
		return false
	})
	return ip
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
