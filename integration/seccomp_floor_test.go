package integration

// Attacks on the seccomp allowlist from inside a sandbox: fileless exec
// through memfd_create, poisoning `policy trace`/`policy generate`, and the
// trace command's relative paths. Ids are prefixed sc-.
// TestPolicyTraceUnlisted and TestPolicyTraceOrdinary use gn-.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// memfdChecks: memfd_create passes only with MFD_NOEXEC_SEAL (a memfd that
// is not executable and whose mode can never be changed); without it, or
// with MFD_EXEC, the filter refuses it with EPERM.
func memfdChecks() (checks [][]string, want map[string]string) {
	want = map[string]string{}
	add := func(name, flags, w string) {
		checks = append(checks, []string{name, "memfd", flags})
		want[name] = w
	}
	add("memfd-plain", "0", "DENIED EPERM")
	add("memfd-cloexec-sealing", "0x3", "DENIED EPERM")
	add("memfd-exec", "0x10", "DENIED EPERM")
	add("memfd-exec-seal", "0x18", "DENIED EPERM")
	add("memfd-noexec-seal", "0x8", "ALLOWED")
	add("memfd-noexec-seal-cloexec", "0xb", "ALLOWED")
	return checks, want
}

// memfdAttack copies the probe into a memfd made with each of these flags
// and runs it from there (fexecve and execveat); a copy that ran prints
// "hello".
const memfdAttack = `for f in 0 0x1 0x10 0x8 0x9; do echo "== $f"; probe memfd-exec $f; done`

func checkMemfdAttack(t *testing.T, res Result, gvisor bool) {
	t.Helper()
	if strings.Contains(res.Stdout, "hello") || strings.Contains(res.Stdout, " ALLOWED") {
		t.Errorf("a binary copied into a memfd ran (Landlock's no-exec bypassed):\n%s\nstderr %q", res.Stdout, res.Stderr)
	}
	sections := map[string]string{}
	for _, s := range strings.Split(res.Stdout, "== ")[1:] {
		flags, out, _ := strings.Cut(s, "\n")
		sections[flags] = out
	}
	for _, f := range []string{"0", "0x1", "0x10"} {
		if !strings.HasPrefix(sections[f], "MEMFD DENIED EPERM") {
			t.Errorf("memfd-exec %s: want memfd_create refused with EPERM, got %q", f, sections[f])
		}
	}
	if gvisor {
		// gVisor's kernel (20221219) has no MFD_NOEXEC_SEAL: it refuses
		// the flag itself, or the copy can't be run; either way "hello"
		// is checked above.
		return
	}
	// With the seal the memfd is created, but its mode can't gain exec,
	// and exec fails (execveat itself is outside the allowlist: killed).
	for _, f := range []string{"0x8", "0x9"} {
		for _, w := range []string{"FCHMOD DENIED EPERM", "EXEC DENIED EACCES", "EXECVEAT KILLED"} {
			if !strings.Contains(sections[f], w) {
				t.Errorf("memfd-exec %s: want %q, got %q", f, w, sections[f])
			}
		}
	}
}

