package integration

// Helpers for the runtime-core tests (TestCore*). Every container id they
// make starts with "core-" so that helpers running other suites on the same
// machine never collide with these cgroups.

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// coreID returns a fresh container id "core-<name>-<random>" and registers a
// cleanup that force-deletes it, so a failed test leaves no container behind.
func coreID(t testing.TB, r *Runner, name string) string {
	t.Helper()
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	id := "core-" + name + "-" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		// Not via Runner: it must not fail the test a second time.
		_ = r.Cmd("delete", "--force", id).Run()
	})
	return id
}

// exec runs nucleus with stdout and stderr going to files rather than pipes.
// A detached container (create, run -d, exec -d) inherits them and keeps them
// open; with pipes, waiting for the nucleus command would wait for the
// container too. It reports errors instead of failing, so goroutines may
// use it.
func (r *Runner) coreExec(stdin io.Reader, args ...string) (Result, error) {
	return r.coreExecUpTo(60*time.Second, stdin, args...)
}

// errStillRunning: coreExecUpTo gave up on a nucleus command (and killed it).
var errStillRunning = errors.New("still running")

// coreExecUpTo is coreExec with its own limit: past it the command is
// killed and the error wraps errStillRunning.
func (r *Runner) coreExecUpTo(limit time.Duration, stdin io.Reader, args ...string) (Result, error) {
	dir, err := os.MkdirTemp("", "core-out-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(dir)
	outF, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		return Result{}, err
	}
	defer outF.Close()
	errF, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		return Result{}, err
	}
	defer errF.Close()
	cmd := r.Cmd(args...)
	cmd.Stdout, cmd.Stderr, cmd.Stdin = outF, errF, stdin
	if err := cmd.Start(); err != nil {
		return Result{}, fmt.Errorf("start nucleus %v: %w", args, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(limit):
		cmd.Process.Kill()
		<-done
		return Result{}, fmt.Errorf("nucleus %v: %w after %s", args, errStillRunning, limit)
	}
	stdout, _ := os.ReadFile(outF.Name())
	stderr, _ := os.ReadFile(errF.Name())
	return Result{Stdout: string(stdout), Stderr: string(stderr), Code: cmd.ProcessState.ExitCode()}, nil
}

// Detached runs a nucleus command that leaves a container process behind
// (create, run -d, exec -d) and fails the test unless it exits 0.
func (r *Runner) coreDetached(args ...string) Result {
	r.t.Helper()
	res, err := r.coreExec(nil, args...)
	if err != nil {
		r.t.Fatal(err)
	}
	if res.Code != 0 {
		r.t.Fatalf("nucleus %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.Code, res.Stdout, res.Stderr)
	}
	return res
}

// corePid returns the init pid that `state` reports.
func (r *Runner) corePid(id string) int {
	r.t.Helper()
	st := r.State(id)
	pid, ok := st["pid"].(float64)
	if !ok || pid <= 0 {
		r.t.Fatalf("state %s: pid %v", id, st["pid"])
	}
	return int(pid)
}

// corePs returns `ps --format json id`.
func (r *Runner) corePs(id string) []int {
	r.t.Helper()
	res := r.OK("ps", "--format", "json", id)
	var pids []int
	if err := json.Unmarshal([]byte(res.Stdout), &pids); err != nil {
		r.t.Fatalf("ps --format json %s: %v: %q", id, err, res.Stdout)
	}
	return pids
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	waitForUpTo(t, 10*time.Second, what, cond)
}

// waitForUpTo polls cond every 10 ms until it holds or limit passes: the
// one wait of the tests (clients' helpers, runsc and CRIU need longer).
// retryFor calls check until it reports true or limit has passed, and
// returns its last answer (for a value sampled by a daemon, which can be
// empty once under load but must come).
func retryFor(limit time.Duration, check func() (bool, string)) (bool, string) {
	deadline := time.Now().Add(limit)
	for {
		ok, got := check()
		if ok || time.Now().After(deadline) {
			return ok, got
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func waitForUpTo(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// inContainer is the host path of a file inside the container of pid.
func inContainer(pid int, path string) string {
	return filepath.Join("/proc", strconv.Itoa(pid), "root", path)
}

// readTrim reads a file and trims surrounding space; "" if unreadable.
func readTrim(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

// cmdline is a process's argv joined by spaces.
func cmdline(pid int) string {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(strings.ReplaceAll(string(data), "\x00", " "))
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the ")" that closes the command name.
	i := bytes.LastIndexByte(data, ')')
	return i >= 0 && i+2 < len(data) && data[i+2] != 'Z' && data[i+2] != 'X'
}

func cgroupV2() bool {
	_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	return err == nil
}

// cgroupFile is the host path of a cgroup interface file of container id:
// ctrl and v1 name the v1 file, v2 the unified one.
func cgroupFile(id, ctrl, v1, v2 string) string {
	if cgroupV2() {
		return filepath.Join("/sys/fs/cgroup", id, v2)
	}
	return filepath.Join("/sys/fs/cgroup", ctrl, id, v1)
}

// bgRun is a nucleus command running in the background with its output
// collected (for attached `run`, which the test signals while it runs).
type bgRun struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (r *Runner) coreBackground(stdin io.Reader, args ...string) *bgRun {
	r.t.Helper()
	b := &bgRun{cmd: r.Cmd(args...), stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	b.cmd.Stdout, b.cmd.Stderr, b.cmd.Stdin = b.stdout, b.stderr, stdin
	if err := b.cmd.Start(); err != nil {
		r.t.Fatalf("start nucleus %v: %v", args, err)
	}
	go func() { _ = b.cmd.Wait(); close(b.done) }()
	r.t.Cleanup(func() {
		select {
		case <-b.done:
		default:
			b.cmd.Process.Kill()
			<-b.done
		}
	})
	return b
}

// wait returns the command's result once it has exited (60 s at most).
func (b *bgRun) wait(t testing.TB) Result {
	t.Helper()
	select {
	case <-b.done:
	case <-time.After(60 * time.Second):
		b.cmd.Process.Kill()
		<-b.done
		t.Fatalf("nucleus %v: still running after 60s; stderr: %s", b.cmd.Args, b.stderr.String())
	}
	return Result{Stdout: b.stdout.String(), Stderr: b.stderr.String(), Code: b.cmd.ProcessState.ExitCode()}
}

// execCommand runs a host command with stdout to /dev/null and returns its
// stderr; files, not pipes, since it may leave a container behind.
func execCommand(name string, args ...string) (string, error) {
	errF, err := os.CreateTemp("", "core-stderr-")
	if err != nil {
		return "", err
	}
	defer os.Remove(errF.Name())
	defer errF.Close()
	cmd := exec.Command(name, args...)
	cmd.Stderr = errF
	err = cmd.Run()
	out, _ := os.ReadFile(errF.Name())
	return string(out), err
}

// coreFor is r for a subtest t: the same binary and root, failures go to t.
func (r *Runner) coreFor(t testing.TB) *Runner {
	c := *r
	c.t = t
	return &c
}
