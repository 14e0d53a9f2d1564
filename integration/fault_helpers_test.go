package integration

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// assertNothingLeft is assertNoLeftovers and more, for the fault tests:
// no sandbox record or workspace copy, no network (veth, lease, nft
// chain or set, record), no cgroup directory of the id in any hierarchy
// (at any depth under a hierarchy's root that the id ends), no process in
// such a cgroup or rooted under the state root, and no process running
// the binary under test as an init or on this root.
func assertNothingLeft(t *testing.T, r *Runner, id, bundleDir string) {
	t.Helper()
	assertNoLeftovers(t, r.Root, id, bundleDir)
	for _, p := range []string{"@sandbox-" + id, "@workspace-" + id} {
		if _, err := os.Stat(filepath.Join(r.Root, p)); err == nil {
			t.Errorf("leftover %s", filepath.Join(r.Root, p))
		}
	}
	assertNoNetLeftovers(t, r.Root, id)
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if bytes.Contains(mi, []byte(id)) {
		for _, line := range strings.Split(string(mi), "\n") {
			if strings.Contains(line, id) {
				t.Errorf("leftover mount: %s", line)
			}
		}
	}
	bin, _ := filepath.EvalSymlinks(r.Bin)
	procs, _ := filepath.Glob("/proc/[0-9]*")
	self := strconv.Itoa(os.Getpid())
	for _, p := range procs {
		pid := filepath.Base(p)
		if pid == self {
			continue
		}
		n, _ := strconv.Atoi(pid)
		if !alive(n) {
			continue
		}
		if cg, err := os.ReadFile(filepath.Join(p, "cgroup")); err == nil && strings.Contains(string(cg), "/"+id+"\n") {
			t.Errorf("leftover process %s (%s) in the cgroup of %s", pid, cmdline(n), id)
		}
		if root, err := os.Readlink(filepath.Join(p, "root")); err == nil && strings.HasPrefix(root, r.Root+"/") {
			t.Errorf("leftover process %s (%s) rooted at %s", pid, cmdline(n), root)
		}
		// A container's init before it execs (or a nucleus CLI of this
		// root); another test's processes are not this one's business.
		if exe, err := os.Readlink(filepath.Join(p, "exe")); err == nil && bin != "" && strings.TrimSuffix(exe, " (deleted)") == bin &&
			(strings.HasSuffix(cmdline(n), " init") || strings.Contains(cmdline(n), r.Root)) {
			t.Errorf("leftover process %s running nucleus: %s", pid, cmdline(n))
		}
	}
}
