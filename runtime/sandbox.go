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
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/nucleus-run/nucleus/isolation"
	"github.com/nucleus-run/nucleus/network"
	"github.com/nucleus-run/nucleus/opterr"
	"github.com/nucleus-run/nucleus/policy"
	"github.com/nucleus-run/nucleus/runtime/engine"
	"github.com/nucleus-run/nucleus/runtime/outcome"
	"github.com/nucleus-run/nucleus/spec"
	"github.com/nucleus-run/nucleus/workspace"
)

// ExitTimeout is the status of a sandbox whose --timeout expired, as
// timeout(1) reports it.
const ExitTimeout = 124

// DefaultWorkspaceMaxBytes bounds what a copy-in-out workspace's
// write-back may write on the host unless WorkspaceMaxBytes says
// otherwise: it runs in nucleus, outside the sandbox's cgroup limits.
const DefaultWorkspaceMaxBytes = 4 << 30

// SandboxOptions describe a sandbox: one command run start to finish
// (Sandbox), or a long-lived sandbox that later commands exec into
// (StartSandbox, with Detach).
type SandboxOptions struct {
	// ID defaults to a random sbx-… id.
	ID     string
	Bundle string
	Spec   *specs.Spec
	// Args replace the bundle's process args when given (the command to
	// run, as `podman run IMAGE CMD`).
	Args []string
	// Env entries (K=V) replace the config's entries of the same name or
	// are added; Cwd and User ("UID[:GID]") replace the config's. The
	// working directory defaults to the first workspace's destination.
	Env  []string
	Cwd  string
	User string
	// Tty gives the command a pseudo-terminal (attached runs only); Stdio
	// replaces nucleus's own streams otherwise (native engine).
	Tty    bool
	Stdio  *Stdio `json:"-"`
	Policy policy.Options
	// Timeout kills a one-shot sandbox after this long (ExitTimeout).
	Timeout time.Duration
	// Detach starts a long-lived sandbox and returns (StartSandbox). TTL,
	// if set, is how long it may live: its init exits at the deadline and
	// the next command that lists the root (or Gc) removes it.
	Detach bool
	TTL    time.Duration
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
	// Network is the sandbox's network: its mode should agree with
	// Policy.Net, which alone (with no Network) means that mode with no
	// rules.
	Network *network.Config
	// Pool names the warm pool a held sandbox belongs to (package pool):
	// its record says so, and its copy-in-out workspace is a placeholder
	// that is never written back (RunPooled copies the caller's in and
	// back).
	Pool string `json:",omitempty"`
}

// network is the sandbox's network config.
func (o SandboxOptions) network() *network.Config {
	if o.Network != nil {
		return o.Network
	}
	if o.Policy.Net == "" {
		return nil
	}
	return &network.Config{Mode: o.Policy.Net}
}

// Stdio are an attached process's streams (engine.Stdio).
type Stdio = engine.Stdio

// sandboxSetup is a sandbox made ready to run: its prepared config and
// plan, its audit log and its workspace copies.
type sandboxSetup struct {
	o      SandboxOptions
	spec   *specs.Spec
	plan   *policy.Plan
	audit  *policy.Audit
	copies []*workspace.Copy
	// copyRoot holds the copy-in-out copies (removed with the sandbox).
	copyRoot string
}

func (st *sandboxSetup) close() {
	if st.audit != nil {
		st.audit.Close()
	}
}

