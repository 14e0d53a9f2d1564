package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestPolicyPython runs Debian's python3 (threads, subprocess,
// multiprocessing, sockets, sqlite) under the agent allowlist, with the
// host's /usr bind-mounted read-only as the rootfs's /usr.
func TestPolicyPython(t *testing.T) {
	r := newRunner(t)
	_, err := os.Stat("/usr/bin/python3")
	need(t, err == nil, "needs Debian's python3 at /usr/bin/python3")
	b := newBundle(t, "true")
	for _, l := range []string{"lib", "lib64"} {
		os.Symlink("usr/"+l, filepath.Join(b.Rootfs, l))
	}
	os.MkdirAll(filepath.Join(b.Rootfs, "usr"), 0o755)
	b.Spec.Mounts = append(b.Spec.Mounts, specMount("/usr", "/usr"))
	b.Save(t)
	ws := t.TempDir()
	script := pythonWorkload
	os.WriteFile(filepath.Join(ws, "w.py"), []byte(script), 0o644)
	res := r.sandbox(b, "pol-python", []string{"--workspace", ws + ":bind-ro"}, "/usr/bin/python3", "w.py")
	expectLine(t, res, "PY OK [0, 1, 4, 9, 16] sub b'x' 2d711642")
}

func specMount(src, dst string) specs.Mount {
	return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: []string{"rbind", "ro", "nosuid", "nodev"}}
}

// TestPolicyTraceGenerate records what a workload uses, turns it into a
// kill-by-default profile, runs the workload under it, and shows that a
// syscall outside the trace kills the process.
func TestPolicyTraceGenerate(t *testing.T) {
	r := newRunner(t)
	b := probeBundle(t)
	dir := t.TempDir()
	trace := filepath.Join(dir, "trace.json")
	res := r.Run(nil, "policy", "trace", "--bundle", b.Dir, "-o", trace, "--", "probe", "hello")
	if res.Code != 0 {
		t.Fatalf("policy trace: exit %d: %s", res.Code, res.Stderr)
	}
	data, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	var tr struct {
		Syscalls []string `json:"syscalls"`
		Status   int      `json:"status"`
	}
	if err := json.Unmarshal(data, &tr); err != nil {
		t.Fatalf("trace is not JSON: %v", err)
	}
	has := map[string]bool{}
	for _, s := range tr.Syscalls {
		has[s] = true
	}
	for _, want := range []string{"execve", "write", "exit_group", "mmap"} {
		if !has[want] {
			t.Errorf("trace lacks %s: %v", want, tr.Syscalls)
		}
	}
	if has["mkdirat"] || has["mkdir"] || has["bpf"] {
		t.Errorf("trace records syscalls the workload never made: %v", tr.Syscalls)
	}
	profile := filepath.Join(dir, "profile.json")
	r.OK("policy", "generate", "-o", profile, trace)
	res = r.sandbox(b, "pol-gen-ok", []string{"--seccomp-profile", profile}, "probe", "hello")
	if res.Code != 0 || !strings.Contains(res.Stdout, "hello") {
		t.Fatalf("traced workload under its generated profile: exit %d, stdout %q, stderr %q", res.Code, res.Stdout, res.Stderr)
	}
	// A syscall the built-in allowlist allows but the trace never saw
	// kills (socket(AF_UNIX) matches none of socket's refusals); one the
	// built-in refuses stays refused.
	res = r.sandbox(b, "pol-gen-kill", []string{"--seccomp-profile", profile}, "probe", "socket", "1", "1", "0")
	if res.Code != 128+31 {
		t.Fatalf("untraced syscall under the generated profile: exit %d, want %d (killed)", res.Code, 128+31)
	}
	expectLine(t, r.sandbox(b, "pol-gen-bpf", []string{"--seccomp-profile", profile}, "probe", "bpf"), "DENIED EPERM")
}

// TestPolicySandboxFlake runs a sandbox straight from a flake output: the
// Nix closure is the rootfs, under agent mode with its user namespace.
func TestPolicySandboxFlake(t *testing.T) {
	r, cacheParent := nixEnv(t)
	cache := filepath.Join(cacheParent, "bundle")
	// The sandbox's unprivileged root must reach the bundle's rootfs.
	os.Chmod(filepath.Dir(cacheParent), 0o755)
	os.Chmod(cacheParent, 0o755)
	flake := nixFlakeCopy(t)
	id := "pol-flake"
	cmd := r.Cmd("sandbox", "--flake", "path:"+flake+"#agent-example", "--id", id, "--",
		"sh", "-c", "ls /nix/store | wc -l; cat /proc/self/uid_map; grep Seccomp: /proc/self/status; touch /nix/store/x 2>&1 || echo store-ro; cat /proc/self/mountinfo")
	cmd.Env = append(os.Environ(), "NUCLEUS_CACHE_DIR="+cache)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sandbox --flake: %v\n%s", err, out)
	}
	for _, want := range []string{"1073741824", "Seccomp:\t2", "store-ro"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("sandbox --flake output lacks %q:\n%s", want, out)
		}
	}
	// The bundle (under the cache dir) must not show in mountinfo: the
	// rootfs of mount points is rebuilt under the state dir.
	if strings.Contains(string(out), cacheParent) {
		t.Errorf("mountinfo leaks the bundle's host path %s:\n%s", cacheParent, out)
	}
	if strings.Contains(string(out), "not applied") {
		t.Errorf("sandbox --flake degraded isolation:\n%s", out)
	}
	assertNoLeftovers(t, r.Root, id, "")
}

