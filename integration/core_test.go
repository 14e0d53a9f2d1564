package integration

// The runtime core (issue 2): every OCI command against real busybox
// containers, driven through the built binary as a user or a shim would.

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestCoreLifecycle walks create → start → state → kill → delete and checks
// every field of the state JSON at each step.
func TestCoreLifecycle(t *testing.T) {
	r := newRunner(t)
	// An init with a TERM handler, so the default signal of kill stops it.
	b := newBundle(t, "sh", "-c", `trap "exit 0" TERM; sleep 1000 & wait`)
	id := coreID(t, r, "life")
	before := time.Now()
	r.coreDetached("create", "--bundle", b.Dir, id)

	st := r.State(id)
	for _, k := range []string{"ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "owner"} {
		if _, ok := st[k]; !ok {
			t.Errorf("state has no %q field: %v", k, st)
		}
	}
	if st["ociVersion"] != b.Spec.Version || st["id"] != id || st["status"] != "created" ||
		st["bundle"] != b.Dir || st["rootfs"] != b.Rootfs {
		t.Errorf("state after create: %v", st)
	}
	if _, ok := st["owner"].(string); !ok {
		t.Errorf("state owner %v is not a string", st["owner"])
	}
	created, err := time.Parse(time.RFC3339Nano, fmt.Sprint(st["created"]))
	if err != nil || created.Before(before.Add(-time.Minute)) || created.After(time.Now().Add(time.Minute)) {
		t.Errorf("state created %v: %v (want about now)", st["created"], err)
	}
	pid := r.corePid(id)
	// Created: the init waits inside the container, still nucleus, not sh.
	if c := cmdline(pid); !strings.HasSuffix(c, " init") {
		t.Errorf("created container's init runs %q, want the runtime's init waiting for start", c)
	}

	r.OK("start", id)
	st = r.State(id)
	if st["status"] != "running" || int(st["pid"].(float64)) != pid {
		t.Errorf("state after start: %v (pid before %d)", st, pid)
	}
	waitFor(t, "the container's sh to run", func() bool { return strings.HasPrefix(cmdline(pid), "sh -c") })
	r.Fail([]string{"cannot start container " + id, "running"}, "start", id)

	r.OK("kill", id) // SIGTERM by default
	r.WaitStatus(id, "stopped")
	st = r.State(id)
	if st["pid"].(float64) != 0 || st["id"] != id || st["bundle"] != b.Dir {
		t.Errorf("state after stop: %v", st)
	}
	if alive(pid) {
		t.Errorf("init %d still alive after the container stopped", pid)
	}
	r.Fail([]string{"cannot start container " + id + ": it has stopped"}, "start", id)
	r.Fail([]string{"kill " + id + ": container is not running"}, "kill", id, "KILL")

	r.OK("delete", id)
	r.Fail([]string{"container " + id, "does not exist"}, "state", id)
	assertNoLeftovers(t, r.Root, id, b.Dir)
}

// TestCoreDeleteCreated removes a container whose process never started.
func TestCoreDeleteCreated(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "sleep", "1000")
	id := coreID(t, r, "delc")
	r.coreDetached("create", "--bundle", b.Dir, id)
	pid := r.corePid(id)
	r.OK("delete", id)
	if alive(pid) {
		t.Errorf("init %d of a deleted created container still alive", pid)
	}
	assertNoLeftovers(t, r.Root, id, b.Dir)
}

func TestCoreRunExitCode(t *testing.T) {
	r := newRunner(t)
	for _, code := range []int{0, 1, 7, 255} {
		b := newBundle(t, "sh", "-c", fmt.Sprintf("echo bye; exit %d", code))
		id := coreID(t, r, "exit")
		res := r.Run(nil, "run", "--bundle", b.Dir, id)
		if res.Code != code || res.Stdout != "bye\n" {
			t.Errorf("run exit %d: got code %d, stdout %q, stderr %q", code, res.Code, res.Stdout, res.Stderr)
		}
		assertNoLeftovers(t, r.Root, id, b.Dir)
	}
}