// TestPolicyMemfdExec: in agent mode a sandbox can't run a binary it wrote
// by copying it into a memfd (Landlock forbids exec from everything it
// can write, but a memfd has no path beneath those rules).
func TestPolicyMemfdExec(t *testing.T) {
	r := newRunner(t)
	b := probeBundle(t)
	checks, want := memfdChecks()
	flags := []string{"--workspace", userWorkspace(t)}
	expectProbeLines(t, r.sandbox(b, "sc-memfd", flags, "sh", "-c", probeScript(checks)), want)
	checkMemfdAttack(t, r.sandbox(b, "sc-memfd-exec", flags, "sh", "-c", memfdAttack), false)
	// The host's python3 still runs its ordinary work (TestPolicyPython
	// too); os.memfd_create with the seal works, without it is refused.
	t.Run("python", func(t *testing.T) {
		pb := hostUsrBundle(t, "/usr/bin/python3")
		script := `
import os
try:
    os.memfd_create("x")
    print("plain allowed")
except PermissionError:
    print("plain refused")
fd = os.memfd_create("y", os.MFD_CLOEXEC | 0x8)
os.write(fd, b"data"); os.lseek(fd, 0, 0); print("sealed", os.read(fd, 4))
`
		res := r.sandbox(pb, "sc-memfd-py", nil, "/usr/bin/python3", "-c", script)
		expectLine(t, res, "plain refused")
		expectLine(t, res, "sealed b'data'")
	})
	t.Run("gvisor", func(t *testing.T) {
		requireCmd(t, "runsc")
		gv := []string{"--engine", "gvisor", "--mode", "agent"}
		res := r.sandbox(b, "sc-memfd-gv", gv, "sh", "-c", probeScript(checks))
		// The unsealed forms are refused by the filter as natively; what
		// gVisor's kernel says to MFD_NOEXEC_SEAL is its own business.
		delete(want, "memfd-noexec-seal")
		delete(want, "memfd-noexec-seal-cloexec")
		expectProbeLines(t, res, want)
		assertNoGvisorLeftovers(t, r, "sc-memfd-gv", b.Dir)
		checkMemfdAttack(t, r.sandbox(b, "sc-memfd-exec-gv", gv, "sh", "-c", memfdAttack), true)
		assertNoGvisorLeftovers(t, r, "sc-memfd-exec-gv", b.Dir)
	})
}

// expectEscapeRefused wants every step of `probe netescape` (a new user
// and network namespace, a NETLINK_NETFILTER socket, an AF_PACKET socket)
// refused by the built-in allowlist's rules: EPERM for unshare,
// EAFNOSUPPORT for the two families (the kernel's own answer to a packet
// socket without CAP_NET_RAW is EPERM: not good enough).
func expectEscapeRefused(t *testing.T, what string, res Result) {
	t.Helper()
	for _, want := range []string{"unshare: DENIED EPERM", "netlink: DENIED EAFNOSUPPORT", "packet: DENIED EAFNOSUPPORT"} {
		if !strings.Contains(res.Stdout, want+"\n") {
			t.Errorf("%s: want %q: stdout %q stderr %q exit %d", what, want, res.Stdout, res.Stderr, res.Code)
		}
	}
}

// TestPolicyTraceFloor: the red team's trace poisoning. A traced workload
// that unshares a user and network namespace and opens netfilter and
// packet sockets is refused during the trace, and the profile generated
// from its trace refuses them too, in agent and in production mode.
func TestPolicyTraceFloor(t *testing.T) {
	r := newRunner(t)
	b := probeBundle(t)
	dir := t.TempDir()
	trace := filepath.Join(dir, "trace.json")
	res := r.Run(nil, "policy", "trace", "--bundle", b.Dir, "-o", trace, "--", "probe", "netescape")
	if res.Code != 0 {
		t.Fatalf("policy trace: exit %d: %s", res.Code, res.Stderr)
	}
	expectEscapeRefused(t, "during the trace", res)

	profile := filepath.Join(dir, "profile.json")
	r.OK("policy", "generate", "-o", profile, trace)
	data, err := os.ReadFile(profile)
	if err != nil {
		t.Fatal(err)
	}
	var p specs.LinuxSeccomp
	if err := json.Unmarshal(data, &p); err != nil {
		t.Fatal(err)
	}
	for _, rule := range p.Syscalls {
		for _, n := range rule.Names {
			if rule.Action == specs.ActAllow && len(rule.Args) == 0 && (n == "unshare" || n == "socket" || n == "clone" || n == "ioctl" || n == "setns") {
				t.Errorf("generated profile allows %s without argument checks", n)
			}
		}
	}
	pin := pinned(t, profile)
	expectEscapeRefused(t, "agent mode, generated profile", r.sandbox(b, "sc-floor-agent", pin, "probe", "netescape"))
	expectEscapeRefused(t, "production mode, generated profile",
		r.sandbox(b, "sc-floor-prod", append([]string{"--mode", "production", "--memory", "512M"}, pin...), "probe", "netescape"))

	// A hand-written trace naming them (a trace is only a list of names)
	// lifts nothing either.
	poisoned := filepath.Join(dir, "poisoned.json")
	os.WriteFile(poisoned, []byte(`{"command":["x"],"status":0,"syscalls":["execve","mkdirat","unshare","setns","socket","clone","clone3","mount","bpf","ptrace","write","read"]}`), 0o644)
	profile2 := filepath.Join(dir, "profile2.json")
	r.OK("policy", "generate", "-o", profile2, poisoned, trace)
	pin = pinned(t, profile2)
	expectEscapeRefused(t, "poisoned trace", r.sandbox(b, "sc-floor-poison", pin, "probe", "netescape"))
	for _, c := range []string{"mount", "bpf", "ptrace", "unshare"} {
		expectLine(t, r.sandbox(b, "sc-floor-"+c, pin, "probe", c), "DENIED EPERM")
	}
}

