package native

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/manager"
	"github.com/sirupsen/logrus"

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
	if err := engine.KillCgroups(dirs); err != nil {
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
	mounts := engine.CgroupMounts()
	var rels []string
	for _, p := range paths {
		if rel := engine.CgroupRel(mounts, p); rel != "" && !slices.Contains(rels, rel) {
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
