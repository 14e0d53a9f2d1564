package integration

// Real podman (Debian's 4.3, with conmon) driving nucleus, and Debian's
// runc as the reference, with the same assertions (issue 5). Each test has
// its own podman: a containers.conf, storage root, runroot and tmp dir in a
// temp dir, passed by CONTAINERS_CONF and --root/--runroot, so nothing of
// the host's podman is read or touched.

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

type podmanEnv struct {
	t        *testing.T
	rt       clientRuntime
	dir      string
	conf     string
	storage  string
	runroot  string
	rootfs   string
	names    []string // containers this test made, by name
	ids      []string // and by id, once known
	noJSON   bool
	finished bool
}

// podmanTimeout bounds one podman command.
const podmanTimeout = 90 * time.Second

// newPodman sets up a private podman for rt. jsonLog says whether podman
// should treat the runtime as one that logs JSON (runtime_supports_json).
func newPodman(t *testing.T, rt clientRuntime, jsonLog bool) *podmanEnv {
	t.Helper()
	requireCmd(t, "podman")
	requireCmd(t, "conmon")
	// The runroot's path must stay under 50 characters (podman's limit).
	dir, err := os.MkdirTemp("", "pod")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := &podmanEnv{t: t, rt: rt, dir: dir, conf: filepath.Join(dir, "containers.conf"),
		storage: filepath.Join(dir, "storage"), runroot: filepath.Join(dir, "rr"), noJSON: !jsonLog}
	supportsJSON := `"crun", "runc", "kata", "runsc", "krun", "nucleus"`
	if !jsonLog {
		supportsJSON = `"crun", "kata"`
	}
	conf := fmt.Sprintf(`[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
netns = "none"
log_driver = "k8s-file"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "%[1]s/events.log"
tmp_dir = "%[1]s/tmp"
static_dir = "%[1]s/storage/libpod"
volume_path = "%[1]s/volumes"
runtime = "%[2]s"
runtime_supports_json = [%[3]s]
no_pivot_root = false

[engine.runtimes]
%[2]s = ["%[4]s"]

[network]
network_config_dir = "%[1]s/net"
`, dir, rt.Name, supportsJSON, rt.Bin)
	if err := os.WriteFile(p.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	p.rootfs = busyboxRootfs(t)
	t.Cleanup(p.cleanup)
	return p
}

// cmd runs podman with our configuration.
func (p *podmanEnv) cmd(in []byte, args ...string) cmdResult {
	p.t.Helper()
	return runCmd(p.t, podmanTimeout, []string{"CONTAINERS_CONF=" + p.conf}, in, "podman", p.fullArgs(args...)...)
}

func (p *podmanEnv) fullArgs(args ...string) []string {
	return append([]string{"--root", p.storage, "--runroot", p.runroot, "--storage-driver", "vfs",
		"--cgroup-manager", "cgroupfs", "--events-backend", "file"}, args...)
}

// ok runs podman and fails the test unless it exits 0.
func (p *podmanEnv) ok(args ...string) string {
	p.t.Helper()
	res := p.cmd(nil, args...)
	if res.Code != 0 {
		p.t.Fatalf("podman %s: exit %d\nstdout: %s\nstderr: %s\n%s calls:\n%s", strings.Join(args, " "), res.Code, res.Stdout, res.Stderr, p.rt.Name, strings.Join(p.rt.calls(), "\n"))
	}
	return res.Stdout
}

// code runs podman and checks its exit code.
func (p *podmanEnv) code(want int, args ...string) cmdResult {
	p.t.Helper()
	res := p.cmd(nil, args...)
	if res.Code != want {
		p.t.Errorf("podman %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.Code, want, res.Stdout, res.Stderr)
	}
	return res
}

// name records a container name for the leftover check and returns it.
func (p *podmanEnv) name(n string) string {
	n = "pod-" + n
	p.names = append(p.names, n)
	return n
}

// runArgs are the arguments of `podman run` on our busybox rootfs.
func (p *podmanEnv) runArgs(opts ...string) []string {
	return append(append([]string{"run"}, opts...), "--rootfs", p.rootfs)
}

// noteID records a container's full id for the leftover check.
func (p *podmanEnv) noteID(name string) string {
	id := strings.TrimSpace(p.ok("inspect", "--format", "{{.ID}}", name))
	p.ids = append(p.ids, id)
	return id
}

// runtimeRoot is the state root podman told the runtime to use, or the
// runtime's default.
func (p *podmanEnv) runtimeRoot() string {
	re := regexp.MustCompile(`--root[= ](\S+)`)
	for _, c := range p.rt.calls() {
		if m := re.FindStringSubmatch(c); m != nil {
			return m[1]
		}
	}
	return "/run/" + p.rt.Name
}

// finish removes everything the test made through podman and checks that
// nothing is left behind: no container in podman, no state in the
// runtime's root, no cgroup, mount or process of any container.
func (p *podmanEnv) finish() {
	p.t.Helper()
	p.finished = true
	if os.Getenv("CLIENT_CALLS") != "" {
		p.t.Logf("calls:\n%s", strings.Join(p.rt.calls(), "\n"))
	}
	p.cmd(nil, "rm", "--all", "--force", "--time", "0")
	if out := strings.TrimSpace(p.ok("ps", "--all", "--quiet")); out != "" {
		p.t.Errorf("podman still lists containers: %s", out)
	}
	ids := append(append([]string{}, p.ids...), p.names...)
	waitNoProcesses(p.t, ids)
	assertNoClientLeftovers(p.t, p.runtimeRoot(), ids, p.dir)
	for _, id := range p.ids {
		if _, err := os.Stat(filepath.Join(p.runtimeRoot(), id)); err == nil {
			p.t.Errorf("leftover runtime state %s", filepath.Join(p.runtimeRoot(), id))
		}
	}
}

func (p *podmanEnv) cleanup() {
	if !p.finished {
		p.cmd(nil, "rm", "--all", "--force", "--time", "0")
	}
	p.cmd(nil, "system", "reset", "--force")
}

func TestPodmanRunEchoAndExitCodes(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt clientRuntime) {
		p := newPodman(t, rt, true)
		out := p.ok(append(p.runArgs("--rm", "--name", p.name("echo")), "echo", "hello podman")...)
		if out != "hello podman\n" {
			t.Errorf("stdout %q, want %q", out, "hello podman\n")
		}
		for _, c := range []struct {
			args []string
			want int
		}{
			{[]string{"sh", "-c", "exit 42"}, 42},
			{[]string{"true"}, 0},
			{[]string{"/nonexistent"}, 127},
			{[]string{"/etc/passwd"}, 126},
		} {
			res := p.code(c.want, append(p.runArgs("--rm"), c.args...)...)
			if c.want >= 126 && c.want <= 127 && !strings.Contains(res.Stderr, "/") {
				t.Errorf("podman run %v: error message does not name the file: %q", c.args, res.Stderr)
			}
		}
		// podman parses the runtime's --version.
		if info := p.ok("info", "--format", "{{.Host.OCIRuntime.Name}}|{{.Host.OCIRuntime.Version}}"); !strings.HasPrefix(info, rt.Name+"|") || !strings.Contains(info, "version") {
			t.Errorf("podman info on the runtime: %q", info)
		}
		rt.assertCalled(t, "--log-format=json", "create", "--bundle", "--pid-file")
		rt.assertCalled(t, "delete", "--force")
		p.finish()
	})
}

