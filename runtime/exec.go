package runtime

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/utils"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/nucleus-run/nucleus/spec"
)

// ExecOptions describe a process to start in a running container.
type ExecOptions struct {
	// Process, if set, is the whole process (from --process); otherwise the
	// container's own process is taken from its bundle and Args, Env, Cwd,
	// User and Tty override it.
	Process *specs.Process
	Args    []string
	Env     []string
	Cwd     string
	// User is "uid[:gid]".
	User           string
	AdditionalGids []uint32
	Tty            bool
	NoNewPrivs     *bool
	Caps           []string

	Detach        bool
	PidFile       string
	ConsoleSocket string
	PidfdSocket   string
	PreserveFDs   int
	IgnorePaused  bool
	// SubCgroups are runc's --cgroup values ("[ctrl:]path").
	SubCgroups []string
}

// Exec starts a process in a running container and, unless detached,
// returns its exit status.
func (r *Runtime) Exec(id string, o ExecOptions) (int, error) {
	if r.isGvisor(id) {
		return r.gvisorExec(id, o)
	}
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
		return -1, fmt.Errorf("cannot exec in container %s: it has stopped", id)
	case libcontainer.Paused:
		if !o.IgnorePaused {
			return -1, fmt.Errorf("cannot exec in container %s: it is paused (resume it or pass --ignore-paused)", id)
		}
	}
	p, err := execProcess(c, o)
	if err != nil {
		return -1, err
	}
	if o.PidFile, err = absPath(o.PidFile); err != nil {
		return -1, fmt.Errorf("--pid-file: %w", err)
	}
	if o.ConsoleSocket, err = absPath(o.ConsoleSocket); err != nil {
		return -1, fmt.Errorf("--console-socket: %w", err)
	}
	if err := checkTerminal(p.Terminal, o.Detach, o.ConsoleSocket); err != nil {
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
		pidfdSocket:     o.PidfdSocket,
		preserveFDs:     o.PreserveFDs,
		subCgroupPaths:  subCgroups,
	}
	if err := r.confineExec(id, p, o, runner); err != nil {
		return -1, err
	}
	return runner.run(p, c.Run)
}

func execProcess(c *libcontainer.Container, o ExecOptions) (*specs.Process, error) {
	if o.Process != nil {
		return o.Process, nil
	}
	if len(o.Args) == 0 {
		return nil, errors.New("exec: no command given (pass a command after the container id, or --process FILE)")
	}
	// Flag values are checked here, so that their errors name the flag
	// rather than the bundle's config.json they are merged into.
	if o.Cwd != "" && !filepath.IsAbs(o.Cwd) {
		return nil, fmt.Errorf("--cwd %q: not an absolute path", o.Cwd)
	}
	for _, e := range o.Env {
		if !strings.Contains(e, "=") {
			return nil, fmt.Errorf("--env %q: not KEY=VALUE", e)
		}
	}
	bundle, ok := utils.SearchLabels(c.Config().Labels, "bundle")
	if !ok {
		return nil, fmt.Errorf("exec in %s: container state records no bundle", c.ID())
	}
	return processFromBundle(c.ID(), bundle, o)
}

// processFromBundle is the bundle's own process with the exec flags laid
// over it (both engines take an exec'd process this way).
func processFromBundle(id, bundle string, o ExecOptions) (*specs.Process, error) {
	s, err := spec.Load(bundle)
	if err != nil {
		return nil, fmt.Errorf("exec in %s: %w", id, err)
	}
	p := s.Process
	p.Args = o.Args
	if o.Cwd != "" {
		p.Cwd = o.Cwd
	}
	p.Env = append(p.Env, o.Env...)
	p.Terminal = o.Tty
	if o.NoNewPrivs != nil {
		p.NoNewPrivileges = *o.NoNewPrivs
	}
	for _, cp := range o.Caps {
		if p.Capabilities == nil {
			p.Capabilities = &specs.LinuxCapabilities{}
		}
		p.Capabilities.Bounding = append(p.Capabilities.Bounding, cp)
		p.Capabilities.Effective = append(p.Capabilities.Effective, cp)
		p.Capabilities.Permitted = append(p.Capabilities.Permitted, cp)
	}
	if o.User != "" {
		uid, gid, err := ParseUser(o.User)
		if err != nil {
			return nil, err
		}
		p.User.UID = uid
		if gid != nil {
			p.User.GID = *gid
		}
	}
	p.User.AdditionalGids = append(p.User.AdditionalGids, o.AdditionalGids...)
	file := filepath.Join(bundle, spec.ConfigName)
	if err := spec.ValidateProcess(file, "exec: process.", p); err != nil {
		return nil, err
	}
	return p, nil
}

// ParseUser parses "uid[:gid]" as runc's exec --user.
func ParseUser(s string) (uid uint32, gid *uint32, err error) {
	us, gs, hasGid := strings.Cut(s, ":")
	u, err := parseID(us)
	if err != nil {
		return 0, nil, fmt.Errorf("--user %q: uid: %w", s, err)
	}
	if hasGid {
		g, err := parseID(gs)
		if err != nil {
			return 0, nil, fmt.Errorf("--user %q: gid: %w", s, err)
		}
		gid = &g
	}
	return u, gid, nil
}

func parseID(s string) (uint32, error) {
	var n uint64
	if s == "" {
		return 0, errors.New("empty")
	}
	for _, ch := range s {
		if ch < '0' || ch > '9' {
			return 0, fmt.Errorf("%q is not a number", s)
		}
		n = n*10 + uint64(ch-'0')
		if n > 1<<32-1 {
			return 0, fmt.Errorf("%q out of range", s)
		}
	}
	return uint32(n), nil
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
					return nil, fmt.Errorf("--cgroup %s: empty controller name", c)
				}
				if _, dup := paths[ctrl]; dup {
					return nil, fmt.Errorf("--cgroup: controller %s given twice", ctrl)
				}
				paths[ctrl] = path
			}
		} else {
			if len(args) != 1 {
				return nil, fmt.Errorf("--cgroup %s: missing <controller>: prefix", c)
			}
			paths[""] = c
		}
	}
	return paths, nil
}
