package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/nucleus-run/nucleus/network"
	"github.com/nucleus-run/nucleus/network/firewall"
	"github.com/nucleus-run/nucleus/network/ipam"
)

// TestNetBridgeAllowCIDR: the resolver on the gateway is the
// container's nameserver; an allowed CIDR connects; a second owned host
// that answers (proved first from its own namespace) is refused, and the
// refusal is an egress_denied event naming it. Nothing is left after.
func TestNetBridgeAllowCIDR(t *testing.T) {
	requireNet(t)
	r := newRunner(t)
	a, b := newNetHost(t, 101), newNetHost(t, 102)
	bundle := newBundle(t)
	log := filepath.Join(t.TempDir(), "audit.log")
	res := r.OK("sandbox", "--bundle", bundle.Dir, "--id", "nt-allow", "--net", "bridge", "--allow", "198.19.101.0/24:8080/tcp",
		"--audit-log", log, "--", "sh", "-c", "grep '^nameserver' /etc/resolv.conf | head -1; "+fetchScript(a.IP, 8080)+"; "+fetchScript(b.IP, 8080))
	lines := strings.Split(strings.TrimSpace(res.Stdout), "\n")
	if len(lines) != 3 || lines[0] != "nameserver "+ipam.Gateway4.String() || lines[1] != a.Body || lines[2] != "refused" {
		t.Fatalf("want the gateway as nameserver, %q, then refused; got %q", a.Body, lines)
	}
	cfg := auditEvents(t, log, "network_configured")
	if len(cfg) != 1 || cfg[0]["mode"] != "bridge" || !strings.Contains(jsonString(cfg[0]["allow"]), "198.19.101.0/24:8080/tcp") || jsonString(cfg[0]["addresses"]) == "null" {
		t.Errorf("network_configured: %v", cfg)
	}
	denied := auditEvents(t, log, "egress_denied")
	found := false
	for _, d := range denied {
		if d["destination"] == b.IP && d["proto"] == "tcp" && d["port"] == float64(8080) {
			found = true
		}
		if d["destination"] == a.IP {
			t.Errorf("the allowed host was reported denied: %v", d)
		}
	}
	if !found {
		t.Errorf("no egress_denied event for %s:8080: %v", b.IP, denied)
	}
	assertNoNetLeftovers(t, r.Root, "nt-allow")
}

// TestNetBridgeSandboxesIsolated: a sandbox cannot reach another one's
// server without a rule, and can with one (so the server does answer).
func TestNetBridgeSandboxesIsolated(t *testing.T) {
	requireNet(t)
	r := newRunner(t)
	bundle := newBundle(t)
	www := filepath.Join(bundle.Rootfs, "www")
	os.MkdirAll(www, 0o755)
	os.WriteFile(filepath.Join(www, "index.html"), []byte("sandbox-b\n"), 0o644)
	r.OK("sandbox", "--detach", "--bundle", bundle.Dir, "--id", "nt-iso-b", "--net", "bridge", "--", "httpd", "-f", "-p", "8080", "-h", "/www")
	t.Cleanup(func() { r.Run(nil, "delete", "--force", "nt-iso-b") })
	ip := address(t, r, "nt-iso-b", false)
	if !strings.HasPrefix(ip, "10.90.") {
		t.Fatalf("address %q not in %s", ip, ipam.Subnet4)
	}
	list := r.OK("list", "--format", "json").Stdout
	if !strings.Contains(list, ip) {
		t.Errorf("list does not show %s: %s", ip, list)
	}
	res := r.OK("sandbox", "--bundle", bundle.Dir, "--id", "nt-iso-a", "--net", "bridge", "--", "sh", "-c", fetchScript(ip, 8080))
	if strings.TrimSpace(res.Stdout) != "refused" {
		t.Fatalf("sandbox reached another sandbox without a rule: %q", res.Stdout)
	}
	var got string
	waitFor(t, "sandbox b's server through an allow rule", func() bool {
		res = r.OK("sandbox", "--bundle", bundle.Dir, "--id", "nt-iso-c", "--net", "bridge", "--allow", ip+"/32", "--", "sh", "-c", fetchScript(ip, 8080))
		got = strings.TrimSpace(res.Stdout)
		return got == "sandbox-b"
	})
	r.OK("delete", "--force", "nt-iso-b")
	assertNoNetLeftovers(t, r.Root, "nt-iso-b")
}

