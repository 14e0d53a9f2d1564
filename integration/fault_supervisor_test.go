package integration

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The kill -9 sweep of the supervisor (a held sandbox's pid 1,
// preexec/supervise.c) while it serves `nucleus exec`, of a pool member's
// supervisor serving `sandbox --pool`, of the `nucleus exec` client, and
// of `nucleus pool fill` and `pool release` part-way (with every process
// they start: the members' inits, pre-exec steps and supervisors). After
// each, delete --force (or pool rm) and list work and nothing is left.

// f2ID returns a fresh id "f2-<name>-<random>" and registers a forced
// delete of it for when the test ends.
func f2ID(t testing.TB, r *Runner, name string) string {
	t.Helper()
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	id := "f2-" + name + "-" + hex.EncodeToString(b[:])
	t.Cleanup(func() { _ = r.Cmd("delete", "--force", id).Run() })
	return id
}

// f2Pool returns a fresh pool name "f2-<name>-<random>" and registers
// its removal for when the test ends.
func f2Pool(t testing.TB, r *Runner, name string) string {
	t.Helper()
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	p := "f2-" + name + "-" + hex.EncodeToString(b[:])
	t.Cleanup(func() { _ = r.Cmd("pool", "rm", p).Run() })
	return p
}

// straceAttachKilled attaches strace to the running process pid (and,
// -f, to what it forks from then on), SIGKILLing any of them at its n-th
// call of syscallName, while during() runs; it reports whether strace
// killed one.
func straceAttachKilled(t *testing.T, pid int, syscallName string, n int, during func()) bool {
	t.Helper()
	dir := t.TempDir()
	out, errf := filepath.Join(dir, "strace.out"), filepath.Join(dir, "strace.err")
	logf, err := os.Create(errf)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command("strace", "-I1", "-f", "-o", out, "-e", "trace="+syscallName,
		"-e", fmt.Sprintf("inject=%s:signal=SIGKILL:when=%d", syscallName, n), "-p", fmt.Sprint(pid))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	stop := func() {
		cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	defer stop()
	// strace says "Process N attached" once the tracee stopped for it.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		data, _ := os.ReadFile(errf)
		if strings.Contains(string(data), "attached") {
			break
		}
		select {
		case <-done:
			t.Fatalf("strace -p %d ended: %s", pid, data)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("strace -p %d: not attached after 20s: %s", pid, data)
		}
	}
	during()
	// A killed pid 1 takes its pid namespace with it, and its client
	// sees its socket close before the kernel has made it a zombie and
	// strace has recorded its death: wait until strace records pid's
	// end, or pid has lived on for half a second.
	for end, lived := time.Now().Add(10*time.Second), time.Now(); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		data, _ := os.ReadFile(out)
		if straceEnded(string(data), pid) {
			break
		}
		if !alive(pid) {
			lived = time.Now()
		} else if time.Since(lived) > 500*time.Millisecond {
			break
		}
	}
	stop()
	data, _ := os.ReadFile(out)
	return injectedKill(string(data), syscallName)
}

// sweep runs try(n) for n = 1, 2, 3, 4, 6, ... (every n with
// NUCLEUS_FAULT_EXHAUSTIVE) until two runs in a row are not hit; the first
// one must be.
func sweep(t *testing.T, what string, firstMustHit bool, try func(n int) bool) {
	t.Helper()
	// Each thread counts on its own and threads differ from run to run:
	// the sweep ends after two runs in a row that nothing hit. make test
	// bounds it (a loaded machine once made one run for minutes); make
	// fault-exhaustive does not.
	misses := 0
	began := time.Now()
	for n := 1; ; n = killSweep(n) {
		if os.Getenv("NUCLEUS_FAULT_EXHAUSTIVE") == "" && time.Since(began) > 45*time.Second {
			t.Logf("%s: sweep stopped at #%d after %s", what, n, time.Since(began).Round(time.Second))
			return
		}
		killed := try(n)
		if n == 1 && !killed && firstMustHit {
			t.Errorf("%s: nothing killed at the first call: the sweep tests nothing", what)
		}
		if killed {
			misses = 0
		} else {
			misses++
		}
		if t.Failed() || misses == 2 {
			return
		}
		if n > 2000 {
			t.Fatalf("%s: still killed at #%d", what, n)
		}
	}
}

