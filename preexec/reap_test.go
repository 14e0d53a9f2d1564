package preexec

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// reap runs this test binary as the pre-exec step with --reap=mode (its
// C constructor takes over before Go starts) on a record without seccomp,
// in front of argv. Landlock is applied when the kernel has it (every
// top-level entry readable and executable, nothing writable), else the
// step goes on degraded, as it may outside strict modes.
func reapCmd(t *testing.T, mode string, argv ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	rec := &Record{MinABI: 1, SelfFd: -1, AuditFd: -1, SeccompFd: -1, StatusFd: -1, ID: "reap-test", Posture: "agent", DegradedPosture: "agent-degraded"}
	f, err := rec.File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	cmd := exec.Command(os.Args[0], append([]string{Command, RecordFlag + "3", ReapFlag + mode, "--"}, argv...)...)
	cmd.ExtraFiles = []*os.File{f}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	return cmd, &errb
}

func exitCode(t *testing.T, err error, cmd *exec.Cmd) int {
	t.Helper()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode()
}

const reapLine = "nucleus: killed by seccomp (SIGSYS): a syscall not in the agent allowlist"

func TestReapPassesStatusThrough(t *testing.T) {
	cmd, stderr := reapCmd(t, "agent", "/bin/sh", "-c", "echo out; echo err >&2; exit 7")
	out, err := cmd.Output()
	if code := exitCode(t, err, cmd); code != 7 || string(out) != "out\n" || strings.Contains(stderr.String(), "seccomp") || !strings.Contains(stderr.String(), "err\n") {
		t.Errorf("exit 7: status %d, stdout %q, stderr %q", code, out, stderr)
	}
}

// SIGSYS is what seccomp kills with: the parent names seccomp and the
// mode, and exits 128+31 as a shell reports the death.
func TestReapNamesSIGSYS(t *testing.T) {
	cmd, stderr := reapCmd(t, "agent", "/bin/sh", "-c", "kill -SYS $$")
	err := cmd.Run()
	if code := exitCode(t, err, cmd); code != 159 || !strings.Contains(stderr.String(), reapLine) {
		t.Errorf("SIGSYS: status %d, stderr %q; want 159 and %q", code, stderr, reapLine)
	}
	// Another signal: its status, no line.
	cmd, stderr = reapCmd(t, "agent", "/bin/sh", "-c", "kill -USR1 $$")
	err = cmd.Run()
	if code := exitCode(t, err, cmd); code != 128+int(syscall.SIGUSR1) || strings.Contains(stderr.String(), "seccomp") {
		t.Errorf("SIGUSR1: status %d, stderr %q", code, stderr)
	}
}

// A signal sent to the parent (the shim's SIGTERM) reaches the workload.
func TestReapForwardsSignals(t *testing.T) {
	cmd, stderr := reapCmd(t, "agent", "/bin/sh", "-c", "trap 'echo got-term >&2; exit 3' TERM; echo ready; while :; do sleep 0.05; done")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := out.Read(buf); err != nil || string(buf) != "ready\n" {
		t.Fatalf("workload did not start: %q %v (%s)", buf, err, stderr)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if code := exitCode(t, err, cmd); code != 3 || !strings.Contains(stderr.String(), "got-term") {
			t.Errorf("after SIGTERM to the parent: status %d, stderr %q; want the workload's trap, 3", code, stderr)
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("SIGTERM to the parent never reached the workload")
	}
}

func TestReapRefusesBadMode(t *testing.T) {
	for _, mode := range []string{"", "Agent", "agent;rm", strings.Repeat("a", 33)} {
		cmd, stderr := reapCmd(t, mode, "/bin/true")
		err := cmd.Run()
		if code := exitCode(t, err, cmd); code != 125 || !strings.Contains(stderr.String(), "--reap=MODE") {
			t.Errorf("--reap=%q: status %d, stderr %q; want 125 naming --reap=MODE", mode, code, stderr)
		}
	}
}