// TestPolicyGvisorParity runs agent mode under gVisor: the same allowlist
// is enforced inside gVisor (keyctl refused by the filter with EPERM, where
// gVisor alone answers EACCES), and Landlock and userns are recorded as
// substituted by gVisor's kernel, not as failures.
func TestPolicyGvisorParity(t *testing.T) {
	requireCmd(t, "runsc")
	r := newRunner(t)
	b := probeBundle(t)
	log := filepath.Join(t.TempDir(), "audit.jsonl")
	expectLine(t, r.sandbox(b, "pol-gv-agent", []string{"--engine", "gvisor", "--audit-log", log}, "probe", "keyctl"), "DENIED EPERM")
	expectLine(t, r.sandbox(b, "pol-gv-none", []string{"--engine", "gvisor", "--mode", ""}, "probe", "keyctl"), "DENIED EACCES")
	res := r.sandbox(b, "pol-gv-strict", []string{"--engine", "gvisor", "--mode", "strict-agent"}, "probe", "memfd")
	expectLine(t, res, "DENIED EPERM")
	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"event":"landlock_applied"`, `gVisor's user-space kernel`, `"event":"seccomp_applied"`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("gVisor audit log lacks %s:\n%s", want, data)
		}
	}

	// export --mode agent writes that same config; plain runsc enforces it.
	b.Spec.Process.Args = []string{"probe", "keyctl"}
	b.Save(t)
	out := filepath.Join(t.TempDir(), "export")
	r.OK("export", "--mode", "agent", "-o", out, b.Dir)
	flags, err := os.ReadFile(filepath.Join(out, "runsc.flags"))
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--root", t.TempDir()}, strings.Fields(string(flags))...)
	cmd := exec.Command("runsc", append(args, "run", "--bundle", out, "pol-gv-export")...)
	got, _ := cmd.CombinedOutput()
	if !strings.Contains(string(got), "DENIED EPERM") {
		t.Errorf("exported agent bundle under plain runsc: %q, want the filter's EPERM", got)
	}
}

// TestPolicySandboxInterrupted: SIGTERM or SIGINT to nucleus ends the
// sandbox (its init would ignore the signal) and removes every trace.
func TestPolicySandboxInterrupted(t *testing.T) {
	r := newRunner(t)
	b := probeBundle(t)
	ws := t.TempDir()
	os.WriteFile(filepath.Join(ws, "f"), []byte("x"), 0o644)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		id := "pol-int-" + strings.ToLower(strings.TrimPrefix(unix.SignalName(sig), "SIG"))
		cmd := r.Cmd("sandbox", "--bundle", b.Dir, "--id", id, "--workspace", ws+":copy-in-out", "--", "sh", "-c", "echo started; exec sleep 30")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line := make([]byte, 8)
		if _, err := io.ReadFull(stdout, line); err != nil || string(line) != "started\n" {
			t.Fatalf("sandbox did not start: %q %v", line, err)
		}
		cmd.Process.Signal(sig)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("%s: nucleus sandbox still running 10s after the signal", unix.SignalName(sig))
		}
		if cmd.ProcessState.ExitCode() == 0 {
			t.Errorf("%s: sandbox exited 0", unix.SignalName(sig))
		}
		assertNoLeftovers(t, r.Root, id, b.Dir)
	}
	left, _ := filepath.Glob(filepath.Join(os.TempDir(), "nucleus-workspace-*"))
	more, _ := filepath.Glob(filepath.Join(r.Root, "@workspace-*"))
	if left = append(left, more...); len(left) > 0 {
		t.Errorf("workspace copies left behind: %v", left)
	}
}

