package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nucleus-run/nucleus/opterr"
	"github.com/nucleus-run/nucleus/policy"
	"github.com/nucleus-run/nucleus/runtime/engine"
	"github.com/nucleus-run/nucleus/runtime/outcome"
	"github.com/nucleus-run/nucleus/workspace"
)

// PoolWorkspace is where a pooled sandbox's workspace is, in the sandbox.
const PoolWorkspace = "/workspace"

// ErrNotPooled: the sandbox is not a warm pool's (or has no supervisor).
var ErrNotPooled = errors.New("not a pooled sandbox")

// PooledRun is one command run in a warm pool's sandbox.
type PooledRun struct {
	Args []string
	Env  []string
	Cwd  string
	// Workspace, if set, is a host directory offered at PoolWorkspace:
	// by WorkspaceKind copied in before the command and back after it
	// (copy-in-out, the default), or bound (bind-rw, bind-ro) as a cold
	// sandbox's is.
	Workspace     string
	WorkspaceKind policy.WorkspaceKind
	Stdio         *Stdio
	// Cancel, once closed, kills the command (SIGKILL, status 137).
	Cancel <-chan struct{}
}

// PoolPlaceholder is the copy-in-out workspace a pool's sandbox is
// started with (from an empty directory): its copy directory, bound at
// PoolWorkspace with the Landlock rules of a workspace, is where RunPooled
// copies the caller's workspace, so the rules are in place before anyone
// asks; a bind workspace is mounted over it (bindPooledWorkspace). exec
// allows executing files from the workspace (its Landlock rule and mount).
func PoolPlaceholder(empty string, exec bool) *policy.Workspace {
	return &policy.Workspace{Source: empty, Dest: PoolWorkspace, Kind: policy.WorkspaceCopyInOut, Exec: exec}
}

// RunPooled runs one command in the pool's sandbox id, which the caller
// has taken (package pool): the workspace is copied in (or bound), the
// command runs through the supervisor, the workspace is copied back. The sandbox is
// then spent: the caller removes it.
func (r *Runtime) RunPooled(id string, o PooledRun) (Exit, error) {
	started := time.Now()
	res := outcome.Plain(-1)
	res.ID = id
	rec, err := r.loadSandbox(id)
	if err != nil {
		return res, err
	}
	if rec.Pool == "" || !rec.Supervised {
		return res, fmt.Errorf("sandbox %s: %w", id, ErrNotPooled)
	}
	if len(o.Args) == 0 {
		return res, errors.New("sandbox: no command given")
	}
	var wc *workspace.Copy
	kind := o.WorkspaceKind
	if kind == "" {
		kind = policy.WorkspaceCopyInOut
	}
	switch kind {
	case policy.WorkspaceCopyInOut, policy.WorkspaceBindRW, policy.WorkspaceBindRO:
	default:
		return res, opterr.Errorf("workspace", "%s: kind %q: want copy-in-out, bind-rw or bind-ro", o.Workspace, kind)
	}
	for _, e := range o.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return res, &OptionError{Option: "env", Msg: fmt.Sprintf("%q: not KEY=VALUE", e)}
		}
	}
	if o.Workspace != "" && kind != policy.WorkspaceCopyInOut {
		ws := &policy.Workspace{Source: o.Workspace, Dest: PoolWorkspace, Kind: kind, Exec: rec.WorkspaceExec}
		if err := PrepareWorkspace(ws); err != nil {
			return res, err
		}
		if err := r.bindPooledWorkspace(id, rec, ws); err != nil {
			return res, err
		}
	} else if o.Workspace != "" {
		ws := &policy.Workspace{Source: o.Workspace, Dest: PoolWorkspace, Kind: policy.WorkspaceCopyInOut}
		if err := PrepareWorkspace(ws); err != nil {
			return res, err
		}
		dir := filepath.Join(r.Root, engine.WorkspaceCopyPrefix+id, "0")
		if wc, err = workspace.In(workspace.Dir{Path: ws.Source, Dev: ws.Dev, Ino: ws.Ino}, dir, int(rec.HostUID), int(rec.HostGID), workspaceDropped(nil)); err != nil {
			return res, err
		}
		wc.MaxBytes = DefaultWorkspaceMaxBytes
	}
	status, ok, err := r.supervisedExec(id, ExecOptions{Args: o.Args, Env: o.Env, Cwd: o.Cwd, Stdio: o.Stdio}, o.Cancel)
	if !ok {
		return res, fmt.Errorf("sandbox %s: its supervisor does not answer: %w", id, ErrNotPooled)
	}
	if err != nil {
		return res, err
	}
	res = outcome.Plain(status)
	res.ID = id
	res.Duration = time.Since(started)
	if wc != nil {
		err = copyBack([]*workspace.Copy{wc}, nil)
	}
	return res, err
}

// PoolOf is the pool the sandbox id was made for ("" for none).
func (r *Runtime) PoolOf(id string) string {
	rec, err := r.loadSandbox(id)
	if err != nil {
		return ""
	}
	return rec.Pool
}

// Sandboxes lists the long-lived sandboxes under the root.
func (r *Runtime) Sandboxes() []string {
	entries, _ := os.ReadDir(r.Root)
	var ids []string
	for _, e := range entries {
		if id, ok := strings.CutPrefix(e.Name(), engine.SandboxPrefix); ok && e.IsDir() {
			ids = append(ids, id)
		}
	}
	return ids
}

// RemoveSandbox ends the long-lived sandbox id and removes all of it,
// as `nucleus delete --force` does.
func (r *Runtime) RemoveSandbox(id string) error { return r.removeSandbox(id) }
