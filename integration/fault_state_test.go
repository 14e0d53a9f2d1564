package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFaultBrokenState: a container whose state.json is missing, empty,
// truncated, garbled, `null` or `{}` (a nucleus killed before writing it,
// a full disk) is named by list (stderr, exit 1) while the others are
// listed as usual; state and a plain delete fail in one line naming the
// file; delete --force kills what runs in its cgroups (a process in a
// sub-cgroup too) and leaves nothing.
func TestFaultBrokenState(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "sh", "-c", "sleep 1001 & sleep 1002 & wait")
	good := ftID(t, r, "good")
	r.coreDetached("run", "-d", "--bundle", b.Dir, good)
	for _, tc := range []struct {
		name   string
		break_ func(path string) error
		want   string
	}{
		{"missing", os.Remove, "state.json: file does not exist"},
		{"empty", func(p string) error { return os.WriteFile(p, nil, 0o600) }, "state.json: unreadable: empty"},
		{"truncated", func(p string) error {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(p, data[:len(data)/2], 0o600)
		}, "state.json: unreadable: truncated"},
		{"garbled", func(p string) error { return os.WriteFile(p, []byte("{\"id\":\x00\xff}"), 0o600) }, "state.json: unreadable: not valid JSON"},
		{"null", func(p string) error { return os.WriteFile(p, []byte("null"), 0o600) }, "state.json: unreadable: incomplete"},
		{"empty-object", func(p string) error { return os.WriteFile(p, []byte("{}"), 0o600) }, "state.json: unreadable: incomplete"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := ftID(t, r, "bs-"+tc.name)
			r.coreDetached("run", "-d", "--bundle", b.Dir, id)
			waitFor(t, "three processes", func() bool { return len(r.corePs(id)) == 3 })
			pids := r.corePs(id)
			// A process in a sub-cgroup, as exec --cgroup makes.
			if !cgroupV2() {
				sub := filepath.Join("/sys/fs/cgroup/pids", id, "sub")
				if err := os.Mkdir(sub, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(sub, "cgroup.procs"), []byte(strconv.Itoa(pids[len(pids)-1])), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			stateFile := filepath.Join(r.Root, id, "state.json")
			if err := tc.break_(stateFile); err != nil {
				t.Fatal(err)
			}
			// A dir changed this second may be a create in progress.
			old := time.Now().Add(-time.Minute)
			os.Chtimes(filepath.Join(r.Root, id), old, old)

			res := r.Run(nil, "list")
			if res.Code == 0 {
				t.Errorf("list with a broken container: exit 0")
			}
			if !strings.Contains(res.Stdout, good) || !strings.Contains(res.Stdout, "running") {
				t.Errorf("list leaves out the readable container: %q", res.Stdout)
			}
			if !strings.Contains(res.Stdout, id) || !strings.Contains(res.Stdout, "unknown") {
				t.Errorf("list leaves out the broken container: %q", res.Stdout)
			}
			if msg := strings.TrimSpace(res.Stderr); strings.Count(msg, "\n") != 0 || !strings.Contains(msg, id) || !strings.Contains(msg, stateFile) || !strings.Contains(msg, strings.TrimPrefix(tc.want, "state.json")) {
				t.Errorf("list's stderr %q: want one line naming %s, %s and %q", msg, id, stateFile, tc.want)
			}
			res = r.Run(nil, "list", "--format", "json")
			var states []map[string]any
			if err := json.Unmarshal([]byte(res.Stdout), &states); err != nil || len(states) != 2 {
				t.Errorf("list --format json: %v: %s", err, res.Stdout)
			}
			for _, s := range states {
				if s["id"] == id && (s["status"] != "unknown" || !strings.Contains(s["error"].(string), stateFile)) {
					t.Errorf("list --format json: broken container as %v", s)
				}
			}
			if res := r.Run(nil, "list", "-q"); !strings.Contains(res.Stdout, id+"\n") || !strings.Contains(res.Stdout, good+"\n") {
				t.Errorf("list -q: %q", res.Stdout)
			}
			if tc.name != "missing" {
				r.Fail([]string{id, stateFile}, "state", id)
				r.Fail([]string{id, stateFile, "delete --force"}, "delete", id)
			}
			r.OK("delete", "--force", id)
			for _, p := range pids {
				if alive(p) {
					t.Errorf("process %d (%s) alive after delete --force", p, cmdline(p))
				}
			}
			assertNothingLeft(t, r, id, "")
			if res := r.OK("list", "-q"); strings.TrimSpace(res.Stdout) != good {
				t.Errorf("list -q after delete --force: %q", res.Stdout)
			}
		})
	}
	r.OK("delete", "--force", good)
	assertNothingLeft(t, r, good, b.Dir)
}

