package integration

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// buildProbe compiles the static in-container probe (testdata/probe).
func buildProbe(t *testing.T) string {
	t.Helper()
	requireCmd(t, "go")
	out := filepath.Join(t.TempDir(), "probe")
	cmd := exec.Command("go", "build", "-o", out, "./testdata/probe")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build probe: %v\n%s", err, b)
	}
	return out
}

// probeBundle is a busybox bundle with the probe at /bin/probe and the
// mount points a sandbox needs.
func probeBundle(t *testing.T) *Bundle {
	t.Helper()
	b := newBundle(t, "true")
	data, err := os.ReadFile(buildProbe(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.Rootfs, "bin", "probe"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	return b
}

// sandbox runs `nucleus sandbox` with the given flags and command and
// returns its result; afterwards nothing of the id may remain.
func (r *Runner) sandbox(b *Bundle, id string, flags []string, cmd ...string) Result {
	r.t.Helper()
	args := append([]string{"sandbox", "--bundle", b.Dir, "--id", id}, flags...)
	args = append(append(args, "--"), cmd...)
	res := r.Run(nil, args...)
	assertNoLeftovers(r.t, r.Root, id, b.Dir)
	return res
}

func expectLine(t *testing.T, res Result, want string) {
	t.Helper()
	if !strings.Contains(res.Stdout, want) {
		t.Errorf("want %q in output, got stdout %q stderr %q (exit %d)", want, res.Stdout, res.Stderr, res.Code)
	}
}

func TestPolicyAgentProbes(t *testing.T) {
	r := newRunner(t)
	b := probeBundle(t)
	// A writable workspace must not be root's (see TestWorkspaceSetuidRoot).
	ws := userWorkspace(t)
	flags := []string{"--workspace", ws}
	cases := []struct{ check, want string }{
		{"mount", "DENIED EPERM"},
		{"ptrace", "DENIED EPERM"},
		{"keyctl", "DENIED EPERM"},
		{"bpf", "DENIED EPERM"},
		{"io_uring", "DENIED EPERM"},
		{"userfaultfd", "DENIED EPERM"},
		{"unshare", "DENIED EPERM"},
		{"perf", "DENIED EPERM"},
		// memfd_create only with MFD_NOEXEC_SEAL (see TestPolicyMemfdExec)
		{"memfd", "DENIED EPERM"},
		{"memfd 0x10", "DENIED EPERM"},
		{"memfd 0x8", "ALLOWED"},
	}
	for i, c := range cases {
		res := r.sandbox(b, fmt.Sprintf("pol-probe-%d", i), flags, append([]string{"probe"}, strings.Fields(c.check)...)...)
		if !strings.Contains(res.Stdout, c.want) {
			t.Errorf("probe %s: want %q, got %q (stderr %q, exit %d)", c.check, c.want, res.Stdout, res.Stderr, res.Code)
		}
	}
	res := r.sandbox(b, "pol-clone", flags, "probe", "clone-newuser")
	if res.Code != 128+31 {
		t.Errorf("clone(CLONE_NEWUSER): exit %d, want %d (killed by seccomp); stdout %q", res.Code, 128+31, res.Stdout)
	}
	res = r.sandbox(b, "pol-status", flags, "probe", "status")
	for _, want := range []string{"CapInh: 0000000000000000", "CapPrm: 0000000000000000", "CapEff: 0000000000000000",
		"CapBnd: 0000000000000000", "CapAmb: 0000000000000000", "NoNewPrivs: 1", "Seccomp: 2"} {
		expectLine(t, res, want)
	}
	expectLine(t, r.sandbox(b, "pol-wroot", flags, "probe", "write", "/x"), "DENIED EROFS")
	expectLine(t, r.sandbox(b, "pol-wbin", flags, "probe", "write", "/bin/x"), "DENIED EROFS")
	expectLine(t, r.sandbox(b, "pol-wtmp", flags, "probe", "write", "/tmp/x"), "ALLOWED")
	expectLine(t, r.sandbox(b, "pol-wws", flags, "probe", "write", "/workspace/x"), "ALLOWED")
	if _, err := os.Stat(filepath.Join(ws, "x")); err != nil {
		t.Errorf("file written to the bind-rw workspace is not on the host: %v", err)
	}
	expectLine(t, r.sandbox(b, "pol-xws", flags, "probe", "copy-exec", "/workspace/p"), "DENIED EACCES")
	expectLine(t, r.sandbox(b, "pol-xtmp", flags, "probe", "copy-exec", "/tmp/p"), "DENIED EACCES")
	// /dev is read-only but for its standard nodes, /dev/shm and /dev/pts
	// (Landlock), and noexec (the mount).
	expectLine(t, r.sandbox(b, "pol-xdev", flags, "probe", "copy-exec", "/dev/p"), "COPY FAILED")
	expectLine(t, r.sandbox(b, "pol-xshm", flags, "probe", "copy-exec", "/dev/shm/p"), "DENIED EACCES")
	if res := r.sandbox(b, "pol-tiocsti", flags, "probe", "tiocsti"); strings.Count(res.Stdout, "DENIED EPERM") != 2 {
		t.Errorf("TIOCSTI: want two EPERM refusals, got %q", res.Stdout)
	}
	expectLine(t, r.sandbox(b, "pol-keys", flags, "probe", "read", "/proc/keys"), "READ 0 bytes")
	expectLine(t, r.sandbox(b, "pol-kallsyms", flags, "probe", "read", "/proc/kallsyms"), "READ 0 bytes")
	expectLine(t, r.sandbox(b, "pol-work", flags, "probe", "work"), "WORK OK ping hello")
	expectLine(t, r.sandbox(b, "pol-sh", flags, "sh", "-c", "cd /tmp && mkdir d && echo x > d/f && mv d/f d/g && ln -s g d/h && chmod 600 d/g && ls d | tr '\\n' ' ' && rm -r d && echo shell-ok"), "g h shell-ok")
}

// TestPolicyLandlockIsWhatStopsScratchExec: on a mount that allows exec,
// Landlock alone keeps a written file from running; without Landlock it
// runs (so the denial is Landlock's). /dev itself is noexec in every mode
// (see TestPreexecDevNoexecAndReadOnly), so it can't show this any more.
func TestPolicyLandlockIsWhatStopsScratchExec(t *testing.T) {
	r := newRunner(t)
	b := probeBundle(t)
	scratchMount(b)
	b.Save(t)
	flags := landlockPolicy(t, `{"write":["/scratch"],"no_exec_root":["/scratch"]}`)
	expectLine(t, r.sandbox(b, "pol-ll-scratch", flags, "probe", "copy-exec", "/scratch/p"), "DENIED EACCES")
	args := append(append([]string{"sandbox", "--bundle", b.Dir, "--id", "pol-noll"}, flags...), "--", "probe", "copy-exec", "/scratch/p")
	cmd := r.Cmd(args...)
	cmd.Env = append(os.Environ(), "NUCLEUS_DISABLE=landlock")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("agent mode without Landlock should warn and run: %v", err)
	}
	if !strings.Contains(string(out), "ALLOWED") {
		t.Fatalf("without Landlock, exec from /scratch should work (so the denial above is Landlock's): %q", out)
	}
	assertNoLeftovers(t, r.Root, "pol-noll", b.Dir)
}

func TestPolicyWorkspaceExec(t *testing.T) {
	r := newRunner(t)
	b := probeBundle(t)
	ws := userWorkspace(t)
	res := r.sandbox(b, "pol-wsexec", []string{"--workspace", ws, "--workspace-exec"}, "probe", "copy-exec", "/workspace/p")
	expectLine(t, res, "ALLOWED")
	res = r.sandbox(b, "pol-wsro", []string{"--workspace", ws + ":bind-ro"}, "probe", "write", "/workspace/y")
	expectLine(t, res, "DENIED EROFS")
}

func TestPolicyCopyInOut(t *testing.T) {
	r := newRunner(t)
	b := probeBundle(t)
	ws := t.TempDir()
	os.WriteFile(filepath.Join(ws, "old.txt"), []byte("old"), 0o644)
	os.WriteFile(filepath.Join(ws, "keep.txt"), []byte("keep"), 0o644)
	res := r.sandbox(b, "pol-copy", []string{"--workspace", ws + ":copy-in-out"},
		"sh", "-c", "cat keep.txt && rm old.txt && echo new > new.txt && test ! -e /workspace/../"+filepath.Base(ws))
	if res.Code != 0 {
		t.Fatalf("copy-in-out sandbox: exit %d: %s", res.Code, res.Stderr)
	}
	if _, err := os.Stat(filepath.Join(ws, "old.txt")); err == nil {
		t.Errorf("old.txt deleted in the sandbox is still in the workspace")
	}
	if data, _ := os.ReadFile(filepath.Join(ws, "new.txt")); string(data) != "new\n" {
		t.Errorf("new.txt not copied back: %q", data)
	}
	if data, _ := os.ReadFile(filepath.Join(ws, "keep.txt")); string(data) != "keep" {
		t.Errorf("keep.txt changed: %q", data)
	}
	left, _ := filepath.Glob(filepath.Join(os.TempDir(), "nucleus-workspace-*"))
	more, _ := filepath.Glob(filepath.Join(r.Root, "@workspace-*"))
	if left = append(left, more...); len(left) > 0 {
		t.Errorf("workspace copies left behind: %v", left)
	}
}

func TestPolicyStrictAgent(t *testing.T) {
	r := newRunner(t)
	b := probeBundle(t)
	expectLine(t, r.sandbox(b, "pol-strict-memfd", []string{"--mode", "strict-agent"}, "probe", "memfd"), "DENIED EPERM")
	for _, missing := range []string{"landlock", "seccomp"} {
		id := "pol-strict-no" + missing
		cmd := r.Cmd("sandbox", "--mode", "strict-agent", "--bundle", b.Dir, "--id", id, "--", "true")
		cmd.Env = append(os.Environ(), "NUCLEUS_DISABLE="+missing)
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("strict-agent without %s ran: %s", missing, out)
		}
		if !strings.Contains(strings.ToLower(string(out)), missing) || strings.Count(strings.TrimSpace(string(out)), "\n") > 0 {
			t.Errorf("strict-agent without %s: want one line naming it, got %q", missing, out)
		}
		assertNoLeftovers(t, r.Root, id, b.Dir)
	}
	res := r.Run(nil, "sandbox", "--mode", "strict-agent", "--net", "host", "--bundle", b.Dir, "--id", "pol-strict-host", "--", "true")
	if res.Code == 0 || !strings.Contains(res.Stderr, "host") {
		t.Errorf("strict-agent --net host: exit %d, stderr %q", res.Code, res.Stderr)
	}
}

