package native

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/nucleus-run/nucleus/opterr"
	"github.com/nucleus-run/nucleus/runtime/engine"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/utils"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Exec starts a process in a running container and, unless detached,
// returns its exit status.
func (r *Engine) Exec(id string, o engine.ExecOptions) (int, error) {
	c, err := r.load(id)
	if err != nil {
		return -1, err
	}
	status, err := c.Status()
	if err != nil {
		return -1, fmt.Errorf("status of %s: %w", id, err)
	}
	switch status {
	case libcontainer.Stopped:
		return -1, fmt.Errorf("cannot exec in container %s: %w", id, engine.ErrStopped)
	case libcontainer.Paused:
		if !o.IgnorePaused {
			return -1, fmt.Errorf("cannot exec in container %s: %w (resume it or pass --ignore-paused)", id, engine.ErrPaused)
		}
	}
	p, err := execProcess(c, o)
	if err != nil {
		return -1, err
	}
	if err := engine.CheckTerminal(p.Terminal, o.Detach, o.ConsoleSocket); err != nil {
		return -1, err
	}
	subCgroups, err := parseSubCgroupPaths(o.SubCgroups)
	if err != nil {
		return -1, err
	}
	runner := &processRunner{
		container: c,
		init:      false,
		detach:    o.Detach,
		// An exec'd process is a grandchild too; reap it ourselves.
		enableSubreaper: true,
		pidFile:         o.PidFile,
		consoleSocket:   o.ConsoleSocket,
		stdio:           o.Stdio,
		pidfdSocket:     o.PidfdSocket,
		preserveFDs:     o.PreserveFDs,
		subCgroupPaths:  subCgroups,
	}
	if err := r.confineExec(id, p, o, runner); err != nil {
		return -1, err
	}
	return runner.run(p, c.Run)
}

func execProcess(c *libcontainer.Container, o engine.ExecOptions) (*specs.Process, error) {
	if o.Process != nil {
		return o.Process, nil
	}
	if len(o.Args) == 0 {
		return nil, errors.New("exec: no command given (pass a command after the container id, or --process FILE)")
	}
	// Flag values are checked here, so that their errors name the flag
	// rather than the bundle's config.json they are merged into.
	if o.Cwd != "" && !filepath.IsAbs(o.Cwd) {
		return nil, opterr.Errorf("cwd", "%q: not an absolute path", o.Cwd)
	}
	for _, e := range o.Env {
		if !strings.Contains(e, "=") {
			return nil, opterr.Errorf("env", "%q: not KEY=VALUE", e)
		}
	}
	bundle, ok := utils.SearchLabels(c.Config().Labels, "bundle")
	if !ok {
		return nil, fmt.Errorf("exec in %s: container state records no bundle", c.ID())
	}
	return engine.ProcessFromBundle(c.ID(), bundle, o)
}

func parseSubCgroupPaths(args []string) (map[string]string, error) {
	if len(args) == 0 {
		return nil, nil
	}
	paths := make(map[string]string, len(args))
	for _, c := range args {
		if ctr, path, ok := strings.Cut(c, ":"); ok {
			for _, ctrl := range strings.Split(ctr, ",") {
				if ctrl == "" {
					return nil, opterr.Errorf("cgroup", "%s: empty controller name", c)
				}
				if _, dup := paths[ctrl]; dup {
					return nil, opterr.Errorf("cgroup", "controller %s given twice", ctrl)
				}
				paths[ctrl] = path
			}
		} else {
			if len(args) != 1 {
				return nil, opterr.Errorf("cgroup", "%s: missing <controller>: prefix", c)
			}
			paths[""] = c
		}
	}
	return paths, nil
}