// shellQuote quotes s for sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// underScript runs podman under `script`, so that it has a terminal.
func (p *podmanEnv) underScript(args ...string) cmdResult {
	p.t.Helper()
	script := requireCmd(p.t, "script")
	full := append([]string{"podman"}, p.fullArgs(args...)...)
	var q []string
	for _, a := range full {
		q = append(q, shellQuote(a))
	}
	return runCmd(p.t, podmanTimeout, []string{"CONTAINERS_CONF=" + p.conf}, nil, script, "-qec", strings.Join(q, " "), "/dev/null")
}

// ctrCgroupFile is a shell snippet printing a cgroup file of the container's
// own cgroup, v1 or v2.
func ctrCgroupFile(v1, v2 string) string {
	return fmt.Sprintf("cat /sys/fs/cgroup/%s 2>/dev/null || cat /sys/fs/cgroup/%s", v1, v2)
}

func TestPodmanStdioMegabytes(t *testing.T) {
	in := make([]byte, 3<<20)
	rand.Read(in)
	forEachRuntime(t, func(t *testing.T, rt clientRuntime) {
		p := newPodman(t, rt, true)
		// stdin → stdout and stderr, unchanged, through conmon's pipes.
		res := p.cmd(in, append(p.runArgs("--rm", "-i", "--name", p.name("stdio")), "tee", "/dev/stderr")...)
		if res.Code != 0 {
			t.Fatalf("podman run -i: exit %d: %s", res.Code, res.Stderr)
		}
		if !bytes.Equal([]byte(res.Stdout), in) {
			t.Errorf("stdout: %d bytes differ from the %d bytes of stdin", len(res.Stdout), len(in))
		}
		if !bytes.Contains([]byte(res.Stderr), in) {
			t.Errorf("stderr: %d bytes do not contain the %d bytes of stdin", len(res.Stderr), len(in))
		}
		// Output only, larger than any pipe buffer, on both streams.
		out := p.ok(append(p.runArgs("--rm"), "sh", "-c", "head -c 4000000 /dev/zero | tr '\\0' x; echo; echo done >&2")...)
		if len(out) != 4000001 || strings.Trim(out, "x\n") != "" {
			t.Errorf("stdout: %d bytes, want 4000001 x's and a newline", len(out))
		}
		p.finish()
	})
}