// TestPolicySetuidGainsNothing: a setuid-root binary run by an unprivileged
// user in an agent sandbox keeps the user's ids (no_new_privs).
func TestPolicySetuidGainsNothing(t *testing.T) {
	r := newRunner(t)
	b := probeBundle(t)
	probe := filepath.Join(b.Rootfs, "bin", "probe")
	if err := os.Chmod(probe, 0o4755); err != nil {
		t.Fatal(err)
	}
	b.Spec.Process.User.UID, b.Spec.Process.User.GID = 1000, 1000
	b.Save(t)
	// Without a user namespace the file's owner is the real root, so only
	// no_new_privs stands between the caller and euid 0 (under userns the
	// kernel would already ignore the bit of an unmapped owner).
	cmd := r.Cmd("sandbox", "--bundle", b.Dir, "--id", "pol-setuid", "--", "probe", "status")
	cmd.Env = append(os.Environ(), "NUCLEUS_DISABLE=userns")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sandbox: %v", err)
	}
	res := Result{Stdout: string(out)}
	expectLine(t, res, "Uid: 1000 1000 1000 1000")
	expectLine(t, res, "NoNewPrivs: 1")
	expectLine(t, res, "CapEff: 0000000000000000")
	assertNoLeftovers(t, r.Root, "pol-setuid", b.Dir)
}

// TestPolicyExecConfined: a process exec'd into a container started in
// agent mode gets the container's confinement, not the bundle's defaults:
// no capabilities, no_new_privs, the seccomp filter and the Landlock rules.
func TestPolicyExecConfined(t *testing.T) {
	r := newRunner(t)
	b := probeBundle(t)
	b.Spec.Process.Args = []string{"sleep", "30"}
	b.Save(t)
	id := "pol-exec"
	r.coreDetached("create", "--mode", "agent", "--bundle", b.Dir, id)
	defer r.Run(nil, "delete", "--force", id)
	r.coreDetached("start", id)
	res, err := r.coreExec(nil, "exec", id, "probe", "status")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CapEff: 0000000000000000", "CapBnd: 0000000000000000", "NoNewPrivs: 1", "Seccomp: 2"} {
		expectLine(t, res, want)
	}
	res, _ = r.coreExec(nil, "exec", id, "probe", "copy-exec", "/dev/p2")
	expectLine(t, res, "COPY FAILED")
	res, _ = r.coreExec(nil, "exec", id, "probe", "copy-exec", "/dev/shm/p2")
	expectLine(t, res, "DENIED EACCES")
	res, _ = r.coreExec(nil, "exec", id, "probe", "keyctl")
	expectLine(t, res, "DENIED EPERM")
	res, _ = r.coreExec(nil, "exec", "--cap", "CAP_SYS_ADMIN", id, "true")
	if res.Code == 0 || !strings.Contains(res.Stderr, "agent mode") {
		t.Errorf("exec --cap into an agent container: exit %d, stderr %q", res.Code, res.Stderr)
	}
	r.OK("delete", "--force", id)
	assertNoLeftovers(t, r.Root, id, b.Dir)
}

