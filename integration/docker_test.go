package integration

// Docker Engine (Debian's docker.io 20.10) with nucleus registered as a
// runtime in daemon.json, and Debian's runc as the reference (issue 15).
// The test starts a private dockerd: its own data root (vfs storage), exec
// root, socket, pid file and trust key in a temp dir, no iptables, no
// bridge (containers run with --network none), its own containerd; it is
// stopped and everything it made removed at the end. The image comes from
// `docker import` of a busybox rootfs (no registry).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const dockerImage = "cl-busybox:latest"

type dockerEnv struct {
	t      *testing.T
	dir    string
	sock   string
	docker string
	daemon *exec.Cmd
	logBuf *syncBuffer
	// madeRunDocker: /run/docker (dockerd's plugin dir, a fixed path) was
	// not there before, so it goes at the end.
	madeRunDocker bool
	ids           []string
}

const dockerTimeout = 60 * time.Second

// dockerRuntimeRoot is where the shim keeps the runtimes' state (their
// --root), under the exec root.
func (e *dockerEnv) runtimeRoot() string { return filepath.Join(e.dir, "exec", "runtime-runc", "moby") }

// newDocker starts a private dockerd with runtimes (name -> daemon.json
// entry).
func newDocker(t *testing.T, runtimes map[string]any) *dockerEnv {
	t.Helper()
	requireRoot(t)
	dockerd := requireCmd(t, "dockerd")
	requireCmd(t, "containerd")
	requireCmd(t, "containerd-shim-runc-v2")
	// Debian's client, next to its daemon's package (another docker on
	// PATH may be a different version).
	docker := "/usr/bin/docker"
	if _, err := os.Stat(docker); err != nil {
		docker = requireCmd(t, "docker")
	}
	// Socket paths must stay short (sun_path).
	dir, err := os.MkdirTemp("", "cl-dk")
	if err != nil {
		t.Fatal(err)
	}
	e := &dockerEnv{t: t, dir: dir, sock: filepath.Join(dir, "d.sock"), docker: docker, logBuf: &syncBuffer{}}
	if _, err := os.Stat("/run/docker"); err != nil {
		e.madeRunDocker = true
	}
	cfg := map[string]any{
		"data-root":           filepath.Join(dir, "data"),
		"exec-root":           filepath.Join(dir, "exec"),
		"pidfile":             filepath.Join(dir, "docker.pid"),
		"hosts":               []string{"unix://" + e.sock},
		"deprecated-key-path": filepath.Join(dir, "key.json"),
		"storage-driver":      "vfs",
		// No host firewall, forwarding or bridge is touched.
		"iptables":   false,
		"ip6tables":  false,
		"ip-forward": false,
		"ip-masq":    false,
		"bridge":     "none",
		"runtimes":   runtimes,
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(cfgPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	e.daemon = exec.Command(dockerd, "--config-file", cfgPath)
	e.daemon.Stdout, e.daemon.Stderr = e.logBuf, e.logBuf
	e.daemon.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := e.daemon.Start(); err != nil {
		os.RemoveAll(dir)
		t.Fatalf("start dockerd: %v", err)
	}
	t.Cleanup(e.stop)
	waitForUpTo(t, 60*time.Second, "dockerd to answer", func() bool {
		return exec.Command(docker, "-H", "unix://"+e.sock, "version").Run() == nil
	})
	return e
}

// stop removes every container, ends the daemon (and with it its
// containerd), unmounts what it left under its directory and removes it.
func (e *dockerEnv) stop() {
	if out, err := exec.Command(e.docker, "-H", "unix://"+e.sock, "ps", "-aq").Output(); err == nil {
		if ids := strings.Fields(string(out)); len(ids) > 0 {
			_ = exec.Command(e.docker, append([]string{"-H", "unix://" + e.sock, "rm", "-f"}, ids...)...).Run()
		}
	}
	if e.daemon.Process != nil {
		_ = e.daemon.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { e.daemon.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = e.daemon.Process.Kill()
			<-done
		}
	}
	// dockerd leaves its data root bind-mounted on itself.
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	var mps []string
	for _, line := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], e.dir) {
			mps = append(mps, f[4])
		}
	}
	for i := len(mps) - 1; i >= 0; i-- {
		_ = syscall.Unmount(mps[i], syscall.MNT_DETACH)
	}
	if err := os.RemoveAll(e.dir); err != nil {
		e.t.Errorf("remove dockerd's dir: %v", err)
	}
	if e.madeRunDocker {
		_ = os.Remove("/run/docker/plugins")
		_ = os.Remove("/run/docker")
	}
	// The containers' parent cgroup, once empty.
	parents, _ := filepath.Glob("/sys/fs/cgroup/*/docker")
	for _, d := range append(parents, "/sys/fs/cgroup/docker") {
		_ = syscall.Rmdir(d)
	}
	if e.t.Failed() {
		e.t.Logf("dockerd log:\n%s", e.logBuf.String())
	}
}

