package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Warm pools: nucleus pool create/ls/fill/rm and sandbox --pool.

type poolStatus struct {
	Name    string `json:"name"`
	Size    int    `json:"size"`
	Ready   int    `json:"ready"`
	Taken   int    `json:"taken"`
	Filling bool   `json:"filling"`
}

func (r *Runner) poolStatus(name string) (poolStatus, bool) {
	r.t.Helper()
	out := r.OK("pool", "ls", "--json").Stdout
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var s poolStatus
		if json.Unmarshal([]byte(l), &s) == nil && s.Name == name {
			return s, true
		}
	}
	return poolStatus{}, false
}

func (r *Runner) waitPoolReady(name string, n int) {
	r.t.Helper()
	waitForUpTo(r.t, 60*time.Second, fmt.Sprintf("pool %s to have %d ready", name, n), func() bool {
		s, ok := r.poolStatus(name)
		return ok && s.Ready >= n && !s.Filling
	})
}

// poolMembers are the ids of the pool's sandboxes under the root.
func poolMembers(r *Runner, name string) []string {
	var ids []string
	entries, _ := os.ReadDir(r.Root)
	for _, e := range entries {
		if id, ok := strings.CutPrefix(e.Name(), "@sandbox-"); ok && strings.HasPrefix(id, name+"-") {
			ids = append(ids, id)
		}
	}
	return ids
}

// assertPoolGone: nothing of the pool or of any of ids (its sandboxes
// seen during the test, with their pid 1s) remains.
func assertPoolGone(t *testing.T, r *Runner, name string, b *Bundle, ids []string, pids []int) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(r.Root, "@pool-"+name)); err == nil {
		t.Errorf("leftover pool dir @pool-%s", name)
	}
	for _, id := range ids {
		assertNoSandboxLeftovers(t, r, id, b.Dir)
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.Contains(f[4], name+"-") && strings.HasPrefix(f[4], r.Root) {
			t.Errorf("leftover mount %s", f[4])
		}
	}
	for _, p := range pids {
		if alive(p) {
			t.Errorf("leftover process %d (%s)", p, cmdline(p))
		}
	}
	entries, _ := os.ReadDir(r.Root)
	for _, e := range entries {
		if strings.Contains(e.Name(), name+"-") {
			t.Errorf("leftover %s under the root", e.Name())
		}
	}
}

func memberPids(t *testing.T, r *Runner, ids []string) []int {
	var pids []int
	for _, id := range ids {
		if data, err := os.ReadFile(filepath.Join(r.Root, id, "state.json")); err == nil {
			var st struct {
				Pid int `json:"init_process_pid"`
			}
			if json.Unmarshal(data, &st) == nil && st.Pid > 0 {
				pids = append(pids, st.Pid)
			}
		}
	}
	return pids
}

type poolResult struct {
	ID       string `json:"id"`
	ExitCode int    `json:"exit_code"`
	Pool     string `json:"pool"`
}

func lastJSON(t *testing.T, res Result) poolResult {
	t.Helper()
	lines := strings.Split(strings.TrimRight(res.Stdout, "\n"), "\n")
	var pr poolResult
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &pr); err != nil {
		t.Fatalf("--json: last line %q: %v (stderr %s)", lines[len(lines)-1], err, res.Stderr)
	}
	return pr
}