// TestCoreRunKilledBySignal: an init killed by signal N makes `run` exit
// with 128+N, whether the signal is given by name or number.
func TestCoreRunKilledBySignal(t *testing.T) {
	r := newRunner(t)
	for _, sig := range []struct {
		arg  string
		code int
	}{{"9", 137}, {"SIGKILL", 137}} {
		b := newBundle(t, "sleep", "1000")
		id := coreID(t, r, "sig")
		run := r.coreBackground(nil, "run", "--bundle", b.Dir, id)
		waitFor(t, id+" running", func() bool {
			res := r.Run(nil, "state", id)
			return res.Code == 0 && strings.Contains(res.Stdout, `"running"`)
		})
		r.OK("kill", id, sig.arg)
		res := run.wait(t)
		if res.Code != sig.code {
			t.Errorf("run killed with %s: exit %d, want %d; stderr %q", sig.arg, res.Code, sig.code, res.Stderr)
		}
		assertNoLeftovers(t, r.Root, id, b.Dir)
	}
}

// TestCoreRunForwardsSignals: a signal sent to `nucleus run` reaches the
// container's process.
func TestCoreRunForwardsSignals(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "sh", "-c", `trap "echo got-usr1; exit 42" USR1; echo ready; sleep 1000 & wait`)
	id := coreID(t, r, "fwd")
	run := r.coreBackground(nil, "run", "--bundle", b.Dir, id)
	waitFor(t, "the container to trap USR1", func() bool { return strings.Contains(run.stdout.String(), "ready") })
	if err := run.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	res := run.wait(t)
	if res.Code != 42 || !strings.Contains(res.Stdout, "got-usr1") {
		t.Errorf("run after SIGUSR1: exit %d, stdout %q, stderr %q; want 42 and got-usr1", res.Code, res.Stdout, res.Stderr)
	}
	assertNoLeftovers(t, r.Root, id, b.Dir)
}

func TestCoreStdio(t *testing.T) {
	r := newRunner(t)

	b := newBundle(t, "cat")
	data := make([]byte, 1<<20+7)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	id := coreID(t, r, "cat")
	res := r.Run(data, "run", "--bundle", b.Dir, id)
	if res.Code != 0 {
		t.Fatalf("run cat: exit %d: %s", res.Code, res.Stderr)
	}
	if !bytes.Equal([]byte(res.Stdout), data) {
		t.Errorf("cat returned %d bytes, sent %d; identical: false", len(res.Stdout), len(data))
	}
	assertNoLeftovers(t, r.Root, id, b.Dir)

	b = newBundle(t, "sh", "-c", `read line; echo "out:$line"; echo "err:$line" >&2; exit 3`)
	id = coreID(t, r, "rw")
	res = r.Run([]byte("hello world\n"), "run", "--bundle", b.Dir, id)
	if res.Code != 3 || res.Stdout != "out:hello world\n" || res.Stderr != "err:hello world\n" {
		t.Errorf("run read/echo: code %d stdout %q stderr %q", res.Code, res.Stdout, res.Stderr)
	}
	assertNoLeftovers(t, r.Root, id, b.Dir)

	// stdin at EOF straight away: the process sees EOF, nothing hangs.
	b = newBundle(t, "sh", "-c", `wc -c`)
	id = coreID(t, r, "eof")
	res = r.Run([]byte{}, "run", "--bundle", b.Dir, id)
	if res.Code != 0 || strings.TrimSpace(res.Stdout) != "0" {
		t.Errorf("run wc -c with empty stdin: code %d stdout %q stderr %q", res.Code, res.Stdout, res.Stderr)
	}
}

// TestCoreCreatePidFile: the pid file exists as soon as create returns and
// holds the pid `state` reports; start then runs the process.
func TestCoreCreatePidFile(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "sleep", "1000")
	id := coreID(t, r, "pidf")
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "init.pid")
	r.coreDetached("create", "--bundle", b.Dir, "--pid-file", pidFile, id)
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("pid file after create returned: %v", err)
	}
	filePid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatalf("pid file holds %q", data)
	}
	if statePid := r.corePid(id); statePid != filePid {
		t.Errorf("pid file %d, state pid %d", filePid, statePid)
	}
	if !alive(filePid) {
		t.Errorf("pid %d from the pid file is not alive", filePid)
	}
	// No temporary file is left next to it.
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("pid file dir holds %d entries, want 1", len(entries))
	}
	r.OK("start", id)
	r.WaitStatus(id, "running")
	waitFor(t, "sleep to run", func() bool { return cmdline(filePid) == "sleep 1000" })

	// A relative pid file is relative to the caller's directory, not the bundle's.
	id2 := coreID(t, r, "pidrel")
	cmd := r.Cmd("create", "--bundle", b.Dir, "--pid-file", "rel.pid", id2)
	cmd.Dir = dir
	null, _ := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	defer null.Close()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, null
	if err := cmd.Run(); err != nil {
		t.Fatalf("create --pid-file rel.pid: %v", err)
	}
	if got := readTrim(filepath.Join(dir, "rel.pid")); got != strconv.Itoa(r.corePid(id2)) {
		t.Errorf("relative pid file holds %q, state pid %d", got, r.corePid(id2))
	}

	r.OK("delete", "--force", id)
	r.OK("delete", "--force", id2)
	assertNoLeftovers(t, r.Root, id, b.Dir)
	assertNoLeftovers(t, r.Root, id2, b.Dir)
}