// unlistedCalls are the checks of `probe unlisted`: syscalls neither the
// built-in allowlist nor the list of those a trace may add names, each a
// way to kernel surface an agent has no use for (execveat runs a memfd
// past Landlock; kcmp and pidfd_getfd reach into other processes;
// modify_ldt, vmsplice, fanotify, SysV shm, setxattr have their history of
// kernel bugs; sysfs and ioprio_set are obscure or reach beyond the caller).
var unlistedCalls = []string{"kcmp", "pidfd_getfd", "modify_ldt", "memfd_secret", "vmsplice",
	"execveat", "setxattr", "sysfs", "shmget", "fanotify_init", "ioprio_set"}

// expectUnlistedRefused wants every line of `probe unlisted` to be one of
// the answers in ok (never ALLOWED, nor a kernel errno: those mean the
// syscall ran).
func expectUnlistedRefused(t *testing.T, what string, res Result, ok ...string) {
	t.Helper()
	for _, c := range unlistedCalls {
		found := false
		for _, w := range ok {
			if strings.Contains(res.Stdout, c+": "+w+"\n") {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: %s ran: want one of %q; stdout %q stderr %q exit %d", what, c, ok, res.Stdout, res.Stderr, res.Code)
		}
	}
}

// pinned are the sandbox flags that run under the profile in file, pinned
// by its hash.
func pinned(t *testing.T, file string) []string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return []string{"--seccomp-profile", file, "--seccomp-profile-sha256", hex.EncodeToString(sum[:])}
}

// allowedBy returns the syscalls of names that some allow rule of the
// profile in file names.
func allowedBy(t *testing.T, file string, names []string) []string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var p specs.LinuxSeccomp
	if err := json.Unmarshal(data, &p); err != nil {
		t.Fatal(err)
	}
	if p.DefaultAction != specs.ActKillProcess {
		t.Errorf("%s: default action %s, want %s", file, p.DefaultAction, specs.ActKillProcess)
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var got []string
	for _, rule := range p.Syscalls {
		for _, n := range rule.Names {
			if want[n] && (rule.Action == specs.ActAllow || rule.Action == specs.ActLog || rule.Action == specs.ActNotify) {
				got = append(got, n)
			}
		}
	}
	return got
}