func TestPodmanDetachExecKillWait(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt clientRuntime) {
		p := newPodman(t, rt, true)
		sleeper := p.name("sleeper")
		p.ok(append(p.runArgs("-d", "--name", sleeper), "sleep", "1000")...)
		p.noteID(sleeper)
		// The container's init is conmon's child (conmon is a subreaper).
		var pid, conmon int
		fmt.Sscan(p.ok("inspect", "--format", "{{.State.Pid}} {{.State.ConmonPid}}", sleeper), &pid, &conmon)
		if ppid := parentPid(pid); pid == 0 || ppid != conmon {
			t.Errorf("container init %d has parent %d, want conmon %d", pid, ppid, conmon)
		}
		if got := p.ok("exec", sleeper, "echo", "in exec"); got != "in exec\n" {
			t.Errorf("exec stdout %q", got)
		}
		p.code(3, "exec", sleeper, "sh", "-c", "exit 3")
		p.code(127, "exec", sleeper, "/nonexistent")
		if res := p.cmd([]byte("piped in\n"), "exec", "-i", sleeper, "cat"); res.Stdout != "piped in\n" {
			t.Errorf("exec -i cat: %q (exit %d, %s)", res.Stdout, res.Code, res.Stderr)
		}
		// A detached exec: the process keeps running inside.
		p.ok("exec", "-d", sleeper, "sleep", "997")
		if ps := p.ok("exec", sleeper, "ps"); !strings.Contains(ps, "sleep 997") {
			t.Errorf("detached exec not running:\n%s", ps)
		}
		// SIGKILL (podman kill's default) → 137.
		p.ok("kill", sleeper)
		if got := strings.TrimSpace(p.ok("wait", sleeper)); got != "137" {
			t.Errorf("wait after kill: %q, want 137", got)
		}
		// A signal the process handles: its own exit code.
		trapper := p.name("trapper")
		p.ok(append(p.runArgs("-d", "--name", trapper), "sh", "-c", "trap 'exit 11' TERM; echo ready; while :; do sleep 0.1; done")...)
		p.noteID(trapper)
		clientWaitFor(t, 10*time.Second, "trapper ready", func() bool { return strings.Contains(p.ok("logs", trapper), "ready") })
		p.ok("kill", "--signal", "TERM", trapper)
		if got := strings.TrimSpace(p.ok("wait", trapper)); got != "11" {
			t.Errorf("wait after kill TERM: %q, want 11", got)
		}
		// stop: kill ID 15, then kill ID 9 after the timeout.
		stubborn := p.name("stubborn")
		p.ok(append(p.runArgs("-d", "--name", stubborn), "sleep", "1000")...)
		p.noteID(stubborn)
		p.ok("stop", "--time", "1", stubborn)
		if got := strings.TrimSpace(p.ok("inspect", "--format", "{{.State.ExitCode}}", stubborn)); got != "137" {
			t.Errorf("exit code after stop: %q, want 137", got)
		}
		// A container sharing the host's pid namespace is stopped with
		// kill --all: every process goes.
		hostpid := p.name("hostpid")
		p.ok(append(p.runArgs("-d", "--pid", "host", "--name", hostpid), "sh", "-c", "sleep 991 & sleep 992 & wait")...)
		p.noteID(hostpid)
		p.ok("stop", "--time", "1", hostpid)
		rt.assertCalled(t, "kill", "--all")
		for _, n := range []string{"991", "992"} {
			if pids := findProcs("sleep " + n); len(pids) > 0 {
				t.Errorf("sleep %s still running after stop (kill --all): pids %v", n, pids)
			}
		}
		rt.assertCalled(t, "exec", "--pid-file", "--process", "--detach")
		rt.assertCalled(t, "kill", "15")
		rt.assertCalled(t, "kill", "9")
		p.finish()
	})
}

