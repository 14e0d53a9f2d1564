package runtime

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/nucleus-run/nucleus/isolation"
	"github.com/nucleus-run/nucleus/opterr"
	"github.com/nucleus-run/nucleus/policy"
	"github.com/nucleus-run/nucleus/runtime/engine"
	"github.com/nucleus-run/nucleus/workspace"
)

// ExitTimeout is the status of a sandbox whose --timeout expired, as
// timeout(1) reports it.
const ExitTimeout = 124

// DefaultWorkspaceMaxBytes bounds what a copy-in-out workspace's
// write-back may write on the host unless WorkspaceMaxBytes says
// otherwise: it runs in nucleus, outside the sandbox's cgroup limits.
const DefaultWorkspaceMaxBytes = 4 << 30

// SandboxOptions describe one ephemeral sandbox run.
type SandboxOptions struct {
	// ID defaults to a random sbx-… id.
	ID     string
	Bundle string
	Spec   *specs.Spec
	// Args replace the bundle's process args when given.
	Args    []string
	Policy  policy.Options
	Timeout time.Duration
	// WorkspaceMaxBytes bounds what the write-back of a copy-in-out
	// workspace writes on the host (data in 4 KiB blocks, holes free, plus
	// a block per entry made): 0 is DefaultWorkspaceMaxBytes,
	// policy.Unlimited no bound.
	WorkspaceMaxBytes int64
	// Engine runs the sandbox: native (default) or gvisor.
	Engine Engine
	// AuditLog is a file to append audit events to; Debug mirrors them
	// on stderr.
	AuditLog string
	Debug    bool

	// result, if set, receives how the run ended (SandboxResult).
	result *Exit
}