// TestPoolLifecycle: a pool fills itself, hands out a started sandbox
// whose workspace is copied in and back, destroys it after use and
// refills; idle members cost at most 1 MiB; rm leaves nothing.
func TestPoolLifecycle(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t)
	name := "pl-life"
	r.OK("pool", "create", name, "--bundle", b.Dir, "--size", "2")
	defer r.Run(nil, "pool", "rm", name)
	r.waitPoolReady(name, 2)
	first := poolMembers(r, name)
	if len(first) != 2 {
		t.Fatalf("pool of 2 has sandboxes %v", first)
	}
	for _, p := range memberPids(t, r, first) {
		data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		var rss int
		for _, l := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(l, "VmRSS:") {
				fmt.Sscanf(strings.TrimPrefix(l, "VmRSS:"), "%d", &rss)
			}
		}
		if rss <= 0 || rss > 1024 {
			t.Errorf("idle pooled sandbox's pid 1 has %d KiB resident, want at most 1024", rss)
		}
		t.Logf("idle pooled sandbox: VmRSS %d KiB", rss)
	}
	ws := userWorkspace(t)
	os.WriteFile(filepath.Join(ws, "in.txt"), []byte("from host\n"), 0o644)
	chownTree(t, ws, 1000, 1000)
	res := r.Run(nil, "sandbox", "--pool", name, "--json", "--workspace", ws, "--env", "X=y", "--",
		"sh", "-c", `pwd; cat in.txt; echo "$X"; echo made > out.txt; exit 3`)
	pr := lastJSON(t, res)
	if res.Code != 3 || pr.ExitCode != 3 || pr.Pool != "warm" || !strings.HasPrefix(res.Stdout, "/workspace\nfrom host\ny\n") {
		t.Errorf("pooled run: exit %d, %+v, stdout %q, stderr %q", res.Code, pr, res.Stdout, res.Stderr)
	}
	if !contains(first, pr.ID) {
		t.Errorf("pooled run in %s, not one of the pool's %v", pr.ID, first)
	}
	st, err := os.Stat(filepath.Join(ws, "out.txt"))
	if err != nil || st.Sys().(*syscall.Stat_t).Uid != 1000 {
		t.Errorf("workspace not written back as its owner's: %v", err)
	}
	// The used sandbox is destroyed, never reused; the pool refills.
	waitForUpTo(t, 30*time.Second, "the used sandbox to be removed", func() bool {
		_, err := os.Stat(filepath.Join(r.Root, "@sandbox-"+pr.ID))
		return err != nil
	})
	assertNoSandboxLeftovers(t, r, pr.ID, b.Dir)
	r.waitPoolReady(name, 2)
	if s, _ := r.poolStatus(name); s.Ready != 2 || s.Taken != 0 {
		t.Errorf("after refill: %+v", s)
	}
	res = r.Run(nil, "sandbox", "--pool", name, "--json", "--", "sh", "-c", "ls /workspace | wc -l; kill -9 $$")
	if pr2 := lastJSON(t, res); res.Code != 137 || pr2.ID == pr.ID || !strings.HasPrefix(res.Stdout, "0\n") {
		t.Errorf("second pooled run: exit %d, %+v, stdout %q (the first's workspace must not be there)", res.Code, pr2, res.Stdout)
	}
	all := append(first, poolMembers(r, name)...)
	pids := memberPids(t, r, poolMembers(r, name))
	r.OK("pool", "rm", name)
	assertPoolGone(t, r, name, b, all, pids)
	if _, ok := r.poolStatus(name); ok {
		t.Errorf("pool %s still listed after rm", name)
	}
}

// TestPoolRefusals: bad input fails with one line and leaves nothing.
func TestPoolRefusals(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t)
	r.Fail([]string{"--bundle"}, "pool", "create", "pl-ref")
	r.Fail([]string{"--size", "0"}, "pool", "create", "pl-ref", "--bundle", b.Dir, "--size", "0")
	r.Fail([]string{"pool", "bad/name"}, "pool", "create", "bad/name", "--bundle", b.Dir)
	r.Fail([]string{"mode"}, "pool", "create", "pl-ref", "--bundle", b.Dir, "--mode", "")
	r.Fail([]string{"workspace"}, "pool", "create", "pl-ref", "--bundle", b.Dir, "--workspace", t.TempDir())
	r.Fail([]string{"pl-none", "no such pool"}, "sandbox", "--pool", "pl-none", "--", "true")
	r.Fail([]string{"pl-none", "no such pool"}, "pool", "rm", "pl-none")
	r.OK("pool", "create", "pl-ref", "--bundle", b.Dir, "--no-fill")
	r.Fail([]string{"pl-ref", "exists"}, "pool", "create", "pl-ref", "--bundle", b.Dir)
	r.Fail([]string{"--bundle", "--pool"}, "sandbox", "--pool", "pl-ref", "--bundle", b.Dir, "--", "true")
	r.Fail([]string{"--workspace", "owned by root", "copy-in-out"}, "sandbox", "--pool", "pl-ref", "--workspace", t.TempDir()+":bind-rw", "--", "true")
	r.OK("pool", "rm", "pl-ref")
	assertPoolGone(t, r, "pl-ref", b, nil, nil)
}

// TestPoolEmptyStartsCold: an empty pool runs the command in a sandbox
// started cold from the pool's config, and --json says so.
func TestPoolEmptyStartsCold(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t)
	name := "pl-cold"
	r.OK("pool", "create", name, "--bundle", b.Dir, "--no-fill", "--env", "FROM_POOL=1")
	defer r.Run(nil, "pool", "rm", name)
	ws := userWorkspace(t)
	res := r.Run(nil, "sandbox", "--pool", name, "--json", "--workspace", ws, "--", "sh", "-c", `echo "$FROM_POOL"; pwd; echo x > f`)
	pr := lastJSON(t, res)
	if res.Code != 0 || !strings.HasPrefix(pr.Pool, "cold") || !strings.HasPrefix(res.Stdout, "1\n/workspace\n") {
		t.Errorf("cold run: exit %d, %+v, stdout %q, stderr %q", res.Code, pr, res.Stdout, res.Stderr)
	}
	if _, err := os.Stat(filepath.Join(ws, "f")); err != nil {
		t.Errorf("cold run's workspace not written back: %v", err)
	}
	assertNoSandboxLeftovers(t, r, pr.ID, b.Dir)
	// The acquire started a refill.
	r.waitPoolReady(name, 1)
	ids := poolMembers(r, name)
	pids := memberPids(t, r, ids)
	r.OK("pool", "rm", name)
	assertPoolGone(t, r, name, b, ids, pids)
}

