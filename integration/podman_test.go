package integration

// Real podman (Debian's 4.3, with conmon) driving nucleus, and Debian's
// runc as the reference, with the same assertions (issue 5). Each test has
// its own podman: a containers.conf, storage root, runroot and tmp dir in a
// temp dir, passed by CONTAINERS_CONF and --root/--runroot, so nothing of
// the host's podman is read or touched.

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
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
	// The runtime kept its state in the test's own root, not in its
	// default one on the host (which nobody would remove).
	if root := p.runtimeRoot(); root == "/run/"+p.rt.Name {
		p.t.Errorf("podman ran the runtime with its default state root %s", root)
	}
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
		waitForUpTo(t, 10*time.Second, "trapper ready", func() bool { return strings.Contains(p.ok("logs", trapper), "ready") })
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