// supervisorSyscalls: what the supervisor calls serving one exec
// (accept4 the connection, recvmsg the request, clone the command,
// sendto its replies, wait4 it) and the forked child's execve.
var supervisorSyscalls = []string{"accept4", "recvmsg", "clone", "sendto", "wait4", "execve"}

// TestFaultKill9Supervisor: SIGKILL of a held sandbox's supervisor at each
// call it makes serving `nucleus exec`: the client ends (with the
// command's status when the supervisor got that far), delete --force and
// list work, nothing is left.
func TestFaultKill9Supervisor(t *testing.T) {
	requireCmd(t, "strace")
	r := newRunner(t)
	b := newBundle(t)
	// make test's budget: the request, the fork and the reaping;
	// NUCLEUS_FAULT_EXHAUSTIVE=1: every one.
	syscalls := []string{"recvmsg", "clone", "wait4"}
	if os.Getenv("NUCLEUS_FAULT_EXHAUSTIVE") != "" {
		syscalls = supervisorSyscalls
	}
	for _, sc := range syscalls {
		t.Run(sc, func(t *testing.T) {
			sweep(t, "supervisor at "+sc, true, func(n int) bool {
				id := f2ID(t, r, "k9sv")
				r.OK("sandbox", "--detach", "--mode", "agent", "--bundle", b.Dir, "--id", id)
				pid := initHostPid(t, r, id)
				var res Result
				killed := straceAttachKilled(t, pid, sc, n, func() { res = r.Run(nil, "exec", id, "sh", "-c", "exit 3") })
				what := fmt.Sprintf("supervisor killed at %s #%d", sc, n)
				if !killed && res.Code != 3 {
					t.Errorf("%s: nothing killed, yet exec: exit %d, stderr %q", what, res.Code, res.Stderr)
				}
				if strings.Contains(res.Stderr, "panic") {
					t.Errorf("%s: exec: %s", what, res.Stderr)
				}
				assertRecovers(t, r, id, b.Dir, what)
				return killed
			})
		})
	}
}

// TestFaultKill9ExecClient: SIGKILL of `nucleus exec` into a held sandbox
// at its calls: the supervisor serves the next exec as before, and delete
// --force leaves nothing.
func TestFaultKill9ExecClient(t *testing.T) {
	requireCmd(t, "strace")
	r := newRunner(t)
	b := newBundle(t)
	syscalls := []string{"sendmsg"}
	if os.Getenv("NUCLEUS_FAULT_EXHAUSTIVE") != "" {
		// (Its replies come by recvfrom(2) in the C fast path, by
		// read(2) in Go; it execs nothing.)
		syscalls = []string{"connect", "sendmsg", "recvfrom", "read", "openat", "pipe2"}
	}
	for _, sc := range syscalls {
		t.Run(sc, func(t *testing.T) {
			sweep(t, "exec client at "+sc, true, func(n int) bool {
				id := f2ID(t, r, "k9ec")
				r.OK("sandbox", "--detach", "--mode", "agent", "--bundle", b.Dir, "--id", id)
				killed := r.straceKilled(t, sc, n, "exec", id, "sh", "-c", "sleep 0.2; exit 3")
				what := fmt.Sprintf("exec client killed at %s #%d", sc, n)
				if res := r.Run(nil, "exec", id, "sh", "-c", "exit 4"); res.Code != 4 {
					t.Errorf("%s: the next exec: exit %d, stderr %q", what, res.Code, res.Stderr)
				}
				assertRecovers(t, r, id, b.Dir, what)
				return killed
			})
		})
	}
}

// poolLeft lists the ids of pool name's members that anything under the
// root names (state dirs, sandbox records, workspaces, stagings).
func poolLeft(r *Runner, name string) []string {
	seen := map[string]bool{}
	var ids []string
	entries, _ := os.ReadDir(r.Root)
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, "@") {
			if _, rest, ok := strings.Cut(n[1:], "-"); ok {
				n = rest
			}
		}
		if strings.HasPrefix(n, name+"-") && !seen[n] {
			seen[n] = true
			ids = append(ids, n)
		}
	}
	return ids
}

