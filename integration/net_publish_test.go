package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestNetPublish: a published port answers from the host (at the
// gateway address) and from an owned host through the host's address
// facing it; the same server is refused when not published.
func TestNetPublish(t *testing.T) {
	requireNet(t)
	r := newRunner(t)
	peer := newNetHost(t, 105)
	bundle := newBundle(t)
	www := filepath.Join(bundle.Rootfs, "www")
	os.MkdirAll(www, 0o755)
	os.WriteFile(filepath.Join(www, "index.html"), []byte("published\n"), 0o644)
	r.OK("sandbox", "--detach", "--bundle", bundle.Dir, "--id", "nt-pub", "--net", "bridge", "--publish", "18085:8080", "--", "httpd", "-f", "-p", "8080", "-h", "/www")
	t.Cleanup(func() { r.Run(nil, "delete", "--force", "nt-pub") })
	address(t, r, "nt-pub", false)
	bb := busyboxPath(t)
	fetch := func(ns, host string, port int) string {
		args := []string{bb, "sh", "-c", fetchScript(host, port)}
		if ns != "" {
			args = append([]string{"ip", "netns", "exec", ns}, args...)
		}
		out, _ := exec.Command(args[0], args[1:]...).Output()
		return strings.TrimSpace(string(out))
	}
	waitFor(t, "the published port from the host", func() bool { return fetch("", "10.90.0.1", 18085) == "published" })
	if got := fetch(peer.NS, peer.HostIP, 18085); got != "published" {
		t.Errorf("from an owned host via %s:18085: %q", peer.HostIP, got)
	}
	if got := fetch("", "10.90.0.1", 18086); got != "refused" {
		t.Errorf("an unpublished port answered: %q", got)
	}
	r.OK("delete", "--force", "nt-pub")
	assertNoNetLeftovers(t, r.Root, "nt-pub")
	if got := fetch("", "10.90.0.1", 18085); got != "refused" {
		t.Errorf("the port still answers after delete: %q", got)
	}
}

// TestNetIPv6: a container has an address from the ULA /64; an allowed
// IPv6 prefix connects, another owned IPv6 host is refused.
func TestNetIPv6(t *testing.T) {
	requireNet(t)
	_, err := os.Stat("/proc/sys/net/ipv6/conf/all/force_forwarding")
	need(t, err == nil, "IPv6 forwarding per interface needs Linux 6.17 (force_forwarding)")
	r := newRunner(t)
	a, b := newNetHost(t, 103), newNetHost(t, 104)
	bundle := newBundle(t)
	log := filepath.Join(t.TempDir(), "audit.log")
	res := r.OK("sandbox", "--bundle", bundle.Dir, "--id", "nt-v6", "--net", "bridge", "--allow", "[fd4e:7400:103::/64]:8080/tcp", "--audit-log", log,
		"--", "sh", "-c", "ip -6 addr show dev eth0 scope global | grep -o 'fd6e:7563:6c65:7573::[0-9a-f]*'; "+fetchScript(a.IP6, 8080)+"; "+fetchScript(b.IP6, 8080)+"; "+fetchScript(a.IP, 8080))
	lines := strings.Split(strings.TrimSpace(res.Stdout), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "fd6e:7563:6c65:7573::") || lines[1] != a.Body || lines[2] != "refused" || lines[3] != "refused" {
		t.Fatalf("want the ULA address, %q, refused, refused (IPv4 of the same host not allowed); got %q", a.Body, lines)
	}
	found := false
	for _, d := range auditEvents(t, log, "egress_denied") {
		found = found || d["destination"] == b.IP6
	}
	if !found {
		t.Errorf("no egress_denied for %s", b.IP6)
	}
	assertNoNetLeftovers(t, r.Root, "nt-v6")
}