func TestCoreRunDetached(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "sh", "-c", "echo started > /dev/shm/mark; exec sleep 1000")
	id := coreID(t, r, "runD")
	pidFile := filepath.Join(t.TempDir(), "pid")
	r.coreDetached("run", "-d", "--pid-file", pidFile, "--bundle", b.Dir, id)
	st := r.State(id)
	if st["status"] != "running" {
		t.Fatalf("state after run -d: %v", st)
	}
	pid := r.corePid(id)
	if readTrim(pidFile) != strconv.Itoa(pid) {
		t.Errorf("pid file %q, state pid %d", readTrim(pidFile), pid)
	}
	waitFor(t, "the process to run", func() bool { return readTrim(inContainer(pid, "/dev/shm/mark")) == "started" })
	r.OK("kill", id, "KILL")
	r.WaitStatus(id, "stopped")
	r.OK("delete", id)
	assertNoLeftovers(t, r.Root, id, b.Dir)
}

func TestCoreExec(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "sleep", "1000")
	id := coreID(t, r, "exec")
	r.coreDetached("run", "-d", "--bundle", b.Dir, id)
	initPid := r.corePid(id)

	res := r.Run(nil, "exec", id, "sh", "-c", "echo in-$(hostname); exit 3")
	if res.Code != 3 || res.Stdout != "in-nucleus\n" {
		t.Errorf("exec exit 3: code %d stdout %q stderr %q", res.Code, res.Stdout, res.Stderr)
	}
	// The exec'd process is in the container's pid namespace.
	res = r.Run(nil, "exec", id, "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '")
	if res.Code != 0 || strings.TrimSpace(res.Stdout) != "sleep 1000" {
		t.Errorf("exec sees pid 1 as %q (code %d, stderr %q)", res.Stdout, res.Code, res.Stderr)
	}

	res = r.Run(nil, "exec", "--env", "FOO=bar", "--env", "BAZ=qux x", "--cwd", "/tmp", "--user", "65534:65534", id,
		"sh", "-c", `echo "$FOO|$BAZ|$(pwd)|$(id -u)|$(id -g)"`)
	if res.Code != 0 || res.Stdout != "bar|qux x|/tmp|65534|65534\n" {
		t.Errorf("exec --env --cwd --user: code %d stdout %q stderr %q", res.Code, res.Stdout, res.Stderr)
	}
	// The config's env is kept under --env.
	res = r.Run(nil, "exec", "--env", "FOO=bar", id, "sh", "-c", `echo "$PATH"`)
	if !strings.Contains(res.Stdout, "/bin") {
		t.Errorf("exec --env dropped the config's PATH: %q", res.Stdout)
	}
	res = r.Run(nil, "exec", "--user", "65534", id, "id", "-u")
	if res.Code != 0 || res.Stdout != "65534\n" {
		t.Errorf("exec --user 65534: code %d stdout %q stderr %q", res.Code, res.Stdout, res.Stderr)
	}

	// Stdin reaches an exec'd process.
	res = r.Run([]byte("piped\n"), "exec", id, "cat")
	if res.Code != 0 || res.Stdout != "piped\n" {
		t.Errorf("exec cat: code %d stdout %q stderr %q", res.Code, res.Stdout, res.Stderr)
	}

	// --process FILE describes the whole process.
	proc := specs.Process{
		Args: []string{"sh", "-c", `echo "$X $(pwd) $(id -u)"; exit 4`},
		Env:  []string{"PATH=/bin", "X=from-process-file"},
		Cwd:  "/dev",
		User: specs.User{UID: 65534, GID: 65534},
	}
	procFile := filepath.Join(t.TempDir(), "process.json")
	data, _ := json.Marshal(proc)
	os.WriteFile(procFile, data, 0o644)
	res = r.Run(nil, "exec", "--process", procFile, id)
	if res.Code != 4 || res.Stdout != "from-process-file /dev 65534\n" {
		t.Errorf("exec --process: code %d stdout %q stderr %q", res.Code, res.Stdout, res.Stderr)
	}

	// exec -d --pid-file: returns at once; the pid is the process, in the container.
	pidFile := filepath.Join(t.TempDir(), "exec.pid")
	r.coreDetached("exec", "-d", "--pid-file", pidFile, id, "sleep", "1001")
	execPid, err := strconv.Atoi(readTrim(pidFile))
	if err != nil {
		t.Fatalf("exec -d pid file: %q", readTrim(pidFile))
	}
	waitFor(t, "the detached exec to run", func() bool { return cmdline(execPid) == "sleep 1001" })
	if pids := r.corePs(id); !slices.Contains(pids, execPid) || !slices.Contains(pids, initPid) {
		t.Errorf("ps %v lacks the detached exec %d or init %d", pids, execPid, initPid)
	}

	// Failures: exit 255 (runc's code for a failed exec) and one line.
	res = r.Run(nil, "exec", id, "/no/such/binary")
	if res.Code != 255 || !strings.Contains(res.Stderr, "exec failed") || !strings.Contains(res.Stderr, "/no/such/binary") {
		t.Errorf("exec of a missing binary: code %d stderr %q", res.Code, res.Stderr)
	}
	r.Fail([]string{"exec failed", "no command given"}, "exec", id)
	r.Fail([]string{"exec failed", `--user "nobody": uid: "nobody" is not a number`}, "exec", "--user", "nobody", id, "true")
	r.Fail([]string{"exec failed", "process.json", "no such file"}, "exec", "--process", filepath.Join(t.TempDir(), "process.json"), id)
	os.WriteFile(procFile, []byte(`{"args": "sh", "cwd": "/"}`), 0o644)
	r.Fail([]string{"exec failed", procFile + ": args: expected an array of strings"}, "exec", "--process", procFile, id)
	r.Fail([]string{"exec failed: --cwd \"rel\": not an absolute path"}, "exec", "--cwd", "rel", id, "true")
	r.Fail([]string{"exec failed: --env \"NOEQ\": not KEY=VALUE"}, "exec", "--env", "NOEQ", id, "true")

	r.OK("kill", id, "KILL")
	r.WaitStatus(id, "stopped")
	r.Fail([]string{"exec failed", "cannot exec in container " + id + ": it has stopped"}, "exec", id, "true")
	if alive(execPid) {
		t.Errorf("detached exec %d outlived its container", execPid)
	}
	r.OK("delete", id)
	assertNoLeftovers(t, r.Root, id, b.Dir)
}

