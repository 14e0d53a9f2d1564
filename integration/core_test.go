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
	r.Fail([]string{"exec failed", `--user: "nobody": uid: "nobody" is not a number`}, "exec", "--user", "nobody", id, "true")
	r.Fail([]string{"exec failed", "process.json", "no such file"}, "exec", "--process", filepath.Join(t.TempDir(), "process.json"), id)
	os.WriteFile(procFile, []byte(`{"args": "sh", "cwd": "/"}`), 0o644)
	r.Fail([]string{"exec failed", procFile + ": args: expected an array of strings"}, "exec", "--process", procFile, id)
	r.Fail([]string{"exec failed: --cwd: \"rel\": not an absolute path"}, "exec", "--cwd", "rel", id, "true")
	r.Fail([]string{"exec failed: --env: \"NOEQ\": not KEY=VALUE"}, "exec", "--env", "NOEQ", id, "true")

	r.OK("kill", id, "KILL")
	r.WaitStatus(id, "stopped")
	r.Fail([]string{"exec failed", "cannot exec in container " + id + ": it has stopped"}, "exec", id, "true")
	if alive(execPid) {
		t.Errorf("detached exec %d outlived its container", execPid)
	}
	r.OK("delete", id)
	assertNoLeftovers(t, r.Root, id, b.Dir)
}
