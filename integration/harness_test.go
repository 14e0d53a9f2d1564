// Package integration drives the built nucleus binary (and real clients)
// against real containers, as root. Run through `make test`, which builds
// bin/nucleus and passes its path in NUCLEUS_BIN.
package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/nucleus-run/nucleus/spec"
)

// inCI reports whether a missing prerequisite must fail the test: in CI
// everything is installed by .ci/run, so a gap is a bug; on a developer's
// laptop we skip with the reason.
func inCI() bool { return os.Getenv("CI") != "" }

func need(t testing.TB, ok bool, why string) {
	t.Helper()
	if ok {
		return
	}
	if inCI() {
		t.Fatalf("prerequisite missing in CI: %s", why)
	}
	t.Skipf("skipping: %s", why)
}

func requireRoot(t testing.TB) {
	t.Helper()
	need(t, os.Geteuid() == 0, "needs root (containers, cgroups, mounts)")
}

// requireCmd returns the path of a host command the test needs.
func requireCmd(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	need(t, err == nil, fmt.Sprintf("needs %s on PATH (apt-get install it)", name))
	return p
}

// nucleusBin is the binary under test.
func nucleusBin(t testing.TB) string {
	t.Helper()
	p := os.Getenv("NUCLEUS_BIN")
	if p == "" {
		p, _ = filepath.Abs("../bin/nucleus")
	}
	_, err := os.Stat(p)
	need(t, err == nil, "needs the built binary: run `make test` (or set NUCLEUS_BIN)")
	return p
}

// busyboxPath is a static busybox to copy into rootfs dirs.
func busyboxPath(t testing.TB) string {
	t.Helper()
	p := requireCmd(t, "busybox")
	out, err := exec.Command("file", "-L", p).CombinedOutput()
	if err == nil && !bytes.Contains(out, []byte("statically linked")) && !bytes.Contains(out, []byte("static-pie")) {
		need(t, false, "busybox at "+p+" is not static (apt-get install busybox-static)")
	}
	return p
}

// Bundle is an OCI bundle in a temp dir with a static busybox rootfs.
type Bundle struct {
	Dir    string
	Rootfs string
	Spec   *specs.Spec
}