func TestPolicyProductionRequirements(t *testing.T) {
	r := newRunner(t)
	b := probeBundle(t)
	r.Fail([]string{"memory limit"}, "sandbox", "--mode", "production", "--bundle", b.Dir, "--id", "pol-prod1", "--", "true")
	prof := filepath.Join(t.TempDir(), "seccomp.json")
	os.WriteFile(prof, []byte(`{"defaultAction":"SCMP_ACT_ALLOW"}`), 0o644)
	sum := sha256.Sum256([]byte(`{"defaultAction":"SCMP_ACT_ALLOW"}`))
	r.Fail([]string{"workspace"}, "sandbox", "--mode", "production", "--memory", "256M", "--seccomp-profile", prof,
		"--seccomp-profile-sha256", hex.EncodeToString(sum[:]), "--workspace", t.TempDir(), "--workspace-exec",
		"--bundle", b.Dir, "--id", "pol-prod2", "--", "true")
	// Production refuses an allow-all profile even pinned; the built-in
	// allowlist, pinned, runs.
	r.Fail([]string{"defaultAction"}, "sandbox", "--mode", "production", "--memory", "256M", "--seccomp-profile", prof,
		"--seccomp-profile-sha256", hex.EncodeToString(sum[:]), "--bundle", b.Dir, "--id", "pol-prod4", "--", "true")
	assertNoLeftovers(t, r.Root, "pol-prod4", b.Dir)
	agentProf, agentSum := builtinProfile(t, r)
	res := r.sandbox(b, "pol-prod3", []string{"--mode", "production", "--memory", "256M", "--seccomp-profile", agentProf,
		"--seccomp-profile-sha256", agentSum}, "probe", "status")
	expectLine(t, res, "NoNewPrivs: 1")
	assertNoLeftovers(t, r.Root, "pol-prod1", b.Dir)
	assertNoLeftovers(t, r.Root, "pol-prod2", b.Dir)
}