// TestFaultBrokenGvisorRecord: a gVisor container whose record
// (gvisor.json) is missing, empty, truncated, garbled or incomplete, or
// whose whole state dir is gone, while runsc's own state is there and its
// sandbox runs, is named by list (stderr, exit 1, status unknown); state
// and a plain delete fail naming the record; delete --force removes
// runsc's sandbox and state, cgroups, processes and the dir.
func TestFaultBrokenGvisorRecord(t *testing.T) {
	r := gvisorRunner(t)
	b := gvisorBundle(t, "sleep", "1000")
	for _, tc := range []struct {
		name   string
		break_ func(path string) error
		want   string
	}{
		{"missing", os.Remove, "missing, while runsc holds the container"},
		{"empty", func(p string) error { return os.WriteFile(p, nil, 0o600) }, "unreadable: empty"},
		{"truncated", func(p string) error {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(p, data[:len(data)/2], 0o600)
		}, "unreadable: truncated"},
		{"garbled", func(p string) error { return os.WriteFile(p, []byte("{\"runsc\":\x00\xff}"), 0o600) }, "unreadable: not valid JSON"},
		{"empty-object", func(p string) error { return os.WriteFile(p, []byte("{}"), 0o600) }, "unreadable: incomplete"},
		{"dir-gone", func(p string) error { return os.RemoveAll(filepath.Dir(p)) }, "while runsc holds the container"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := ftID(t, r, "gvr-"+tc.name)
			r.coreDetached("run", "-d", "--bundle", b.Dir, id)
			if len(runscProcesses(r, id)) == 0 {
				t.Fatalf("no runsc process of %s after run -d", id)
			}
			record := filepath.Join(r.Root, id, "gvisor.json")
			if err := tc.break_(record); err != nil {
				t.Fatal(err)
			}
			named := record
			if tc.name == "dir-gone" {
				named = filepath.Join(r.Root, id)
			} else {
				old := time.Now().Add(-time.Minute)
				os.Chtimes(filepath.Join(r.Root, id), old, old)
			}
			res := r.Run(nil, "list")
			if res.Code == 0 {
				t.Errorf("list with a broken gVisor container: exit 0")
			}
			if !strings.Contains(res.Stdout, id) || !strings.Contains(res.Stdout, "unknown") {
				t.Errorf("list leaves out the broken container: %q", res.Stdout)
			}
			if msg := strings.TrimSpace(res.Stderr); strings.Count(msg, "\n") != 0 || !strings.Contains(msg, id) || !strings.Contains(msg, named) || !strings.Contains(msg, tc.want) {
				t.Errorf("list's stderr %q: want one line naming %s, %s and %q", msg, id, named, tc.want)
			}
			if tc.name != "dir-gone" {
				r.Fail([]string{id, record}, "state", id)
				r.Fail([]string{id, record, "delete --force"}, "delete", id)
			}
			r.OK("delete", "--force", id)
			if p := runscProcesses(r, id); len(p) > 0 {
				t.Errorf("runsc processes alive after delete --force: %v", p)
			}
			assertNoGvisorLeftovers(t, r, id, b.Dir)
			assertNothingLeft(t, r, id, "")
			if res := r.OK("list", "-q"); strings.TrimSpace(res.Stdout) != "" {
				t.Errorf("list -q after delete --force: %q", res.Stdout)
			}
		})
	}
}

// TestFaultKill9GvisorRun: nucleus and the runsc it runs killed together
// (as a unit's or a shell's process group is) at points through a gVisor
// run -d: delete --force and list work and nothing is left, runsc's
// cgroups included (runsc removes them only once it has written its
// state). strace can't drive these kills: runsc's ptrace platform then
// can't trace its own stubs.
func TestFaultKill9GvisorRun(t *testing.T) {
	r := gvisorRunner(t)
	b := gvisorBundle(t, "sleep", "1000")
	for _, delay := range []time.Duration{0, 20, 50, 100, 150, 250, 400} {
		delay *= time.Millisecond
		id := f2ID(t, r, "k9gv")
		cmd := r.Cmd("run", "-d", "--bundle", b.Dir, id)
		devnull, _ := os.Open(os.DevNull)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitForUpTo(t, 30*time.Second, "runsc for "+id, func() bool { return len(runscProcesses(r, id)) > 0 || cmd.ProcessState != nil })
		time.Sleep(delay)
		cmd.Process.Kill()
		for _, p := range runscProcesses(r, id) {
			if pid, err := strconv.Atoi(strings.TrimPrefix(strings.SplitN(p, ":", 2)[0], "/proc/")); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		cmd.Wait()
		devnull.Close()
		what := fmt.Sprintf("run -d killed %s after runsc started", delay)
		assertRecovers(t, r, id, b.Dir, what)
		assertNoGvisorLeftovers(t, r, id, b.Dir)
	}
}