// assertPoolRecovers: pool rm and list work, and nothing of the pool or
// of any member (ids, and whatever the root names) is left.
func assertPoolRecovers(t *testing.T, r *Runner, name string, b *Bundle, ids []string, what string) {
	t.Helper()
	ids = append(ids, poolLeft(r, name)...)
	pids := memberPids(t, r, ids)
	if res := r.Run(nil, "pool", "rm", name); res.Code != 0 {
		t.Errorf("%s: pool rm: exit %d, stderr %q", what, res.Code, res.Stderr)
	}
	if res := r.Run(nil, "list", "-q"); res.Code != 0 || strings.TrimSpace(res.Stdout) != "" {
		t.Errorf("%s: list -q after pool rm: exit %d, stdout %q, stderr %q", what, res.Code, res.Stdout, res.Stderr)
	}
	assertPoolGone(t, r, name, b, ids, pids)
	for _, id := range ids {
		assertNothingLeft(t, r, id, b.Dir)
	}
}

// TestFaultKill9PoolMember: SIGKILL of a pool member's supervisor while
// it serves `sandbox --pool`: the client ends, pool rm leaves nothing.
func TestFaultKill9PoolMember(t *testing.T) {
	requireCmd(t, "strace")
	r := newRunner(t)
	b := newBundle(t)
	syscalls := []string{"clone"}
	if os.Getenv("NUCLEUS_FAULT_EXHAUSTIVE") != "" {
		syscalls = supervisorSyscalls
	}
	for _, sc := range syscalls {
		t.Run(sc, func(t *testing.T) {
			sweep(t, "pool member's supervisor at "+sc, true, func(n int) bool {
				name := f2Pool(t, r, "k9pm")
				r.OK("pool", "create", name, "--bundle", b.Dir, "--size", "1")
				r.waitPoolReady(name, 1)
				members := poolMembers(r, name)
				pids := memberPids(t, r, members)
				if len(pids) != 1 {
					t.Fatalf("pool of 1: members %v, pids %v", members, pids)
				}
				var res Result
				killed := straceAttachKilled(t, pids[0], sc, n, func() { res = r.Run(nil, "sandbox", "--pool", name, "--", "sh", "-c", "exit 3") })
				what := fmt.Sprintf("pool member's supervisor killed at %s #%d", sc, n)
				if !killed && res.Code != 3 {
					t.Errorf("%s: nothing killed, yet sandbox --pool: exit %d, stderr %q", what, res.Code, res.Stderr)
				}
				assertPoolRecovers(t, r, name, b, members, what)
				return killed
			})
		})
	}
}

// TestFaultKill9PoolFill: SIGKILL of `nucleus pool fill` and `pool
// release`, and of every process they start, at their calls: pool rm
// and list work and nothing is left.
func TestFaultKill9PoolFill(t *testing.T) {
	requireCmd(t, "strace")
	r := newRunner(t)
	b := newBundle(t)
	type poolCase struct {
		name, syscall string
		args          func(name string) []string
	}
	cases := []poolCase{
		{"fill", "mkdirat", func(name string) []string { return []string{"pool", "fill", name} }},
		{"release", "renameat", func(name string) []string {
			return []string{"pool", "release", name, poolMembers(r, name)[0]}
		}},
	}
	for _, c := range cases {
		syscalls := []string{c.syscall}
		if os.Getenv("NUCLEUS_FAULT_EXHAUSTIVE") != "" {
			syscalls = killSyscalls
		}
		for _, sc := range syscalls {
			t.Run(c.name+"/"+sc, func(t *testing.T) {
				sweep(t, "pool "+c.name+" at "+sc, true, func(n int) bool {
					name := f2Pool(t, r, "k9p"+c.name[:1])
					if c.name == "fill" {
						r.OK("pool", "create", name, "--bundle", b.Dir, "--size", "2", "--no-fill")
					} else {
						r.OK("pool", "create", name, "--bundle", b.Dir, "--size", "1")
						r.waitPoolReady(name, 1)
					}
					members := poolMembers(r, name)
					killed := r.straceKilled(t, sc, n, c.args(name)...)
					assertPoolRecovers(t, r, name, b, members, fmt.Sprintf("pool %s killed at %s #%d", c.name, sc, n))
					return killed
				})
			})
		}
	}
}
