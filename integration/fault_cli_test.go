package integration

// The fault suite (TestFault*): runc's command-line gaps found by its bats
// files, recovery from kill -9 at any syscall, broken state, concurrency,
// exhaustion and signals. Every container id starts with "ft-".

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ftID returns a fresh container id "ft-<name>-<random>" and registers a
// forced delete of it for when the test ends.
func ftID(t testing.TB, r *Runner, name string) string {
	t.Helper()
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	id := "ft-" + name + "-" + hex.EncodeToString(b[:])
	t.Cleanup(func() { _ = r.Cmd("delete", "--force", id).Run() })
	return id
}

// TestFaultCLIRuncGaps: what runc's bats files do and nucleus refused:
// `kill ID 0` (a liveness probe), flags after the container id on every
// runc command that reorders them (all but exec and ps), and exec
// --cgroup with comma-joined v1 controllers.
func TestFaultCLIRuncGaps(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "sleep", "1000")
	id := ftID(t, r, "cli")

	// create ID --bundle DIR, start ID, state ID: flags after the id.
	r.coreDetached("create", id, "--bundle", b.Dir)
	r.OK("start", id)
	r.WaitStatus(id, "running")
	r.OK("kill", id, "0")
	r.OK("kill", id, "0", "--all")

	r.OK("update", id, "--memory", "64M", "--pids-limit=77")
	if got := readTrim(cgroupFile(id, "memory", "memory.limit_in_bytes", "memory.max")); got != "67108864" {
		t.Errorf("update ID --memory 64M: limit %q", got)
	}
	if got := readTrim(cgroupFile(id, "pids", "pids.max", "pids.max")); got != "77" {
		t.Errorf("update ID --pids-limit=77: pids.max %q", got)
	}
	if res := r.OK("events", id, "--stats"); !strings.Contains(res.Stdout, `"type":"stats"`) {
		t.Errorf("events ID --stats: %q", res.Stdout)
	}
	if res := r.OK("list", "-q"); !strings.Contains(res.Stdout, id) {
		t.Errorf("list -q: %q", res.Stdout)
	}
	r.OK("pause", id)
	r.WaitStatus(id, "paused")
	r.OK("resume", id)
	r.WaitStatus(id, "running")
	// ps keeps what follows the id as ps's own options.
	if res := r.OK("ps", id, "-o", "pid,comm"); !strings.Contains(res.Stdout, "sleep") {
		t.Errorf("ps ID -o pid,comm: %q", res.Stdout)
	}
	// An unknown flag after the id stays an argument, as in runc.
	r.Fail([]string{`"delete" requires exactly 1 argument(s), got 2`}, "delete", id, "--bogus")

	// exec --cgroup with one controller and with two joined by a comma
	// (cgroup v1 only: v2 takes a single path).
	if !cgroupV2() {
		for _, c := range []string{"memory", "cpu", "cpuacct"} {
			dir := filepath.Join("/sys/fs/cgroup", c, id, "sub")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		res := r.OK("exec", "--cgroup", "memory:sub", "--cgroup", "cpu,cpuacct:sub", id, "cat", "/proc/self/cgroup")
		for _, want := range []string{":memory:/" + id + "/sub\n", ":cpu:/" + id + "/sub\n", ":cpuacct:/" + id + "/sub\n", ":pids:/" + id + "\n"} {
			if !strings.Contains(res.Stdout, want) {
				t.Errorf("exec --cgroup memory:sub --cgroup cpu,cpuacct:sub: no %q in\n%s", strings.TrimSpace(want), res.Stdout)
			}
		}
		// What follows exec's id stays the command's, flag-like or not.
		res = r.OK("exec", id, "sh", "-c", `echo "$*"`, "x", "--cgroup", "a:b", "-t")
		if strings.TrimSpace(res.Stdout) != "--cgroup a:b -t" {
			t.Errorf("exec ID sh -c ... --cgroup a:b -t: %q", res.Stdout)
		}
	}

	r.OK("kill", id, "KILL", "--all")
	r.WaitStatus(id, "stopped")
	r.Fail([]string{"not running"}, "kill", id, "0")
	r.OK("delete", id, "--force")
	assertNoLeftovers(t, r.Root, id, b.Dir)

	// run ID -d --bundle DIR: flags after the id on run too.
	id2 := ftID(t, r, "cli-run")
	r.coreDetached("run", id2, "-d", "--bundle", b.Dir)
	r.OK("kill", id2, "0")
	r.OK("delete", "-f", id2)
	assertNoLeftovers(t, r.Root, id2, b.Dir)
}