// sigRecorder is an init that logs the signals it receives to
// /dev/shm/sigs, after writing /dev/shm/ready once its traps are set.
var sigRecorder = []string{"sh", "-c", `trap "echo TERM >> /dev/shm/sigs" TERM
trap "echo USR1 >> /dev/shm/sigs" USR1
trap "echo HUP >> /dev/shm/sigs" HUP
echo ready > /dev/shm/ready
while :; do sleep 1000 & wait; done`}

func TestCoreKill(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, sigRecorder...)
	id := coreID(t, r, "kill")
	r.coreDetached("run", "-d", "--bundle", b.Dir, id)
	pid := r.corePid(id)
	ready, sigs := inContainer(pid, "/dev/shm/ready"), inContainer(pid, "/dev/shm/sigs")
	waitFor(t, "the traps", func() bool { return readTrim(ready) == "ready" })

	want := []string{}
	for _, s := range []struct{ arg, name string }{
		{"SIGTERM", "TERM"}, {"term", "TERM"}, {"15", "TERM"}, {"", "TERM"},
		{"USR1", "USR1"}, {"sigusr1", "USR1"}, {"10", "USR1"}, {"SIGHUP", "HUP"}, {"1", "HUP"},
	} {
		args := []string{"kill", id}
		if s.arg != "" {
			args = append(args, s.arg)
		}
		r.OK(args...)
		want = append(want, s.name)
		waitFor(t, fmt.Sprintf("signal %q to arrive as %s", s.arg, s.name), func() bool {
			return readTrim(sigs) == strings.Join(want, "\n")
		})
	}

	for _, bad := range []string{"BOGUS", "SIGNOPE", "0", "65", "-1"} {
		r.Fail([]string{"invalid signal", strconv.Quote(bad)}, "kill", id, bad)
	}
	r.Fail([]string{`"kill" requires a maximum of 2 argument(s)`}, "kill", id, "TERM", "extra")
	if st := r.State(id); st["status"] != "running" {
		t.Fatalf("container not running after bad kills: %v", st)
	}
	if got := readTrim(sigs); got != strings.Join(want, "\n") {
		t.Errorf("signals after bad kills: %q", got)
	}

	r.OK("kill", id, "9")
	r.WaitStatus(id, "stopped")
	r.OK("delete", id)
	assertNoLeftovers(t, r.Root, id, b.Dir)

	// KILL by name, on a second container.
	id = coreID(t, r, "kill2")
	r.coreDetached("run", "-d", "--bundle", b.Dir, id)
	r.OK("kill", id, "KILL")
	r.WaitStatus(id, "stopped")
	r.OK("delete", id)
	assertNoLeftovers(t, r.Root, id, b.Dir)
}

