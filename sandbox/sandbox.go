// Package sandbox runs untrusted code in Nucleus sandboxes from a Go
// program: a long-lived sandbox to run commands in and copy files to and
// from (New, Exec, CopyIn, CopyOut, Close), one command start to finish
// (Run), or one command in a sandbox taken from a warm pool of started
// ones (CreatePool, FromPool, RemovePool). It is the code `nucleus
// sandbox` runs, with the same isolation modes, limits and workspaces.
//
// A program that uses it must call Init first thing in main: the runtime
// re-executes the program's own binary as a container's init, and Init
// turns that process into it. It runs as root.
//
// Exec and Run wait in the calling goroutine and, while they last, take
// over the process's signals (forwarding them to the command) and reap
// its children, as `nucleus exec` does: run one at a time per process.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"github.com/nucleus-run/nucleus/network"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	_ "github.com/opencontainers/runc/libcontainer/nsenter" // the C half of a container's init
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/nucleus-run/nucleus/policy"
	"github.com/nucleus-run/nucleus/pool"
	"github.com/nucleus-run/nucleus/runtime"
	"github.com/nucleus-run/nucleus/runtime/confine"
	"github.com/nucleus-run/nucleus/runtime/outcome"
	"github.com/nucleus-run/nucleus/spec"
)

// Error classes, for errors.Is.
var (
	ErrNotExist    = runtime.ErrNotExist
	ErrExist       = runtime.ErrExist
	ErrNotRunning  = runtime.ErrNotRunning
	ErrUnsupported = runtime.ErrUnsupported
)

// Init makes this process a container's init when the runtime started it
// as one; otherwise it returns at once. Call it first in main.
func Init() {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		libcontainer.Init()
	}
	if len(os.Args) > 1 && os.Args[1] == confine.Command {
		confine.Main(os.Args[2:])
	}
	// A warm pool's detached release or refill (FromPool starts them).
	pool.Main()
}

// Workspace is a host directory offered to the sandbox.
type Workspace struct {
	// Host is the directory on the host; Dest its path in the sandbox
	// (default /workspace).
	Host, Dest string
	// Kind is bind-rw (default; for FromPool, copy-in-out, as for
	// `sandbox --pool`), bind-ro or copy-in-out: a private copy, written
	// back when the sandbox ends.
	Kind string
	// Exec allows running files from the workspace.
	Exec bool
}

// Options describe a sandbox.
type Options struct {
	// Root is the state directory (default /run/nucleus).
	Root string
	// Bundle is an OCI bundle whose rootfs and config the sandbox uses;
	// Spec, if set, is its config already loaded.
	Bundle string
	Spec   *specs.Spec
	// ID defaults to a random sbx-… id.
	ID string
	// Mode is agent (default), strict-agent or production.
	Mode       string
	Workspaces []Workspace
	// Env (KEY=VALUE), Cwd and User ("UID[:GID]") apply to every command;
	// Cwd defaults to the first workspace.
	Env  []string
	Cwd  string
	User string
	// Command, for New, is the sandbox's own command, run detached
	// (output in <root>/@sandbox-<id>/init.log); without one the sandbox
	// holds itself open until Close or its TTL.
	Command []string
	// TTL bounds a long-lived sandbox's life (New); Timeout a one-shot
	// command's (Run).
	TTL     time.Duration
	Timeout time.Duration
	// Memory (bytes), Pids and CPUs (cores) replace the mode's default
	// limits (1 GiB, 512, 1 in the agent modes).
	Memory int64
	Pids   int64
	CPUs   float64
	// Net is none (default), host or bridge.
	Net string
	// Network, if set, is the whole network config for --net bridge
	// (allowlist, published ports, DNS servers); its Mode wins over Net.
	Network *network.Config
	// Engine is native (default) or gvisor.
	Engine string
	// AuditLog is a file the sandbox's audit events are appended to;
	// Debug also writes them to stderr.
	AuditLog string
	Debug    bool
	// WorkspaceMaxBytes bounds each copy-in-out write-back (0: 4 GiB,
	// policy.Unlimited: none).
	WorkspaceMaxBytes int64
	// Policy, if set, is the whole policy (as the CLI's flags build it),
	// and Mode, Workspaces, the limits and Net are ignored.
	Policy *policy.Options
}

