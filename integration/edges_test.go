package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// Attacks on the edges of a sandbox: each test does what a workload (or a
// careless operator) would do, and failed on the code before its fix.

// TestEdgeKernelFactsMasked: the kernel's command line, build config,
// modules and /sys/kernel (vmcoreinfo, notes, BTF) are a map for choosing
// a kernel exploit. Before the fix an agent sandbox read them all.
func TestEdgeKernelFactsMasked(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t)
	res := r.sandbox(b, "edge-kfacts", nil, "sh", "-c",
		`echo "cmdline=$(cat /proc/cmdline 2>/dev/null | wc -c)"; `+
			`echo "config=$(cat /proc/config.gz 2>/dev/null | wc -c)"; `+
			`echo "modules=$(cat /proc/modules 2>/dev/null | wc -c)"; `+
			`echo "syskernel=$(ls -A /sys/kernel 2>/dev/null | wc -l)"; `+
			`echo "vmcoreinfo=$(cat /sys/kernel/vmcoreinfo 2>/dev/null | wc -c)"; `+
			`echo "notes=$(cat /sys/kernel/notes 2>/dev/null | wc -c)"; `+
			`echo "sysmodule=$(ls -A /sys/module 2>/dev/null | wc -l)"; `+
			`echo "params=$(cat /sys/module/*/parameters/* 2>/dev/null | wc -c)"`)
	if res.Code != 0 {
		t.Fatalf("exit %d: %s", res.Code, res.Stderr)
	}
	for _, want := range []string{"cmdline=0", "config=0", "modules=0", "syskernel=0", "vmcoreinfo=0", "notes=0", "sysmodule=0", "params=0"} {
		expectLine(t, res, want+"\n")
	}
}

// TestEdgeAgentDefaultLimits: without flags an agent sandbox had pids.max
// "max" and no memory limit, so a fork bomb or a memory hog took the host.
func TestEdgeAgentDefaultLimits(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t)
	log := filepath.Join(t.TempDir(), "audit.jsonl")
	// A bounded fork bomb: 700 sleepers, then count the live processes
	// (with builtins only: at the limit the shell cannot fork, and a failed
	// fork ends the subshell that tried).
	res := r.sandbox(b, "edge-forks", []string{"--audit-log", log, "--timeout", "30s"}, "sh", "-c",
		`(i=0; while [ $i -lt 700 ]; do sleep 20 & i=$((i+1)); done) 2>/dev/null; `+
			`set -- /proc/[0-9]*; echo "procs=$#"; kill -9 -1`)
	line := ""
	for _, l := range strings.Split(res.Stdout, "\n") {
		if strings.HasPrefix(l, "procs=") {
			line = l
		}
	}
	n, err := strconv.Atoi(strings.TrimPrefix(line, "procs="))
	if err != nil || n > 512 {
		t.Errorf("fork bomb: %q live processes (want at most the default 512); stderr %q", line, res.Stderr)
	}
	limits := auditEvent(readAudit(t, log), "limits_applied")
	if d, _ := limits["detail"].(string); !strings.Contains(d, "memory=1073741824") || !strings.Contains(d, "pids=512") || !strings.Contains(d, "cpus=1") {
		t.Errorf("limits_applied = %v", limits)
	}
	// A memory hog: a 1.5 GiB buffer filled from /dev/zero.
	res = r.sandbox(b, "edge-memhog", nil, "dd", "if=/dev/zero", "of=/dev/null", "bs=1536M", "count=1")
	if res.Code != 137 {
		t.Errorf("memory hog: exit %d, want 137 (OOM-killed at the default 1G); stderr %q", res.Code, res.Stderr)
	}
	// The defaults are overridable, and in agent mode "max" lifts one.
	res = r.sandbox(b, "edge-pids64", []string{"--pids", "64", "--memory", "max"}, "cat", "/sys/fs/cgroup/pids/pids.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
	if f := strings.Fields(res.Stdout); len(f) != 2 || f[0] != "64" || len(f[1]) < 15 {
		t.Errorf("--pids 64 --memory max: got %q (stderr %q)", res.Stdout, res.Stderr)
	}
	// strict-agent refuses "unlimited".
	r.Fail([]string{"strict-agent", "--pids: unlimited"}, "sandbox", "--mode", "strict-agent", "--pids", "max", "--bundle", b.Dir, "--id", "edge-strict-max", "--", "true")
	assertNoLeftovers(t, r.Root, "edge-strict-max", b.Dir)
	r.Fail([]string{"--pids", "positive"}, "sandbox", "--pids", "-5", "--bundle", b.Dir, "--id", "edge-pids-neg", "--", "true")
}