// TestPoolOneTakerEach: concurrent callers never share a sandbox.
func TestPoolOneTakerEach(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t)
	name := "pl-race"
	r.OK("pool", "create", name, "--bundle", b.Dir, "--size", "3", "--no-fill")
	defer r.Run(nil, "pool", "rm", name)
	r.OK("pool", "fill", name)
	if s, _ := r.poolStatus(name); s.Ready != 3 {
		t.Fatalf("after fill: %+v", s)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A file in /tmp marks the sandbox: a reused one would show it.
			res, err := r.coreExec(nil, "sandbox", "--pool", name, "--json", "--", "sh", "-c", "ls /tmp; touch /tmp/used")
			if err != nil || res.Code != 0 {
				t.Errorf("concurrent take: %v exit %d stderr %s", err, res.Code, res.Stderr)
				return
			}
			pr := lastJSON(t, res)
			if strings.Contains(res.Stdout, "used") {
				t.Errorf("sandbox %s was used before", pr.ID)
			}
			mu.Lock()
			seen[pr.ID]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	for id, n := range seen {
		if n != 1 {
			t.Errorf("sandbox %s given to %d callers", id, n)
		}
	}
}

// TestPoolKill9: a refill, a taker and the pool's rm killed with SIGKILL
// leave nothing that the next refill or rm doesn't remove.
func TestPoolKill9(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t)
	name := "pl-kill"
	r.OK("pool", "create", name, "--bundle", b.Dir, "--size", "3", "--no-fill")
	defer r.Run(nil, "pool", "rm", name)
	// A refill killed while it makes a sandbox.
	fill := r.Cmd("pool", "fill", name)
	if err := fill.Start(); err != nil {
		t.Fatal(err)
	}
	waitForUpTo(t, 30*time.Second, "the refill to start a sandbox", func() bool { return len(poolMembers(r, name)) > 0 })
	fill.Process.Kill()
	fill.Wait()
	seen := poolMembers(r, name)
	// The next refill removes what the dead one left half-made.
	r.OK("pool", "fill", name)
	r.waitPoolReady(name, 3)
	// A taker killed while its command runs.
	taker := r.Cmd("sandbox", "--pool", name, "--", "sleep", "100")
	if err := taker.Start(); err != nil {
		t.Fatal(err)
	}
	waitForUpTo(t, 30*time.Second, "the taker to take one", func() bool { s, _ := r.poolStatus(name); return s.Taken == 1 })
	time.Sleep(300 * time.Millisecond)
	taker.Process.Kill()
	taker.Wait()
	seen = append(seen, poolMembers(r, name)...)
	pids := memberPids(t, r, poolMembers(r, name))
	// rm killed half-way, then run again.
	rm := r.Cmd("pool", "rm", name)
	if err := rm.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	rm.Process.Kill()
	rm.Wait()
	if res := r.Run(nil, "pool", "rm", name); res.Code != 0 && !strings.Contains(res.Stderr, "no such pool") {
		t.Errorf("pool rm after a killed rm: exit %d, %s", res.Code, res.Stderr)
	}
	// A killed rm may have removed the pool's dir before its sandboxes:
	// delete --force of each removes the rest.
	for _, id := range poolMembers(r, name) {
		r.OK("delete", "--force", id)
	}
	assertPoolGone(t, r, name, b, seen, pids)
}

// TestPoolBrokenMembers: a member deleted behind the pool's back and one
// whose supervisor was killed are skipped (and removed), never handed out
// to run nothing.
func TestPoolBrokenMembers(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t)
	name := "pl-broken"
	r.OK("pool", "create", name, "--bundle", b.Dir, "--size", "2", "--no-fill")
	defer r.Run(nil, "pool", "rm", name)
	r.OK("pool", "fill", name)
	ids := poolMembers(r, name)
	if len(ids) != 2 {
		t.Fatalf("members %v", ids)
	}
	pids := memberPids(t, r, ids)
	r.OK("delete", "--force", ids[0])
	if s, _ := r.poolStatus(name); s.Ready != 1 {
		t.Errorf("after a member's delete: %+v, want 1 ready", s)
	}
	syscall.Kill(memberPids(t, r, ids[1:])[0], syscall.SIGKILL)
	res := r.Run(nil, "sandbox", "--pool", name, "--json", "--", "echo", "ran")
	if pr := lastJSON(t, res); res.Code != 0 || !strings.HasPrefix(res.Stdout, "ran\n") || !strings.HasPrefix(pr.Pool, "cold") {
		t.Errorf("with no sound member: exit %d, %+v, stdout %q, stderr %q", res.Code, pr, res.Stdout, res.Stderr)
	}
	r.waitPoolReady(name, 2)
	all := append(ids, poolMembers(r, name)...)
	pids = append(pids, memberPids(t, r, poolMembers(r, name))...)
	r.OK("pool", "rm", name)
	assertPoolGone(t, r, name, b, all, pids)
}