// TestCoreKillAll: --all reaches every process, not only init. The init (sh
// as pid 1 without a handler) ignores TERM; its children do not.
func TestCoreKillAll(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "sh", "-c", `sleep 1001 & sleep 1002 & wait; echo children-gone > /dev/shm/mark; exec sleep 1003`)
	id := coreID(t, r, "killall")
	r.coreDetached("run", "-d", "--bundle", b.Dir, id)
	initPid := r.corePid(id)
	waitFor(t, "three processes", func() bool { return len(r.corePs(id)) == 3 })
	children := slices.DeleteFunc(r.corePs(id), func(p int) bool { return p == initPid })

	// Without --all, TERM reaches init only, which ignores it.
	r.OK("kill", id, "TERM")
	r.OK("kill", "--all", id, "TERM")
	waitFor(t, "the children to die", func() bool { return readTrim(inContainer(initPid, "/dev/shm/mark")) == "children-gone" })
	for _, p := range children {
		if alive(p) {
			t.Errorf("child %d alive after kill --all TERM", p)
		}
	}
	waitFor(t, "init to exec sleep 1003", func() bool { return cmdline(initPid) == "sleep 1003" })
	if st := r.State(id); st["status"] != "running" {
		t.Errorf("state after kill --all TERM: %v", st)
	}

	r.OK("kill", "-a", id, "KILL")
	r.WaitStatus(id, "stopped")
	// --all on a stopped container is not an error (as runc).
	r.OK("kill", "--all", id, "KILL")
	r.OK("delete", id)
	assertNoLeftovers(t, r.Root, id, b.Dir)
}

func TestCoreDeleteRunning(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "sh", "-c", "sleep 1000 & sleep 1001 & wait")
	id := coreID(t, r, "delrun")
	r.coreDetached("run", "-d", "--bundle", b.Dir, id)
	pid := r.corePid(id)
	waitFor(t, "three processes", func() bool { return len(r.corePs(id)) == 3 })
	pids := r.corePs(id)

	r.Fail([]string{"cannot delete container " + id + ": it is running", "--force"}, "delete", id)
	if st := r.State(id); st["status"] != "running" || !alive(pid) {
		t.Fatalf("refused delete disturbed the container: %v", st)
	}

	r.OK("delete", "--force", id)
	for _, p := range pids {
		if alive(p) {
			t.Errorf("process %d alive after delete --force", p)
		}
	}
	r.Fail([]string{"container " + id, "does not exist"}, "state", id)
	assertNoLeftovers(t, r.Root, id, b.Dir)

	// Forced delete of an unknown id succeeds (containerd's cleanup relies on it).
	r.OK("delete", "--force", "core-never-existed")
	r.OK("delete", "-f", id)
}

