package integration

// The gVisor engine (--engine gvisor): the same bundle and commands, run by
// Debian's runsc. Ids are prefixed gv-.

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// gvisorRunner is a Runner whose create/run use gVisor through the
// global --engine flag (the per-command flag and $NUCLEUS_ENGINE are
// covered by TestGvisorEngineSelection).
func gvisorRunner(t *testing.T) *Runner {
	t.Helper()
	r := newRunner(t)
	requireCmd(t, "runsc")
	r.Global = []string{"--engine", "gvisor"}
	return r
}

// gvisorBundle is newBundle with the network namespace kept (runsc
// --network=none) and everything else as `nucleus spec` writes it.
func gvisorBundle(t *testing.T, args ...string) *Bundle {
	t.Helper()
	return newBundle(t, args...)
}

// createDetached runs `nucleus create` with the container's stdio on
// files, not pipes: the sandbox keeps them open after create returns.
func (r *Runner) createDetached(t *testing.T, id, bundle string, extra ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := r.Cmd(append(append([]string{"create", "--bundle", bundle}, extra...), id)...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Run(); err != nil {
		data, _ := os.ReadFile(out)
		t.Fatalf("create %s: %v; output: %s", id, err, data)
	}
	return out
}

// assertNoGvisorLeftovers is assertNoLeftovers plus runsc's own traces:
// its state and lock files and any runsc, sandbox or gofer process of id.
func assertNoGvisorLeftovers(t *testing.T, r *Runner, id, bundle string) {
	t.Helper()
	assertNoLeftovers(t, r.Root, id, bundle)
	if m, _ := filepath.Glob(filepath.Join(r.Root, "@gvisor", id+"_sandbox:*")); len(m) > 0 {
		t.Errorf("leftover runsc state: %v", m)
	}
	if p := runscProcesses(r, id); len(p) > 0 {
		t.Errorf("leftover runsc processes for %s: %v", id, p)
	}
}

// runscProcesses lists runsc, runsc-sandbox and runsc-gofer processes that
// belong to id (their last argument is the id or they name its bundle).
func runscProcesses(r *Runner, id string) []string {
	var out []string
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range cmdlines {
		data, err := os.ReadFile(f)
		if err != nil || len(data) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
		if !strings.Contains(filepath.Base(args[0]), "runsc") {
			continue
		}
		line := strings.Join(args, " ")
		if args[len(args)-1] == id || strings.Contains(line, filepath.Join(r.Root, id)) {
			out = append(out, filepath.Dir(f)+": "+line)
		}
	}
	return out
}

func TestGvisorRunExitCodeAndOutput(t *testing.T) {
	r := gvisorRunner(t)
	b := gvisorBundle(t, "sh", "-c", "echo hello from $(uname -r); echo err >&2; exit 7")
	res := r.Run(nil, "run", "--bundle", b.Dir, "gv-run")
	if res.Code != 7 {
		t.Fatalf("exit code %d, want 7; stderr: %s", res.Code, res.Stderr)
	}
	// gVisor's kernel reports its own release, never the host's.
	if !strings.Contains(res.Stdout, "hello from 4.4.0") {
		t.Errorf("stdout %q: want gVisor's uname 4.4.0", res.Stdout)
	}
	if !strings.Contains(res.Stderr, "err") {
		t.Errorf("stderr %q: want the container's stderr", res.Stderr)
	}
	assertNoGvisorLeftovers(t, r, "gv-run", b.Dir)
	// stdin passes through too.
	b2 := gvisorBundle(t, "sh", "-c", "read x; echo got:$x")
	res = r.Run([]byte("ping\n"), "run", "--bundle", b2.Dir, "gv-run-in")
	if res.Code != 0 || !strings.Contains(res.Stdout, "got:ping") {
		t.Errorf("stdin: exit %d stdout %q stderr %q", res.Code, res.Stdout, res.Stderr)
	}
	assertNoGvisorLeftovers(t, r, "gv-run-in", b2.Dir)
}

func TestGvisorLifecycle(t *testing.T) {
	r := gvisorRunner(t)
	b := gvisorBundle(t, "sh", "-c", "trap 'echo got TERM; exit 42' TERM; echo started; while true; do sleep 0.1; done")
	id := "gv-life"
	out := r.createDetached(t, id, b.Dir)
	t.Cleanup(func() { r.Run(nil, "delete", "--force", id) })
	st := r.State(id)
	if st["status"] != "created" {
		t.Fatalf("after create: status %v", st["status"])
	}
	ann, _ := st["annotations"].(map[string]any)
	if ann["run.nucleus.engine"] != "gvisor" {
		t.Errorf("state annotations %v: want run.nucleus.engine=gvisor", ann)
	}
	if st["ociVersion"] != b.Spec.Version {
		t.Errorf("state ociVersion %v, want the config's %s (as the native engine reports it)", st["ociVersion"], b.Spec.Version)
	}
	if st["bundle"] != b.Dir {
		t.Errorf("state bundle %v, want the user's bundle %s", st["bundle"], b.Dir)
	}
	r.OK("start", id)
	r.WaitStatus(id, "running")
	if !strings.Contains(r.OK("list").Stdout, id) {
		t.Errorf("list does not show %s", id)
	}
	// exec: output, exit code, and the container's env (from its config).
	res := r.Run(nil, "exec", id, "sh", "-c", "echo in-exec $PATH; exit 3")
	if res.Code != 3 || !strings.Contains(res.Stdout, "in-exec /usr/local/sbin") {
		t.Errorf("exec: exit %d stdout %q stderr %q; want 3 and the config's PATH", res.Code, res.Stdout, res.Stderr)
	}
	res = r.Run(nil, "exec", "--user", "65534:65534", "--cwd", "/tmp", "--env", "FOO=bar", id, "sh", "-c", "echo $(id -u) $(pwd) $FOO")
	if res.Code != 0 || strings.TrimSpace(res.Stdout) != "65534 /tmp bar" {
		t.Errorf("exec overrides: exit %d stdout %q stderr %q", res.Code, res.Stdout, res.Stderr)
	}
	ps := r.OK("ps", id).Stdout
	if !strings.Contains(ps, "sleep") && !strings.Contains(ps, "sh") {
		t.Errorf("ps: %q", ps)
	}
	var pids []int
	if err := json.Unmarshal([]byte(r.OK("ps", "--format", "json", id).Stdout), &pids); err != nil || len(pids) == 0 {
		t.Errorf("ps --format json: %v %v", pids, err)
	}
	r.OK("pause", id)
	r.WaitStatus(id, "paused")
	r.OK("resume", id)
	r.WaitStatus(id, "running")
	// delete refuses a running container without --force.
	r.Fail([]string{"running"}, "delete", id)
	r.OK("kill", id, "TERM")
	r.WaitStatus(id, "stopped")
	if data, _ := os.ReadFile(out); !strings.Contains(string(data), "started") || !strings.Contains(string(data), "got TERM") {
		t.Errorf("container output %q: want started and got TERM", data)
	}
	r.OK("delete", id)
	assertNoGvisorLeftovers(t, r, id, b.Dir)
	r.Fail([]string{"does not exist"}, "state", id)
}

func TestGvisorKillAndForceDelete(t *testing.T) {
	r := gvisorRunner(t)
	b := gvisorBundle(t, "sleep", "300")
	r.createDetached(t, "gv-kill", b.Dir)
	r.OK("start", "gv-kill")
	r.OK("kill", "gv-kill", "KILL")
	r.WaitStatus("gv-kill", "stopped")
	r.OK("delete", "gv-kill")
	assertNoGvisorLeftovers(t, r, "gv-kill", b.Dir)

	// run -d, then delete --force a running container.
	f, _ := os.Create(filepath.Join(t.TempDir(), "out"))
	defer f.Close()
	cmd := r.Cmd("run", "-d", "--bundle", b.Dir, "gv-force")
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Run(); err != nil {
		t.Fatalf("run -d: %v", err)
	}
	r.WaitStatus("gv-force", "running")
	r.OK("delete", "--force", "gv-force")
	assertNoGvisorLeftovers(t, r, "gv-force", b.Dir)
	// A forced delete of a gone id succeeds, as for the native engine.
	r.OK("delete", "--force", "gv-force")
}

func TestGvisorRunForwardsSignals(t *testing.T) {
	r := gvisorRunner(t)
	b := gvisorBundle(t, "sh", "-c", "trap 'echo got TERM; exit 42' TERM; echo ready; while true; do sleep 0.1; done")
	cmd := r.Cmd("run", "--bundle", b.Dir, "gv-sig")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if st := r.Run(nil, "state", "gv-sig"); st.Code == 0 && strings.Contains(st.Stdout, `"running"`) {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("gv-sig never ran; stderr: %s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // let the trap be set
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 42 {
		t.Fatalf("exit %d (%v), want 42 from the trap; stdout %q stderr %q", code, err, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "got TERM") {
		t.Errorf("stdout %q: want got TERM", stdout.String())
	}
	assertNoGvisorLeftovers(t, r, "gv-sig", b.Dir)
}

// seccompDenyMkdir allows everything but mkdir and mkdirat, which fail
// with EPERM.
func seccompDenyMkdir() *specs.LinuxSeccomp {
	eperm := uint(1)
	return &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64},
		Syscalls: []specs.LinuxSyscall{{
			Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: &eperm,
		}},
	}
}

func TestGvisorSeccompEnforced(t *testing.T) {
	r := gvisorRunner(t)
	b := gvisorBundle(t, "sh", "-c", "mkdir /tmp/denied && echo MADE; echo rc=$?")
	b.Spec.Root.Readonly = false
	// Control: without the profile mkdir works inside gVisor.
	b.Save(t)
	res := r.Run(nil, "run", "--bundle", b.Dir, "gv-sc0")
	if !strings.Contains(res.Stdout, "MADE") {
		t.Fatalf("control run: mkdir failed without seccomp: %q %q", res.Stdout, res.Stderr)
	}
	os.RemoveAll(filepath.Join(b.Rootfs, "tmp", "denied"))
	b.Spec.Linux.Seccomp = seccompDenyMkdir()
	b.Save(t)
	res = r.Run(nil, "run", "--bundle", b.Dir, "gv-sc")
	if strings.Contains(res.Stdout, "MADE") || !strings.Contains(res.Stderr, "Operation not permitted") {
		t.Errorf("mkdir under a profile denying it: stdout %q stderr %q; want EPERM inside gVisor", res.Stdout, res.Stderr)
	}
	if _, err := os.Stat(filepath.Join(b.Rootfs, "tmp", "denied")); err == nil {
		t.Errorf("the denied directory exists in the rootfs")
	}
	assertNoGvisorLeftovers(t, r, "gv-sc", b.Dir)
}

func TestGvisorExportRunsWithPlainRunsc(t *testing.T) {
	r := newRunner(t)
	runsc := requireCmd(t, "runsc")
	b := gvisorBundle(t, "sh", "-c", "mkdir /tmp/x || exit 5; echo exported; exit 4")
	b.Spec.Linux.Seccomp = seccompDenyMkdir()
	b.Save(t)
	dir := filepath.Join(t.TempDir(), "export")
	out := r.OK("export", "--engine", "gvisor", "-o", dir, b.Dir).Stdout
	if !strings.Contains(out, "runsc") || !strings.Contains(out, "--oci-seccomp") {
		t.Errorf("export printed %q: want the runsc command with --oci-seccomp", out)
	}
	data, err := os.ReadFile(filepath.Join(dir, "runsc.flags"))
	if err != nil {
		t.Fatal(err)
	}
	flags := strings.Fields(string(data))
	// The same config a gvisor create hands to runsc.
	r.Global = []string{"--engine", "gvisor"}
	r.createDetached(t, "gv-exp-ref", b.Dir)
	t.Cleanup(func() { r.Run(nil, "delete", "--force", "gv-exp-ref") })
	want, _ := os.ReadFile(filepath.Join(r.Root, "gv-exp-ref", "config.json"))
	got, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	if !bytes.Equal(want, got) {
		t.Errorf("exported config.json differs from the one runsc got:\n%s\nvs\n%s", got, want)
	}
	r.OK("delete", "--force", "gv-exp-ref")

	state := t.TempDir()
	args := append(append([]string{"--root", state}, flags...), "run", "--bundle", dir, "gv-exp")
	cmd := exec.Command(runsc, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Run()
	// mkdir is denied by the exported profile, so the process exits 5.
	if code := cmd.ProcessState.ExitCode(); code != 5 {
		t.Errorf("runsc run on the export: exit %d, want 5 (seccomp denies mkdir); stdout %q stderr %q", code, stdout.String(), stderr.String())
	}
	// Without the profile the same export runs to its own exit code.
	b.Spec.Linux.Seccomp = nil
	b.Spec.Process.Args = []string{"sh", "-c", "echo exported; exit 4"}
	b.Save(t)
	dir2 := filepath.Join(t.TempDir(), "export2")
	r.OK("export", "-o", dir2, "--copy", b.Dir)
	if fi, err := os.Lstat(filepath.Join(dir2, "rootfs")); err != nil || !fi.IsDir() {
		t.Fatalf("export --copy: rootfs is not a directory: %v", err)
	}
	data, _ = os.ReadFile(filepath.Join(dir2, "runsc.flags"))
	args = append(append([]string{"--root", state}, strings.Fields(string(data))...), "run", "--bundle", dir2, "gv-exp2")
	cmd = exec.Command(runsc, args...)
	stdout.Reset()
	stderr.Reset()
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Run()
	if code := cmd.ProcessState.ExitCode(); code != 4 || !strings.Contains(stdout.String(), "exported") {
		t.Errorf("runsc run on the copied export: exit %d stdout %q stderr %q", code, stdout.String(), stderr.String())
	}
}

func TestGvisorMissingRunsc(t *testing.T) {
	r := newRunner(t)
	r.Global = []string{"--engine", "gvisor"}
	b := gvisorBundle(t, "true")
	// $NUCLEUS_RUNSC pointing nowhere.
	cmd := r.Cmd("run", "--bundle", b.Dir, "gv-missing")
	cmd.Env = append(os.Environ(), "NUCLEUS_RUNSC=/nonexistent/runsc")
	out, err := cmd.CombinedOutput()
	msg := strings.TrimSpace(string(out))
	if err == nil || !strings.Contains(msg, "runsc not found") || !strings.Contains(msg, "/nonexistent/runsc") || strings.Count(msg, "\n") > 0 {
		t.Errorf("NUCLEUS_RUNSC=/nonexistent: err %v, output %q; want one line naming runsc", err, msg)
	}
	// No runsc on PATH.
	cmd = r.Cmd("run", "--bundle", b.Dir, "gv-missing")
	cmd.Env = append(os.Environ(), "PATH=/nonexistent")
	out, err = cmd.CombinedOutput()
	if msg := strings.TrimSpace(string(out)); err == nil || !strings.Contains(msg, "runsc not found on PATH") {
		t.Errorf("PATH without runsc: err %v, output %q", err, msg)
	}
	// A runsc too old for --oci-seccomp, with a config that needs it.
	fake := filepath.Join(t.TempDir(), "runsc")
	os.WriteFile(fake, []byte("#!/bin/sh\ncase \"$1\" in\n--version) echo 'runsc version 0.0~20200101.0';;\nflags) echo '  -network value' >&2; echo '  -root string' >&2;;\n*) touch "+fake+".ran; exit 1;;\nesac\n"), 0o755)
	b.Spec.Linux.Seccomp = seccompDenyMkdir()
	b.Save(t)
	cmd = r.Cmd("run", "--bundle", b.Dir, "gv-old")
	cmd.Env = append(os.Environ(), "NUCLEUS_RUNSC="+fake)
	out, err = cmd.CombinedOutput()
	if msg := strings.TrimSpace(string(out)); err == nil || !strings.Contains(msg, "too old") || !strings.Contains(msg, "--oci-seccomp") {
		t.Errorf("old runsc: err %v, output %q; want a too-old error naming --oci-seccomp", err, msg)
	}
	if _, err := os.Stat(fake + ".ran"); err == nil {
		t.Errorf("the too-old runsc was asked to run the container")
	}
	for _, id := range []string{"gv-missing", "gv-old"} {
		assertNoGvisorLeftovers(t, r, id, b.Dir)
	}
	if m, _ := filepath.Glob(filepath.Join(r.Root, "@gvisor", "*_sandbox:*")); len(m) > 0 {
		t.Errorf("runsc state left: %v", m)
	}
}

func TestGvisorEngineSelection(t *testing.T) {
	r := newRunner(t)
	requireCmd(t, "runsc")
	b := gvisorBundle(t, "sh", "-c", "uname -r")
	// Per-command flag.
	if out := r.OK("run", "--engine", "gvisor", "--bundle", b.Dir, "gv-sel1").Stdout; !strings.Contains(out, "4.4.0") {
		t.Errorf("run --engine gvisor: uname %q", out)
	}
	// $NUCLEUS_ENGINE.
	cmd := r.Cmd("run", "--bundle", b.Dir, "gv-sel2")
	cmd.Env = append(os.Environ(), "NUCLEUS_ENGINE=gvisor")
	if out, err := cmd.Output(); err != nil || !strings.Contains(string(out), "4.4.0") {
		t.Errorf("NUCLEUS_ENGINE=gvisor: %v %q", err, out)
	}
	// The command's flag wins over the environment; native is the default.
	cmd = r.Cmd("run", "--engine", "native", "--bundle", b.Dir, "gv-sel3")
	cmd.Env = append(os.Environ(), "NUCLEUS_ENGINE=gvisor")
	if out, err := cmd.Output(); err != nil || strings.Contains(string(out), "4.4.0") {
		t.Errorf("--engine native under NUCLEUS_ENGINE=gvisor: %v %q", err, out)
	}
	r.Fail([]string{"--engine", "native or gvisor"}, "run", "--engine", "kvm", "--bundle", b.Dir, "gv-sel4")
	// One id space for both engines.
	r.Global = []string{"--engine", "gvisor"}
	r.createDetached(t, "gv-sel5", b.Dir)
	r.Global = nil
	f, _ := os.Create(filepath.Join(t.TempDir(), "o"))
	defer f.Close()
	cmd = r.Cmd("create", "--bundle", b.Dir, "gv-sel5")
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Run(); err == nil {
		t.Errorf("a native create reused the id of a gvisor container")
	}
	r.OK("delete", "--force", "gv-sel5")
	for _, id := range []string{"gv-sel1", "gv-sel2", "gv-sel3", "gv-sel5"} {
		assertNoGvisorLeftovers(t, r, id, b.Dir)
	}
}

func TestGvisorStdoutFileNotClobbered(t *testing.T) {
	r := gvisorRunner(t)
	b := gvisorBundle(t, "echo", "from-gvisor")
	path := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(path, []byte("line-before\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A regular file without O_APPEND, positioned at its end (as a shell's
	// `{ echo a; nucleus run …; } > file` leaves it).
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Seek(0, 2)
	cmd := r.Cmd("run", "--bundle", b.Dir, "gv-out")
	cmd.Stdout, cmd.Stderr = f, f
	err = cmd.Run()
	f.Close()
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if data, _ := os.ReadFile(path); string(data) != "line-before\nfrom-gvisor\n" {
		t.Errorf("output file %q: want the earlier line kept and the container's appended", data)
	}
}

// TestGvisorPolicyMode: an isolation mode under gVisor gets the plan made
// for gVisor (Landlock and the user namespace recorded as substituted by
// gVisor's kernel, the same seccomp allowlist with gVisor's KILL as the
// default action), nothing left behind.
func TestGvisorPolicyMode(t *testing.T) {
	r := gvisorRunner(t)
	requireCmd(t, "runsc")
	b := gvisorBundle(t, "sh", "-c", "echo in-agent; exit 6")
	audit := filepath.Join(t.TempDir(), "audit.jsonl")
	res := r.Run(nil, "run", "--mode", "agent", "--audit-log", audit, "--bundle", b.Dir, "gv-agent")
	if res.Code != 6 || !strings.Contains(res.Stdout, "in-agent") {
		t.Fatalf("agent mode under gVisor: exit %d stdout %q stderr %q", res.Code, res.Stdout, res.Stderr)
	}
	data, _ := os.ReadFile(audit)
	if !strings.Contains(string(data), "gVisor") || !strings.Contains(string(data), `"seccomp_applied"`) {
		t.Errorf("audit log %s: want seccomp_applied and the gVisor substitutions", data)
	}
	assertNoGvisorLeftovers(t, r, "gv-agent", b.Dir)

	// A pinned profile this runsc can enforce goes through the policy path
	// and is enforced inside gVisor.
	prof := filepath.Join(t.TempDir(), "profile.json")
	data, _ = json.Marshal(seccompDenyMkdir())
	os.WriteFile(prof, data, 0o644)
	b2 := gvisorBundle(t, "sh", "-c", "mkdir /tmp/x && echo MADE")
	b2.Spec.Root.Readonly = false
	b2.Save(t)
	res = r.Run(nil, "run", "--seccomp-profile", prof, "--bundle", b2.Dir, "gv-pinned")
	if strings.Contains(res.Stdout, "MADE") || !strings.Contains(res.Stderr, "Operation not permitted") {
		t.Errorf("pinned profile under gVisor: stdout %q stderr %q; want mkdir denied", res.Stdout, res.Stderr)
	}
	assertNoGvisorLeftovers(t, r, "gv-pinned", b2.Dir)
}

// TestGvisorNixBundle: a bundle from `nucleus bundle` (read-only binds of
// its closure's store paths) runs under gVisor as under the native engine.
func TestGvisorNixBundle(t *testing.T) {
	r, cache := nixEnv(t)
	requireCmd(t, "runsc")
	flake := nixFlakeCopy(t)
	// A plain bundle: this runsc cannot enforce the agent profile's
	// kill-process default, which the engine refuses rather than weaken
	// (TestGvisorPolicyMode covers modes under gVisor).
	dir, _ := nixBundle(t, r, cache, flake+"#agent-example", "--mode", "", "--", "sh", "-c", nixProbe)
	res := r.Run(nil, "run", "--engine", "gvisor", "--verify-attestation", "--bundle", dir, "gv-nix")
	if res.Code != 0 {
		t.Fatalf("nix bundle under gVisor: exit %d\nstdout: %s\nstderr: %s", res.Code, res.Stdout, res.Stderr)
	}
	if !strings.HasPrefix(res.Stdout, "agent-example:") {
		t.Errorf("entrypoint did not greet: %q", res.Stdout)
	}
	for _, w := range []string{"store-ro", "root-ro", "tmp-rw"} {
		if !strings.Contains(res.Stdout, w+"\n") {
			t.Errorf("output %q lacks %q", res.Stdout, w)
		}
	}
	assertNoGvisorLeftovers(t, r, "gv-nix", dir)
}

// TestGvisorEventsStats: `events --stats` of a gVisor container is runsc's
// stats in runc's event shape; `update` is refused clearly; delete leaves
// no runsc root behind.
func TestGvisorEventsStats(t *testing.T) {
	r := gvisorRunner(t)
	b := gvisorBundle(t, "sleep", "30")
	r.coreDetached("run", "--engine", "gvisor", "-d", "--bundle", b.Dir, "gv-events")
	res := r.OK("events", "--stats", "gv-events")
	var e struct {
		Type string `json:"type"`
		ID   string `json:"id"`
		Data struct {
			Pids struct {
				Current uint64 `json:"current"`
			} `json:"pids"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &e); err != nil || e.Type != "stats" || e.ID != "gv-events" || e.Data.Pids.Current < 1 {
		t.Errorf("events --stats: %v %+v from %q", err, e, res.Stdout)
	}
	r.Fail([]string{"gvisor engine"}, "update", "--memory", "100M", "gv-events")
	r.OK("delete", "--force", "gv-events")
	assertNoGvisorLeftovers(t, r, "gv-events", b.Dir)
	if _, err := os.Stat(filepath.Join(r.Root, "@gvisor")); err == nil {
		t.Errorf("runsc root left behind after the last gVisor container")
	}
}

// TestGvisorStdoutSharedWithCaller: `{ create; start; echo x; } > file`:
// the caller keeps writing through the descriptor it gave create, and its
// lines land after the container's, never over them.
func TestGvisorStdoutSharedWithCaller(t *testing.T) {
	r := gvisorRunner(t)
	b := gvisorBundle(t, "sh", "-c", "echo LINE; sleep 3; echo AFTER; echo AFTER")
	path := filepath.Join(t.TempDir(), "out.txt")
	// A shell's `> out.txt`: truncated, no O_APPEND, shared by every
	// command of the group.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, args := range [][]string{{"create", "--bundle", b.Dir, "cl-gvout"}, {"start", "cl-gvout"}} {
		cmd := r.Cmd(args...)
		cmd.Stdout, cmd.Stderr = f, f
		if err := cmd.Run(); err != nil {
			data, _ := os.ReadFile(path)
			t.Fatalf("%v: %v: %s", args, err, data)
		}
	}
	waitFor(t, "the container's first line", func() bool {
		data, _ := os.ReadFile(path)
		return strings.Contains(string(data), "LINE")
	})
	if _, err := f.WriteString("CALLER\n"); err != nil {
		t.Fatal(err)
	}
	waitForUpTo(t, 30*time.Second, "the container to stop", func() bool { return r.State("cl-gvout")["status"] == "stopped" })
	r.OK("delete", "cl-gvout")
	if data, _ := os.ReadFile(path); string(data) != "LINE\nCALLER\nAFTER\nAFTER\n" {
		t.Errorf("out.txt %q: want LINE, CALLER, AFTER, AFTER in order, nothing overwritten", data)
	}
	assertNoGvisorLeftovers(t, r, "cl-gvout", b.Dir)
}

// TestGvisorOldRunscNamesFix: a seccomp action the installed runsc cannot
// enforce is refused with the ways out.
func TestGvisorOldRunscNamesFix(t *testing.T) {
	r := gvisorRunner(t)
	out, _ := exec.Command("runsc", "--version").Output()
	m := regexp.MustCompile(`20[0-9]{6}`).FindString(string(out))
	need(t, m != "" && m <= "20221219", "needs a runsc of 20221219 or older (the one that cannot enforce SCMP_ACT_KILL_PROCESS); have "+strings.TrimSpace(string(out)))
	b := gvisorBundle(t, "true")
	b.Spec.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}}}
	b.Save(t)
	r.Fail([]string{"cannot enforce", "SCMP_ACT_KILL_PROCESS", "--mode agent", `bundle with --mode ""`, "newer runsc"}, "run", "--bundle", b.Dir, "cl-gvold")
	assertNoGvisorLeftovers(t, r, "cl-gvold", b.Dir)
}