// findProcs lists the pids whose command line contains s.
func findProcs(s string) []int {
	var pids []int
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range procs {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if strings.Contains(strings.ReplaceAll(string(data), "\x00", " "), s) {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
			pids = append(pids, pid)
		}
	}
	return pids
}

func TestPodmanTTY(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt clientRuntime) {
		p := newPodman(t, rt, true)
		res := p.underScript(append(p.runArgs("--rm", "-t", "--name", p.name("tty")), "sh", "-c", "tty; test -t 0 && test -t 1 && echo is-a-tty; exit 5")...)
		if res.Code != 5 || !strings.Contains(res.Stdout, "/dev/pts/") || !strings.Contains(res.Stdout, "is-a-tty") {
			t.Errorf("run -t: exit %d, output %q, stderr %q", res.Code, res.Stdout, res.Stderr)
		}
		box := p.name("ttybox")
		p.ok(append(p.runArgs("-d", "--name", box), "sleep", "1000")...)
		p.noteID(box)
		res = p.underScript("exec", "-t", box, "sh", "-c", "tty; test -t 0 && echo is-a-tty; exit 4")
		if res.Code != 4 || !strings.Contains(res.Stdout, "/dev/pts/") || !strings.Contains(res.Stdout, "is-a-tty") {
			t.Errorf("exec -t: exit %d, output %q, stderr %q", res.Code, res.Stdout, res.Stderr)
		}
		// Without -t, nothing is a terminal even under script.
		res = p.underScript("exec", box, "sh", "-c", "test -t 1 || echo not-a-tty")
		if !strings.Contains(res.Stdout, "not-a-tty") {
			t.Errorf("exec without -t: output %q", res.Stdout)
		}
		rt.assertCalled(t, "create", "--console-socket")
		rt.assertCalled(t, "exec", "--tty", "--console-socket")
		p.finish()
	})
}

func TestPodmanPauseUnpause(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt clientRuntime) {
		p := newPodman(t, rt, true)
		c := p.name("pause")
		p.ok(append(p.runArgs("-d", "--name", c), "sh", "-c", "while :; do date +%s%N > /tmp/tick; sleep 0.05; done")...)
		p.noteID(c)
		p.ok("pause", c)
		if st := strings.TrimSpace(p.ok("inspect", "--format", "{{.State.Status}}", c)); st != "paused" {
			t.Errorf("status after pause: %q", st)
		}
		rootfsTick := filepath.Join(p.rootfs, "tmp", "tick")
		before, _ := os.ReadFile(rootfsTick)
		time.Sleep(300 * time.Millisecond)
		after, _ := os.ReadFile(rootfsTick)
		if !bytes.Equal(before, after) {
			t.Errorf("paused container still runs: tick %q → %q", before, after)
		}
		p.ok("unpause", c)
		if st := strings.TrimSpace(p.ok("inspect", "--format", "{{.State.Status}}", c)); st != "running" {
			t.Errorf("status after unpause: %q", st)
		}
		clientWaitFor(t, 5*time.Second, "ticks after unpause", func() bool {
			now, _ := os.ReadFile(rootfsTick)
			return !bytes.Equal(now, after)
		})
		rt.assertCalled(t, "pause")
		rt.assertCalled(t, "resume")
		p.finish()
	})
}