// Cmd is a command to run in a sandbox.
type Cmd struct {
	Args []string
	// Env entries are added to the sandbox's; Cwd and User replace its.
	Env  []string
	Cwd  string
	User string
	// Stdin is the command's input (nil: empty); Stdout and Stderr
	// receive its output (nil: discarded).
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Inherit gives the command this process's own standard streams
	// instead, and Tty (with Inherit, in Run) a pseudo-terminal on them,
	// as the nucleus command line does.
	Inherit bool
	Tty     bool
}

// Result is how a command ended.
type Result = runtime.Exit

// Sandbox is a long-lived sandbox.
type Sandbox struct {
	rt *runtime.Runtime
	id string
}

// New starts a long-lived sandbox that holds itself open until Close (or
// its TTL) for Exec, CopyIn and CopyOut.
func New(ctx context.Context, o Options) (*Sandbox, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r, so, err := prepare(o)
	if err != nil {
		return nil, err
	}
	so.Detach, so.TTL, so.Args, so.Timeout = true, o.TTL, o.Command, o.Timeout
	id, err := r.StartSandbox(so)
	if err != nil {
		return nil, err
	}
	return &Sandbox{rt: r, id: id}, nil
}

// Open returns the long-lived sandbox id under root (started by New or by
// `nucleus sandbox --detach`).
func Open(root, id string) (*Sandbox, error) {
	r, err := runtime.New(root, false, "auto")
	if err != nil {
		return nil, err
	}
	if !r.IsSandbox(id) {
		return nil, fmt.Errorf("sandbox %s: %w", id, ErrNotExist)
	}
	return &Sandbox{rt: r, id: id}, nil
}

// ID is the sandbox's id, as `nucleus exec` and `nucleus delete` take it.
func (s *Sandbox) ID() string { return s.id }

// Exec runs c in the sandbox and waits for it. Cancelling ctx kills the
// command (the sandbox lives on): the result's reason is then timeout,
// its status the killed command's (137).
func (s *Sandbox) Exec(ctx context.Context, c Cmd) (Result, error) {
	if len(c.Args) == 0 {
		return outcome.Plain(-1), errors.New("sandbox exec: no command")
	}
	if err := ctx.Err(); err != nil {
		return outcome.Plain(-1), err
	}
	dir, err := os.MkdirTemp("", "nucleus-exec-")
	if err != nil {
		return outcome.Plain(-1), err
	}
	defer os.RemoveAll(dir)
	pidFile := filepath.Join(dir, "pid")
	o := runtime.ExecOptions{Args: c.Args, Env: c.Env, Cwd: c.Cwd, User: c.User, PidFile: pidFile, Tty: c.Tty && c.Inherit}
	if !c.Inherit {
		o.Stdio = &runtime.Stdio{In: c.Stdin, Out: c.Stdout, Err: c.Stderr}
	}
	done := make(chan struct{})
	cancelled := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			close(cancelled)
			// The pid file appears once the process has started.
			for {
				if data, err := os.ReadFile(pidFile); err == nil {
					if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
						_ = unix.Kill(pid, unix.SIGKILL)
						return
					}
				}
				select {
				case <-done:
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
		case <-done:
		}
	}()
	started := time.Now()
	status, err := s.rt.Exec(s.id, o)
	close(done)
	res := result(s.id, status, time.Since(started))
	select {
	case <-cancelled:
		res = res.TimedOut(time.Since(started))
		res.Status = status
	default:
	}
	return res, err
}

// CopyIn copies the host file or directory hostPath into the sandbox at
// sandboxPath, with `nucleus cp`'s rules (symlinks resolved inside the
// sandbox, never to the host; set-id bits stripped; special files
// skipped, holes kept as holes). What it writes belongs to the sandbox's
// root; past runtime.DefaultCopyMaxBytes of data it stops with an error
// of class containerfs.ErrBudget.
func (s *Sandbox) CopyIn(ctx context.Context, hostPath, sandboxPath string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.rt.CopyIn(s.id, runtime.CopyOptions{HostPath: hostPath, ContainerPath: sandboxPath})
}

// CopyOut copies the sandbox's sandboxPath to hostPath on the host, with
// `nucleus cp`'s rules (nothing written outside hostPath, no host symlink
// followed, set-id bits stripped, holes kept as holes); what it writes
// belongs to the caller. Past runtime.DefaultCopyMaxBytes of data it stops
// with an error of class containerfs.ErrBudget, taking back what it made.
func (s *Sandbox) CopyOut(ctx context.Context, sandboxPath, hostPath string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.rt.CopyOut(s.id, runtime.CopyOptions{HostPath: hostPath, ContainerPath: sandboxPath})
}