// Sandbox runs one command in a fresh container start to finish: prepare
// the workspaces, apply the mode, run with stdio streamed, copy copy-in-out
// workspaces back, and remove every trace, also when nucleus itself is
// interrupted. The result says how the command ended, and why when
// something killed it (Exit.Line).
func (r *Runtime) Sandbox(o SandboxOptions) (Exit, error) {
	res := outcome.Plain(-1)
	if o.Detach {
		return res, errors.New("sandbox: a detached sandbox is started with StartSandbox")
	}
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

	r.SweepSandboxes()
	st, err := r.setupSandbox(o)
	if st != nil && st.copyRoot != "" {
		defer r.removeWorkspaceCopies(st.o.ID)
	}
	if err != nil {
		return res, err
	}
	defer st.close()
	o = st.o
	res.ID = o.ID
	unmark, err := r.markOneShot(o.ID)
	if err != nil {
		return res, err
	}
	defer unmark()
	if interrupted.Load() {
		return res, errors.New("interrupted before the sandbox started")
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
	res, err = r.RunResult(CreateOptions{
		ID: o.ID, Bundle: o.Bundle, Spec: st.spec, Policy: st.plan, Audit: st.audit, KillOnInterrupt: true, Engine: o.Engine, Network: o.network(),
		Stdio: o.Stdio, Stage: true,
	})
	close(finished)
	res.ID = o.ID
	if err != nil && timedOut.Load() {
		// Killed by the timeout while it was still starting: the
		// command's end is the timeout's, not an error of nucleus.
		logrus.Debugf("sandbox %s: start ended by --timeout: %v", o.ID, err)
		res, err = outcome.Plain(-1), nil
		res.ID = o.ID
	}
	if err != nil {
		return res, err
	}
	if timedOut.Load() {
		res = res.TimedOut(o.Timeout)
		st.audit.Event("sandbox_timeout", map[string]any{"timeout": o.Timeout.String()})
		st.audit.Event(ExitReasonEvent, res.Fields())
	}
	return res, copyBack(st.copies, st.audit)
}

// setupSandbox checks o, fills its defaults, copies the copy-in-out
// workspaces in and prepares the config. On error, what it made is
// removed, but for the copies' root, which it returns for the caller to
// remove (with its own defer, so an interrupt can't skip it).
func (r *Runtime) setupSandbox(o SandboxOptions) (*sandboxSetup, error) {
	if o.Spec == nil || o.Spec.Process == nil {
		return nil, errors.New("sandbox: no config (or no process in it) given")
	}
	// The caller's spec and workspaces stay as they were: the sandbox
	// changes its own copies.
	copied, err := copySpec(o.Spec)
	if err != nil {
		return nil, err
	}
	o.Spec = copied
	o.Policy.Workspaces = slices.Clone(o.Policy.Workspaces)
	for i, ws := range o.Policy.Workspaces {
		w := *ws
		o.Policy.Workspaces[i] = &w
	}
	if err := policy.CheckWorkspaces(o.Policy.Workspaces); err != nil {
		return nil, err
	}
	if o.ID == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		o.ID = "sbx-" + hex.EncodeToString(b[:])
	}
	if err := spec.ValidateID(o.ID); err != nil {
		return nil, err
	}
	s := o.Spec
	if err := applyProcessOptions(s.Process, o); err != nil {
		return nil, err
	}
	maxBytes, err := workspaceMaxBytes(o.WorkspaceMaxBytes, o.Policy.Workspaces)
	if err != nil {
		return nil, err
	}
	st := &sandboxSetup{o: o}
	type pending struct {
		ws   *policy.Workspace
		orig string
	}
	var copies []pending
	for i, ws := range o.Policy.Workspaces {
		if err := PrepareWorkspace(ws); err != nil {
			return st, err
		}
		if ws.Kind != policy.WorkspaceCopyInOut {
			continue
		}
		if st.copyRoot == "" {
			if st.copyRoot, err = r.makeWorkspaceCopyRoot(o.ID, maxBytes); err != nil {
				return st, err
			}
		}
		// Filled once the plan says which host ids the workload has.
		dir := filepath.Join(st.copyRoot, strconv.Itoa(i))
		if err := os.Mkdir(dir, 0o700); err != nil {
			return st, fmt.Errorf("workspace copy: %w", err)
		}
		copies = append(copies, pending{ws, ws.Source})
		ws.Source = dir
	}
	if o.Cwd == "" && len(o.Policy.Workspaces) > 0 {
		s.Process.Cwd = o.Policy.Workspaces[0].Dest
	}
	rootfs, err := r.RootfsFor(o.ID, o.Bundle, s, o.Policy.Mode, o.Engine)
	if err != nil {
		return st, err
	}
	if o.Engine != EngineGvisor {
		// Staged in every mode, also none (CreateOptions.Stage).
		if rootfs, err = engine.StagedRootfs(r.Root, o.ID); err != nil {
			return st, err
		}
	}
	prep, err := isolation.Prepare(s, isolation.Options{Options: o.Policy, AuditLog: o.AuditLog, Debug: o.Debug},
		isolation.Target{ID: o.ID, Engine: o.Engine, Rootfs: rootfs})
	if err != nil {
		return st, err
	}
	st.spec, st.plan, st.audit = prep.Spec, prep.Plan, prep.Audit
	if len(copies) > 0 {
		uid, gid, err := workloadHostIDs(st.spec, st.plan)
		if err != nil {
			st.close()
			return st, err
		}
		for _, c := range copies {
			if err := os.Chown(c.ws.Source, uid, gid); err != nil {
				st.close()
				return st, fmt.Errorf("workspace copy %s: %w", c.ws.Source, err)
			}
			wc, err := workspace.In(workspace.Dir{Path: c.orig, Dev: c.ws.Dev, Ino: c.ws.Ino}, c.ws.Source, uid, gid, workspaceDropped(st.audit))
			if err != nil {
				st.close()
				return st, err
			}
			wc.MaxBytes = maxBytes
			st.copies = append(st.copies, wc)
		}
	}
	return st, nil
}