func TestPodmanUpdate(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt clientRuntime) {
		p := newPodman(t, rt, true)
		c := p.name("update")
		p.ok(append(p.runArgs("-d", "--memory", "128m", "--name", c), "sleep", "1000")...)
		p.noteID(c)
		mem := ctrCgroupFile("memory/memory.limit_in_bytes", "memory.max")
		if got := strings.TrimSpace(p.ok("exec", c, "sh", "-c", mem)); got != "134217728" {
			t.Errorf("memory limit before update: %q", got)
		}
		p.ok("update", "--memory", "64m", "--cpu-shares", "512", c)
		if got := strings.TrimSpace(p.ok("exec", c, "sh", "-c", mem)); got != "67108864" {
			t.Errorf("memory limit after update: %q, want 67108864", got)
		}
		if got := strings.TrimSpace(p.ok("exec", c, "sh", "-c", ctrCgroupFile("cpu/cpu.shares", "cpu.weight"))); got != "512" && got != "20" {
			t.Errorf("cpu shares after update: %q", got)
		}
		rt.assertCalled(t, "update", "--resources")
		p.finish()
	})
}

func TestPodmanUserNamespace(t *testing.T) {
	tarball := busyboxTarball(t)
	forEachRuntime(t, func(t *testing.T, rt clientRuntime) {
		p := newPodman(t, rt, true)
		// An image, so podman shifts the layer's ownership to the mapping.
		p.ok("import", tarball, "localhost/pod-busybox:latest")
		out := p.ok("run", "--rm", "--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536", "--name", p.name("userns"),
			"pod-busybox", "sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u; touch /rootfs-writable && echo wrote")
		f := strings.Fields(out)
		if len(f) != 8 || f[0] != "0" || f[1] != "100000" || f[2] != "65536" || f[3] != "0" || f[4] != "100000" || f[6] != "0" || f[7] != "wrote" {
			t.Errorf("uid/gid map, id and a write inside: %q", out)
		}
		p.finish()
	})
}

func TestPodmanLimitsSeenInside(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt clientRuntime) {
		p := newPodman(t, rt, true)
		script := strings.Join([]string{
			ctrCgroupFile("memory/memory.limit_in_bytes", "memory.max"),
			ctrCgroupFile("pids/pids.max", "pids.max"),
			"ulimit -n", "ulimit -u",
		}, "; ")
		out := p.ok(append(p.runArgs("--rm", "--memory", "32m", "--pids-limit", "42", "--name", p.name("limits")), "sh", "-c", script)...)
		if got, want := strings.Fields(out), []string{"33554432", "42", "20000", "32768"}; strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("memory, pids, nofile, nproc inside: %v, want %v", got, want)
		}
		// The pids limit holds: forking past it fails inside.
		res := p.cmd(nil, append(p.runArgs("--rm", "--pids-limit", "5"), "sh", "-c", "for i in 1 2 3 4 5 6 7 8; do sleep 5 & done 2>&1; echo all-forked")...)
		if res.Code == 0 || strings.Contains(res.Stdout, "all-forked") || !strings.Contains(res.Stdout, "Resource temporarily unavailable") {
			t.Errorf("forking past --pids-limit 5 did not fail: exit %d, %q", res.Code, res.Stdout)
		}
		p.finish()
	})
}

