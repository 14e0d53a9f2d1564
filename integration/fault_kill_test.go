package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The kill -9 tests run a nucleus command under strace, which SIGKILLs
// each of its processes (the CLI, the container's init, the pre-exec step;
// every thread counts on its own) at its n-th call of a syscall, for n
// from 1 until two runs in a row complete without being hit. Afterwards
// `delete --force` and `list` must work and nothing may be left.
//
// By default n steps geometrically (1, 2, 3, 4, 6, 9, ...), keeping the
// suite within make test's budget; NUCLEUS_FAULT_EXHAUSTIVE=1 (make
// fault-exhaustive) tries every n of every syscall in killSyscalls.

// killSweep lists the n to try: all of them when exhaustive.
func killSweep(n int) int {
	if os.Getenv("NUCLEUS_FAULT_EXHAUSTIVE") != "" {
		return n + 1
	}
	return max(n+1, n*3/2)
}

// straceKilled runs `nucleus args` under strace with the injection and
// reports whether any traced process was killed by it. A detached
// container (run -d, create) stays traced until the CLI is gone; strace
// then detaches from it.
func (r *Runner) straceKilled(t *testing.T, syscallName string, n int, args ...string) bool {
	t.Helper()
	out := filepath.Join(t.TempDir(), "strace.out")
	// -I1: strace detaches on SIGINT (with -o it would ignore it).
	// (--seccomp-bpf would be faster, but strace 6.1 then injects only
	// the first time.)
	full := append([]string{"-I1", "-f", "-o", out, "-e", "trace=execve," + syscallName,
		"-e", fmt.Sprintf("inject=%s:signal=SIGKILL:when=%d", syscallName, n),
		r.Bin, "--root", r.Root}, args...)
	cmd := exec.Command("strace", full...)
	devnull, _ := os.Open(os.DevNull)
	defer devnull.Close()
	// Files, not pipes: a detached container inherits them.
	logf, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	// The CLI is the first tracee: the pid of strace's first line.
	cli := 0
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-done:
			goto finished
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-done
			t.Fatalf("strace %v: still running after 60s", args)
		}
		if cli == 0 {
			data, _ := os.ReadFile(out)
			if f := strings.Fields(string(data)); len(f) > 0 {
				cli, _ = strconv.Atoi(f[0])
			}
			continue
		}
		if !alive(cli) {
			// The CLI is a zombie before strace has reaped it and
			// written its "+++ killed by SIGKILL +++": detaching now
			// would lose that line (under load, a run killed at its
			// first call then looked unhit). Wait for strace's record
			// of the CLI's end first.
			for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
				data, _ := os.ReadFile(out)
				if straceEnded(string(data), cli) {
					break
				}
			}
			cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-done
			}
			goto finished
		}
	}
finished:
	data, _ := os.ReadFile(out)
	if !strings.Contains(string(data), `execve("`+r.Bin+`"`) {
		log, _ := os.ReadFile(logf.Name())
		t.Fatalf("strace %v ran no nucleus: %s\n%s", args, data, log)
	}
	return injectedKill(string(data), syscallName)
}

// injectedKill: strace's output shows a tracee killed by the injection,
// not by a SIGKILL from elsewhere (a delete, a failed create's cleanup):
// the tracee's last line before "+++ killed by SIGKILL +++" is a call of
// the syscall that never returned ("= ?").
func injectedKill(out, syscallName string) bool {
	last := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		pid, rest, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		rest = strings.TrimSpace(rest)
		switch {
		case strings.HasPrefix(rest, "+++ killed by SIGKILL"):
			l := last[pid]
			if (strings.HasPrefix(l, syscallName+"(") || strings.HasPrefix(l, "<... "+syscallName+" resumed>")) && strings.HasSuffix(l, "= ?") {
				return true
			}
		case strings.HasPrefix(rest, "---"):
			// A signal delivered on the way: not a call.
		default:
			last[pid] = rest
		}
	}
	return false
}

// straceEnded: strace's output records pid's end (its exit or its death
// by a signal).
func straceEnded(out string, pid int) bool {
	p := strconv.Itoa(pid) + " +++ "
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, p) {
			return true
		}
	}
	return false
}