// TestCoreDeletePaused: delete --force works on a frozen container too.
func TestCoreDeletePaused(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "sleep", "1000")
	id := coreID(t, r, "delpause")
	r.coreDetached("run", "-d", "--bundle", b.Dir, id)
	r.OK("pause", id)
	r.Fail([]string{"cannot delete container " + id + ": it is paused"}, "delete", id)
	r.OK("delete", "--force", id)
	assertNoLeftovers(t, r.Root, id, b.Dir)
}

func TestCorePauseResume(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "sh", "-c", `i=0; while :; do i=$((i+1)); echo $i > /dev/shm/n; done`)
	id := coreID(t, r, "pause")
	r.coreDetached("run", "-d", "--bundle", b.Dir, id)
	pid := r.corePid(id)
	counter := inContainer(pid, "/dev/shm/n")
	counterAdvances := func(what string) {
		t.Helper()
		first := readTrim(counter)
		waitFor(t, what, func() bool { v := readTrim(counter); return v != "" && v != first })
	}
	counterAdvances("the counter to run")
	freezer := cgroupFile(id, "freezer", "freezer.state", "cgroup.freeze")
	frozen, thawed := "FROZEN", "THAWED"
	if cgroupV2() {
		frozen, thawed = "1", "0"
	}

	r.OK("pause", id)
	if st := r.State(id); st["status"] != "paused" {
		t.Errorf("state after pause: %v", st["status"])
	}
	if got := readTrim(freezer); got != frozen {
		t.Errorf("%s = %q after pause, want %s", freezer, got, frozen)
	}
	// Frozen: the counter stays put across many reads, and exec is refused.
	v := readTrim(counter)
	for range 30 {
		time.Sleep(10 * time.Millisecond)
		if now := readTrim(counter); now != v {
			t.Fatalf("counter moved from %q to %q while paused", v, now)
		}
	}
	r.Fail([]string{"cannot exec in container " + id + ": it is paused"}, "exec", id, "true")
	r.Fail([]string{"pause " + id}, "pause", id)
	if got := readTrim(counter); got != v {
		t.Fatalf("counter moved from %q to %q while paused", v, got)
	}

	r.OK("resume", id)
	if st := r.State(id); st["status"] != "running" {
		t.Errorf("state after resume: %v", st["status"])
	}
	if got := readTrim(freezer); got != thawed {
		t.Errorf("%s = %q after resume, want %s", freezer, got, thawed)
	}
	counterAdvances("the counter to advance after resume")
	r.Fail([]string{"resume " + id + ": container is not paused"}, "resume", id)

	r.OK("kill", id, "KILL")
	r.WaitStatus(id, "stopped")
	r.Fail([]string{"pause " + id + ": container is not running"}, "pause", id)
	r.OK("delete", id)
	assertNoLeftovers(t, r.Root, id, b.Dir)
}

