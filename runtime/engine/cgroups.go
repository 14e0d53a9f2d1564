package engine

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/sys/mountinfo"
	"github.com/opencontainers/cgroups"
	"golang.org/x/sys/unix"
)

// Cgroups of a container whose own records are gone: found by path in
// every mounted hierarchy, emptied with SIGKILL, removed.

// RemoveCgroups kills what runs in the cgroup rel (a path below each
// hierarchy's root, "/<id>" say) and its sub-cgroups, in every mounted
// hierarchy, and removes them.
func RemoveCgroups(rel string) error {
	// Never a hierarchy's root, whose processes are the whole host's.
	if rel = filepath.Clean("/" + rel); rel == "/" {
		return nil
	}
	var dirs []string
	for _, m := range CgroupMounts() {
		d := filepath.Join(m, rel)
		if _, err := os.Stat(d); err == nil && !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	err := KillCgroups(dirs)
	for _, d := range dirs {
		if rerr := cgroups.RemovePath(d); rerr != nil && err == nil {
			err = fmt.Errorf("cgroup %s: %w", d, rerr)
		}
	}
	removeUnmounted(rel)
	return err
}

// removeUnmounted removes rel's empty directories from the directories
// beside the hierarchies that are no hierarchy (/sys/fs/cgroup/hugetlb on
// a kernel without that controller: a plain directory of the tmpfs,
// where runsc makes a sandbox's "cgroup" all the same).
func removeUnmounted(rel string) {
	const top = "/sys/fs/cgroup"
	entries, _ := os.ReadDir(top)
	for _, e := range entries {
		d := filepath.Join(top, e.Name(), rel)
		var sfs unix.Statfs_t
		if !e.IsDir() || unix.Statfs(d, &sfs) != nil || sfs.Type == unix.CGROUP_SUPER_MAGIC || sfs.Type == unix.CGROUP2_SUPER_MAGIC {
			continue
		}
		// Deepest first; rmdir refuses anything but an empty directory.
		var tree []string
		_ = filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				tree = append(tree, p)
			}
			return nil
		})
		for i := len(tree) - 1; i >= 0; i-- {
			_ = unix.Rmdir(tree[i])
		}
	}
}

// CgroupMounts are the mount points of the host's cgroup hierarchies.
func CgroupMounts() []string {
	infos, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return nil
	}
	var out []string
	for _, m := range infos {
		if !slices.Contains(out, m.Mountpoint) {
			out = append(out, m.Mountpoint)
		}
	}
	return out
}

// CgroupRel is p below the cgroup mount it is in, or "" when p is no
// container's cgroup: outside every hierarchy, or a hierarchy's root,
// whose processes are the whole host's.
func CgroupRel(mounts []string, p string) string {
	p = filepath.Clean(p)
	best := ""
	for _, m := range mounts {
		if strings.HasPrefix(p, m+"/") && len(m) > len(best) {
			best = m
		}
	}
	if best == "" {
		return ""
	}
	rel := strings.TrimPrefix(p, best)
	if rel == "" || rel == "/" {
		return ""
	}
	return rel
}

// KillCgroups SIGKILLs every process in dirs and their sub-cgroups until
// none is left (10 s at most). A v1 freezer cgroup is frozen while its
// processes are listed and signalled, so that none forks past the kill,
// then thawed: a frozen v1 task does not die of SIGKILL.
func KillCgroups(dirs []string) error {
	self := os.Getpid()
	deadline := time.Now().Add(10 * time.Second)
	for {
		freezers := setFreezer(dirs, "FROZEN")
		var pids []int
		for _, d := range dirs {
			for _, pid := range cgroupPids(d) {
				// Never the caller itself, nor the host's init (a
				// cgroup path that somehow held them is no container's).
				if pid != self && pid > 1 {
					pids = append(pids, pid)
				}
			}
		}
		for _, pid := range pids {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
		setFreezer(freezers, "THAWED")
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v still in the container's cgroups 10s after SIGKILL", pids)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// setFreezer writes state to the freezer.state of each v1 freezer cgroup
// in dirs (and v2's cgroup.freeze) and returns those it wrote.
func setFreezer(dirs []string, state string) []string {
	var done []string
	for _, d := range dirs {
		if err := os.WriteFile(filepath.Join(d, "freezer.state"), []byte(state), 0); err == nil {
			done = append(done, d)
			continue
		}
		v := "0"
		if state == "FROZEN" {
			v = "1"
		}
		if err := os.WriteFile(filepath.Join(d, "cgroup.freeze"), []byte(v), 0); err == nil {
			done = append(done, d)
		}
	}
	if state == "FROZEN" && len(done) > 0 {
		// Freezing takes effect asynchronously; a short wait is enough
		// for the listing to be stable in practice, and a task that
		// slips through is caught by the next round.
		time.Sleep(time.Millisecond)
	}
	return done
}

// cgroupPids lists the processes of the cgroup dir and its descendants.
func cgroupPids(dir string) []int {
	var pids []int
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		data, err := os.ReadFile(filepath.Join(path, "cgroup.procs"))
		if err != nil {
			return nil
		}
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids
}
