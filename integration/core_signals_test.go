package integration

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

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

	for _, bad := range []string{"BOGUS", "SIGNOPE", "65", "-1"} {
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
