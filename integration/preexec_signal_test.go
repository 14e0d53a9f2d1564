package integration

// Red team 2 (LOW, DoS): the container's processes could signal the
// processes the platform later starts with `nucleus exec` (the same uid in
// the container's user namespace), e.g. SIGSTOP them, so that the exec
// hung. The container's pre-exec step now scopes signals with Landlock
// (ABI >= 6): the init and its descendants signal only their own domain.
// The exec'd processes start in a domain of their own, without the scope,
// so the platform's `nucleus exec ID kill -TERM 1` still reaches the init.
// Every container id here starts with "sc2-".

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// sc2ID returns a fresh container id "sc2-<name>-<random>", force-deleted
// when the test ends.
func sc2ID(t *testing.T, r *Runner, name string) string {
	t.Helper()
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	id := "sc2-" + name + "-" + hex.EncodeToString(b[:])
	t.Cleanup(func() { _ = r.Cmd("delete", "--force", id).Run() })
	return id
}

// landlockABI is the host kernel's Landlock ABI (0 without Landlock).
func landlockABI() int {
	v, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if errno != 0 {
		return 0
	}
	return int(v)
}

// uniqueFields lists the distinct words of s in order.
func uniqueFields(s string) []string {
	var out []string
	seen := map[string]bool{}
	for _, f := range strings.Fields(s) {
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out
}

// stopperInit is the red team's init: it stops every process whose
// command line says STOPME (its own pattern is written so that it doesn't
// match itself) and logs what it stopped and what it could not. Its
// canary, a child of its own, is in its domain and must be stopped. A
// TERM handler lets `exec kill -TERM 1` end it (the init of a pid
// namespace ignores signals it has no handler for).
const stopperInit = `
trap 'echo term >/tmp/term; exit 0' TERM
sh -c 'sleep 300; : STOPME' &
echo $! >/tmp/canary
while :; do
  for p in /proc/[0-9]*; do
    n=${p#/proc/}
    [ "$n" = "$$" ] && continue
    if grep -q 'STOP[M]E' $p/cmdline 2>/dev/null; then
      kill -STOP $n 2>>/tmp/kill.err && echo $n >>/tmp/stopped
    fi
  done
  sleep 0.1
done`

func TestPreexecSignalScope(t *testing.T) {
	abi := landlockABI()
	need(t, abi >= 6, "needs Landlock ABI 6 (scoped signals)")
	r := newRunner(t)
	b := newBundle(t, "sh", "-c", stopperInit)
	log := filepath.Join(t.TempDir(), "audit.jsonl")
	id := sc2ID(t, r, "stop")
	r.coreDetached("run", "-d", "--mode", "agent", "--audit-log", log, "--bundle", b.Dir, id)
	pid := r.corePid(id)
	// The attacker is at work: it stops its own canary (same domain).
	waitFor(t, "the init to stop its canary", func() bool {
		c := readTrim(inContainer(pid, "/tmp/canary"))
		return c != "" && strings.Contains(readTrim(inContainer(pid, "/tmp/stopped")), c)
	})

	// The attack: the exec'd shell says STOPME and sleeps long enough for
	// the init's loop to find it. Stopped, it never finishes.
	res, err := r.coreExecUpTo(10*time.Second, nil, "exec", id, "sh", "-c", "sleep 1; echo STOPME")
	if errors.Is(err, errStillRunning) {
		t.Fatalf("attack succeeded: the container's init stopped `nucleus exec` (%v); it stopped pids %v, its canary is %s",
			err, uniqueFields(readTrim(inContainer(pid, "/tmp/stopped"))), readTrim(inContainer(pid, "/tmp/canary")))
	}
	if err != nil {
		t.Fatal(err)
	}
	if res.Code != 0 || !strings.Contains(res.Stdout, "STOPME") {
		t.Fatalf("exec: exit %d, stdout %q, stderr %q", res.Code, res.Stdout, res.Stderr)
	}
	// ...because the init's kill was refused, not because it missed.
	if e := readTrim(inContainer(pid, "/tmp/kill.err")); !strings.Contains(e, "not permitted") {
		t.Errorf("the init's kill -STOP of the exec'd process: errors %q, want EPERM", e)
	}

	ll := auditEvent(readAudit(t, log), "landlock_applied")
	if ll == nil || ll["applied"] != true || ll["signal_scope"] != true {
		t.Errorf("the init's landlock_applied = %v, want applied with signal_scope true", ll)
	}

	// The exec'd processes are not scoped: the platform still signals the
	// init from an exec.
	res, err = r.coreExec(nil, "exec", id, "kill", "-TERM", "1")
	if err != nil || res.Code != 0 {
		t.Fatalf("exec kill -TERM 1: %v, exit %d, stderr %q", err, res.Code, res.Stderr)
	}
	r.WaitStatus(id, "stopped")

	// `nucleus kill` from the host reaches a scoped init.
	b2 := newBundle(t, "sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done")
	id2 := sc2ID(t, r, "hostkill")
	r.coreDetached("run", "-d", "--mode", "agent", "--bundle", b2.Dir, id2)
	r.OK("kill", id2, "TERM")
	r.WaitStatus(id2, "stopped")
}

// TestPreexecSignalScopeOrdinary: the scope leaves ordinary signalling
// inside the container alone: a shell killing its job, siblings
// signalling each other, Python's Popen.terminate.
func TestPreexecSignalScopeOrdinary(t *testing.T) {
	r := newRunner(t)
	b := hostUsrBundle(t, "/usr/bin/python3")
	script := `sh -c 'sleep 10 & kill $!; wait $!; echo job=$?'
sleep 30 & a=$!; sh -c "kill -TERM $a"; wait $a; echo sibling=$?
/usr/bin/python3 -c 'import subprocess; p = subprocess.Popen(["/bin/sleep", "30"]); p.terminate(); print("python=%d" % p.wait())'`
	res := r.sandbox(b, sc2ID(t, r, "ordinary"), nil, "sh", "-c", script)
	for _, want := range []string{"job=143", "sibling=143", "python=-15"} {
		expectLine(t, res, want)
	}
	if res.Code != 0 {
		t.Errorf("exit %d, stderr %q", res.Code, res.Stderr)
	}
}