func TestPodmanImportedImage(t *testing.T) {
	tarball := busyboxTarball(t)
	forEachRuntime(t, func(t *testing.T, rt clientRuntime) {
		p := newPodman(t, rt, true)
		p.ok("import", tarball, "localhost/pod-busybox:latest")
		if imgs := p.ok("images", "--format", "{{.Repository}}:{{.Tag}}"); !strings.Contains(imgs, "localhost/pod-busybox:latest") {
			t.Fatalf("imported image not listed: %q", imgs)
		}
		out := p.ok("run", "--rm", "--name", p.name("image"), "pod-busybox", "sh", "-c", "echo from image; cat /etc/hostname >/dev/null && echo ok")
		if out != "from image\nok\n" {
			t.Errorf("run of imported image: %q", out)
		}
		p.finish()
	})
}

func TestPodmanBuild(t *testing.T) {
	tarball := busyboxTarball(t)
	forEachRuntime(t, func(t *testing.T, rt clientRuntime) {
		p := newPodman(t, rt, true)
		p.ok("import", tarball, "localhost/pod-busybox:latest")
		ctx := t.TempDir()
		containerfile := "FROM localhost/pod-busybox:latest\nRUN echo built-by-$(id -u) > /built.txt && echo RUN-step-ran\n"
		if err := os.WriteFile(filepath.Join(ctx, "Containerfile"), []byte(containerfile), 0o644); err != nil {
			t.Fatal(err)
		}
		before := len(rt.calls())
		out := p.ok("build", "--runtime", rt.Bin, "--network", "none", "--pull=never", "-t", "localhost/pod-built", ctx)
		if !strings.Contains(out, "RUN-step-ran") {
			t.Errorf("build output lacks the RUN step's output:\n%s", out)
		}
		if len(rt.calls()) <= before {
			t.Errorf("podman build did not call %s", rt.Name)
		}
		rt.assertCalled(t, "state")
		if got := p.ok("run", "--rm", "--name", p.name("built"), "localhost/pod-built", "cat", "/built.txt"); got != "built-by-0\n" {
			t.Errorf("built image: /built.txt = %q", got)
		}
		p.finish()
	})
}

// TestPodmanErrorMessages: the runtime's error reaches the user, whether
// podman reads it as JSON (runtime_supports_json) or as text.
func TestPodmanErrorMessages(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt clientRuntime) {
		for _, jsonLog := range []bool{true, false} {
			p := newPodman(t, rt, jsonLog)
			res := p.code(127, append(p.runArgs("--rm", "--name", p.name(fmt.Sprintf("err%v", jsonLog))), "/no/such/binary")...)
			if !strings.Contains(res.Stderr, "/no/such/binary") || !strings.Contains(res.Stderr, "no such file or directory") {
				t.Errorf("json=%v: podman's error does not carry the runtime's: %q", jsonLog, res.Stderr)
			}
			if jsonLog {
				rt.assertCalled(t, "--log-format=json")
			}
			p.finish()
		}
	})
}

// TestPodmanCheckpoint: podman probes `checkpoint --help`; where CRIU works
// a checkpoint and restore round-trip, elsewhere the failure is an error
// that comes back promptly and leaves the container running.
func TestPodmanCheckpoint(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt clientRuntime) {
		p := newPodman(t, rt, true)
		c := p.name("ckpt")
		p.ok(append(p.runArgs("-d", "--name", c), "sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.1; done")...)
		p.noteID(c)
		start := time.Now()
		res := p.cmd(nil, "container", "checkpoint", c)
		if time.Since(start) > 60*time.Second {
			t.Errorf("checkpoint took %s", time.Since(start))
		}
		if res.Code == 0 {
			p.ok("container", "restore", c)
		} else {
			t.Logf("checkpoint failed on this host (exit %d): %s", res.Code, strings.TrimSpace(res.Stderr))
			if strings.TrimSpace(res.Stderr) == "" {
				t.Errorf("checkpoint failed without a message")
			}
			// restore fails as promptly, and leaves no container behind.
			b := newBundle(t, "sleep", "1000")
			root := t.TempDir()
			rr := runCmd(t, 90*time.Second, nil, nil, rt.Real, "--root", root, "restore", "--detach", "--bundle", b.Dir, "--image-path", t.TempDir(), "pod-restore")
			if rr.Code == 0 || strings.TrimSpace(rr.Stderr) == "" {
				t.Errorf("restore without a usable CRIU: exit %d, stderr %q", rr.Code, rr.Stderr)
			}
			assertNoClientLeftovers(t, root, []string{"pod-restore"}, b.Dir)
		}
		if st := strings.TrimSpace(p.ok("inspect", "--format", "{{.State.Status}}", c)); st != "running" {
			t.Errorf("status after checkpoint attempt: %q, want running", st)
		}
		p.ok("exec", c, "true")
		p.finish()
	})
}

