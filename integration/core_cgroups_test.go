package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestCorePsAndList(t *testing.T) {
	r := newRunner(t)
	if res := r.OK("list", "--format", "json"); strings.TrimSpace(res.Stdout) != "null" && strings.TrimSpace(res.Stdout) != "[]" {
		t.Errorf("list on an empty root: %q", res.Stdout)
	}
	b := newBundle(t, "sh", "-c", "sleep 1234 & wait")
	running := coreID(t, r, "ps")
	created := coreID(t, r, "ps2")
	r.coreDetached("run", "-d", "--bundle", b.Dir, running)
	r.coreDetached("create", "--bundle", b.Dir, created)
	pid := r.corePs
	initPid := r.corePid(running)
	waitFor(t, "two processes", func() bool { return len(pid(running)) == 2 })
	pids := pid(running)
	if !slices.Contains(pids, initPid) {
		t.Errorf("ps json %v lacks init %d", pids, initPid)
	}
	var sleepPid int
	for _, p := range pids {
		if cmdline(p) == "sleep 1234" {
			sleepPid = p
		}
	}
	if sleepPid == 0 {
		t.Fatalf("ps json %v: no pid runs sleep 1234", pids)
	}

	res := r.OK("ps", running)
	lines := strings.Split(strings.TrimSpace(res.Stdout), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "PID") || !strings.Contains(lines[0], "CMD") {
		t.Fatalf("ps table: %q", res.Stdout)
	}
	for _, p := range []int{initPid, sleepPid} {
		found := false
		for _, l := range lines[1:] {
			if slices.Contains(strings.Fields(l), strconv.Itoa(p)) {
				found = true
			}
		}
		if !found {
			t.Errorf("ps table has no row for %d: %q", p, res.Stdout)
		}
	}
	if !strings.Contains(res.Stdout, "sleep 1234") {
		t.Errorf("ps table lacks the sleep command: %q", res.Stdout)
	}
	// ps options are passed to ps(1).
	res = r.OK("ps", running, "-o", "pid,comm")
	if !strings.HasPrefix(strings.TrimSpace(res.Stdout), "PID") || !strings.Contains(res.Stdout, "sleep") {
		t.Errorf("ps -o pid,comm: %q", res.Stdout)
	}
	r.Fail([]string{`--format "yaml": want table or json`}, "ps", "--format", "yaml", running)

	res = r.OK("list", "--format", "json")
	var list []map[string]any
	if err := json.Unmarshal([]byte(res.Stdout), &list); err != nil {
		t.Fatalf("list json: %v: %q", err, res.Stdout)
	}
	byID := map[string]map[string]any{}
	for _, s := range list {
		byID[fmt.Sprint(s["id"])] = s
	}
	if len(list) != 2 || byID[running]["status"] != "running" || byID[created]["status"] != "created" ||
		byID[running]["pid"] != float64(initPid) || byID[running]["bundle"] != b.Dir || byID[running]["owner"] != "root" {
		t.Errorf("list json: %v", list)
	}

	res = r.OK("list", "-q")
	ids := strings.Fields(res.Stdout)
	slices.Sort(ids)
	want := []string{running, created}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("list -q: %q, want %v", res.Stdout, want)
	}

	res = r.OK("list")
	lines = strings.Split(strings.TrimSpace(res.Stdout), "\n")
	if len(lines) != 3 || strings.Join(strings.Fields(lines[0]), " ") != "ID PID STATUS BUNDLE CREATED OWNER" {
		t.Fatalf("list table: %q", res.Stdout)
	}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) != 6 || f[3] != b.Dir || f[5] != "root" {
			t.Errorf("list row %q", l)
		}
		switch f[0] {
		case running:
			if f[1] != strconv.Itoa(initPid) || f[2] != "running" {
				t.Errorf("list row %q", l)
			}
		case created:
			if f[2] != "created" {
				t.Errorf("list row %q", l)
			}
		default:
			t.Errorf("list row for unknown id: %q", l)
		}
	}
	r.Fail([]string{`--format "xml": want table or json`}, "list", "--format", "xml")

	r.OK("delete", "--force", running)
	r.OK("delete", "--force", created)
	if res := r.OK("list", "-q"); strings.TrimSpace(res.Stdout) != "" {
		t.Errorf("list -q after deletes: %q", res.Stdout)
	}
	assertNoLeftovers(t, r.Root, running, b.Dir)
	assertNoLeftovers(t, r.Root, created, b.Dir)
}

