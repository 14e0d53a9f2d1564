package main

import (
	"slices"

	"github.com/urfave/cli/v2"

	"github.com/nucleus-run/nucleus/opterr"
	"github.com/nucleus-run/nucleus/runtime"
	"github.com/nucleus-run/nucleus/secrets"
)

func secretFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "secret", Usage: "SRC:NAME: put a host file (or env:VAR's value) at /run/secrets/NAME, on a 1 MiB tmpfs, mode 0400, owned by the process's user; never written to disk (repeatable)"},
		&cli.StringSliceFlag{Name: "secret-env", Usage: "NAME=VAR: set the process's NAME to the host's $VAR (weaker than --secret: any process the workload starts inherits it; repeatable)"},
	}
}

// secretOptions loads the secrets the flags name and arranges for the
// engine to write them into the container before its process runs. The
// returned Set is zeroed by then; the caller zeroes it again on any path
// that never got there.
func secretOptions(c *cli.Context, o *runtime.CreateOptions) (*secrets.Set, error) {
	var files []secrets.Source
	for _, v := range c.StringSlice("secret") {
		s, err := secrets.ParseSource(v)
		if err != nil {
			return nil, err
		}
		files = append(files, s)
	}
	var envs []secrets.EnvSource
	for _, v := range c.StringSlice("secret-env") {
		e, err := secrets.ParseEnvSource(v)
		if err != nil {
			return nil, err
		}
		envs = append(envs, e)
	}
	if len(files) == 0 && len(envs) == 0 {
		return nil, nil
	}
	if o.Engine == runtime.EngineGvisor {
		// runsc gets its config as a file, and its sandbox's root is not
		// reachable from the host.
		return nil, opterr.Errorf("secret", "not supported by the gvisor engine: %w", runtime.ErrUnsupported)
	}
	set, err := secrets.Load(files, envs)
	if err != nil {
		return nil, err
	}
	// A copy: the spec handed in may be shared, and this one carries the
	// --secret-env values, so it must never be written out.
	s := *o.Spec
	proc := *s.Process
	proc.Env = append(slices.Clone(proc.Env), set.Env()...)
	s.Process = &proc
	if !set.Empty() {
		s.Mounts = append(slices.Clone(s.Mounts), secrets.Mount())
	}
	o.Spec = &s
	if names := set.EnvNames(); len(names) > 0 {
		o.Audit.Event("secret_env", map[string]any{"names": names, "weaker": true,
			"detail": "in the process's environment: readable by its own processes and inherited by what it starts; prefer --secret"})
	}
	if set.Empty() {
		set.Zero()
		return set, nil
	}
	uid, gid := proc.User.UID, proc.User.GID
	audit := o.Audit
	prev := o.Populate
	o.Populate = func(pid int) error {
		if prev != nil {
			if err := prev(pid); err != nil {
				return err
			}
		}
		names := set.Names()
		if err := set.Write(pid, uid, gid); err != nil {
			return err
		}
		audit.Event("secrets_mounted", map[string]any{"dir": secrets.Dir, "names": names, "limit_bytes": secrets.Limit})
		return nil
	}
	return set, nil
}