func TestCorePsAndList(t *testing.T) {
	r := newRunner(t)
	if res := r.OK("list", "--format", "json"); strings.TrimSpace(res.Stdout) != "null" && strings.TrimSpace(res.Stdout) != "[]" {
		t.Errorf("list on an empty root: %q", res.Stdout)
	}
	b := newBundle(t, "sh", "-c", "sleep 1234 & wait")
	running := coreID(t, r, "ps")
	created := coreID(t, r, "ps2")
	r.coreDetached("run", "-d", "--bundle", b.Dir, running)
	r.coreDetached("create", "--bundle", b.Dir, created)
	pid := r.corePs
	initPid := r.corePid(running)
	waitFor(t, "two processes", func() bool { return len(pid(running)) == 2 })
	pids := pid(running)
	if !slices.Contains(pids, initPid) {
		t.Errorf("ps json %v lacks init %d", pids, initPid)
	}
	var sleepPid int
	for _, p := range pids {
		if cmdline(p) == "sleep 1234" {
			sleepPid = p
		}
	}
	if sleepPid == 0 {
		t.Fatalf("ps json %v: no pid runs sleep 1234", pids)
	}

	res := r.OK("ps", running)
	lines := strings.Split(strings.TrimSpace(res.Stdout), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "PID") || !strings.Contains(lines[0], "CMD") {
		t.Fatalf("ps table: %q", res.Stdout)
	}
	for _, p := range []int{initPid, sleepPid} {
		found := false
		for _, l := range lines[1:] {
			if slices.Contains(strings.Fields(l), strconv.Itoa(p)) {
				found = true
			}
		}
		if !found {
			t.Errorf("ps table has no row for %d: %q", p, res.Stdout)
		}
	}
	if !strings.Contains(res.Stdout, "sleep 1234") {
		t.Errorf("ps table lacks the sleep command: %q", res.Stdout)
	}
	// ps options are passed to ps(1).
	res = r.OK("ps", running, "-o", "pid,comm")
	if !strings.HasPrefix(strings.TrimSpace(res.Stdout), "PID") || !strings.Contains(res.Stdout, "sleep") {
		t.Errorf("ps -o pid,comm: %q", res.Stdout)
	}
	r.Fail([]string{`--format "yaml": want table or json`}, "ps", "--format", "yaml", running)

	res = r.OK("list", "--format", "json")
	var list []map[string]any
	if err := json.Unmarshal([]byte(res.Stdout), &list); err != nil {
		t.Fatalf("list json: %v: %q", err, res.Stdout)
	}
	byID := map[string]map[string]any{}
	for _, s := range list {
		byID[fmt.Sprint(s["id"])] = s
	}
	if len(list) != 2 || byID[running]["status"] != "running" || byID[created]["status"] != "created" ||
		byID[running]["pid"] != float64(initPid) || byID[running]["bundle"] != b.Dir || byID[running]["owner"] != "root" {
		t.Errorf("list json: %v", list)
	}

	res = r.OK("list", "-q")
	ids := strings.Fields(res.Stdout)
	slices.Sort(ids)
	want := []string{running, created}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("list -q: %q, want %v", res.Stdout, want)
	}

	res = r.OK("list")
	lines = strings.Split(strings.TrimSpace(res.Stdout), "\n")
	if len(lines) != 3 || strings.Join(strings.Fields(lines[0]), " ") != "ID PID STATUS BUNDLE CREATED OWNER" {
		t.Fatalf("list table: %q", res.Stdout)
	}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) != 6 || f[3] != b.Dir || f[5] != "root" {
			t.Errorf("list row %q", l)
		}
		switch f[0] {
		case running:
			if f[1] != strconv.Itoa(initPid) || f[2] != "running" {
				t.Errorf("list row %q", l)
			}
		case created:
			if f[2] != "created" {
				t.Errorf("list row %q", l)
			}
		default:
			t.Errorf("list row for unknown id: %q", l)
		}
	}
	r.Fail([]string{`--format "xml": want table or json`}, "list", "--format", "xml")

	r.OK("delete", "--force", running)
	r.OK("delete", "--force", created)
	if res := r.OK("list", "-q"); strings.TrimSpace(res.Stdout) != "" {
		t.Errorf("list -q after deletes: %q", res.Stdout)
	}
	assertNoLeftovers(t, r.Root, running, b.Dir)
	assertNoLeftovers(t, r.Root, created, b.Dir)
}

