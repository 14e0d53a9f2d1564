package gvisor

// The gVisor engine: the same lifecycle, driven through Debian's runsc.
//
// Layout under --root R, for a container ID held by gVisor:
//
//	R/ID/gvisor.json   the record: runsc's path, the global flags used at
//	                   create (runsc needs them repeated on every command),
//	                   the user's bundle, the creation time
//	R/ID/config.json   the config handed to runsc (what `nucleus export` writes)
//	R/ID/rootfs        symlink to the bundle's rootfs (in a mode: to its
//	                   staging, R/@rootfs-ID/merged)
//	R/ID/confine/      in a mode: the compiled filter that processes exec'd
//	                   into the container load, and the helper's mount point
//	                   (seen as /dev/.nucleus; see package confine)
//	R/@gvisor/         runsc --root: runsc's own state and locks
//
// runsc is found through $NUCLEUS_RUNSC (a path) or else "runsc" on PATH.
// Platform: ptrace unless $NUCLEUS_GVISOR_PLATFORM says otherwise (this
// runsc release has ptrace and kvm; no systrap).

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"

	"github.com/nucleus-run/nucleus/policy"
	"github.com/nucleus-run/nucleus/runtime/engine"
	"github.com/nucleus-run/nucleus/spec"
)

// RunscEnv names the runsc binary to use (a path); unset: runsc on PATH.
const RunscEnv = "NUCLEUS_RUNSC"

// GvisorPlatformEnv overrides the runsc platform (default ptrace).
const GvisorPlatformEnv = "NUCLEUS_GVISOR_PLATFORM"

// defaultGvisorPlatform: ptrace works everywhere; kvm needs a usable
// /dev/kvm (on a nested VM it can spin forever); systrap is newer than
// Debian 12's runsc (20221219).
const defaultGvisorPlatform = "ptrace"

// FindRunsc returns the runsc binary the gVisor engine drives, or an error
// naming what is missing.
func FindRunsc() (string, error) {
	if p := os.Getenv(RunscEnv); p != "" {
		st, err := os.Stat(p)
		if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return "", fmt.Errorf("gvisor engine: runsc not found: %s=%s is not an executable file (install Debian's runsc package or fix %s)", RunscEnv, p, RunscEnv)
		}
		return p, nil
	}
	p, err := exec.LookPath("runsc")
	if err != nil {
		return "", fmt.Errorf("gvisor engine: runsc not found on PATH (install Debian's runsc package, or set %s to its path)", RunscEnv)
	}
	return p, nil
}

// gvisorRecord is R/ID/gvisor.json.
type gvisorRecord struct {
	Runsc   string    `json:"runsc"`
	Flags   []string  `json:"flags"`
	Bundle  string    `json:"bundle"`
	Rootfs  string    `json:"rootfs"`
	Created time.Time `json:"created"`
	// OCIVersion is the config's, which `state` reports as the native
	// engine does (runsc would report its own spec version).
	OCIVersion string `json:"ociVersion"`
	// Mode is the isolation mode the container was created in ("": none).
	Mode policy.Mode `json:"mode,omitempty"`
	// ExecConfined says processes exec'd into a mode's container start
	// through the confinement helper mounted at create; ExecFilter is the
	// filter it loads (a path in the container; "" when the mode runs
	// without seccomp). A mode's container without it refuses exec.
	ExecConfined bool   `json:"execConfined,omitempty"`
	ExecFilter   string `json:"execFilter,omitempty"`
	// ExecFilterSHA256 is the filter's digest, which the helper checks
	// before loading it.
	ExecFilterSHA256 string `json:"execFilterSHA256,omitempty"`

	id  string
	dir string
}

func (r *Engine) runscRootDir() string { return filepath.Join(r.Root, engine.GvisorRootName) }