// TestEdgeProductionNeedsPinnedProfile: production mode took an unpinned,
// allow-all seccomp profile, so a "production" service ran unfiltered.
func TestEdgeProductionNeedsPinnedProfile(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t)
	dir := t.TempDir()
	allowAll := filepath.Join(dir, "allow.json")
	os.WriteFile(allowAll, []byte(`{"defaultAction":"SCMP_ACT_ALLOW"}`), 0o644)
	common := []string{"--mode", "production", "--memory", "256M", "--bundle", b.Dir}
	r.Fail([]string{"--seccomp-profile", "pinned", "seccomp-profile-sha256"}, append(append([]string{"sandbox"}, common...), "--seccomp-profile", allowAll, "--id", "edge-prod-unpinned", "--", "true")...)
	for _, act := range []string{"SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE"} {
		body := `{"defaultAction":"` + act + `"}`
		f := filepath.Join(dir, act+".json")
		os.WriteFile(f, []byte(body), 0o644)
		sum := sha256.Sum256([]byte(body))
		r.Fail([]string{"defaultAction", act}, append(append([]string{"sandbox"}, common...), "--seccomp-profile", f,
			"--seccomp-profile-sha256", hex.EncodeToString(sum[:]), "--id", "edge-prod-"+strings.ToLower(act[9:]), "--", "true")...)
		assertNoLeftovers(t, r.Root, "edge-prod-"+strings.ToLower(act[9:]), b.Dir)
	}
	assertNoLeftovers(t, r.Root, "edge-prod-unpinned", b.Dir)
	// A pinned kill-by-default profile runs.
	prof, sum := builtinProfile(t, r)
	res := r.sandbox(b, "edge-prod-ok", append(common[:len(common)-2], "--seccomp-profile", prof, "--seccomp-profile-sha256", sum), "sh", "-c", "echo served")
	expectLine(t, res, "served")
}

// builtinProfile writes the agent allowlist (`nucleus policy show`) to a
// file and returns it with its SHA-256: a kill-by-default profile that
// ordinary busybox commands run under.
func builtinProfile(t *testing.T, r *Runner) (string, string) {
	t.Helper()
	out := r.OK("policy", "show").Stdout
	f := filepath.Join(t.TempDir(), "agent-profile.json")
	if err := os.WriteFile(f, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(out))
	return f, hex.EncodeToString(sum[:])
}

