package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/nucleus-run/nucleus/policy"
	"github.com/nucleus-run/nucleus/pool"
	"github.com/nucleus-run/nucleus/runtime"
)

// poolFlagsRefused are the sandbox flags a pool's config sets at `pool
// create` (or that a one-command pooled run has no use for).
var poolFlagsRefused = []string{"bundle", "flake", "id", "detach", "ttl", "tty", "user", "mode", "net", "engine", "timeout",
	"seccomp-profile", "caps-policy", "landlock-policy", "memory", "pids", "cpus", "allow", "publish", "dns", "bridge",
	"workspace-exec", "workspace-max-bytes", "entrypoint", "audit-log"}

// sandboxFromPool is `sandbox --pool NAME [--workspace DIR] -- CMD`: take
// a warm sandbox, run CMD in it, print its status, then have it destroyed
// and the pool refilled, both detached. An empty pool starts one cold,
// from the pool's config (--json says so).
func sandboxFromPool(c *cli.Context, args []string) error {
	name := c.String("pool")
	for _, f := range poolFlagsRefused {
		if c.IsSet(f) {
			return fmt.Errorf("--%s: not with --pool (the pool's sandboxes are made by nucleus pool create)", f)
		}
	}
	if len(args) == 0 {
		return errors.New("sandbox --pool: no command given (-- CMD [ARGS...])")
	}
	ws := ""
	if list := c.StringSlice("workspace"); len(list) > 1 {
		return errors.New("--workspace: a pooled sandbox takes one, at " + runtime.PoolWorkspace)
	} else if len(list) == 1 {
		dir, kind, ok := strings.Cut(list[0], ":")
		if ok && kind != string(policy.WorkspaceCopyInOut) {
			return fmt.Errorf("--workspace %s: a pooled sandbox takes its workspace as HOST[:copy-in-out], copied in at %s", list[0], runtime.PoolWorkspace)
		}
		ws = dir
	}
	env, err := envFlags(c)
	if err != nil {
		return err
	}
	r, err := newRuntime(c)
	if err != nil {
		return err
	}
	p := &pool.Pools{R: r}
	out := &lastByteWriter{w: os.Stdout}
	stdio := &runtime.Stdio{Out: out, Err: os.Stderr}
	if c.Bool("interactive") {
		stdio.In = os.Stdin
	}
	how, release := "warm", func() {}
	var res runtime.Exit
	id, err := p.Take(name)
	// A member whose supervisor is gone (killed) never ran the command:
	// destroy it and take another.
	for tries := 0; err == nil && tries < 4; tries++ {
		res, err = r.RunPooled(id, runtime.PooledRun{Args: args, Env: env, Cwd: c.String("cwd"), Workspace: ws, Stdio: stdio})
		if !errors.Is(err, runtime.ErrNotPooled) {
			break
		}
		p.Release(name, id, true)
		id, err = p.Take(name)
	}
	switch {
	case errors.Is(err, pool.ErrEmpty):
		how = "cold: the pool was empty"
		cfg, lerr := p.Load(name)
		if lerr != nil {
			return lerr
		}
		_ = p.Refill(name)
		o := cfg.Options
		o.Args, o.Env, o.Cwd, o.Stdio = args, append(o.Env, env...), c.String("cwd"), stdio
		if ws != "" {
			o.Policy.Workspaces = []*policy.Workspace{{Source: ws, Dest: runtime.PoolWorkspace, Kind: policy.WorkspaceCopyInOut}}
		}
		if res, err = r.Sandbox(o); err != nil {
			return err
		}
	case id == "":
		return err // Take's
	default:
		// Destroyed and refilled by one detached process, once the
		// status is out (or now, if that can't start).
		release = func() {
			if rerr := p.Release(name, id, true); rerr != nil {
				p.Release(name, id, false)
			}
		}
		if err != nil {
			release()
			return err
		}
	}
	reportExit(res)
	if c.Bool("json") {
		if out.last != 0 && out.last != '\n' {
			fmt.Println()
		}
		fields := res.Fields()
		fields["exit_code"] = fields["status"]
		delete(fields, "status")
		fields["pool"] = how
		if err := printJSONLine(fields); err != nil {
			return err
		}
	}
	release()
	os.Exit(res.Status)
	return nil
}