// readGvisorRecord reads R/ID/gvisor.json. A record that is empty,
// truncated, garbled or lacks runsc's path or root, or is missing while
// runsc holds the id (a nucleus killed part-way, a full disk, a hand
// edit), is ErrBrokenState naming the file.
func (r *Engine) readGvisorRecord(id string) (*gvisorRecord, error) {
	dir := engine.StateDir(r.Root, id)
	file := filepath.Join(dir, recordName)
	data, err := os.ReadFile(file)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if r.runscHolds(id) {
				return nil, fmt.Errorf("container %s: gVisor record %s: %w: missing, while runsc holds the container (nucleus delete --force %s removes it)", id, file, engine.ErrBrokenState, id)
			}
			return nil, fmt.Errorf("container %s: %w", id, engine.ErrNotExist)
		}
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	var rec gvisorRecord
	why := ""
	var se *json.SyntaxError
	switch err := json.Unmarshal(data, &rec); {
	case len(bytes.TrimSpace(data)) == 0:
		why = "empty"
	case err != nil && errors.As(err, &se) && se.Offset >= int64(len(data)):
		why = "truncated"
	case err != nil:
		why = "not valid JSON: " + err.Error()
	case rec.Runsc == "" || rec.runscRoot() == "":
		why = "incomplete (no runsc path or runsc root)"
	}
	if why != "" {
		return nil, fmt.Errorf("container %s: gVisor record %s: %w: %s (nucleus delete --force %s removes it)", id, file, engine.ErrBrokenState, why, id)
	}
	rec.id, rec.dir = id, dir
	return &rec, nil
}

// runscStateFile is runsc's state file for a container id that is its
// sandbox's only container, as every nucleus gVisor container is.
func (r *Engine) runscStateFile(id string) string {
	return filepath.Join(r.runscRootDir(), id+"_sandbox:"+id+".state")
}

// runscHolds reports whether runsc keeps state for id under the root.
func (r *Engine) runscHolds(id string) bool {
	_, err := os.Stat(r.runscStateFile(id))
	return err == nil
}

// reclaimRecord stands in for a broken record, for delete --force: runsc
// at its usual place, on this root's runsc root (which is all `runsc
// delete --force` needs: the sandbox's pid and cgroups are in runsc's own
// state).
func (r *Engine) reclaimRecord(id string) *gvisorRecord {
	runsc, err := FindRunsc()
	if err != nil {
		logrus.Warn(err)
	}
	return &gvisorRecord{Runsc: runsc, Flags: []string{"--root=" + r.runscRootDir()}, id: id, dir: engine.StateDir(r.Root, id)}
}

// command builds `runsc <global flags> sub args...`. The global flags are
// repeated on every command: runsc does not remember them.
func (g *gvisorRecord) command(sub string, args ...string) *exec.Cmd {
	full := append(append(append([]string{}, g.Flags...), sub), args...)
	cmd := exec.Command(g.Runsc, full...)
	cmd.Env = runscEnv()
	return cmd
}

// output runs a runsc command that does not touch the container's stdio
// and turns a failure into one line naming runsc's own message.
func (g *gvisorRecord) output(sub string, args ...string) ([]byte, error) {
	cmd := g.command(sub, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), runscError(sub, g.id, err, stderr.Bytes())
	}
	return stdout.Bytes(), nil
}

func runscError(sub, id string, err error, stderr []byte) error {
	msg := strings.Join(strings.Fields(string(stderr)), " ")
	if msg == "" {
		msg = err.Error()
	}
	return fmt.Errorf("%s %s: runsc: %s", sub, id, msg)
}

// runscEnv is nucleus's environment without socket-activation variables:
// the native engine's extra fds are never handed to runsc.
func runscEnv() []string {
	env := os.Environ()
	out := env[:0]
	for _, e := range env {
		if strings.HasPrefix(e, "LISTEN_FDS=") || strings.HasPrefix(e, "LISTEN_PID=") || strings.HasPrefix(e, "LISTEN_FDNAMES=") {
			continue
		}
		out = append(out, e)
	}
	return out
}

// runscState is what `runsc state` prints.
type runscState struct {
	Version     string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Status      string            `json:"status"`
	Pid         int               `json:"pid"`
	Bundle      string            `json:"bundle"`
	Annotations map[string]string `json:"annotations"`
}