// TestNetMetadataRuleFirst: the metadata addresses are dropped by the
// first rules of a container's chain, before an allow rule that covers
// them (read from the ruleset; no packet is sent there).
func TestNetMetadataRuleFirst(t *testing.T) {
	requireNet(t)
	r := newRunner(t)
	bundle := newBundle(t)
	r.OK("sandbox", "--detach", "--bundle", bundle.Dir, "--id", "nt-meta", "--net", "bridge", "--allow", "169.254.0.0/16", "--allow", "100.64.0.0/10", "--allow", "fd00::/8", "--allow", "64:ff9b::/32", "--allow", "2002::/16", "--allow", "fd20::/16")
	t.Cleanup(func() { r.Run(nil, "delete", "--force", "nt-meta") })
	rules := chainRules(t, firewall.Chain(network.Hash(r.Root, "nt-meta")))
	if len(rules) < 4 {
		t.Fatalf("chain has %d rules: %v", len(rules), rules)
	}
	firstAllow := -1
	for i, rl := range rules {
		if strings.Contains(rl, `"accept"`) && firstAllow < 0 {
			firstAllow = i
		}
	}
	for _, m := range firewall.MetadataNets {
		// nft writes a whole address alone, a shorter prefix as
		// {"prefix":{"addr":A,"len":N}}.
		want := `"` + m.IP.String() + `"`
		if ones, bits := m.Mask.Size(); ones != bits {
			want = fmt.Sprintf(`{"prefix":{"addr":"%s","len":%d}}`, m.IP, ones)
		}
		idx := -1
		for i, rl := range rules {
			if strings.Contains(rl, want) && strings.Contains(rl, `"drop"`) {
				idx = i
				break
			}
		}
		if idx < 0 || idx >= firstAllow {
			t.Errorf("no drop of %s before the first accept (rule %d, first accept %d): %v", m, idx, firstAllow, rules)
		}
	}
	r.OK("delete", "--force", "nt-meta")
	assertNoNetLeftovers(t, r.Root, "nt-meta")
}

// TestNetKillMidCreate: nucleus is SIGKILLed while it sets a bridged
// container up (once as soon as the network's record exists, the first
// thing written; once as soon as the veth exists); delete --force then
// leaves no veth, lease, rules, record or container.
func TestNetKillMidCreate(t *testing.T) {
	requireNet(t)
	r := newRunner(t)
	bundle := newBundle(t, "sleep", "30")
	for i, stage := range []string{"record", "veth"} {
		id := fmt.Sprintf("nt-kill9-%d", i)
		veth := firewall.VethPrefix + network.Hash(r.Root, id)
		cmd := r.Cmd("create", "--bundle", bundle.Dir, "--net", "bridge", "--allow", "198.19.0.0/16", "--publish", "18090:80", id)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the "+stage, func() bool {
			if stage == "veth" {
				return exec.Command("ip", "link", "show", veth).Run() == nil
			}
			_, err := os.Stat(network.RecordPath(r.Root, id))
			return err == nil
		})
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		held, _ := ipam.Held(r.Root)
		t.Logf("killed at the %s: veth there %v, leases %v", stage, exec.Command("ip", "link", "show", veth).Run() == nil, held)
		r.OK("delete", "--force", id)
		assertNoNetLeftovers(t, r.Root, id)
		assertNoLeftovers(t, r.Root, id, bundle.Dir)
	}
}

// TestNetPlainRun: a plain bundle (no mode) with --net bridge gets a
// network namespace of its own and the same allowlist.
func TestNetPlainRun(t *testing.T) {
	requireNet(t)
	r := newRunner(t)
	a, b := newNetHost(t, 106), newNetHost(t, 107)
	bundle := newBundle(t, "sh", "-c", fetchScript(a.IP, 8080)+"; "+fetchScript(b.IP, 8080))
	res := r.OK("run", "--bundle", bundle.Dir, "--net", "bridge", "--allow", a.IP, "nt-plain")
	if got := strings.Fields(res.Stdout); len(got) != 2 || got[0] != a.Body || got[1] != "refused" {
		t.Fatalf("want %q then refused, got %q", a.Body, got)
	}
	assertNoNetLeftovers(t, r.Root, "nt-plain")
	assertNoLeftovers(t, r.Root, "nt-plain", bundle.Dir)
}