// TestPolicyTraceUnlisted: the red team's second trace finding. Syscalls
// the built-in allowlist never mentions (kcmp, pidfd_getfd, modify_ldt,
// memfd_secret, vmsplice, execveat, setxattr, ...) used to run for real
// during `policy trace` and be added by `policy generate` as plain allows.
// Now the trace refuses them with EPERM (listed under refused), and no
// generated profile allows them, from a real trace or from a hand-written
// one; the workload runs under its profile in agent and production mode.
// Ids are prefixed gn-.
func TestPolicyTraceUnlisted(t *testing.T) {
	r := newRunner(t)
	b := probeBundle(t)
	dir := t.TempDir()
	trace := filepath.Join(dir, "trace.json")
	res := r.Run(nil, "policy", "trace", "--bundle", b.Dir, "-o", trace, "--", "probe", "unlisted")
	if res.Code != 0 {
		t.Fatalf("policy trace: exit %d: %s", res.Code, res.Stderr)
	}
	expectUnlistedRefused(t, "during the trace", res, "DENIED EPERM")
	data, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	var tr struct {
		Command  []string `json:"command"`
		Status   int      `json:"status"`
		Syscalls []string `json:"syscalls"`
		Refused  []string `json:"refused"`
	}
	if err := json.Unmarshal(data, &tr); err != nil {
		t.Fatal(err)
	}
	used, refused := map[string]bool{}, map[string]bool{}
	for _, s := range tr.Syscalls {
		used[s] = true
	}
	for _, s := range tr.Refused {
		refused[s] = true
	}
	for _, c := range unlistedCalls {
		if used[c] || !refused[c] {
			t.Errorf("trace: %s: want it under refused, not syscalls: syscalls %v refused %v", c, tr.Syscalls, tr.Refused)
		}
	}

	profile := filepath.Join(dir, "profile.json")
	r.OK("policy", "generate", "-o", profile, trace)
	if got := allowedBy(t, profile, unlistedCalls); len(got) > 0 {
		t.Errorf("profile generated from the trace allows %v", got)
	}
	pin := pinned(t, profile)
	// The trace saw them refused with EPERM: the profile keeps that answer.
	expectUnlistedRefused(t, "agent mode, generated profile", r.sandbox(b, "gn-unl-agent", pin, "probe", "unlisted"), "DENIED EPERM")
	expectUnlistedRefused(t, "production mode, generated profile",
		r.sandbox(b, "gn-unl-prod", append([]string{"--mode", "production", "--memory", "512M"}, pin...), "probe", "unlisted"), "DENIED EPERM")

	// A hand-written trace listing them as used (a trace is only a list of
	// names) gets them left out, with a warning each, and the default kill.
	tr.Syscalls = append(tr.Syscalls, unlistedCalls...)
	tr.Refused = nil
	data, _ = json.Marshal(tr)
	poisoned := filepath.Join(dir, "poisoned.json")
	os.WriteFile(poisoned, data, 0o644)
	profile2 := filepath.Join(dir, "profile2.json")
	res = r.Run(nil, "policy", "generate", "-o", profile2, poisoned)
	if res.Code != 0 {
		t.Fatalf("policy generate: exit %d: %s", res.Code, res.Stderr)
	}
	for _, c := range unlistedCalls {
		w := "policy generate: " + c + " is not added: not among the syscalls a profile may gain from a trace; edit the profile by hand to allow it\n"
		if !strings.Contains(res.Stderr, w) {
			t.Errorf("generate from a hand-written trace: no warning for %s: stderr %q", c, res.Stderr)
		}
	}
	if got := allowedBy(t, profile2, unlistedCalls); len(got) > 0 {
		t.Errorf("profile generated from a hand-written trace allows %v", got)
	}
	pin = pinned(t, profile2)
	expectUnlistedRefused(t, "hand-written trace", r.sandbox(b, "gn-unl-poison", pin, "probe", "unlisted"), "KILLED")
	res = r.sandbox(b, "gn-unl-hello", pin, "probe", "hello")
	if res.Code != 0 || !strings.Contains(res.Stdout, "hello") {
		t.Errorf("probe hello under the profile of the hand-written trace: exit %d, stdout %q, stderr %q", res.Code, res.Stdout, res.Stderr)
	}
}