// applyProcessOptions lays the sandbox's process flags over the config's
// process.
func applyProcessOptions(p *specs.Process, o SandboxOptions) error {
	if len(o.Args) > 0 {
		p.Args = o.Args
	}
	p.Env = mergeEnv(p.Env, o.Env)
	if o.Cwd != "" {
		if !filepath.IsAbs(o.Cwd) {
			return opterr.Errorf("cwd", "%q: want an absolute path in the container", o.Cwd)
		}
		p.Cwd = o.Cwd
	}
	if o.User != "" {
		uid, gid, err := engine.ParseUser(o.User)
		if err != nil {
			return err
		}
		p.User.UID = uid
		if gid != nil {
			p.User.GID = *gid
		}
	}
	p.Terminal = o.Tty && !o.Detach
	return nil
}

// mergeEnv is env with each K=V of set replacing the entry named K (or
// added), as podman's --env does.
func mergeEnv(env, set []string) []string {
	out := slices.Clone(env)
	for _, kv := range set {
		k, _, _ := strings.Cut(kv, "=")
		i := slices.IndexFunc(out, func(e string) bool { ek, _, _ := strings.Cut(e, "="); return ek == k })
		if i >= 0 {
			out[i] = kv
		} else {
			out = append(out, kv)
		}
	}
	return out
}

// copyBack writes each copy-in-out workspace back to the host.
func copyBack(copies []*workspace.Copy, audit *policy.Audit) error {
	var errs []error
	for _, c := range copies {
		if err := c.Back(); err != nil {
			var be *workspace.BudgetError
			if errors.As(err, &be) {
				audit.Event("workspace_budget_exceeded", map[string]any{"workspace": c.Orig, "max_bytes": be.Max, "path": be.Path})
				err = &OptionError{Option: "workspace-max-bytes", Msg: err.Error()}
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// workspaceMaxBytes is the write-back budget n asks for: the default for
// 0, none (0) for policy.Unlimited. Only a copy-in-out workspace has one.
func workspaceMaxBytes(n int64, ws []*policy.Workspace) (int64, error) {
	copyInOut := slices.ContainsFunc(ws, func(w *policy.Workspace) bool { return w.Kind == policy.WorkspaceCopyInOut })
	switch {
	case n != 0 && !copyInOut:
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

// makeWorkspaceCopyRoot makes the directory a sandbox's copy-in-out
// workspaces are copied below (each to a 0700 directory of the workload's,
// so no other host user can reach what the sandbox puts there): under the
// root-owned state dir, not a shared temp dir. With a budget it is a tmpfs
// of that size: the sandbox writes its copy while it runs, and the state
// root may be on the host's disk, which it must not fill; what it writes
// there is also charged to its memory limit.
func (r *Runtime) makeWorkspaceCopyRoot(id string, maxBytes int64) (string, error) {
	if err := engine.SearchableRoot(r.Root); err != nil {
		return "", err
	}
	dir := filepath.Join(r.Root, engine.WorkspaceCopyPrefix+id)
	err := os.Mkdir(dir, 0o711)
	if errors.Is(err, fs.ErrExist) {
		// A sandbox of this id is copying in, or one was killed: only
		// the user can tell, and `delete --force` cleans a leftover.
		return "", fmt.Errorf("container %s %w under %s (its workspace copy %s is there; nucleus delete --force %s removes a leftover)", id, ErrExist, r.Root, dir, id)
	}
	if err != nil {
		return "", fmt.Errorf("workspace copy: %w", err)
	}
	if maxBytes > 0 {
		if err := unix.Mount("nucleus-workspace", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, fmt.Sprintf("size=%d,mode=0711", maxBytes)); err != nil {
			os.Remove(dir)
			return "", fmt.Errorf("workspace copy: tmpfs of %d bytes at %s: %w", maxBytes, dir, err)
		}
	}
	return dir, nil
}

// removeWorkspaceCopies removes a sandbox's copy-in-out copies (and the
// tmpfs they are on).
func (r *Runtime) removeWorkspaceCopies(id string) error {
	dir := filepath.Join(r.Root, engine.WorkspaceCopyPrefix+id)
	if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("workspace copy %s: %w", dir, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("workspace copy %s: %w", dir, err)
	}
	return nil
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