// Close ends the sandbox: its processes are killed, copy-in-out
// workspaces are written back and every trace is removed.
func (s *Sandbox) Close() error { return s.rt.Delete(s.id, false) }

// Run runs one command in a fresh sandbox and removes it.
func Run(ctx context.Context, o Options, c Cmd) (Result, error) {
	if err := ctx.Err(); err != nil {
		return outcome.Plain(-1), err
	}
	r, so, err := prepare(o)
	if err != nil {
		return outcome.Plain(-1), err
	}
	so.Args, so.Timeout = c.Args, o.Timeout
	if deadline, ok := ctx.Deadline(); ok && (so.Timeout == 0 || time.Until(deadline) < so.Timeout) {
		so.Timeout = max(time.Until(deadline), time.Millisecond)
	}
	so.Env = append(so.Env, c.Env...)
	if c.Cwd != "" {
		so.Cwd = c.Cwd
	}
	if c.User != "" {
		so.User = c.User
	}
	so.Tty = c.Tty && c.Inherit
	if !c.Inherit {
		so.Stdio = &runtime.Stdio{In: c.Stdin, Out: c.Stdout, Err: c.Stderr}
	}
	return r.Sandbox(so)
}

// Pool is a warm pool of started sandboxes (FromPool takes one).
type Pool struct {
	// Name is 1-48 letters, digits, '_', '-' or '.'.
	Name string
	// Size is how many sandboxes to keep ready.
	Size int
	// WorkspaceExec lets commands execute files from their workspace.
	WorkspaceExec bool
}

// CreatePool records the pool p under o.Root, its sandboxes made as o
// describes (without workspaces: FromPool gives each its own), and fills
// it before it returns. It is `nucleus pool create` and `pool fill`: the
// command line sees and manages the same pools.
func CreatePool(ctx context.Context, p Pool, o Options) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(o.Workspaces) > 0 {
		return errors.New("sandbox: CreatePool: a pool's sandboxes get their workspace from FromPool")
	}
	r, so, err := prepare(o)
	if err != nil {
		return err
	}
	pools := &pool.Pools{R: r}
	if err := pools.Create(pool.Config{Name: p.Name, Size: p.Size, Options: so, WorkspaceExec: p.WorkspaceExec}); err != nil {
		return err
	}
	return pools.Fill(p.Name)
}

// RemovePool removes the pool named name under root and all its
// sandboxes, taken ones too (`nucleus pool rm`).
func RemovePool(root, name string) error {
	r, err := runtime.New(root, false, "auto")
	if err != nil {
		return err
	}
	return (&pool.Pools{R: r}).Remove(name)
}

// Where FromPool ran a command, as its Result's Pool says.
const (
	PoolWarm = pool.Warm
	PoolCold = pool.Cold
)

// ErrNoPool: FromPool was given a pool that does not exist.
var ErrNoPool = pool.ErrNotExist