// TestEdgeRootfsStaged: a bundle under a 0700 directory (what mktemp -d
// makes) ran in agent mode *without* its user namespace (a warning only),
// strict-agent refused it, and every sandbox's mountinfo showed where the
// host keeps the bundle. The runtime also created mount points inside the
// user's bundle. Now every rootfs in a mode is staged under the state dir.
func TestEdgeRootfsStaged(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t)
	hidden := filepath.Join(t.TempDir(), "private")
	if err := os.Mkdir(hidden, 0o700); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(hidden, "bundle")
	if err := os.Rename(b.Dir, dir); err != nil {
		t.Fatal(err)
	}
	b.Dir, b.Rootfs = dir, filepath.Join(dir, "rootfs")
	ws := t.TempDir()
	os.Chown(ws, 1000, 1000)
	for _, mode := range []string{"agent", "strict-agent"} {
		id := "edge-staged-" + mode
		res := r.sandbox(b, id, []string{"--mode", mode, "--workspace", ws + ":/ws"}, "sh", "-c", "cat /proc/self/uid_map; cat /proc/self/mountinfo")
		if res.Code != 0 {
			t.Fatalf("%s: exit %d: %s", mode, res.Code, res.Stderr)
		}
		if strings.Contains(res.Stdout, hidden) {
			t.Errorf("%s: the container's mountinfo shows the bundle's host path %s:\n%s", mode, hidden, res.Stdout)
		}
		if strings.Contains(res.Stdout, r.Root) {
			t.Errorf("%s: the container's mountinfo shows the state root %s:\n%s", mode, r.Root, res.Stdout)
		}
		if f := strings.Fields(res.Stdout); len(f) < 3 || f[0] != "0" || f[1] != "1073741824" {
			t.Errorf("%s: no user namespace (uid_map %q); stderr %q", mode, strings.Join(f[:min(3, len(f))], " "), res.Stderr)
		}
		if strings.Contains(res.Stderr, "userns") {
			t.Errorf("%s: %s", mode, res.Stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(b.Rootfs, "ws")); err == nil {
		t.Errorf("the runtime created a mount point in the user's bundle: %s", filepath.Join(b.Rootfs, "ws"))
	}
	// create/start/delete in a mode: the staged rootfs goes with delete,
	// also after a kill -9 and a forced delete.
	r.coreDetached("create", "--mode", "agent", "--bundle", b.Dir, "edge-staged-c")
	if _, err := os.Stat(filepath.Join(r.Root, "@rootfs-edge-staged-c", "merged", "bin", "busybox")); err != nil {
		t.Errorf("created container has no staged rootfs: %v", err)
	}
	r.OK("kill", "edge-staged-c", "KILL")
	r.OK("delete", "--force", "edge-staged-c")
	assertNoLeftovers(t, r.Root, "edge-staged-c", b.Dir)
	// A create that fails after staging leaves nothing staged.
	r.Fail([]string{"does-not-exist"}, "create", "--mode", "agent", "--bundle", b.Dir, "--pid-file", "/does-not-exist/pid", "edge-staged-fail")
	assertNoLeftovers(t, r.Root, "edge-staged-fail", b.Dir)
}

// TestEdgeVerifyAttestationSameBytes: --verify-attestation read config.json
// twice, once to check it and once to run it, so a config swapped in
// between ran unchecked. A FIFO stands in for the swap: each open of it
// gets the next version.
func TestEdgeVerifyAttestationSameBytes(t *testing.T) {
	r, cache := nixEnv(t)
	dir, _ := nixBundle(t, r, cache, nixFlakeCopy(t)+"#agent-example", "--", "echo", "attested")
	cfg := filepath.Join(dir, "config.json")
	good, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	evil := strings.Replace(string(good), `"attested"`, `"swapped"`, 1)
	if evil == string(good) {
		t.Fatalf("config.json has no \"attested\" argument to swap:\n%s", good)
	}
	os.Remove(cfg)
	if err := unix.Mkfifo(cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	// The writer hands out the next version only once the reader of the
	// previous one has closed the FIFO.
	in, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(in)
	if _, err := unix.InotifyAddWatch(in, cfg, unix.IN_CLOSE_NOWRITE); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, body := range []string{string(good), evil} {
			f, err := os.OpenFile(cfg, os.O_WRONLY, 0)
			if err != nil {
				return
			}
			f.WriteString(body)
			f.Close()
			fds := []unix.PollFd{{Fd: int32(in), Events: unix.POLLIN}}
			if n, _ := unix.Poll(fds, 20000); n != 1 {
				return
			}
			var buf [4096]byte
			unix.Read(in, buf[:])
		}
	}()
	res := r.Run(nil, "run", "--verify-attestation", "--bundle", dir, "edge-attest")
	// Unblock the writer if the config was (rightly) read only once.
	if f, err := os.OpenFile(cfg, os.O_RDONLY|unix.O_NONBLOCK, 0); err == nil {
		f.Close()
		<-done
	}
	if strings.Contains(res.Stdout, "swapped") {
		t.Errorf("ran a config.json other than the one verified: stdout %q", res.Stdout)
	}
	if res.Code != 0 || !strings.Contains(res.Stdout, "attested") {
		t.Errorf("verified run: exit %d, stdout %q, stderr %q", res.Code, res.Stdout, res.Stderr)
	}
	assertNoLeftovers(t, r.Root, "edge-attest", dir)
}

// TestEdgeWorkspaceWithoutUserNS: with no user namespace to map it away
// (the gVisor engine, whose gofer writes as host root; a host without user
// namespaces), container root wrote a user's world-writable bind-rw
// workspace as host uid 0: `chmod 4755` on a copied shell left a setuid
// root binary on the host.
func TestEdgeWorkspaceWithoutUserNS(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t)
	ws := userWorkspace(t)
	os.Chmod(ws, 0o777)
	// The native engine's agent allowlist refuses the chmod itself (see
	// TestSetidBindWorkspace); gVisor's lets it through to its own kernel.
	attack := "cp /bin/busybox /workspace/sh && { chmod 4755 /workspace/sh || true; }"
	cases := []struct {
		name  string
		flags []string
		env   string
	}{
		{"nouserns", nil, "NUCLEUS_DISABLE=userns"},
		{"gvisor", []string{"--engine", "gvisor"}, ""},
	}
	for _, c := range cases {
		if c.name == "gvisor" {
			requireCmd(t, "runsc")
		}
		id := "edge-wsroot-" + c.name
		args := append([]string{"--root", r.Root, "sandbox", "--bundle", b.Dir, "--id", id, "--workspace", ws}, c.flags...)
		cmd := exec.Command(r.Bin, append(args, "--", "sh", "-c", attack)...)
		cmd.Env = append(os.Environ(), c.env)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "copy-in-out") {
			t.Errorf("%s: a writable bind without a user namespace: err %v, output %q", c.name, err, out)
		}
		if st, err := os.Stat(filepath.Join(ws, "sh")); err == nil {
			t.Errorf("%s: the sandbox left %s (mode %v) on the host", c.name, filepath.Join(ws, "sh"), st.Mode())
		}
		assertNoLeftovers(t, r.Root, id, b.Dir)
		// copy-in-out is the safe way: the file comes back owned by the
		// workspace's owner, without its set-id bit.
		id += "-copy"
		args = append([]string{"--root", r.Root, "sandbox", "--bundle", b.Dir, "--id", id, "--workspace", ws + ":copy-in-out"}, c.flags...)
		cmd = exec.Command(r.Bin, append(args, "--", "sh", "-c", attack)...)
		cmd.Env = append(os.Environ(), c.env)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s copy-in-out: %v: %s", c.name, err, out)
		}
		st, err := os.Stat(filepath.Join(ws, "sh"))
		if err != nil {
			t.Fatalf("%s copy-in-out: no file came back: %v", c.name, err)
		}
		sys := st.Sys().(*syscall.Stat_t)
		if st.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0 || sys.Uid != 1000 || sys.Gid != 1000 {
			t.Errorf("%s copy-in-out: came back as %v %d:%d, want no set-id bits and 1000:1000", c.name, st.Mode(), sys.Uid, sys.Gid)
		}
		os.Remove(filepath.Join(ws, "sh"))
		assertNoLeftovers(t, r.Root, id, b.Dir)
	}
}