// newBundle builds a bundle whose process runs args (default config from
// `nucleus spec`, terminal off). Edit b.Spec and call b.Save to change it.
func newBundle(t testing.TB, args ...string) *Bundle {
	t.Helper()
	bb := busyboxPath(t)
	dir := t.TempDir()
	// Sandboxes map container root to an unprivileged host uid, which must
	// be able to reach the rootfs: t.TempDir makes 0700 directories.
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(dir, 0o755)
	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "proc", "sys", "dev", "tmp", "etc"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin", "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	list, err := exec.Command(bb, "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	for _, applet := range strings.Fields(string(list)) {
		if applet == "busybox" {
			continue
		}
		// Relative links, so they resolve inside the container.
		if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(rootfs, "etc", "passwd"), []byte("root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(rootfs, "etc", "group"), []byte("root:x:0:\nnogroup:x:65534:\n"), 0o644)
	s := spec.Default(false)
	s.Process.Terminal = false
	if len(args) > 0 {
		s.Process.Args = args
	}
	b := &Bundle{Dir: dir, Rootfs: rootfs, Spec: s}
	b.Save(t)
	return b
}

// Save writes b.Spec to config.json.
func (b *Bundle) Save(t testing.TB) {
	t.Helper()
	data, err := json.MarshalIndent(b.Spec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.Dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Result is one finished nucleus invocation.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// Runner invokes the nucleus binary with a private --root.
type Runner struct {
	t    testing.TB
	Bin  string
	Root string
	// Global flags put before the command, after --root.
	Global []string
	// Env is added to nucleus's environment.
	Env []string
}

func newRunner(t testing.TB) *Runner {
	t.Helper()
	requireRoot(t)
	root := t.TempDir()
	// Like /run/nucleus under /run: a state root whose parents a user
	// namespace's unprivileged root can traverse (t.TempDir makes 0700
	// directories), so staged rootfs dirs below it are reachable.
	os.Chmod(filepath.Dir(root), 0o755)
	return &Runner{t: t, Bin: nucleusBin(t), Root: root}
}

// Cmd builds an exec.Cmd for `nucleus --root R args...`.
func (r *Runner) Cmd(args ...string) *exec.Cmd {
	full := append([]string{"--root", r.Root}, r.Global...)
	full = append(full, args...)
	cmd := exec.Command(r.Bin, full...)
	if len(r.Env) > 0 {
		cmd.Env = append(os.Environ(), r.Env...)
	}
	return cmd
}

// Run runs nucleus with stdin from in (may be nil) and a 60 s guard.
func (r *Runner) Run(in []byte, args ...string) Result {
	r.t.Helper()
	cmd := r.Cmd(args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A container that wrongly outlives the command (a create that should
	// have failed) keeps the output pipes open; don't wait for it forever.
	cmd.WaitDelay = 10 * time.Second
	if in != nil {
		cmd.Stdin = bytes.NewReader(in)
	}
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("start nucleus %v: %v", args, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		r.t.Fatalf("nucleus %v: still running after 60s; stderr: %s", args, stderr.String())
	}
	return Result{Stdout: stdout.String(), Stderr: stderr.String(), Code: cmd.ProcessState.ExitCode()}
}

// OK runs nucleus and fails the test unless it exits 0.
func (r *Runner) OK(args ...string) Result {
	r.t.Helper()
	res := r.Run(nil, args...)
	if res.Code != 0 {
		r.t.Fatalf("nucleus %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.Code, res.Stdout, res.Stderr)
	}
	return res
}

// Fail runs nucleus, expects a non-zero exit, and a one-line stderr that
// contains every one of wants.
func (r *Runner) Fail(wants []string, args ...string) Result {
	r.t.Helper()
	res := r.Run(nil, args...)
	if res.Code == 0 {
		r.t.Fatalf("nucleus %s: exit 0, want failure\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.Stdout, res.Stderr)
	}
	msg := strings.TrimRight(res.Stderr, "\n")
	if strings.Count(msg, "\n") != 0 {
		r.t.Errorf("nucleus %s: error is not one line:\n%s", strings.Join(args, " "), msg)
	}
	for _, w := range wants {
		if !strings.Contains(msg, w) {
			r.t.Errorf("nucleus %s: stderr %q does not contain %q", strings.Join(args, " "), msg, w)
		}
	}
	return res
}

// State returns the parsed `nucleus state id`.
func (r *Runner) State(id string) map[string]any {
	r.t.Helper()
	res := r.OK("state", id)
	var st map[string]any
	if err := json.Unmarshal([]byte(res.Stdout), &st); err != nil {
		r.t.Fatalf("state %s: not JSON: %v: %s", id, err, res.Stdout)
	}
	return st
}

// WaitStatus polls `state` until the container reaches want or 10 s pass.
func (r *Runner) WaitStatus(id, want string) {
	r.t.Helper()
	waitFor(r.t, "container "+id+" to be "+want, func() bool { return r.State(id)["status"] == want })
}

// assertNoLeftovers checks that nothing of container id remains: no state
// dir, no cgroup directory in any v1 hierarchy or in cgroup2, no mount under
// the bundle or mentioning the id, no process rooted in the bundle.
func assertNoLeftovers(t testing.TB, root, id, bundleDir string) {
	t.Helper()
	for _, dir := range []string{filepath.Join(root, id), filepath.Join(root, "@rootfs-"+id)} {
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("leftover state dir %s", dir)
		}
	}
	for _, cg := range cgroupDirsFor(id) {
		if _, err := os.Stat(cg); err == nil {
			t.Errorf("leftover cgroup %s", cg)
		}
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(mi), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := f[4]
		if (bundleDir != "" && strings.HasPrefix(mp, bundleDir)) || strings.Contains(mp, "/"+id+"/") || strings.Contains(mp, "/@rootfs-"+id+"/") {
			t.Errorf("leftover mount %s", mp)
		}
	}
	if bundleDir != "" {
		procs, _ := filepath.Glob("/proc/[0-9]*/root")
		for _, p := range procs {
			target, err := os.Readlink(p)
			if err == nil && strings.HasPrefix(target, bundleDir) {
				t.Errorf("leftover process %s rooted at %s", filepath.Dir(p), target)
			}
		}
	}
}

// cgroupDirsFor lists the places a container's cgroup would live.
func cgroupDirsFor(id string) []string {
	var dirs []string
	entries, _ := os.ReadDir("/sys/fs/cgroup")
	isV2 := false
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		isV2 = true
	}
	if isV2 {
		return []string{filepath.Join("/sys/fs/cgroup", id)}
	}
	for _, e := range entries {
		dirs = append(dirs, filepath.Join("/sys/fs/cgroup", e.Name(), id))
	}
	return dirs
}