// TestPodmanRuntimeEventsStats: the runtime's own `events --stats` on a
// podman container prints runc's JSON, from the container's cgroup, and
// `delete --force` of a gone container succeeds.
func TestPodmanRuntimeEventsStats(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt clientRuntime) {
		p := newPodman(t, rt, true)
		c := p.name("stats")
		p.ok(append(p.runArgs("-d", "--memory", "64m", "--pids-limit", "50", "--name", c), "sh", "-c", "sleep 1000 & sleep 999 & wait")...)
		id := p.noteID(c)
		res := runCmd(t, 30*time.Second, nil, nil, rt.Real, "--root", p.runtimeRoot(), "events", "--stats", id)
		if res.Code != 0 {
			t.Fatalf("%s events --stats: exit %d: %s", rt.Name, res.Code, res.Stderr)
		}
		var ev struct {
			Type string `json:"type"`
			ID   string `json:"id"`
			Data struct {
				Pids   struct{ Current, Limit uint64 } `json:"pids"`
				Memory struct {
					Usage struct{ Limit, Usage uint64 } `json:"usage"`
				} `json:"memory"`
				CPU struct {
					Usage struct{ Total uint64 } `json:"usage"`
				} `json:"cpu"`
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(res.Stdout), &ev); err != nil {
			t.Fatalf("events --stats: not JSON: %v: %s", err, res.Stdout)
		}
		if ev.Type != "stats" || ev.ID != id || ev.Data.Pids.Current != 3 || ev.Data.Pids.Limit != 50 ||
			ev.Data.Memory.Usage.Limit != 64<<20 || ev.Data.Memory.Usage.Usage == 0 || ev.Data.CPU.Usage.Total == 0 {
			t.Errorf("events --stats: %+v", ev)
		}
		// update from flags and from --resources on stdin, seen by stats.
		rtCmd := func(in []byte, args ...string) cmdResult {
			return runCmd(t, 30*time.Second, nil, in, rt.Real, append([]string{"--root", p.runtimeRoot()}, args...)...)
		}
		if res := rtCmd(nil, "update", "--pids-limit", "77", "--memory", "96m", id); res.Code != 0 {
			t.Errorf("update flags: exit %d: %s", res.Code, res.Stderr)
		}
		if res := rtCmd([]byte(`{"pids":{"limit":88}}`), "update", "--resources", "-", id); res.Code != 0 {
			t.Errorf("update --resources -: exit %d: %s", res.Code, res.Stderr)
		}
		if err := json.Unmarshal([]byte(rtCmd(nil, "events", "--stats", id).Stdout), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Data.Pids.Limit != 88 || ev.Data.Memory.Usage.Limit != 96<<20 {
			t.Errorf("after update: pids limit %d (want 88), memory limit %d (want %d)", ev.Data.Pids.Limit, ev.Data.Memory.Usage.Limit, 96<<20)
		}
		if res := rtCmd(nil, "update", "--memory", "lots", id); res.Code == 0 || !strings.Contains(res.Stderr, "memory") {
			t.Errorf("update --memory lots: exit %d, stderr %q", res.Code, res.Stderr)
		}

		// Streaming: an "oom" event when a process inside exceeds the
		// limit, stats every interval, and the end once the container goes.
		oomer := p.name("oom")
		p.ok(append(p.runArgs("-d", "--memory", "16m", "--memory-swap", "16m", "--name", oomer), "sleep", "1000")...)
		oomID := p.noteID(oomer)
		var evOut bytes.Buffer
		events := exec.Command(rt.Real, "--root", p.runtimeRoot(), "events", "--interval", "200ms", oomID)
		events.Stdout = &evOut
		if err := events.Start(); err != nil {
			t.Fatal(err)
		}
		evDone := make(chan error, 1)
		go func() { evDone <- events.Wait() }()
		time.Sleep(500 * time.Millisecond)
		p.cmd(nil, "exec", oomer, "sh", "-c", "x=$(head -c 64000000 /dev/zero | tr '\\0' x); echo ${#x}")
		time.Sleep(500 * time.Millisecond)
		p.ok("rm", "--force", "--time", "0", oomer)
		select {
		case <-evDone:
		case <-time.After(15 * time.Second):
			events.Process.Kill()
			<-evDone
			t.Errorf("events did not end after the container was removed")
		}
		var sawOOM, sawStats bool
		for _, line := range strings.Split(strings.TrimSpace(evOut.String()), "\n") {
			var e struct{ Type, ID string }
			if err := json.Unmarshal([]byte(line), &e); err != nil || e.ID != oomID {
				t.Errorf("events: bad line %q", line)
				continue
			}
			sawOOM = sawOOM || e.Type == "oom"
			sawStats = sawStats || e.Type == "stats"
		}
		if !sawOOM || !sawStats {
			t.Errorf("events: oom seen %v, stats seen %v:\n%s", sawOOM, sawStats, evOut.String())
		}
		res = runCmd(t, 30*time.Second, nil, nil, rt.Real, "--root", p.runtimeRoot(), "delete", "--force", "pod-never-existed")
		if res.Code != 0 {
			t.Errorf("delete --force of a missing container: exit %d: %s", res.Code, res.Stderr)
		}
		p.finish()
	})
}

