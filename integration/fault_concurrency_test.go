package integration

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// TestFaultManyRuns: 200 attached runs of distinct ids, 16 at a time (the
// test machine has two cores), all succeed and leave nothing.
func TestFaultManyRuns(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "sh", "-c", "echo ok")
	const n, workers = 200, 16
	ids := make([]string, n)
	for i := range ids {
		ids[i] = ftID(t, r, fmt.Sprintf("many%03d", i))
	}
	work := make(chan string)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				res, err := r.coreExec(nil, "run", "--bundle", b.Dir, id)
				switch {
				case err != nil:
					errs <- fmt.Errorf("%s: %w", id, err)
				case res.Code != 0 || strings.TrimSpace(res.Stdout) != "ok":
					errs <- fmt.Errorf("%s: exit %d, stdout %q, stderr %q", id, res.Code, res.Stdout, res.Stderr)
				}
			}
		}()
	}
	for _, id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		failed++
		if failed <= 10 {
			t.Error(err)
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d runs failed", failed, n)
	}
	if res := r.OK("list", "-q"); strings.TrimSpace(res.Stdout) != "" {
		t.Errorf("list -q after the runs: %q", res.Stdout)
	}
	for _, id := range ids {
		assertNoLeftovers(t, r.Root, id, b.Dir)
	}
}

// TestFaultCreateRace: of 10 creates of one id at once exactly one wins;
// the others fail in one line saying the id already exists, and the winner
// is undisturbed.
func TestFaultCreateRace(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "sleep", "1000")
	for round := range 2 {
		id := ftID(t, r, fmt.Sprintf("race%d", round))
		const n = 10
		results := make([]Result, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i], errs[i] = r.coreExec(nil, "create", "--bundle", b.Dir, id)
			}()
		}
		wg.Wait()
		wins := 0
		for i := range n {
			switch {
			case errs[i] != nil:
				t.Errorf("create #%d: %v", i, errs[i])
			case results[i].Code == 0:
				wins++
			case !strings.Contains(results[i].Stderr, "container "+id+" already exists") || strings.Count(strings.TrimSpace(results[i].Stderr), "\n") != 0:
				t.Errorf("losing create #%d: stderr %q", i, results[i].Stderr)
			}
		}
		if wins != 1 {
			t.Fatalf("%d of %d concurrent creates of one id succeeded, want 1", wins, n)
		}
		if st := r.State(id); st["status"] != "created" || !alive(r.corePid(id)) {
			t.Fatalf("the winner after the race: %v", st)
		}
		r.OK("start", id)
		r.WaitStatus(id, "running")
		r.OK("delete", "--force", id)
		assertNothingLeft(t, r, id, b.Dir)
	}
}

// TestFaultParallelKillDeleteState: kill, delete --force and state of one
// running container at once never crash, each either succeeds or fails in
// one line, every delete --force succeeds, and nothing is left.
func TestFaultParallelKillDeleteState(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "sh", "-c", "sleep 1000 & sleep 1001 & wait")
	for round := range 3 {
		id := ftID(t, r, fmt.Sprintf("pkds%d", round))
		r.coreDetached("run", "-d", "--bundle", b.Dir, id)
		pids := r.corePs(id)
		var cmds [][]string
		for range 4 {
			cmds = append(cmds, []string{"kill", id, "KILL"}, []string{"kill", "--all", id, "TERM"},
				[]string{"delete", "--force", id}, []string{"state", id}, []string{"kill", id, "0"})
		}
		results := make([]Result, len(cmds))
		errs := make([]error, len(cmds))
		var wg sync.WaitGroup
		for i, c := range cmds {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i], errs[i] = r.coreExec(nil, c...)
			}()
		}
		wg.Wait()
		for i, c := range cmds {
			res := results[i]
			what := fmt.Sprintf("round %d: nucleus %s", round, strings.Join(c, " "))
			switch {
			case errs[i] != nil:
				t.Errorf("%s: %v", what, errs[i])
			case strings.Contains(res.Stderr, "panic") || strings.Contains(res.Stderr, "goroutine "):
				t.Errorf("%s: crashed: %s", what, res.Stderr)
			case c[0] == "delete" && res.Code != 0:
				t.Errorf("%s: exit %d: %s", what, res.Code, res.Stderr)
			case res.Code != 0 && strings.Count(strings.TrimSpace(res.Stderr), "\n") != 0:
				t.Errorf("%s: error is not one line: %s", what, res.Stderr)
			}
		}
		for _, p := range pids {
			if alive(p) {
				t.Errorf("round %d: process %d alive", round, p)
			}
		}
		if res := r.OK("list", "-q"); strings.TrimSpace(res.Stdout) != "" {
			t.Errorf("round %d: list -q: %q", round, res.Stdout)
		}
		assertNothingLeft(t, r, id, b.Dir)
	}
}