// TestNetBadFlags: each bad network flag is a one-line error naming it,
// and leaves nothing behind.
func TestNetBadFlags(t *testing.T) {
	requireNet(t)
	r := newRunner(t)
	bundle := newBundle(t, "true")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--net", "bridge", "--allow", "10.0.0.0/33"}, "--allow"},
		{[]string{"--net", "bridge", "--allow", "a.example:99999"}, "--allow"},
		{[]string{"--net", "bridge", "--publish", "80"}, "--publish"},
		{[]string{"--net", "bridge", "--publish", "8080:80/sctp"}, "--publish"},
		{[]string{"--allow", "10.0.0.0/8"}, "--allow"},
		{[]string{"--net", "host", "--publish", "8080:80"}, "--publish"},
		{[]string{"--net", "bridge", "--dns", "resolver"}, "--dns"},
		{[]string{"--net", "bridge", "--bridge", "nv-evil"}, "--bridge"},
		{[]string{"--net", "wifi"}, "--net"},
		{[]string{"--net", "bridge", "--bridge", "lo"}, "--bridge"},
	} {
		args := append([]string{"sandbox", "--bundle", bundle.Dir, "--id", "nt-bad"}, c.args...)
		r.Fail([]string{c.want}, append(args, "--", "true")...)
		assertNoNetLeftovers(t, r.Root, "nt-bad")
		assertNoLeftovers(t, r.Root, "nt-bad", bundle.Dir)
	}
}

// TestNetPlainModes: a plain bundle's network namespace follows --net
// when given: none makes an empty one for a config that shares the
// host's, host drops the config's own. (An interface the test makes on
// the host tells the host's namespace.)
func TestNetPlainModes(t *testing.T) {
	requireNet(t)
	r := newRunner(t)
	newNetHost(t, 110)
	b := newBundle(t, "sh", "-c", "if ip link show nt-h110 >/dev/null 2>&1; then echo host; else echo own; fi")
	var kept []specs.LinuxNamespace
	for _, ns := range b.Spec.Linux.Namespaces {
		if ns.Type != specs.NetworkNamespace {
			kept = append(kept, ns)
		}
	}
	b.Spec.Linux.Namespaces = kept
	b.Save(t)
	if got := strings.TrimSpace(r.OK("run", "--bundle", b.Dir, "nt-pm1").Stdout); got != "host" {
		t.Fatalf("a config without a network namespace: %q, want the host's", got)
	}
	if got := strings.TrimSpace(r.OK("run", "--bundle", b.Dir, "--net", "none", "nt-pm2").Stdout); got != "own" {
		t.Errorf("--net none: %q, want a namespace of its own", got)
	}
	b.Spec.Linux.Namespaces = append(b.Spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace})
	b.Save(t)
	if got := strings.TrimSpace(r.OK("run", "--bundle", b.Dir, "nt-pm3").Stdout); got != "own" {
		t.Errorf("a config with a network namespace: %q, want its own", got)
	}
	if got := strings.TrimSpace(r.OK("run", "--bundle", b.Dir, "--net", "host", "nt-pm4").Stdout); got != "host" {
		t.Errorf("--net host: %q, want the host's", got)
	}
}

// TestNetAntiSpoof: a container that can change its own addresses
// (CAP_NET_ADMIN in its namespace) and sends from another container's
// address is dropped at its veth, before any allow rule: the resolver
// and the replies cannot be fooled about who sent what.
func TestNetAntiSpoof(t *testing.T) {
	requireNet(t)
	r := newRunner(t)
	a := newNetHost(t, 111)
	spoofed := "10.90.255.250"
	b := newBundle(t, "sh", "-c", fetchScript(a.IP, 8080)+"; ip addr add "+spoofed+"/32 dev eth0 && "+
		"ip route replace default via "+ipam.Gateway4.String()+" dev eth0 src "+spoofed+" && "+fetchScript(a.IP, 8080))
	caps := b.Spec.Process.Capabilities
	caps.Bounding = append(caps.Bounding, "CAP_NET_ADMIN")
	caps.Effective = append(caps.Effective, "CAP_NET_ADMIN")
	caps.Permitted = append(caps.Permitted, "CAP_NET_ADMIN")
	b.Save(t)
	before := spoofDrops(t)
	res := r.OK("run", "--bundle", b.Dir, "--net", "bridge", "--allow", a.IP, "nt-spoof")
	if got := strings.Fields(res.Stdout); len(got) != 2 || got[0] != a.Body || got[1] != "refused" {
		t.Fatalf("want %q from its own address, refused from a spoofed one; got %q (stderr %s)", a.Body, got, res.Stderr)
	}
	if after := spoofDrops(t); after <= before {
		t.Errorf("the antispoof rule dropped nothing (%v before, %v after); stderr %s", before, after, res.Stderr)
	}
	assertNoNetLeftovers(t, r.Root, "nt-spoof")
}