func (e *dockerEnv) cmd(in []byte, args ...string) cmdResult {
	e.t.Helper()
	return runCmd(e.t, dockerTimeout, nil, in, e.docker, append([]string{"-H", "unix://" + e.sock}, args...)...)
}

func (e *dockerEnv) ok(args ...string) string {
	e.t.Helper()
	res := e.cmd(nil, args...)
	if res.Code != 0 {
		e.t.Fatalf("docker %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.Code, res.Stdout, res.Stderr)
	}
	return res.Stdout
}

// underTTY runs a docker command under script(1), which gives it a
// terminal.
func (e *dockerEnv) underTTY(script string, args ...string) cmdResult {
	e.t.Helper()
	q := []string{shellQuote(e.docker), "-H", shellQuote("unix://" + e.sock)}
	for _, a := range args {
		q = append(q, shellQuote(a))
	}
	return runCmd(e.t, dockerTimeout, nil, nil, script, "-qec", strings.Join(q, " "), "/dev/null")
}

// runD starts a detached container and returns its full id, recorded for
// the leftover check.
func (e *dockerEnv) runD(runtime, name string, args ...string) string {
	e.t.Helper()
	all := append([]string{"run", "-d", "--runtime", runtime, "--network", "none", "--name", name, dockerImage}, args...)
	id := strings.TrimSpace(e.ok(all...))
	e.ids = append(e.ids, id)
	return id
}

func (e *dockerEnv) inspect(id, format string) string {
	e.t.Helper()
	return strings.TrimSpace(e.ok("inspect", "-f", format, id))
}

// finish checks that nothing of the test's containers is left: none in
// docker, no state in the runtimes' root, no cgroup, mount or process.
func (e *dockerEnv) finish() {
	e.t.Helper()
	if out := strings.TrimSpace(e.ok("ps", "-aq")); out != "" {
		e.t.Errorf("docker still lists containers: %s", out)
	}
	waitNoProcesses(e.t, e.ids)
	assertNoClientLeftovers(e.t, e.runtimeRoot(), e.ids)
	if left, _ := filepath.Glob(filepath.Join(e.runtimeRoot(), "@rootfs-*")); len(left) > 0 {
		e.t.Errorf("staged rootfs left: %v", left)
	}
	for _, id := range e.ids {
		if left, _ := filepath.Glob(filepath.Join(engineStagingBase, "*", "@rootfs-"+id)); len(left) > 0 {
			e.t.Errorf("staged rootfs left: %v", left)
		}
	}
}

// hostCgroupFile is the host path of a cgroup file of the process pid (v1
// controller ctrl's file v1, or the unified v2 file).
func hostCgroupFile(t testing.TB, pid int, ctrl, v1, v2 string) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		if cgroupV2() && f[0] == "0" {
			return filepath.Join("/sys/fs/cgroup", f[2], v2)
		}
		for _, c := range strings.Split(f[1], ",") {
			if c == ctrl {
				return filepath.Join("/sys/fs/cgroup", ctrl, f[2], v1)
			}
		}
	}
	t.Fatalf("pid %d has no %s cgroup: %s", pid, ctrl, data)
	return ""
}