// TestCoreCgroupLimits: resources from config.json are in the container's
// cgroup, seen from the host and from inside, and an empty cgroupsPath puts
// the container at /<id> in every hierarchy even when nucleus itself runs in
// a nested cgroup.
func TestCoreCgroupLimits(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "sleep", "1000")
	mem, pids := int64(64<<20), int64(50)
	b.Spec.Linux.Resources = &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: &mem},
		Pids:   &specs.LinuxPids{Limit: &pids},
	}
	b.Spec.Linux.CgroupsPath = ""
	b.Save(t)
	// Run nucleus from a nested cgroup in every hierarchy where the test
	// itself sits at the root, so that nesting under the caller would show.
	// (Made first, so that it is removed after the container is.)
	nests := nestCgroups(t, coreID(t, r, "nest"))
	id := coreID(t, r, "cg")
	wrapper := `for d in ` + strings.Join(nests, " ") + `; do echo $$ > "$d/cgroup.procs" || exit 99; done; exec "$@"`
	args := append([]string{"-c", wrapper, "sh", r.Bin, "--root", r.Root}, "run", "-d", "--bundle", b.Dir, id)
	out, err := execCommand("/bin/sh", args...)
	if err != nil {
		t.Fatalf("nucleus run -d from a nested cgroup: %v: %s", err, out)
	}
	pid := r.corePid(id)

	cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	lines := strings.Split(strings.TrimSpace(string(cg)), "\n")
	if len(lines) == 0 {
		t.Fatalf("no cgroups for %d", pid)
	}
	for _, l := range lines {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 || parts[2] != "/"+id {
			t.Errorf("container init cgroup line %q, want path /%s in every hierarchy", l, id)
		}
	}

	memFile := cgroupFile(id, "memory", "memory.limit_in_bytes", "memory.max")
	pidsFile := cgroupFile(id, "pids", "pids.max", "pids.max")
	if got := readTrim(memFile); got != strconv.FormatInt(mem, 10) {
		t.Errorf("%s = %q, want %d", memFile, got, mem)
	}
	if got := readTrim(pidsFile); got != "50" {
		t.Errorf("%s = %q, want 50", pidsFile, got)
	}
	// From inside: the cgroup mount shows the container's own cgroup.
	inside := []string{"/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/pids/pids.max"}
	if cgroupV2() {
		inside = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/pids.max"}
	}
	res := r.Run(nil, append([]string{"exec", id, "cat"}, inside...)...)
	if res.Code != 0 || res.Stdout != fmt.Sprintf("%d\n50\n", mem) {
		t.Errorf("limits read inside: code %d stdout %q stderr %q", res.Code, res.Stdout, res.Stderr)
	}
	// The pids limit is enforced: 60 more processes cannot all start.
	res = r.Run(nil, "exec", id, "sh", "-c", `n=0; while [ $n -lt 60 ]; do sleep 1000 >/dev/null 2>&1 & n=$((n+1)); done`)
	if !strings.Contains(res.Stderr, "can't fork") && !strings.Contains(res.Stderr, "Resource temporarily unavailable") {
		t.Errorf("60 forks under pids.max 50: code %d stderr %q", res.Code, res.Stderr)
	}
	if n := len(r.corePs(id)); n > 50 {
		t.Errorf("%d processes under pids.max 50", n)
	}

	r.OK("delete", "--force", id)
	assertNoLeftovers(t, r.Root, id, b.Dir)
}

// nestCgroups makes a child cgroup called name in each hierarchy where this
// process sits at the root and returns their paths; they are removed when
// the test ends.
func nestCgroups(t *testing.T, name string) []string {
	t.Helper()
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, l := range strings.Split(strings.TrimSpace(string(self)), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 || parts[2] != "/" {
			continue
		}
		var mount string
		switch {
		case cgroupV2():
			mount = "/sys/fs/cgroup"
		case parts[1] == "":
			mount = "/sys/fs/cgroup/unified"
		default:
			mount = filepath.Join("/sys/fs/cgroup", strings.TrimPrefix(strings.Split(parts[1], ",")[0], "name="))
		}
		if _, err := os.Stat(filepath.Join(mount, "cgroup.procs")); err != nil {
			continue
		}
		d := filepath.Join(mount, name)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatalf("nest cgroup: %v", err)
		}
		if strings.HasSuffix(mount, "/cpuset") {
			// A v1 cpuset child needs cpus and mems before it takes tasks.
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				os.WriteFile(filepath.Join(d, f), []byte(readTrim(filepath.Join(mount, f))), 0o644)
			}
		}
		dirs = append(dirs, d)
		t.Cleanup(func() { os.Remove(d) })
	}
	if len(dirs) == 0 {
		t.Logf("the test runs in a nested cgroup in every hierarchy already")
	}
	return dirs
}

// TestCoreDeleteStoppedKillsStrays: without a pid namespace a child can
// outlive init; delete of the stopped container kills it with the cgroup.
func TestCoreDeleteStoppedKillsStrays(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "sh", "-c", "sleep 1777 >/dev/null 2>&1 & exit 0")
	b.Spec.Linux.Namespaces = slices.DeleteFunc(b.Spec.Linux.Namespaces, func(n specs.LinuxNamespace) bool {
		return n.Type == specs.PIDNamespace
	})
	b.Save(t)
	id := coreID(t, r, "stray")
	r.coreDetached("run", "-d", "--bundle", b.Dir, id)
	r.WaitStatus(id, "stopped")
	pids := r.corePs(id)
	if len(pids) != 1 || cmdline(pids[0]) != "sleep 1777" {
		t.Fatalf("stopped container's cgroup holds %v, want the stray sleep", pids)
	}
	r.OK("delete", id)
	if alive(pids[0]) {
		t.Errorf("stray %d alive after delete", pids[0])
	}
	assertNoLeftovers(t, r.Root, id, b.Dir)
}