// spoofDrops is the packet count of the antispoof chain's drop rule.
func spoofDrops(t *testing.T) float64 {
	t.Helper()
	for _, o := range nftTable(t) {
		rl, ok := o["rule"].(map[string]any)
		if !ok || rl["chain"] != "antispoof" {
			continue
		}
		exprs, _ := rl["expr"].([]any)
		for _, e := range exprs {
			if c, ok := e.(map[string]any)["counter"].(map[string]any); ok {
				n, _ := c["packets"].(float64)
				return n
			}
		}
	}
	return 0
}

// TestNetSubnetConfigurable: --subnet (or $NUCLEUS_SUBNET) picks the IPv4
// subnet bridge addresses come from; the container gets an address and
// gateway there and its allowlist works as with the default; a malformed
// subnet is one line naming the flag.
func TestNetSubnetConfigurable(t *testing.T) {
	requireNet(t)
	r := newRunner(t)
	a := newNetHost(t, 107)
	bundle := newBundle(t)
	r.Global = []string{"--subnet", "10.91.0.0/24"}
	res := r.OK("sandbox", "--bundle", bundle.Dir, "--id", "nt-subnet", "--net", "bridge", "--allow", "198.19.107.0/24:8080/tcp",
		"--", "sh", "-c", "ip -4 -o addr show eth0 | awk '{print $4}'; grep '^nameserver' /etc/resolv.conf | head -1; "+fetchScript(a.IP, 8080))
	lines := strings.Split(strings.TrimSpace(res.Stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "10.91.0.") || lines[1] != "nameserver 10.91.0.1" || lines[2] != a.Body {
		t.Errorf("sandbox on --subnet 10.91.0.0/24: %q", lines)
	}
	assertNoNetLeftovers(t, r.Root, "nt-subnet")
	for _, bad := range []string{"10.91.0.1/24", "fd00::/64", "10.0.0.0/30", "nonsense"} {
		r.Global = []string{"--subnet", bad}
		r.Fail([]string{"--subnet"}, "sandbox", "--bundle", bundle.Dir, "--net", "bridge", "--", "true")
	}
}

// TestNetSandboxOwnerKilled: a foreground sandbox whose nucleus is killed
// with SIGKILL can't remove its container; the next sweep of the root (gc,
// list, another sandbox) does, with its network, cgroups and state, instead
// of leaving it running unbounded (network red team, S5c).
func TestNetSandboxOwnerKilled(t *testing.T) {
	requireNet(t)
	r := newRunner(t)
	bundle := newBundle(t, "true")
	id := "nt-owner-killed"
	cmd := r.Cmd("sandbox", "--id", id, "--net", "bridge", "--bundle", bundle.Dir, "--", "sleep", "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, r, id)
	pid := r.corePid(id)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	// Its owner gone, the sandbox is still there until a sweep.
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("the sandbox's process died with its nucleus (%v): this test tests nothing", err)
	}
	// A list of another root leaves it alone.
	other := newRunner(t)
	other.OK("list")
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("another root's list removed the sandbox: %v", err)
	}
	r.OK("gc")
	waitFor(t, "the orphaned sandbox's process to die", func() bool { return syscall.Kill(pid, 0) != nil })
	if _, err := os.Stat(filepath.Join(r.Root, "@oneshot-"+id)); !os.IsNotExist(err) {
		t.Errorf("owner record left behind: %v", err)
	}
	assertNoNetLeftovers(t, r.Root, id)
	assertNoLeftovers(t, r.Root, id, bundle.Dir)
}

// A running sandbox's owner record keeps it from the sweep of a gc in the
// same root.
func TestNetSandboxOwnerAliveKept(t *testing.T) {
	requireNet(t)
	r := newRunner(t)
	bundle := newBundle(t, "true")
	id := "nt-owner-alive"
	cmd := r.Cmd("sandbox", "--id", id, "--bundle", bundle.Dir, "--", "sleep", "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		r.OK("delete", "--force", id)
		os.Remove(filepath.Join(r.Root, "@oneshot-"+id))
	}()
	waitRunning(t, r, id)
	pid := r.corePid(id)
	r.OK("gc")
	r.OK("list")
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("gc removed a sandbox whose nucleus runs: %v", err)
	}
}

// waitRunning waits until the container exists and runs.
func waitRunning(t *testing.T, r *Runner, id string) {
	t.Helper()
	waitForUpTo(t, time.Minute, id+" running", func() bool {
		res := r.Run(nil, "state", id)
		return res.Code == 0 && strings.Contains(res.Stdout, `"running"`)
	})
}
