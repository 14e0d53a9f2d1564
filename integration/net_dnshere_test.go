package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nucleus-run/nucleus/network/dns"
)

// dnsProxies lists the pids of `nucleus dns-proxy --root root` processes.
func dnsProxies(root string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		for i, a := range args {
			if a == "dns-proxy" && i+2 < len(args) && args[i+1] == "--root" && args[i+2] == root {
				out = append(out, pid)
			}
		}
	}
	return out
}

// TestNetDNSSandboxServesItself: a one-shot `nucleus sandbox` whose
// allowlist has names, with no other container of its state root needing
// a resolver, answers the names from its own process: no dns-proxy
// process runs while the name resolves and the allowed server answers.
// A container of another process meanwhile is answered by it, and a
// resolver process takes over for it when the sandbox ends; nothing of a
// resolver stays after the last container.
func TestNetDNSSandboxServesItself(t *testing.T) {
	requireNet(t)
	r := newRunner(t)
	hosts := newDNSHosts(t)
	b := newBundle(t)
	cmd := r.Cmd("sandbox", "--bundle", b.Dir, "--id", "n2-dnshere", "--net", "bridge", "--allow", "api.test", "--dns", hosts.dnsIP,
		"--", "sh", "-c", `nslookup api.test >/dev/null && echo resolved; printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 "$0" 80 | tail -n 1; sleep 8`, hosts.apiIP)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("sandbox output:\n%s", out.String())
		}
	})
	waitForUpTo(t, 30*time.Second, "the name resolved and its server answering", func() bool {
		return strings.Contains(out.String(), "resolved\napi-server")
	})
	if pids := dnsProxies(r.Root); len(pids) != 0 {
		t.Errorf("dns-proxy processes run for the sandbox: %v", pids)
	}
	if pid := readTrim(filepath.Join(r.Root, "@net", "dns.pid")); pid != strconv.Itoa(cmd.Process.Pid) {
		t.Errorf("the resolver's pid is %q, not the sandbox command's %d", pid, cmd.Process.Pid)
	}
	// A container another process starts meanwhile is answered by the
	// sandbox's process, and keeps its DNS when the sandbox ends (a
	// resolver process takes over).
	r.OK("sandbox", "--detach", "--id", "n2-dnshere-b", "--bundle", b.Dir, "--net", "bridge", "--allow", "api.test", "--dns", hosts.dnsIP)
	t.Cleanup(func() { r.Run(nil, "delete", "--force", "n2-dnshere-b") })
	if res := r.Run(nil, "exec", "n2-dnshere-b", "nslookup", "api.test"); res.Code != 0 || !strings.Contains(res.Stdout, hosts.apiIP) {
		t.Errorf("the second container's lookup while the sandbox serves: exit %d %s%s", res.Code, res.Stdout, res.Stderr)
	}
	if pids := dnsProxies(r.Root); len(pids) != 0 {
		t.Errorf("a dns-proxy started for the second container while the sandbox serves: %v", pids)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("sandbox: %v\n%s", err, out.String())
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("sandbox still running after 60s:\n%s", out.String())
	}
	if pids := dnsProxies(r.Root); len(pids) != 1 {
		t.Errorf("want one dns-proxy taking over for the second container, got %v", pids)
	}
	if res := r.Run(nil, "exec", "n2-dnshere-b", "nslookup", "api.test"); res.Code != 0 || !strings.Contains(res.Stdout, hosts.apiIP) {
		t.Errorf("the second container's lookup after the sandbox ended: exit %d %s%s", res.Code, res.Stdout, res.Stderr)
	}
	r.OK("delete", "--force", "n2-dnshere-b")
	waitFor(t, "no resolver left for the root", func() bool { return !dns.Running(r.Root) && len(dnsProxies(r.Root)) == 0 })
	assertNoNetLeftovers(t, r.Root, "n2-dnshere-b")
	if others := otherResolvers(r.Root); contains(registered(), r.Root) {
		t.Errorf("%s still registered in %s (others: %v)", r.Root, dns.RootsDir, others)
	}
	assertNoNetLeftovers(t, r.Root, "n2-dnshere")
	assertNoLeftovers(t, r.Root, "n2-dnshere", b.Dir)
}

// registered lists the state roots in the resolvers' registry.
func registered() []string {
	var out []string
	links, _ := os.ReadDir(dns.RootsDir)
	for _, l := range links {
		if target, err := os.Readlink(filepath.Join(dns.RootsDir, l.Name())); err == nil {
			out = append(out, target)
		}
	}
	return out
}