func TestPolicyPinMismatch(t *testing.T) {
	r := newRunner(t)
	b := probeBundle(t)
	prof := filepath.Join(t.TempDir(), "profile.json")
	body := `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[]}`
	os.WriteFile(prof, []byte(body), 0o644)
	sum := sha256.Sum256([]byte(body))
	good := hex.EncodeToString(sum[:])
	bad := strings.Repeat("0", 64)
	res := r.Fail([]string{prof, good, bad, "mismatch"}, "run", "--mode", "agent", "--seccomp-profile", prof,
		"--seccomp-profile-sha256", bad, "--bundle", b.Dir, "pol-pin")
	_ = res
	assertNoLeftovers(t, r.Root, "pol-pin", b.Dir)
	r.Fail([]string{"64 hex"}, "run", "--seccomp-profile", prof, "--seccomp-profile-sha256", "abc", "--bundle", b.Dir, "pol-pin2")
	assertNoLeftovers(t, r.Root, "pol-pin2", b.Dir)
}

func TestPolicyAuditLog(t *testing.T) {
	r := newRunner(t)
	b := probeBundle(t)
	log := filepath.Join(t.TempDir(), "audit.jsonl")
	res := r.sandbox(b, "pol-audit", []string{"--audit-log", log, "--workspace", userWorkspace(t)}, "sh", "-c", "exit 3")
	if res.Code != 3 {
		t.Fatalf("exit %d, want 3: %s", res.Code, res.Stderr)
	}
	f, err := os.Open(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	events := map[string]map[string]any{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e map[string]any
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("audit line is not JSON: %q", sc.Text())
		}
		if e["id"] != "pol-audit" || e["time"] == nil || e["posture"] == nil {
			t.Errorf("audit event lacks id/time/posture: %v", e)
		}
		events[e["event"].(string)] = e
	}
	for _, name := range []string{"container_created", "userns_mapped", "capabilities_dropped", "seccomp_applied", "mount_audit", "container_started", "landlock_applied", "container_exited"} {
		if events[name] == nil {
			t.Errorf("no %s event in %v", name, events)
		}
	}
	if n, _ := events["seccomp_applied"]["syscalls"].(float64); n < 80 || n > 185 {
		t.Errorf("seccomp_applied syscalls = %v", events["seccomp_applied"]["syscalls"])
	}
	if abi, _ := events["landlock_applied"]["abi"].(float64); abi < 1 || events["landlock_applied"]["applied"] != true {
		t.Errorf("landlock_applied = %v", events["landlock_applied"])
	}
	if events["mount_audit"]["passed"] != true {
		t.Errorf("mount_audit = %v", events["mount_audit"])
	}
	if st, _ := events["container_exited"]["status"].(float64); st != 3 {
		t.Errorf("container_exited = %v", events["container_exited"])
	}
}

func TestPolicyTimeout(t *testing.T) {
	r := newRunner(t)
	b := probeBundle(t)
	res := r.sandbox(b, "pol-timeout", []string{"--timeout", "500ms"}, "sleep", "30")
	if res.Code != 124 {
		t.Fatalf("timeout: exit %d, want 124: %s", res.Code, res.Stderr)
	}
}

func TestPolicyPlainRunIsUntouched(t *testing.T) {
	r := newRunner(t)
	b := probeBundle(t)
	b.Spec.Process.Args = []string{"probe", "status"}
	b.Save(t)
	res := r.OK("run", "--bundle", b.Dir, "pol-plain")
	expectLine(t, res, "Seccomp: 0")
	if strings.Contains(res.Stdout, "CapEff: 0000000000000000") {
		t.Errorf("plain OCI run dropped the config's capabilities: %s", res.Stdout)
	}
	assertNoLeftovers(t, r.Root, "pol-plain", b.Dir)
}
