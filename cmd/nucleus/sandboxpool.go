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

// sandboxFromPool is `sandbox --pool NAME [--workspace DIR[:KIND]] -- CMD`
// (pool.Pools.Run, which the Go API runs too): take a warm sandbox, run
// CMD in it and print its status; it is destroyed and the pool refilled,
// detached. An empty pool starts one cold, from the pool's config (--json
// says so).
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
	var ws policy.Workspace
	if list := c.StringSlice("workspace"); len(list) > 1 {
		return errors.New("--workspace: a pooled sandbox takes one, at " + runtime.PoolWorkspace)
	} else if len(list) == 1 {
		w, err := policy.ParseWorkspace(list[0])
		if err != nil {
			return err
		}
		if w.Dest != runtime.PoolWorkspace {
			return fmt.Errorf("--workspace %s: a pooled sandbox's workspace is at %s", list[0], runtime.PoolWorkspace)
		}
		ws.Source, ws.Kind = w.Source, policy.WorkspaceCopyInOut
		// A bare DIR is copied in, as pools always did (a cold
		// sandbox's bare DIR is a bind-rw).
		for _, part := range strings.Split(list[0], ":")[1:] {
			if part == string(policy.WorkspaceBindRW) || part == string(policy.WorkspaceBindRO) {
				ws.Kind = w.Kind
			}
		}
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
	res, err := p.Run(name, runtime.PooledRun{Args: args, Env: env, Cwd: c.String("cwd"), Workspace: ws.Source, WorkspaceKind: ws.Kind, Stdio: stdio})
	if err != nil {
		return err
	}
	reportExit(res)
	if c.Bool("json") {
		if out.last != 0 && out.last != '\n' {
			fmt.Println()
		}
		fields := res.Fields()
		fields["exit_code"] = fields["status"]
		delete(fields, "status")
		if err := printJSONLine(fields); err != nil {
			return err
		}
	}
	os.Exit(res.Status)
	return nil
}