// TestCoreCgroupLimits: resources from config.json are in the container's
// cgroup, seen from the host and from inside, and an empty cgroupsPath puts
// the container at /<id> in every hierarchy even when nucleus itself runs in
// a nested cgroup.
func TestCoreCgroupLimits(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "sleep", "1000")
	mem, pids := int64(64<<20), int64(50)
	b.Spec.Linux.Resources = &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: &mem},
		Pids:   &specs.LinuxPids{Limit: &pids},
	}
	b.Spec.Linux.CgroupsPath = ""
	b.Save(t)
	// Run nucleus from a nested cgroup in every hierarchy where the test
	// itself sits at the root, so that nesting under the caller would show.
	// (Made first, so that it is removed after the container is.)
	nests := nestCgroups(t, coreID(t, r, "nest"))
	id := coreID(t, r, "cg")
	wrapper := `for d in ` + strings.Join(nests, " ") + `; do echo $$ > "$d/cgroup.procs" || exit 99; done; exec "$@"`
	args := append([]string{"-c", wrapper, "sh", r.Bin, "--root", r.Root}, "run", "-d", "--bundle", b.Dir, id)
	out, err := execCommand("/bin/sh", args...)
	if err != nil {
		t.Fatalf("nucleus run -d from a nested cgroup: %v: %s", err, out)
	}
	pid := r.corePid(id)

	cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	lines := strings.Split(strings.TrimSpace(string(cg)), "\n")
	if len(lines) == 0 {
		t.Fatalf("no cgroups for %d", pid)
	}
	for _, l := range lines {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 || parts[2] != "/"+id {
			t.Errorf("container init cgroup line %q, want path /%s in every hierarchy", l, id)
		}
	}

	memFile := cgroupFile(id, "memory", "memory.limit_in_bytes", "memory.max")
	pidsFile := cgroupFile(id, "pids", "pids.max", "pids.max")
	if got := readTrim(memFile); got != strconv.FormatInt(mem, 10) {
		t.Errorf("%s = %q, want %d", memFile, got, mem)
	}
	if got := readTrim(pidsFile); got != "50" {
		t.Errorf("%s = %q, want 50", pidsFile, got)
	}
	// From inside: the cgroup mount shows the container's own cgroup.
	inside := []string{"/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/pids/pids.max"}
	if cgroupV2() {
		inside = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/pids.max"}
	}
	res := r.Run(nil, append([]string{"exec", id, "cat"}, inside...)...)
	if res.Code != 0 || res.Stdout != fmt.Sprintf("%d\n50\n", mem) {
		t.Errorf("limits read inside: code %d stdout %q stderr %q", res.Code, res.Stdout, res.Stderr)
	}
	// The pids limit is enforced: 60 more processes cannot all start.
	res = r.Run(nil, "exec", id, "sh", "-c", `n=0; while [ $n -lt 60 ]; do sleep 1000 >/dev/null 2>&1 & n=$((n+1)); done`)
	if !strings.Contains(res.Stderr, "can't fork") && !strings.Contains(res.Stderr, "Resource temporarily unavailable") {
		t.Errorf("60 forks under pids.max 50: code %d stderr %q", res.Code, res.Stderr)
	}
	if n := len(r.corePs(id)); n > 50 {
		t.Errorf("%d processes under pids.max 50", n)
	}

	r.OK("delete", "--force", id)
	assertNoLeftovers(t, r.Root, id, b.Dir)
}

// nestCgroups makes a child cgroup called name in each hierarchy where this
// process sits at the root and returns their paths; they are removed when
// the test ends.
func nestCgroups(t *testing.T, name string) []string {
	t.Helper()
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, l := range strings.Split(strings.TrimSpace(string(self)), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 || parts[2] != "/" {
			continue
		}
		var mount string
		switch {
		case cgroupV2():
			mount = "/sys/fs/cgroup"
		case parts[1] == "":
			mount = "/sys/fs/cgroup/unified"
		default:
			mount = filepath.Join("/sys/fs/cgroup", strings.TrimPrefix(strings.Split(parts[1], ",")[0], "name="))
		}
		if _, err := os.Stat(filepath.Join(mount, "cgroup.procs")); err != nil {
			continue
		}
		d := filepath.Join(mount, name)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatalf("nest cgroup: %v", err)
		}
		if strings.HasSuffix(mount, "/cpuset") {
			// A v1 cpuset child needs cpus and mems before it takes tasks.
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				os.WriteFile(filepath.Join(d, f), []byte(readTrim(filepath.Join(mount, f))), 0o644)
			}
		}
		dirs = append(dirs, d)
		t.Cleanup(func() { os.Remove(d) })
	}
	if len(dirs) == 0 {
		t.Logf("the test runs in a nested cgroup in every hierarchy already")
	}
	return dirs
}