// state returns runsc's state, or nil when runsc holds nothing for
// the id (never created, or removed by an attached run that ended).
func (g *gvisorRecord) state() (*runscState, error) {
	out, err := g.output("state", g.id)
	if err != nil {
		if strings.Contains(err.Error(), "does not exist") {
			return nil, nil
		}
		return nil, err
	}
	var st runscState
	if err := json.Unmarshal(out, &st); err != nil {
		return nil, fmt.Errorf("state %s: runsc printed no state JSON: %w", g.id, err)
	}
	return &st, nil
}

func (g *gvisorRecord) toState(st *runscState) *engine.State {
	s := &engine.State{
		Version: g.OCIVersion,
		ID:      g.id,
		Status:  "stopped",
		Bundle:  g.Bundle,
		Rootfs:  g.Rootfs,
		Created: g.Created,
	}
	if st != nil {
		s.Status = st.Status
		if st.Status != "stopped" && st.Pid > 0 {
			s.InitProcessPid = st.Pid
		}
	}
	s.Annotations = map[string]string{}
	if st != nil {
		for k, v := range st.Annotations {
			s.Annotations[k] = v
		}
	}
	s.Annotations[engine.Annotation] = string(engine.Gvisor)
	return s
}

// cleanup removes everything of the container: with runscDelete, runsc's
// sandbox, state and lock files (after a failed create or a runsc that
// died), then R/ID. An attached run that ended normally skips
// the `runsc delete`: runsc run has removed its container already.
func (g *gvisorRecord) cleanup(runscDelete bool) {
	if runscDelete && g.Runsc != "" {
		if _, err := g.output("delete", "--force", g.id); err != nil {
			logrus.Warnf("remove gvisor container %s: %v", g.id, err)
		}
	}
	g.removeRunscFiles()
	// runsc removes the sandbox's cgroups only if it got as far as
	// writing its state: a runsc run killed (with the nucleus that ran
	// it) before then leaves them, with what runs in them.
	if rel := g.cgroupPath(); rel != "" {
		if err := engine.RemoveCgroups(rel); err != nil {
			logrus.Warnf("remove gvisor container %s: %v", g.id, err)
		}
	}
	if err := os.RemoveAll(g.dir); err != nil {
		logrus.Warnf("remove %s: %v", g.dir, err)
	}
	if err := engine.UnstageRootfs(filepath.Dir(g.dir), g.id); err != nil {
		logrus.Warn(err)
	}
	// runsc's root goes with its last container (a no-op while others
	// remain: the directory isn't empty then).
	if root := g.runscRoot(); root != "" {
		_ = os.Remove(root)
	}
}

// cgroupPath is where runsc puts the sandbox's cgroups (cgroupfs only:
// with --systemd-cgroup, systemd removes the unit's): the config's
// cgroupsPath, or /<id> without one. "" when the config can't say.
func (g *gvisorRecord) cgroupPath() string {
	for _, f := range g.Flags {
		if f == "--systemd-cgroup" {
			return ""
		}
	}
	data, err := os.ReadFile(filepath.Join(g.dir, spec.ConfigName))
	if err != nil {
		return ""
	}
	var s specs.Spec
	if json.Unmarshal(data, &s) != nil {
		return ""
	}
	if s.Linux != nil && s.Linux.CgroupsPath != "" {
		if !strings.HasPrefix(s.Linux.CgroupsPath, "/") {
			return ""
		}
		return s.Linux.CgroupsPath
	}
	return "/" + g.id
}

// runscRoot is runsc's --root as recorded.
func (g *gvisorRecord) runscRoot() string {
	for _, f := range g.Flags {
		if v, ok := strings.CutPrefix(f, "--root="); ok {
			return v
		}
	}
	return ""
}

// removeRunscFiles removes the lock (and any stale state) files runsc
// leaves for a sandbox whose runsc process was killed.
func (g *gvisorRecord) removeRunscFiles() {
	root := g.runscRoot()
	if root == "" {
		return
	}
	matches, _ := filepath.Glob(filepath.Join(root, g.id+"_sandbox:*"))
	for _, m := range matches {
		os.Remove(m)
	}
}

// status is the container's status as runsc reports it ("created",
// "running", "paused", "stopped"), or "" when runsc cannot say: the
// lifecycle then lets runsc itself refuse.
func (g *gvisorRecord) status() string {
	st, err := g.state()
	if err != nil || st == nil {
		return ""
	}
	return st.Status
}