// Sandbox runs one command in a fresh container start to finish: prepare
// the workspace, apply the mode, run with stdio streamed, copy a
// copy-in-out workspace back, and remove every trace, also when nucleus
// itself is interrupted. It returns the command's exit status.
func (r *Runtime) Sandbox(o SandboxOptions) (int, error) {
	// Until the container's own signal forwarding takes over, an interrupt
	// must not kill nucleus half-way through setting up.
	var interrupted atomic.Bool
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP)
	go func() {
		for range sigs {
			interrupted.Store(true)
		}
	}()
	defer signal.Stop(sigs)

	if o.Spec == nil || o.Spec.Process == nil {
		return -1, errors.New("sandbox: no config (or no process in it) given")
	}
	// The caller's spec and workspace stay as they were: the sandbox
	// changes its own copies.
	copied, err := copySpec(o.Spec)
	if err != nil {
		return -1, err
	}
	o.Spec = copied
	if o.Policy.Workspace != nil {
		ws := *o.Policy.Workspace
		o.Policy.Workspace = &ws
	}
	if o.ID == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		o.ID = "sbx-" + hex.EncodeToString(b[:])
	}
	s := o.Spec
	if len(o.Args) > 0 {
		s.Process.Args = o.Args
	}
	s.Process.Terminal = false
	ws := o.Policy.Workspace
	maxBytes, err := workspaceMaxBytes(o.WorkspaceMaxBytes, ws)
	if err != nil {
		return -1, err
	}
	var copyDir, origDir string
	if ws != nil {
		if err := PrepareWorkspace(ws); err != nil {
			return -1, err
		}
		origDir = ws.Source
		if ws.Kind == policy.WorkspaceCopyInOut {
			// Filled once the plan says which host ids the workload has.
			var err error
			if copyDir, err = r.makeWorkspaceCopyDir(o.ID); err != nil {
				return -1, err
			}
			defer os.RemoveAll(copyDir)
			ws.Source = copyDir
		}
		s.Process.Cwd = ws.Dest
	}
	rootfs, err := r.RootfsFor(o.ID, o.Bundle, s, o.Policy.Mode, o.Engine)
	if err != nil {
		return -1, err
	}
	prep, err := isolation.Prepare(s, isolation.Options{Options: o.Policy, AuditLog: o.AuditLog, Debug: o.Debug},
		isolation.Target{ID: o.ID, Engine: o.Engine, Rootfs: rootfs})
	if err != nil {
		return -1, err
	}
	out, plan, audit := prep.Spec, prep.Plan, prep.Audit
	if audit != nil {
		defer audit.Close()
	}
	var wsCopy *workspace.Copy
	if copyDir != "" {
		uid, gid, err := workloadHostIDs(out, plan)
		if err != nil {
			return -1, err
		}
		if err := os.Chown(copyDir, uid, gid); err != nil {
			return -1, fmt.Errorf("workspace copy %s: %w", copyDir, err)
		}
		if wsCopy, err = workspace.In(workspace.Dir{Path: origDir, Dev: ws.Dev, Ino: ws.Ino}, copyDir, uid, gid, workspaceDropped(audit)); err != nil {
			return -1, err
		}
		wsCopy.MaxBytes = maxBytes
	}
	if interrupted.Load() {
		return -1, errors.New("interrupted before the sandbox started")
	}

	var timedOut atomic.Bool
	finished := make(chan struct{})
	if o.Timeout > 0 {
		timer := time.AfterFunc(o.Timeout, func() {
			timedOut.Store(true)
			// The container may still be starting: keep trying until it
			// is killed or the run is over.
			for {
				err := r.Kill(o.ID, unix.SIGKILL, true)
				if err == nil {
					return
				}
				logrus.Debugf("timeout kill %s: %v", o.ID, err)
				select {
				case <-finished:
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		})
		defer timer.Stop()
	}
	res, err := r.RunResult(CreateOptions{
		ID: o.ID, Bundle: o.Bundle, Spec: out, Policy: plan, Audit: audit, KillOnInterrupt: true, Engine: o.Engine,
	})
	close(finished)
	if err != nil {
		return -1, err
	}
	status := res.Status
	if timedOut.Load() {
		res = res.TimedOut(o.Timeout)
		audit.Event("sandbox_timeout", map[string]any{"timeout": o.Timeout.String()})
		audit.Event(ExitReasonEvent, res.Fields())
		status = ExitTimeout
	}
	if o.result != nil {
		*o.result = res
	}
	if wsCopy != nil {
		if err := wsCopy.Back(); err != nil {
			var be *workspace.BudgetError
			if errors.As(err, &be) {
				audit.Event("workspace_budget_exceeded", map[string]any{"workspace": origDir, "max_bytes": be.Max, "path": be.Path})
				return status, &OptionError{Option: "workspace-max-bytes", Msg: err.Error()}
			}
			return status, err
		}
	}
	return status, nil
}

// workspaceMaxBytes is the write-back budget n asks for: the default for
// 0, none (0) for policy.Unlimited. Only a copy-in-out workspace has one.
func workspaceMaxBytes(n int64, ws *policy.Workspace) (int64, error) {
	switch {
	case n != 0 && (ws == nil || ws.Kind != policy.WorkspaceCopyInOut):
		return 0, &OptionError{Option: "workspace-max-bytes", Msg: "only a copy-in-out workspace is written back"}
	case n == 0:
		return DefaultWorkspaceMaxBytes, nil
	case n == policy.Unlimited:
		return 0, nil
	case n < 0:
		return 0, &OptionError{Option: "workspace-max-bytes", Msg: fmt.Sprintf("%d: want a positive size", n)}
	}
	return n, nil
}

// PrepareWorkspace makes the workspace's host path absolute, checks it is
// a directory and records its owner for the idmapped bind. A writable bind
// of a directory owned by root is refused: the idmap makes its owner the
// workload's own ids, so whatever the sandbox creates there (a setuid
// copy of a shell) would be root's on the host.
func PrepareWorkspace(ws *policy.Workspace) error {
	abs, err := filepath.Abs(ws.Source)
	if err != nil {
		return opterr.Errorf("workspace", "%s: %w", ws.Source, err)
	}
	st, err := os.Stat(abs)
	if err != nil || !st.IsDir() {
		return opterr.Errorf("workspace", "%s: not a directory", abs)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		ws.OwnerUID, ws.OwnerGID = sys.Uid, sys.Gid
		ws.Dev, ws.Ino = sys.Dev, sys.Ino
	}
	if ws.Kind == policy.WorkspaceBindRW && (ws.OwnerUID == 0 || ws.OwnerGID == 0) {
		return opterr.Errorf("workspace", "%s: owned by root (%d:%d): a writable workspace would let the sandbox create root-owned files on the host; chown it to an unprivileged user or use :copy-in-out or :bind-ro",
			abs, ws.OwnerUID, ws.OwnerGID)
	}
	ws.Source = abs
	return nil
}

// makeWorkspaceCopyDir makes the empty directory a copy-in-out workspace is
// copied to: under the root-owned state dir, not a shared temp dir, and
// mode 0700 so no host user can reach what the sandbox puts there.
func (r *Runtime) makeWorkspaceCopyDir(id string) (string, error) {
	if err := engine.SearchableRoot(r.Root); err != nil {
		return "", err
	}
	dir := filepath.Join(r.Root, engine.WorkspaceCopyPrefix+id)
	err := os.Mkdir(dir, 0o700)
	if errors.Is(err, fs.ErrExist) {
		// A sandbox of this id is copying in, or one was killed: only
		// the user can tell, and `delete --force` cleans a leftover.
		return "", fmt.Errorf("container %s %w under %s (its workspace copy %s is there; nucleus delete --force %s removes a leftover)", id, ErrExist, r.Root, dir, id)
	}
	if err != nil {
		return "", fmt.Errorf("workspace copy: %w", err)
	}
	return dir, nil
}

// workloadHostIDs are the host uid and gid the workload runs as: its
// container ids shifted by the user namespace when there is one.
func workloadHostIDs(s *specs.Spec, plan *policy.Plan) (int, int, error) {
	uid, gid := s.Process.User.UID, s.Process.User.GID
	if !plan.UserNS {
		return int(uid), int(gid), nil
	}
	hostID := func(id uint32, maps []specs.LinuxIDMapping) (int, error) {
		for _, m := range maps {
			if id >= m.ContainerID && id-m.ContainerID < m.Size {
				return int(m.HostID + id - m.ContainerID), nil
			}
		}
		return 0, fmt.Errorf("workspace copy: id %d of the workload is not mapped by the user namespace", id)
	}
	hu, err := hostID(uid, s.Linux.UIDMappings)
	if err != nil {
		return 0, 0, err
	}
	hg, err := hostID(gid, s.Linux.GIDMappings)
	if err != nil {
		return 0, 0, err
	}
	return hu, hg, nil
}

// workspaceDropped records each entry a workspace copy leaves out.
func workspaceDropped(audit *policy.Audit) workspace.Dropped {
	return func(p, why string) {
		logrus.Debugf("workspace: %s not copied: %s", p, why)
		audit.Event("workspace_entry_dropped", map[string]any{"path": p, "reason": why})
	}
}

// copySpec is a deep copy of s.
func copySpec(s *specs.Spec) (*specs.Spec, error) {
	data, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("copy config: %w", err)
	}
	var out specs.Spec
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("copy config: %w", err)
	}
	return &out, nil
}