// TestPoolFastPath: the plain `sandbox --pool NAME [-e] [--cwd] -- CMD`
// runs in C before Go starts (package fastexec), with what the Go path
// gives: the pool's and the caller's environment, the directory, no
// stdin, the status, forwarded signals; the member is destroyed and the
// pool refilled after. NUCLEUS_EXEC_FAST=0 runs the same through Go.
func TestPoolFastPath(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t)
	name := "pl-fast"
	r.OK("pool", "create", name, "--bundle", b.Dir, "--size", "2", "--env", "FROM_POOL=1")
	defer r.Run(nil, "pool", "rm", name)
	for _, path := range []struct {
		name string
		env  []string
	}{{"fast", nil}, {"go", []string{"NUCLEUS_EXEC_FAST=0"}}} {
		r.Env = path.env
		// Each take finds the pool full: an empty one starts cold, in Go.
		var used []string
		ready := func() {
			r.waitPoolReady(name, 2)
			used = append(used, poolMembers(r, name)...)
		}
		ready()
		probe := r.Cmd("sandbox", "--pool", name, "--", "true")
		probe.Env = append(append(os.Environ(), path.env...), "GODEBUG=inittrace=1")
		out, err := probe.CombinedOutput()
		if goStarted := strings.Contains(string(out), "init main"); err != nil || goStarted != (path.name == "go") {
			t.Fatalf("%s: wrong client (Go runtime started: %v): %v %s", path.name, goStarted, err, out)
		}
		ready()
		res := r.Run([]byte("not for the command\n"), "sandbox", "--pool", name, "-e", "X=y", "--env", "FROM_POOL=2", "--cwd", "/tmp", "--",
			"sh", "-c", `echo "$FROM_POOL $X $(pwd)"; cat; echo err >&2; exit 3`)
		if res.Code != 3 || res.Stdout != "2 y /tmp\n" || res.Stderr != "err\n" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", path.name, res.Code, res.Stdout, res.Stderr)
		}
		// A signal to the taker reaches the command.
		ready()
		cmd := r.Cmd("sandbox", "--pool", name, "--", "sh", "-c", `trap 'echo got TERM; exit 5' TERM; echo ready; while :; do sleep 0.05; done`)
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		rd := bufio.NewReader(stdout)
		if line, _ := rd.ReadString('\n'); line != "ready\n" {
			t.Fatalf("%s: forwarding: first line %q", path.name, line)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		rest, _ := rd.ReadString('\n')
		cmd.Wait()
		if code := cmd.ProcessState.ExitCode(); code != 5 || rest != "got TERM\n" {
			t.Errorf("%s: SIGTERM to the taker: exit %d, output %q", path.name, code, rest)
		}
		// A command that leaves a process holding its stdout: the taker
		// returns with the command's status, and the release ends that
		// process with the sandbox.
		ready()
		if res, err := r.coreExecUpTo(40*time.Second, nil, "sandbox", "--pool", name, "--", "sh", "-c", "sleep 100 & echo started; exit 4"); err != nil || res.Code != 4 || res.Stdout != "started\n" {
			t.Errorf("%s: a pooled command leaving a process behind: %v exit %d stdout %q stderr %q", path.name, err, res.Code, res.Stdout, res.Stderr)
		}
		// Every member used is destroyed, never reused; the pool refills.
		r.waitPoolReady(name, 2)
		now := poolMembers(r, name)
		var gone []string
		for _, id := range used {
			if !contains(now, id) && !contains(gone, id) {
				gone = append(gone, id)
			}
		}
		if len(gone) != 4 {
			t.Errorf("%s: four takes destroyed %v", path.name, gone)
		}
		waitForUpTo(t, 30*time.Second, "the used sandboxes to be removed", func() bool {
			for _, id := range gone {
				if _, err := os.Stat(filepath.Join(r.Root, "@sandbox-"+id)); err == nil {
					return false
				}
			}
			return true
		})
		for _, id := range gone {
			assertNoSandboxLeftovers(t, r, id, b.Dir)
		}
	}
	r.Env = nil
	r.waitPoolReady(name, 2)
	ids := poolMembers(r, name)
	pids := memberPids(t, r, ids)
	r.OK("pool", "rm", name)
	assertPoolGone(t, r, name, b, ids, pids)
}
