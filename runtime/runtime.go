// Package runtime is Nucleus's library API: container lifecycles under one
// state root, each run by the engine that holds it (engineFor), and
// one-shot sandboxes. The CLI in cmd/nucleus only parses flags and calls
// it; platforms can call it the same way.
//
// An attached run (Run without Detach, Sandbox, Exec without Detach)
// behaves as runc's does: while it lasts it takes over the process's
// signals (forwarding them to the container) and reaps children as a
// subreaper. Run one attached call at a time per process, or detach and
// wait on the container's state.
package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/opencontainers/runc/types"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/nucleus-run/nucleus/policy"
	"github.com/nucleus-run/nucleus/runtime/engine"
	"github.com/nucleus-run/nucleus/runtime/engine/gvisor"
	"github.com/nucleus-run/nucleus/runtime/engine/native"
	"github.com/nucleus-run/nucleus/sdnotify"
)

// The shared vocabulary, re-exported so that callers need only this
// package.
type (
	CreateOptions     = engine.CreateOptions
	ExecOptions       = engine.ExecOptions
	CheckpointOptions = engine.CheckpointOptions
	UpdateOptions     = engine.UpdateOptions
	PsOptions         = engine.PsOptions
	OptionError       = engine.OptionError
	State             = engine.State
	Engine            = engine.Kind
)

const (
	DefaultRoot  = engine.DefaultRoot
	EngineNative = engine.Native
	EngineGvisor = engine.Gvisor
	EngineEnv    = engine.EnvVar
)

// Error classes (errors.Is).
var (
	ErrNotExist    = engine.ErrNotExist
	ErrExist       = engine.ErrExist
	ErrRunning     = engine.ErrRunning
	ErrPaused      = engine.ErrPaused
	ErrStopped     = engine.ErrStopped
	ErrNotRunning  = engine.ErrNotRunning
	ErrNotPaused   = engine.ErrNotPaused
	ErrUnsupported = engine.ErrUnsupported
	ErrBrokenState = engine.ErrBrokenState
)

// ParseEngine accepts "native", "gvisor" and "" (native).
func ParseEngine(s string) (Engine, error) { return engine.ParseKind(s) }

// ParseSignal accepts "KILL", "SIGKILL", "kill" and "9".
func ParseSignal(raw string) (unix.Signal, error) { return engine.ParseSignal(raw) }

// NewUpdateResources is the empty resource set update fills in.
func NewUpdateResources() *specs.LinuxResources { return engine.NewUpdateResources() }

// Runtime holds the settings shared by every command (runc's global flags)
// and the engines.
type Runtime struct {
	// Root is the state directory (absolute).
	Root string
	// SystemdCgroup asks for cgroups through systemd instead of cgroupfs.
	SystemdCgroup bool
	// Rootless is "auto", "true" or "false", as runc's --rootless.
	Rootless string

	native *native.Engine
	gvisor *gvisor.Engine
}

// New checks the global settings and returns a Runtime.
func New(root string, systemdCgroup bool, rootless string) (*Runtime, error) {
	if root == "" {
		root = DefaultRoot
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, &OptionError{Option: "root", Msg: err.Error()}
	}
	if abs == "/" {
		return nil, &OptionError{Option: "root", Msg: "must not be /"}
	}
	switch rootless {
	case "", "auto", "true", "false":
	default:
		return nil, &OptionError{Option: "rootless", Msg: fmt.Sprintf("%q: want true, false or auto", rootless)}
	}
	if systemdCgroup && !systemdRunning() {
		return nil, &OptionError{Option: "systemd-cgroup", Msg: "systemd is not running on this host (no /run/systemd/system); drop the flag to use cgroupfs"}
	}
	return &Runtime{
		Root: abs, SystemdCgroup: systemdCgroup, Rootless: rootless,
		native: &native.Engine{Root: abs, SystemdCgroup: systemdCgroup, Rootless: rootless},
		gvisor: &gvisor.Engine{Root: abs, SystemdCgroup: systemdCgroup},
	}, nil
}

func systemdRunning() bool {
	fi, err := os.Lstat("/run/systemd/system")
	return err == nil && fi.IsDir()
}

// engineFor returns the engine that holds id. The native state file is
// checked first, so the native path pays one stat; an id nothing holds
// goes to the native engine, which reports it missing.
func (r *Runtime) engineFor(id string) engine.Engine {
	if !r.native.Holds(id) && r.gvisor.Holds(id) {
		return r.gvisor
	}
	return r.native
}

// engineOf returns the engine of that kind, for a new container.
func (r *Runtime) engineOf(k Engine) engine.Engine {
	if k == EngineGvisor {
		return r.gvisor
	}
	return r.native
}

// Create sets up a container whose process waits for Start.
func (r *Runtime) Create(o CreateOptions) error {
	if err := o.Normalize(); err != nil {
		return err
	}
	if err := checkNetwork(o); err != nil {
		return err
	}
	err := r.engineOf(o.Engine).Create(o)
	if err != nil {
		r.releaseNetwork(o.ID)
	}
	return r.explainFull(err)
}

// explainFull says which filesystem is full when a create ran out of space
// there (the kernel's ENOSPC names a state file deep in the root).
func (r *Runtime) explainFull(err error) error {
	if err == nil || !errors.Is(err, unix.ENOSPC) {
		return err
	}
	var st unix.Statfs_t
	if unix.Statfs(r.Root, &st) == nil && st.Bavail*uint64(st.Bsize) < 1<<20 {
		return fmt.Errorf("%w (the state root %s is full: free space there, or pass another --root)", err, r.Root)
	}
	return err
}