// TestPolicyBundleMode: `nucleus bundle` writes agent mode into config.json
// by default (so any runtime running the bundle enforces it), and a plain
// config with --mode "".
func TestPolicyBundleMode(t *testing.T) {
	r, cache := nixEnv(t)
	flake := nixFlakeCopy(t)
	agent, _ := nixBundle(t, r, cache, "path:"+flake+"#agent-example")
	plain, _ := nixBundle(t, r, cache, "path:"+flake+"#agent-example", "--mode", "")
	read := func(dir string) specs.Spec {
		var s specs.Spec
		data, err := os.ReadFile(filepath.Join(dir, "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, p := read(agent), read(plain)
	if a.Linux.Seccomp == nil || a.Linux.Seccomp.DefaultAction != specs.ActKillProcess || !a.Process.NoNewPrivileges ||
		len(a.Process.Capabilities.Bounding) != 0 {
		t.Errorf("agent bundle config is not locked down: seccomp %v nnp %v caps %v", a.Linux.Seccomp != nil, a.Process.NoNewPrivileges, a.Process.Capabilities)
	}
	if p.Linux.Seccomp != nil {
		t.Errorf("--mode \"\" bundle has a seccomp profile")
	}
	// The agent bundle still verifies and runs, under nucleus and runc.
	r.OK("verify", agent)
	res := r.Run(nil, "run", "--bundle", agent, "pol-bundle-agent")
	if res.Code != 0 {
		t.Fatalf("agent bundle under nucleus: exit %d: %s", res.Code, res.Stderr)
	}
	if res := runcRun(t, agent, "pol-bundle-runc"); res.Code != 0 {
		t.Fatalf("agent bundle under runc: exit %d: %s", res.Code, res.Stderr)
	}
	r.Fail([]string{"production"}, "bundle", "path:"+flake+"#agent-example", "-o", filepath.Join(t.TempDir(), "b"), "--mode", "production", "--cache-dir", cache)
	// The config is planned for a fixed host, recorded in the attestation,
	// and the host that runs it is checked against that plan at start.
	var att struct {
		Planned *struct {
			Mode string
			Host struct{ UserNS, Seccomp bool }
		}
	}
	data, _ := os.ReadFile(filepath.Join(agent, "attestation.json"))
	if err := json.Unmarshal(data, &att); err != nil || att.Planned == nil || att.Planned.Mode != "agent" || !att.Planned.Host.UserNS || !att.Planned.Host.Seccomp {
		t.Errorf("attestation does not record the plan: %s", data)
	}
	cmd := r.Cmd("run", "--verify-attestation", "--bundle", agent, "pol-bundle-nouserns")
	cmd.Env = append(os.Environ(), "NUCLEUS_DISABLE=userns")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "user namespaces") {
		t.Errorf("a host without user namespaces ran a bundle planned with them: %v %s", err, out)
	}
	assertNoLeftovers(t, r.Root, "pol-bundle-nouserns", agent)
}

// TestPolicyWorkspaceOwnedByUser: a workspace owned by an ordinary host
// user is the workload's own inside (idmapped under the user namespace), so
// the capability-less root can write it, and its files land on the host
// with the user's ids.
func TestPolicyWorkspaceOwnedByUser(t *testing.T) {
	r := newRunner(t)
	b := probeBundle(t)
	ws := t.TempDir()
	os.Chmod(filepath.Dir(ws), 0o755)
	os.WriteFile(filepath.Join(ws, "old"), []byte("x"), 0o644)
	for _, p := range []string{ws, filepath.Join(ws, "old")} {
		if err := os.Chown(p, 1000, 1000); err != nil {
			t.Fatal(err)
		}
	}
	res := r.sandbox(b, "pol-wsuser", []string{"--workspace", ws}, "sh", "-c", "ls -ln old && echo new > new && echo wrote")
	expectLine(t, res, "wrote")
	expectLine(t, res, " 0        0 ")
	st, err := os.Stat(filepath.Join(ws, "new"))
	if err != nil {
		t.Fatalf("file written in the workspace is not on the host: %v", err)
	}
	if sys := st.Sys().(*syscall.Stat_t); sys.Uid != 1000 || sys.Gid != 1000 {
		t.Errorf("new file owned by %d:%d on the host, want 1000:1000", sys.Uid, sys.Gid)
	}
}

// TestPolicyLandlockPolicyFile: a pinned --landlock-policy adds rules to the
// mode's (here: writing to /scratch, an exec-capable mount the base rules
// keep read-only), a mismatching pin is refused, and so is a policy
// without a mode.
func TestPolicyLandlockPolicyFile(t *testing.T) {
	r := newRunner(t)
	b := probeBundle(t)
	scratchMount(b)
	b.Save(t)
	expectLine(t, r.sandbox(b, "pol-llfile0", nil, "probe", "copy-exec", "/scratch/p"), "COPY FAILED")
	file := filepath.Join(t.TempDir(), "landlock.json")
	body := `{"write":["/scratch"]}`
	os.WriteFile(file, []byte(body), 0o644)
	sum := sha256.Sum256([]byte(body))
	pin := hex.EncodeToString(sum[:])
	res := r.sandbox(b, "pol-llfile", []string{"--landlock-policy", file, "--landlock-policy-sha256", pin}, "probe", "copy-exec", "/scratch/p")
	expectLine(t, res, "ALLOWED")
	r.Fail([]string{file, "mismatch"}, "sandbox", "--bundle", b.Dir, "--id", "pol-llfile2", "--landlock-policy", file,
		"--landlock-policy-sha256", strings.Repeat("a", 64), "--", "true")
	assertNoLeftovers(t, r.Root, "pol-llfile2", b.Dir)
	r.Fail([]string{"needs an isolation mode"}, "run", "--landlock-policy", file, "--bundle", b.Dir, "pol-llfile3")
	assertNoLeftovers(t, r.Root, "pol-llfile3", b.Dir)
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"write":["tmp"]}`), 0o644)
	r.Fail([]string{bad, "write[0]"}, "sandbox", "--bundle", b.Dir, "--id", "pol-llfile4", "--landlock-policy", bad, "--", "true")
}

// pythonWorkload exercises what agent code commonly does in Python:
// processes, threads, subprocesses, a loopback socket, sqlite, hashing. It
// prints PY OK and what it computed.
const pythonWorkload = `
import multiprocessing, subprocess, threading, socket, os, sqlite3, hashlib
def sq(x): return x*x
if __name__ == "__main__":
    with multiprocessing.Pool(2) as p: r = p.map(sq, range(5))
    out = subprocess.run(["echo", "sub"], capture_output=True).stdout.decode().strip()
    t = threading.Thread(target=lambda: None); t.start(); t.join()
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
    c = socket.create_connection(s.getsockname()); a, _ = s.accept(); c.send(b"x"); got = a.recv(1)
    db = sqlite3.connect(":memory:"); db.execute("create table t(x)")
    print("PY OK", r, out, got, hashlib.sha256(b"x").hexdigest()[:8])
`