// dockerRuntimes are the runtimes registered in the test's daemon.json,
// named as the test uses them: nucleus, runc (Debian's, through the same
// logging wrapper; "runc" itself is Docker's reserved name) and nucleus in
// agent mode through runtimeArgs.
func dockerRuntimes(t *testing.T, dir string) (nuc, runc clientRuntime, cfg map[string]any) {
	t.Helper()
	rts := clientRuntimes(t)
	nuc, runc = rts[0].wrapped(t, dir), rts[1].wrapped(t, dir)
	cfg = map[string]any{
		"nucleus":       map[string]any{"path": nuc.Bin},
		"runc-ref":      map[string]any{"path": runc.Bin},
		"nucleus-agent": map[string]any{"path": nuc.Bin, "runtimeArgs": []string{"--default-mode", "agent"}},
	}
	return nuc, runc, cfg
}

func TestDockerRuntimes(t *testing.T) {
	requireRoot(t)
	script := requireCmd(t, "script")
	dir := t.TempDir()
	os.Chmod(dir, 0o755) // the wrappers run from here
	nuc, runc, cfg := dockerRuntimes(t, dir)
	b := probeBundle(t)
	tarball := filepath.Join(dir, "rootfs.tar")
	f, err := os.Create(tarball)
	if err != nil {
		t.Fatal(err)
	}
	tarDir(t, b.Rootfs, f)
	f.Close()
	e := newDocker(t, cfg)
	e.ok("import", "-c", `CMD ["/bin/sh"]`, "-c", "ENV PATH=/bin", tarball, dockerImage)

	for _, c := range []struct {
		runtime string
		rt      clientRuntime
	}{{"nucleus", nuc}, {"runc-ref", runc}} {
		t.Run(c.rt.Name, func(t *testing.T) {
			parent := e.t
			e.t = t
			defer func() { e.t = parent }()
			rt, name := c.runtime, "cl-"+c.rt.Name
			run := func(in []byte, args ...string) cmdResult {
				t.Helper()
				return e.cmd(in, append([]string{"run", "--rm", "--runtime", rt, "--network", "none", dockerImage}, args...)...)
			}
			if res := run(nil, "echo", "hello docker"); res.Code != 0 || res.Stdout != "hello docker\n" {
				t.Errorf("run echo: exit %d, %q, %q", res.Code, res.Stdout, res.Stderr)
			}
			if res := run(nil, "sh", "-c", "exit 42"); res.Code != 42 {
				t.Errorf("run exit 42: exit %d: %s", res.Code, res.Stderr)
			}
			if res := run(nil, "/no/such/binary"); res.Code != 127 || !strings.Contains(res.Stderr, "/no/such/binary") {
				t.Errorf("run of a missing binary: exit %d (want 127, as Docker reports it), %q", res.Code, res.Stderr)
			}
			in := bytes.Repeat([]byte("0123456789abcdef"), 20000)
			if res := e.cmd(in, "run", "--rm", "-i", "--runtime", rt, "--network", "none", dockerImage, "cat"); res.Stdout != string(in) {
				t.Errorf("run -i cat: %d bytes out of %d (exit %d: %s)", len(res.Stdout), len(in), res.Code, res.Stderr)
			}
			res := e.underTTY(script, "run", "--rm", "-t", "--runtime", rt, "--network", "none", dockerImage, "sh", "-c", "tty; test -t 0 && echo is-a-tty")
			if !strings.Contains(res.Stdout, "/dev/pts/") || !strings.Contains(res.Stdout, "is-a-tty") {
				t.Errorf("run -t: exit %d, %q, %q", res.Code, res.Stdout, res.Stderr)
			}

			// logs, and the exit code docker wait reports.
			logger := e.runD(rt, name+"-log", "sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 7")
			if out := strings.TrimSpace(e.ok("wait", logger)); out != "7" {
				t.Errorf("wait: %q, want 7", out)
			}
			if res := e.cmd(nil, "logs", logger); res.Stdout != "to-stdout\n" || res.Stderr != "to-stderr\n" {
				t.Errorf("logs: %q, %q", res.Stdout, res.Stderr)
			}
			e.ok("rm", logger)

			box := e.runD(rt, name+"-box", "sh", "-c", "trap 'exit 0' TERM; sleep 1001 & wait")
			pid := 0
			fmt.Sscan(e.inspect(box, "{{.State.Pid}}"), &pid)
			if pid == 0 || !alive(pid) {
				t.Fatalf("container %s: pid %d not running", box, pid)
			}
			if out := e.ok("exec", box, "sh", "-c", "echo in exec"); out != "in exec\n" {
				t.Errorf("exec: %q", out)
			}
			if res := e.cmd(nil, "exec", box, "sh", "-c", "exit 3"); res.Code != 3 {
				t.Errorf("exec exit 3: exit %d: %s", res.Code, res.Stderr)
			}
			if res := e.cmd([]byte("piped"), "exec", "-i", box, "cat"); res.Stdout != "piped" {
				t.Errorf("exec -i cat: %q (exit %d: %s)", res.Stdout, res.Code, res.Stderr)
			}
			res = e.underTTY(script, "exec", "-t", box, "sh", "-c", "tty; test -t 0 && echo is-a-tty")
			if !strings.Contains(res.Stdout, "/dev/pts/") || !strings.Contains(res.Stdout, "is-a-tty") {
				t.Errorf("exec -t: exit %d, %q, %q", res.Code, res.Stdout, res.Stderr)
			}
			if top := e.ok("top", box); !strings.Contains(top, "sleep 1001") {
				t.Errorf("top lacks sleep 1001:\n%s", top)
			}
			// Sampled: a loaded machine can give an empty sample.
			if ok, stats := retryFor(15*time.Second, func() (bool, string) {
				stats := strings.TrimSpace(e.ok("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}} {{.MemUsage}}", box))
				f := strings.Fields(stats)
				return len(f) >= 3 && f[0] == name+"-box" && f[1] == "2" && !strings.HasPrefix(f[2], "0B"), stats
			}); !ok {
				t.Errorf("stats: %q, want the name, 2 pids and some memory in use", stats)
			}

			e.ok("pause", box)
			if st := e.inspect(box, "{{.State.Status}}"); st != "paused" {
				t.Errorf("after pause: %s", st)
			}
			freezer := hostCgroupFile(t, pid, "freezer", "freezer.state", "cgroup.freeze")
			if got := readTrim(freezer); got != "FROZEN" && got != "1" {
				t.Errorf("paused: %s = %q", freezer, got)
			}
			e.ok("unpause", box)
			if st := e.inspect(box, "{{.State.Status}}"); st != "running" {
				t.Errorf("after unpause: %s", st)
			}

			e.ok("update", "--memory", "64m", "--memory-swap", "128m", "--pids-limit", "77", box)
			mem := hostCgroupFile(t, pid, "memory", "memory.limit_in_bytes", "memory.max")
			if got := readTrim(mem); got != "67108864" {
				t.Errorf("after update --memory 64m: %s = %q", mem, got)
			}
			pids := hostCgroupFile(t, pid, "pids", "pids.max", "pids.max")
			if got := readTrim(pids); got != "77" {
				t.Errorf("after update --pids-limit 77: %s = %q", pids, got)
			}

			e.ok("stop", "-t", "10", box)
			if code := e.inspect(box, "{{.State.ExitCode}}"); code != "0" {
				t.Errorf("stop: exit code %s, want 0 (the trap)", code)
			}
			// A container that ignores SIGTERM is killed after the grace.
			stubborn := e.runD(rt, name+"-stubborn", "sleep", "1002")
			e.ok("stop", "-t", "1", stubborn)
			if code := e.inspect(stubborn, "{{.State.ExitCode}}"); code != "137" {
				t.Errorf("stop of a container ignoring SIGTERM: exit code %s, want 137", code)
			}
			e.ok("rm", box, stubborn)
			c.rt.assertCalled(t, "create", "--bundle")
			c.rt.assertCalled(t, "exec", "--process")
			c.rt.assertCalled(t, "pause", box)
			c.rt.assertCalled(t, "resume", box)
			c.rt.assertCalled(t, "update", "--resources")
			c.rt.assertCalled(t, "delete", box)
			e.finish()
		})
	}

	t.Run("nucleus-agent", func(t *testing.T) {
		parent := e.t
		e.t = t
		defer func() { e.t = parent }()
		// The same image and a plain `docker run`: confined all the same.
		box := e.runD("nucleus-agent", "cl-agent", "sleep", "1003")
		pid := 0
		fmt.Sscan(e.inspect(box, "{{.State.Pid}}"), &pid)
		if pid == 0 || !alive(pid) {
			t.Fatalf("agent container: pid %d not running", pid)
		}
		uid, _ := procUIDs(pid)
		if uid == 0 {
			t.Errorf("agent container: its process runs as host uid 0")
		}
		inside := e.ok("exec", box, "sh", "-c", "id -u; cat /proc/self/uid_map; grep -E '^(CapEff|CapBnd|Seccomp|NoNewPrivs):' /proc/self/status")
		f := strings.Fields(inside)
		if len(f) < 12 || f[0] != "0" {
			t.Fatalf("agent exec: %q", inside)
		}
		if f[1] != "0" || f[2] == "0" || f[3] == "4294967295" {
			t.Errorf("agent container: uid_map %q, want container root mapped to an unprivileged host uid", strings.Join(f[1:4], " "))
		}
		status := strings.Join(f[4:], " ")
		for _, want := range []string{"CapEff: 0000000000000000", "CapBnd: 0000000000000000", "Seccomp: 2", "NoNewPrivs: 1"} {
			if !strings.Contains(status, want) {
				t.Errorf("agent container: status lacks %q: %s", want, status)
			}
		}
		// Docker keeps the rootfs out of other host users' reach (its
		// data root is 0710): the staged one must stay so.
		staged, _ := filepath.Glob(filepath.Join(engineStagingBase, "*", "@rootfs-"+box, "merged"))
		if len(staged) != 1 {
			t.Errorf("agent container: staged rootfs %v, want one under %s", staged, engineStagingBase)
		} else {
			peek := exec.Command("cat", filepath.Join(staged[0], "bin", "probe"))
			peek.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
			if out, err := peek.CombinedOutput(); err == nil || !strings.Contains(string(out), "Permission denied") {
				t.Errorf("an unprivileged host user reads the agent container's rootfs at %s: %v %.80q", staged[0], err, out)
			}
		}
		if res := e.cmd(nil, "exec", box, "sh", "-c", "exit 5"); res.Code != 5 {
			t.Errorf("agent exec exit 5: exit %d: %s", res.Code, res.Stderr)
		}
		// Host root's files are not container root's.
		if res := e.cmd(nil, "exec", box, "sh", "-c", "echo x > /proc/sys/kernel/hostname"); res.Code == 0 {
			t.Errorf("agent container could write /proc/sys/kernel/hostname")
		}
		// A syscall outside the allowlist kills the process (SIGSYS).
		if res := e.cmd(nil, "run", "--rm", "--runtime", "nucleus-agent", "--network", "none", dockerImage, "probe", "unlisted-one", "sysfs"); res.Code != 159 {
			t.Errorf("agent run of an unlisted syscall: exit %d, want 159 (SIGSYS): %q %q", res.Code, res.Stdout, res.Stderr)
		}
		// The reference: runc runs the same image with capabilities and
		// as host root (so the checks above can fail).
		ref := e.cmd(nil, "run", "--rm", "--runtime", "runc-ref", "--network", "none", dockerImage, "sh", "-c", "cat /proc/self/uid_map; grep CapEff /proc/self/status")
		if rf := strings.Fields(ref.Stdout); len(rf) != 5 || rf[1] != "0" || rf[4] == "0000000000000000" {
			t.Errorf("runc reference: %q", ref.Stdout)
		}
		e.ok("rm", "-f", box)
		nuc.assertCalled(t, "--default-mode", "agent", "create", "--bundle")
		e.finish()
	})
}

// engineStagingBase is runtime/engine.StagingBase: where a state root that
// other uids can't reach (Docker's) stages rootfs dirs.
const engineStagingBase = "/run/nucleus-rootfs"

// procUIDs returns the real and effective uid of pid (-1 if unreadable).
func procUIDs(pid int) (int, int) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1, -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "Uid:"); ok {
			var r, e int
			fmt.Sscan(v, &r, &e)
			return r, e
		}
	}
	return -1, -1
}