// Run creates and starts a container. Unless detached it streams stdio,
// forwards signals, waits for the process and removes the container; the
// returned status is the process's exit status (128+signal if killed).
// RunResult says more.
func (r *Runtime) Run(o CreateOptions) (int, error) {
	ex, err := r.RunResult(o)
	return ex.Status, err
}

// Start runs the user process of a created container.
func (r *Runtime) Start(id string) error { return r.engineFor(id).Start(id) }

// State reports one container's state.
func (r *Runtime) State(id string) (*State, error) {
	st, err := r.engineFor(id).State(id)
	if err == nil {
		r.annotateNetwork(st)
		r.annotateHealth(st)
	}
	return st, err
}

// List reports every container under the root, of every engine, after
// removing the long-lived sandboxes past their deadline. A container whose
// state can't be read is in the list with StatusUnknown and its Error.
func (r *Runtime) List() ([]State, error) {
	r.SweepSandboxes()
	var all []State
	for _, e := range []engine.Engine{r.native, r.gvisor} {
		states, err := e.List()
		if err != nil {
			return nil, err
		}
		for _, s := range states {
			// The native engine can't read another engine's state.
			if s.Error != "" && e == engine.Engine(r.native) && r.gvisor.Holds(s.ID) {
				continue
			}
			all = append(all, s)
		}
	}
	for i := range all {
		r.annotateNetwork(&all[i])
		r.annotateHealth(&all[i])
	}
	return all, nil
}

// Kill sends sig to the container's init; with all, to every process.
func (r *Runtime) Kill(id string, sig unix.Signal, all bool) error {
	return r.engineFor(id).Kill(id, sig, all)
}

// Delete removes a stopped (or, with force, any) container and all it
// holds. A forced delete of an id that does not exist succeeds, as
// containerd's cleanup expects, and one whose state is missing or broken
// (a nucleus killed part-way, a full disk) still removes everything the id
// implies: processes, cgroups, network, the sandbox's record and workspace
// copies. A long-lived sandbox is ended whatever its state: what runs is
// killed and its copy-in-out workspaces are written back first.
func (r *Runtime) Delete(id string, force bool) error {
	if r.IsSandbox(id) {
		err := r.removeSandbox(id)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, ErrNotExist) && force:
			return nil
		case !force || !errors.Is(err, errSandboxRecord):
			return err
		}
		logrus.Warnf("%v; removing the sandbox without writing its workspaces back", err)
	}
	if err := r.engineFor(id).Delete(id, force); err != nil {
		return err
	}
	if err := r.releaseNetwork(id); err != nil {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	if err := os.RemoveAll(sdnotify.RelayDir(r.Root, id)); err != nil {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	if force {
		// A sandbox's workspace copy and record, left by a nucleus that
		// was killed.
		if err := r.removeWorkspaceCopies(id); err != nil {
			return fmt.Errorf("delete %s: %w", id, err)
		}
		if err := os.RemoveAll(r.sandboxDir(id)); err != nil {
			return fmt.Errorf("delete %s: %w", id, err)
		}
	}
	return nil
}

// Exec starts a process in a running container and, unless detached,
// returns its exit status.
func (r *Runtime) Exec(id string, o ExecOptions) (int, error) {
	if err := o.Normalize(); err != nil {
		return -1, err
	}
	if err := r.sandboxExecDefaults(id, &o); err != nil {
		return -1, err
	}
	if status, ok, err := r.supervisedExec(id, o, nil); ok {
		return status, err
	}
	return r.engineFor(id).Exec(id, o)
}

// Ps writes the container's processes to w.
func (r *Runtime) Ps(id string, o PsOptions, w io.Writer) error {
	return r.engineFor(id).Ps(id, o, w)
}

// Pause freezes every process of the container.
func (r *Runtime) Pause(id string) error { return r.engineFor(id).Pause(id) }

// Resume thaws a paused container.
func (r *Runtime) Resume(id string) error { return r.engineFor(id).Resume(id) }

// Stats is one stats event of the container, as runc's events --stats.
func (r *Runtime) Stats(id string) (*types.Event, error) { return r.engineFor(id).Stats(id) }

// Events streams stats (every interval) and OOM events until the container
// stops.
func (r *Runtime) Events(id string, interval time.Duration, emit func(*types.Event) error) error {
	return r.engineFor(id).Events(id, interval, emit)
}

// Update changes the container's resources.
func (r *Runtime) Update(id string, res *specs.LinuxResources, o UpdateOptions) error {
	return r.engineFor(id).Update(id, res, o)
}

// Checkpoint dumps the container with CRIU.
func (r *Runtime) Checkpoint(id string, o CheckpointOptions) error {
	return r.engineFor(id).Checkpoint(id, o)
}

// Restore creates a container from a checkpoint.
func (r *Runtime) Restore(o CreateOptions, co CheckpointOptions) (int, error) {
	if err := o.Normalize(); err != nil {
		return -1, err
	}
	return r.engineOf(o.Engine).Restore(o, co)
}

// RootfsFor is the path the container's rootfs will have once started, as
// far as a user namespace's reach goes (isolation.Prepare measures the host
// against it): the staging under the state dir for a native container in a
// mode; the bundle's own otherwise (the gVisor engine stages a mode's
// rootfs too, but its sandbox has no user namespace to reach it).
func (r *Runtime) RootfsFor(id, bundle string, s *specs.Spec, mode policy.Mode, kind Engine) (string, error) {
	if mode == policy.ModeNone || kind == EngineGvisor {
		return engine.RootfsPath(bundle, s), nil
	}
	return engine.StagedRootfs(r.Root, id)
}

// ExportOptions describe `nucleus export`.
type ExportOptions = gvisor.ExportOptions

// Export writes the bundle the gVisor engine hands to runsc.
func Export(o ExportOptions) ([]string, error) { return gvisor.Export(o) }