// TestPolicyTraceOrdinary: ordinary workloads (a busybox shell script;
// CPython with threads, subprocess, multiprocessing, sockets and sqlite)
// still trace, generate, and run under their generated profile, pinned, now
// that the trace refuses syscalls outside the allowlist and the extension
// list. Ids are prefixed gn-.
func TestPolicyTraceOrdinary(t *testing.T) {
	r := newRunner(t)
	run := func(t *testing.T, b *Bundle, id, want string, cmd ...string) {
		dir := t.TempDir()
		trace := filepath.Join(dir, "trace.json")
		res := r.Run(nil, append([]string{"policy", "trace", "--bundle", b.Dir, "-o", trace, "--"}, cmd...)...)
		if res.Code != 0 || !strings.Contains(res.Stdout, want) {
			t.Fatalf("policy trace: exit %d, stdout %q, stderr %q", res.Code, res.Stdout, res.Stderr)
		}
		t.Logf("trace: %s", strings.TrimSpace(res.Stderr))
		profile := filepath.Join(dir, "profile.json")
		res = r.Run(nil, "policy", "generate", "-o", profile, trace)
		if res.Code != 0 || strings.Contains(res.Stderr, "is not added") {
			t.Fatalf("policy generate: exit %d, stderr %q", res.Code, res.Stderr)
		}
		res = r.sandbox(b, id, pinned(t, profile), cmd...)
		if res.Code != 0 || !strings.Contains(res.Stdout, want) {
			t.Errorf("under its generated profile: exit %d, stdout %q, stderr %q", res.Code, res.Stdout, res.Stderr)
		}
	}
	t.Run("busybox", func(t *testing.T) {
		b := newBundle(t, "true")
		script := `set -e; cd /tmp; mkdir d; for i in 1 2 3; do echo $i > d/f$i; done; cat d/* | sort -r | tr '\n' ' ' > out; ` +
			`cp -r d e; mv e/f1 e/g; ls e | wc -l; sleep 0.1 & wait; (echo sub) | sed s/sub/SUB/; find d -type f | xargs cat > /dev/null; ` +
			`echo "BB OK $(cat out)"`
		run(t, b, "gn-ord-bb", "BB OK 3 2 1", "sh", "-c", script)
	})
	t.Run("python", func(t *testing.T) {
		b := hostUsrBundle(t, "/usr/bin/python3")
		script := pythonWorkload
		run(t, b, "gn-ord-py", "PY OK [0, 1, 4, 9, 16] sub b'x' 2d711642", "/usr/bin/python3", "-c", script)
	})
}

// TestPolicyTraceRelativePaths: `policy trace -o REL` writes REL in the
// caller's directory, not in the bundle (where it went while the runtime
// moved into the bundle); a relative --bundle and --workspace resolve
// there too.
func TestPolicyTraceRelativePaths(t *testing.T) {
	r := newRunner(t)
	b := probeBundle(t)
	cwd := t.TempDir()
	os.Chmod(filepath.Dir(cwd), 0o755)
	os.Chmod(cwd, 0o755)
	if err := os.Symlink(b.Dir, filepath.Join(cwd, "bundle")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(cwd, "ws"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(cwd, "ws", "in.txt"), []byte("from-the-workspace"), 0o644)
	cmd := r.Cmd("policy", "trace", "--bundle", "bundle", "-o", "t.json", "--workspace", "ws:bind-ro", "--", "cat", "/workspace/in.txt")
	cmd.Dir = cwd
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("policy trace with relative paths: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "from-the-workspace") {
		t.Errorf("relative --workspace not mounted: %s", out)
	}
	if _, err := os.Stat(filepath.Join(b.Dir, "t.json")); err == nil {
		t.Errorf("-o t.json was written into the bundle directory")
	}
	if _, err := os.Stat(filepath.Join(cwd, "t.json")); err != nil {
		t.Errorf("-o t.json is not in the current directory: %v", err)
	}
	// generate -o REL as well.
	cmd = r.Cmd("policy", "generate", "-o", "p.json", "t.json")
	cmd.Dir = cwd
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("policy generate: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(cwd, "p.json")); err != nil {
		t.Errorf("generate -o p.json: %v", err)
	}
}
