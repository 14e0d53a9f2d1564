package pool

import (
	"errors"

	"github.com/nucleus-run/nucleus/opterr"
	"github.com/nucleus-run/nucleus/policy"
	"github.com/nucleus-run/nucleus/runtime"
)

// Warm and Cold are where Run says (in its result's Pool) a command ran:
// in a member taken from the pool (the member's id in the result's ID),
// or in a sandbox started cold from the pool's config.
const (
	Warm = "warm"
	Cold = "cold: the pool was empty"
)

// Run runs one command in a member of pool name, as `nucleus sandbox
// --pool NAME` does: it takes a ready member (skipping and destroying one
// whose supervisor is gone), runs o in it (its workspace copied in or
// bound, by o.WorkspaceKind) and has it destroyed and the pool refilled by
// a detached release (inline, when none can be started); an empty pool
// runs o in a sandbox started cold from the pool's config, and starts a
// refill. stdio nil in o means this process's own streams.
func (p *Pools) Run(name string, o runtime.PooledRun) (res runtime.Exit, err error) {
	res.Status, res.Pool = -1, Warm
	if len(o.Args) == 0 {
		return res, errors.New("sandbox: no command given")
	}
	kind := o.WorkspaceKind
	if kind == "" {
		kind = policy.WorkspaceCopyInOut
	}
	if o.Workspace != "" {
		// Bad input costs no member.
		ws := &policy.Workspace{Source: o.Workspace, Dest: runtime.PoolWorkspace, Kind: kind}
		switch kind {
		case policy.WorkspaceCopyInOut, policy.WorkspaceBindRW, policy.WorkspaceBindRO:
		default:
			return res, opterr.Errorf("workspace", "%s: kind %q: want copy-in-out, bind-rw or bind-ro", o.Workspace, kind)
		}
		if err := runtime.PrepareWorkspace(ws); err != nil {
			return res, err
		}
	}
	id, err := p.Take(name)
	// A member whose supervisor is gone (killed) never ran the command:
	// destroy it and take another.
	for tries := 0; err == nil && tries < 4; tries++ {
		res, err = p.R.RunPooled(id, o)
		res.Pool = Warm
		if !errors.Is(err, runtime.ErrNotPooled) {
			break
		}
		p.release(name, id)
		id, err = p.Take(name)
	}
	switch {
	case errors.Is(err, ErrEmpty):
		cfg, lerr := p.Load(name)
		if lerr != nil {
			return res, lerr
		}
		_ = p.Refill(name)
		so := cfg.Options
		so.Args, so.Env, so.Cwd, so.Stdio = o.Args, append(so.Env, o.Env...), o.Cwd, o.Stdio
		if o.Workspace != "" {
			so.Policy.Workspaces = []*policy.Workspace{{Source: o.Workspace, Dest: runtime.PoolWorkspace, Kind: kind, Exec: cfg.WorkspaceExec}}
		}
		res, err = p.R.Sandbox(so)
		res.Pool = Cold
		return res, err
	case id == "":
		return res, err // Take's
	}
	// Destroyed and refilled by one detached process (the caller has the
	// status without waiting for it).
	p.release(name, id)
	return res, err
}

// release has a taken member destroyed and the pool refilled: by a
// detached process, or now if none can be started.
func (p *Pools) release(name, id string) {
	if err := p.Release(name, id, true); err != nil {
		_ = p.Release(name, id, false) // the next refill retries what fails
	}
}