// assertRecovers: after a killed command, list works (naming the
// container if it can't read it), delete --force succeeds, and nothing of
// the container is left.
func assertRecovers(t *testing.T, r *Runner, id, bundleDir, what string) {
	t.Helper()
	res := r.Run(nil, "list")
	if strings.Contains(res.Stderr, "panic") || (res.Code != 0 && !strings.Contains(res.Stderr, id)) {
		t.Errorf("%s: list: exit %d, stderr %q", what, res.Code, res.Stderr)
	}
	res = r.Run(nil, "delete", "--force", id)
	if res.Code != 0 {
		t.Errorf("%s: delete --force: exit %d, stderr %q", what, res.Code, res.Stderr)
	}
	res = r.Run(nil, "list", "-q")
	if res.Code != 0 || strings.TrimSpace(res.Stdout) != "" {
		t.Errorf("%s: list -q after delete --force: exit %d, stdout %q, stderr %q", what, res.Code, res.Stdout, res.Stderr)
	}
	assertNothingLeft(t, r, id, bundleDir)
}

type killCase struct {
	name string
	// syscall is the one make test sweeps; NUCLEUS_FAULT_EXHAUSTIVE
	// sweeps all of killSyscalls.
	syscall string
	// prepare makes what the command needs (a created container...).
	prepare func(t *testing.T, r *Runner, id string)
	args    func(id string) []string
}

// killSyscalls: cgroup and state dirs (mkdirat), cgroup files (openat2),
// state files (renameat), the init's re-exec and the pre-exec step's and
// workload's exec (execve).
var killSyscalls = []string{"mkdirat", "openat2", "renameat", "execve"}

// TestFaultKill9: SIGKILL at syscall boundaries of run -d, create, start,
// exec, delete and sandbox (agent mode: one-shot with a bridged network,
// and long-lived), each at the n-th
// call of one syscall chosen for where it hurts (every one of
// killSyscalls with NUCLEUS_FAULT_EXHAUSTIVE=1).
func TestFaultKill9(t *testing.T) {
	requireCmd(t, "strace")
	requireNet(t)
	r := newRunner(t)
	b := newBundle(t, "sleep", "1000")
	short := newBundle(t, "true")
	created := func(t *testing.T, r *Runner, id string) { r.coreDetached("create", "--bundle", b.Dir, id) }
	running := func(t *testing.T, r *Runner, id string) { r.coreDetached("run", "-d", "--bundle", b.Dir, id) }
	cases := []killCase{
		{"run-d", "mkdirat", nil, func(id string) []string { return []string{"run", "-d", "--bundle", b.Dir, id} }},
		{"run-d-agent", "execve", nil, func(id string) []string { return []string{"run", "-d", "--mode", "agent", "--bundle", b.Dir, id} }},
		{"create", "renameat", nil, func(id string) []string { return []string{"create", "--bundle", b.Dir, id} }},
		{"start", "openat2", created, func(id string) []string { return []string{"start", id} }},
		{"exec", "execve", running, func(id string) []string { return []string{"exec", id, "true"} }},
		{"delete", "openat2", running, func(id string) []string { return []string{"delete", "--force", id} }},
		{"sandbox", "mkdirat", nil, func(id string) []string {
			return []string{"sandbox", "--mode", "agent", "--net", "bridge", "--bundle", short.Dir, "--id", id, "--", "true"}
		}},
		// A long-lived sandbox: its record, its held init.
		{"sandbox-detach", "renameat", nil, func(id string) []string {
			return []string{"sandbox", "--detach", "--mode", "agent", "--bundle", short.Dir, "--id", id}
		}},
	}
	total := 0
	start := time.Now()
	for _, c := range cases {
		syscalls := []string{c.syscall}
		if os.Getenv("NUCLEUS_FAULT_EXHAUSTIVE") != "" {
			syscalls = killSyscalls
		}
		for _, sc := range syscalls {
			t.Run(c.name+"/"+sc, func(t *testing.T) {
				// The first call must be hit for the syscall make test
				// sweeps; the exhaustive mode's others may be absent.
				sweep(t, c.name+" at "+sc, sc == c.syscall, func(n int) bool {
					id := ftID(t, r, "k9")
					if c.prepare != nil {
						c.prepare(t, r, id)
					}
					killed := r.straceKilled(t, sc, n, c.args(id)...)
					total++
					assertRecovers(t, r, id, b.Dir, fmt.Sprintf("%s killed at %s #%d", c.name, sc, n))
					return killed
				})
			})
		}
	}
	t.Logf("%d injected runs in %s", total, time.Since(start).Round(time.Second))
}