// TestEdgeGvisorBundleUntouched: under gVisor, runsc's gofer made the mount
// points of a mode's container (the workspace, the exec helper's dir) in
// the platform's own bundle; the rootfs is staged as on the native engine.
func TestEdgeGvisorBundleUntouched(t *testing.T) {
	r := newRunner(t)
	requireCmd(t, "runsc")
	b := newBundle(t)
	listing := func() []string {
		var names []string
		filepath.Walk(b.Rootfs, func(p string, _ os.FileInfo, _ error) error {
			names = append(names, p)
			return nil
		})
		return names
	}
	before := listing()
	res := r.sandbox(b, "edge-gv-bundle", []string{"--engine", "gvisor", "--workspace", userWorkspace(t) + ":copy-in-out"}, "sh", "-c", "ls /workspace >/dev/null && echo ran")
	expectLine(t, res, "ran")
	if after := listing(); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("the gVisor sandbox changed the bundle's rootfs:\nbefore %v\nafter  %v", before, after)
	}
}

// TestEdgeCrossDirectoryRename: with Landlock's Refer right unhandled,
// every cross-directory rename or link in agent mode failed with EXDEV
// ("Invalid cross-device link"): `mv a/x b/`, a lock file renamed into
// place, an unpacked tree moved where it belongs. And a move across file
// systems (/tmp to the workspace), which copies, was killed at chown.
func TestEdgeCrossDirectoryRename(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t)
	ws := userWorkspace(t)
	res := r.sandbox(b, "edge-refer", []string{"--workspace", ws}, "sh", "-c",
		`set -e; mkdir -p /tmp/a /tmp/b /workspace/c /workspace/d; echo 1 > /tmp/a/x; mv /tmp/a/x /tmp/b/x; `+
			`echo 2 > /workspace/c/y; mv /workspace/c/y /workspace/d/y; ln /workspace/d/y /workspace/c/z; `+
			`mv /tmp/b /tmp/a/b; mkdir /tmp/t; echo 3 > /tmp/t/f; mv /tmp/t /workspace/t; echo moved`)
	if res.Code != 0 || !strings.Contains(res.Stdout, "moved") {
		t.Errorf("cross-directory rename and link in agent mode: exit %d, stdout %q, stderr %q", res.Code, res.Stdout, res.Stderr)
	}
	// Moving a file from /tmp into an exec-granted workspace would give it
	// rights it did not have: still refused.
	res = r.sandbox(b, "edge-refer-exec", []string{"--workspace", ws, "--workspace-exec"}, "sh", "-c",
		`cp /bin/busybox /tmp/bb && mv /tmp/bb /workspace/bb && /workspace/bb true && echo RAN`)
	if strings.Contains(res.Stdout, "RAN") {
		t.Errorf("a binary written to /tmp ran after a move into the exec workspace")
	}
}
