package native

import (
	"encoding/json"
	"errors"
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
	"github.com/opencontainers/cgroups/manager"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/nucleus-run/nucleus/runtime/engine"
)

// A container's state.json is written only once its init runs in its
// cgroups; a nucleus killed before that (or a state.json truncated by a
// full disk, or garbled) leaves cgroups, an init and a state dir that
// libcontainer cannot load. cgroupRecordName is written into the state dir
// before any cgroup exists, so that a forced delete always knows where to
// look: it names the cgroup the container's config asked for.
const cgroupRecordName = "nucleus-cgroup.json"

type cgroupRecord struct {
	Path        string `json:"path,omitempty"`
	Name        string `json:"name,omitempty"`
	Parent      string `json:"parent,omitempty"`
	ScopePrefix string `json:"scope_prefix,omitempty"`
	Systemd     bool   `json:"systemd,omitempty"`
}

// writeCgroupRecord writes the record atomically: a kill part-way leaves
// none (and no cgroup yet) or the whole.
func writeCgroupRecord(stateDir string, cg *cgroups.Cgroup) error {
	if cg == nil {
		return nil
	}
	data, err := json.Marshal(cgroupRecord{Path: cg.Path, Name: cg.Name, Parent: cg.Parent, ScopePrefix: cg.ScopePrefix, Systemd: cg.Systemd})
	if err != nil {
		return err
	}
	path := filepath.Join(stateDir, cgroupRecordName)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cgroup record %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cgroup record %s: %w", path, err)
	}
	return nil
}

// reclaim is a forced delete of a container libcontainer cannot load (no
// state.json, or a broken one): whatever runs in the cgroups the container
// has or would have is killed, the cgroups are removed from every
// hierarchy, and the staged rootfs and state dir go.
func (r *Engine) reclaim(id string) error {
	dirs := r.impliedCgroupDirs(id)
	var errs []error
	if err := killCgroups(dirs); err != nil {
		errs = append(errs, fmt.Errorf("delete %s: %w", id, err))
	}
	for _, d := range dirs {
		if err := cgroups.RemovePath(d); err != nil {
			errs = append(errs, fmt.Errorf("delete %s: cgroup %s: %w", id, d, err))
		}
	}
	if err := engine.UnstageRootfs(r.Root, id); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(r.stateDir(id)); err != nil {
		errs = append(errs, fmt.Errorf("delete %s: %w", id, err))
	}
	return errors.Join(errs...)
}

// impliedCgroupDirs lists the cgroup directories of container id that
// exist, in every mounted hierarchy (v1 controllers, named ones like
// name=systemd, and a hybrid host's unified one): the paths state.json
// names if it still can be read that far, the ones the cgroup record
// names, and, when neither says anything but the state dir is there, /<id>
// (where nucleus puts a container whose config names no cgroup).
func (r *Engine) impliedCgroupDirs(id string) []string {
	var paths []string
	var st struct {
		CgroupPaths map[string]string `json:"cgroup_paths"`
	}
	if data, err := os.ReadFile(filepath.Join(r.stateDir(id), "state.json")); err == nil && json.Unmarshal(data, &st) == nil {
		for _, p := range st.CgroupPaths {
			paths = append(paths, p)
		}
	}
	var rec cgroupRecord
	if data, err := os.ReadFile(filepath.Join(r.stateDir(id), cgroupRecordName)); err == nil && json.Unmarshal(data, &rec) == nil {
		cg := &cgroups.Cgroup{Path: rec.Path, Name: rec.Name, Parent: rec.Parent, ScopePrefix: rec.ScopePrefix, Systemd: rec.Systemd, Resources: &cgroups.Resources{}}
		if m, err := manager.New(cg); err == nil {
			for _, p := range m.GetPaths() {
				paths = append(paths, p)
			}
		} else {
			logrus.Debugf("delete %s: cgroup record: %v", id, err)
		}
	}
	mounts := cgroupMounts()
	var rels []string
	for _, p := range paths {
		if rel := relativeTo(mounts, p); rel != "" && !slices.Contains(rels, rel) {
			rels = append(rels, rel)
		}
	}
	if _, err := os.Stat(r.stateDir(id)); len(rels) == 0 && err == nil && !r.SystemdCgroup && !r.rootlessCgroups() {
		// A state dir (ours) without a record: made by a nucleus before
		// the record existed, which placed the container at /<id>.
		rels = []string{"/" + id}
	}
	var dirs []string
	for _, m := range mounts {
		for _, rel := range rels {
			d := filepath.Join(m, rel)
			if _, err := os.Stat(d); err == nil && !slices.Contains(dirs, d) {
				dirs = append(dirs, d)
			}
		}
	}
	return dirs
}

// cgroupMounts are the mount points of the host's cgroup hierarchies.
func cgroupMounts() []string {
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

// relativeTo is p below the cgroup mount it is in, or "" when p is no
// container's cgroup: outside every hierarchy, or a hierarchy's root,
// whose processes are the whole host's.
func relativeTo(mounts []string, p string) string {
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

// killCgroups SIGKILLs every process in dirs and their sub-cgroups until
// none is left (10 s at most). A v1 freezer cgroup is frozen while its
// processes are listed and signalled, so that none forks past the kill,
// then thawed: a frozen v1 task does not die of SIGKILL.
func killCgroups(dirs []string) error {
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