// FromPool runs c in a started sandbox taken from the warm pool named
// poolName under root (made by `nucleus pool create`), as `nucleus sandbox
// --pool` does, and returns when c has ended: the sandbox is then
// destroyed (never reused) and the pool refilled by a detached process,
// this program re-executed (its Init runs it). When the pool is empty c
// runs in a sandbox started cold from the pool's config; the Result's Pool
// says which (PoolWarm, PoolCold) and its ID the sandbox's id.
//
// ws, if not nil, is offered at /workspace: its Kind is copy-in-out (the
// default for pools: copied in and written back) or bind-rw or bind-ro
// (bound as New's are). The pool fixes the sandbox's user, mode and
// whether its workspace may be executed from (pool create
// --workspace-exec): c.User, c.Tty and ws.Exec are refused. Cancelling
// ctx kills a warm command (status 137, reason timeout); a cold one runs
// with the pool's limits.
func FromPool(ctx context.Context, root, poolName string, c Cmd, ws *Workspace) (Result, error) {
	if err := ctx.Err(); err != nil {
		return outcome.Plain(-1), err
	}
	if c.User != "" || c.Tty {
		return outcome.Plain(-1), errors.New("sandbox: FromPool: the pool sets the user and gives no terminal (Cmd.User, Cmd.Tty)")
	}
	r, err := runtime.New(root, false, "auto")
	if err != nil {
		return outcome.Plain(-1), err
	}
	o := runtime.PooledRun{Args: c.Args, Env: c.Env, Cwd: c.Cwd}
	if !c.Inherit {
		o.Stdio = &runtime.Stdio{In: c.Stdin, Out: c.Stdout, Err: c.Stderr}
	}
	if ws != nil {
		if ws.Dest != "" && filepath.Clean(ws.Dest) != runtime.PoolWorkspace {
			return outcome.Plain(-1), fmt.Errorf("sandbox: workspace %s: a pooled sandbox's workspace is at %s, not %s", ws.Host, runtime.PoolWorkspace, ws.Dest)
		}
		if ws.Exec {
			return outcome.Plain(-1), fmt.Errorf("sandbox: workspace %s: whether a pool's workspace may be executed from is set when the pool is made (pool create --workspace-exec)", ws.Host)
		}
		o.Workspace, o.WorkspaceKind = ws.Host, policy.WorkspaceKind(ws.Kind)
	}
	cancel, done, watched := make(chan struct{}), make(chan struct{}), make(chan bool)
	go func() {
		select {
		case <-ctx.Done():
			close(cancel)
			<-done
			watched <- true
		case <-done:
			watched <- false
		}
	}()
	o.Cancel = cancel
	started := time.Now()
	res, err := (&pool.Pools{R: r}).Run(poolName, o)
	close(done)
	if <-watched && err == nil {
		status, how := res.Status, res.Pool
		res = res.TimedOut(time.Since(started))
		res.Status, res.Pool = status, how
	}
	return res, err
}

func result(id string, status int, d time.Duration) Result {
	res := outcome.Plain(status)
	res.ID, res.Duration = id, d
	if status > 128 && status < 128+65 {
		res.Reason, res.Signal = outcome.Signaled, unix.SignalName(unix.Signal(status-128))
	}
	return res
}

// prepare turns o into the runtime's options.
func prepare(o Options) (*runtime.Runtime, runtime.SandboxOptions, error) {
	var so runtime.SandboxOptions
	if o.Bundle == "" {
		return nil, so, errors.New("sandbox: no bundle given")
	}
	r, err := runtime.New(o.Root, false, "auto")
	if err != nil {
		return nil, so, err
	}
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return nil, so, err
	}
	s := o.Spec
	if s == nil {
		s, err = spec.Load(bundle)
	}
	if err != nil {
		return nil, so, err
	}
	var po policy.Options
	if o.Policy != nil {
		po = *o.Policy
	} else {
		mode := o.Mode
		if mode == "" {
			mode = string(policy.ModeAgent)
		}
		if po.Mode, err = policy.ParseMode(mode); err != nil {
			return nil, so, err
		}
		po.Net, po.MemoryLimit, po.Pids, po.CPUs = o.Net, o.Memory, o.Pids, o.CPUs
		for _, w := range o.Workspaces {
			ws := &policy.Workspace{Source: w.Host, Dest: w.Dest, Kind: policy.WorkspaceKind(w.Kind), Exec: w.Exec}
			if ws.Dest == "" {
				ws.Dest = "/workspace"
			}
			if ws.Kind == "" {
				ws.Kind = policy.WorkspaceBindRW
			}
			switch ws.Kind {
			case policy.WorkspaceBindRW, policy.WorkspaceBindRO, policy.WorkspaceCopyInOut:
			default:
				return nil, so, fmt.Errorf("sandbox: workspace %s: kind %q: want bind-rw, bind-ro or copy-in-out", w.Host, w.Kind)
			}
			po.Workspaces = append(po.Workspaces, ws)
		}
	}
	engine, err := runtime.ParseEngine(o.Engine)
	if err != nil {
		return nil, so, err
	}
	so = runtime.SandboxOptions{ID: o.ID, Bundle: bundle, Spec: s, Env: o.Env, Cwd: o.Cwd, User: o.User,
		Policy: po, Engine: engine, AuditLog: o.AuditLog, Debug: o.Debug, WorkspaceMaxBytes: o.WorkspaceMaxBytes, Network: o.Network}
	if o.Network != nil {
		so.Policy.Net = o.Network.Mode
	}
	return r, so, nil
}