// TestPodmanPreserveFDsAndSocketActivation: --preserve-fds on run and exec,
// and systemd socket activation (LISTEN_FDS) passed through to the
// container's process.
func TestPodmanPreserveFDsAndSocketActivation(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt clientRuntime) {
		p := newPodman(t, rt, true)
		file := filepath.Join(t.TempDir(), "fd3")
		if err := os.WriteFile(file, []byte("through fd 3\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		open := func() []*os.File {
			f, err := os.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			return []*os.File{f}
		}
		env := []string{"CONTAINERS_CONF=" + p.conf}
		res := runCmdFiles(t, podmanTimeout, env, nil, open(), "podman",
			p.fullArgs(append(p.runArgs("--rm", "--preserve-fds", "1", "--name", p.name("pfd")), "sh", "-c", "cat <&3")...)...)
		if res.Code != 0 || res.Stdout != "through fd 3\n" {
			t.Errorf("run --preserve-fds 1: exit %d, %q, %s", res.Code, res.Stdout, res.Stderr)
		}
		box := p.name("pfdbox")
		p.ok(append(p.runArgs("-d", "--name", box), "sleep", "1000")...)
		p.noteID(box)
		res = runCmdFiles(t, podmanTimeout, env, nil, open(), "podman", p.fullArgs("exec", "--preserve-fds", "1", box, "sh", "-c", "cat <&3")...)
		if res.Code != 0 || res.Stdout != "through fd 3\n" {
			t.Errorf("exec --preserve-fds 1: exit %d, %q, %s", res.Code, res.Stdout, res.Stderr)
		}
		var q []string
		for _, a := range append([]string{"podman"}, p.fullArgs(append(p.runArgs("--rm", "--name", p.name("listen")), "sh", "-c", "echo $LISTEN_FDS $LISTEN_PID; cat <&3")...)...) {
			q = append(q, shellQuote(a))
		}
		res = runCmdFiles(t, podmanTimeout, env, nil, open(), "sh", "-c", "LISTEN_PID=$$ LISTEN_FDS=1 exec "+strings.Join(q, " "))
		if res.Code != 0 || res.Stdout != "1 1\nthrough fd 3\n" {
			t.Errorf("socket activation: exit %d, %q, %s", res.Code, res.Stdout, res.Stderr)
		}
		rt.assertCalled(t, "create", "--preserve-fds")
		rt.assertCalled(t, "exec", "--preserve-fds")
		p.finish()
	})
}
