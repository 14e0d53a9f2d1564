package gvisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/nucleus-run/nucleus/opterr"
	"github.com/nucleus-run/nucleus/runtime/confine"
	"github.com/nucleus-run/nucleus/runtime/engine"
	"github.com/nucleus-run/nucleus/seccomp"
	"github.com/nucleus-run/nucleus/spec"
)

// Exec runs a process in the container through runsc exec, confined as
// the container when it runs in a mode.
func (r *Engine) Exec(id string, o engine.ExecOptions) (status int, retErr error) {
	switch {
	case o.PreserveFDs > 0:
		return -1, &engine.OptionError{Option: "preserve-fds", Msg: "not supported in a gvisor container", Err: engine.ErrUnsupported}
	case o.PidfdSocket != "":
		return -1, &engine.OptionError{Option: "pidfd-socket", Msg: "not supported in a gvisor container", Err: engine.ErrUnsupported}
	case len(o.SubCgroups) > 0:
		return -1, &engine.OptionError{Option: "cgroup", Msg: "not supported in a gvisor container", Err: engine.ErrUnsupported}
	}
	rec, err := r.readGvisorRecord(id)
	if err != nil {
		return -1, err
	}
	st, err := rec.state()
	if err != nil {
		return -1, err
	}
	switch {
	case st == nil || st.Status == "stopped":
		return -1, fmt.Errorf("cannot exec in container %s: %w", id, engine.ErrStopped)
	case st.Status == "paused" && !o.IgnorePaused:
		return -1, fmt.Errorf("cannot exec in container %s: %w (resume it or pass --ignore-paused)", id, engine.ErrPaused)
	}
	p := o.Process
	if p == nil {
		if p, err = gvisorExecProcess(rec, o); err != nil {
			return -1, err
		}
	}
	if err := rec.confineExec(p, o); err != nil {
		return -1, err
	}
	if o.Stdio != nil {
		return -1, opterr.Errorf("engine", "gvisor: exec with streams other than nucleus's own stdio: %w", engine.ErrUnsupported)
	}
	if err := engine.CheckTerminal(p.Terminal, o.Detach, o.ConsoleSocket); err != nil {
		return -1, err
	}
	if p.Terminal && !o.Detach {
		return -1, &engine.OptionError{Option: "tty", Msg: "without detaching is not supported in a gvisor container; use --detach with --console-socket", Err: engine.ErrUnsupported}
	}
	data, err := json.Marshal(p)
	if err != nil {
		return -1, err
	}
	// Unique per exec: a library caller may exec into one container
	// from several goroutines.
	pf, err := os.CreateTemp(rec.dir, "exec-*.json")
	if err != nil {
		return -1, err
	}
	procFile := pf.Name()
	ipidFile := strings.TrimSuffix(procFile, ".json") + ".pid"
	_, err = pf.Write(data)
	if cerr := pf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(procFile)
		return -1, err
	}
	defer os.Remove(procFile)
	defer os.Remove(ipidFile)
	args := []string{"--process", procFile, "--internal-pid-file", ipidFile}
	if o.Detach {
		args = append(args, "--detach")
	}
	if o.PidFile != "" {
		args = append(args, "--pid-file", o.PidFile)
	}
	if o.ConsoleSocket != "" {
		args = append(args, "--console-socket", o.ConsoleSocket)
	}
	stdio, closeStdio, err := runscStdio(!o.Detach)
	if err != nil {
		return -1, err
	}
	defer closeStdio()
	defer privateNull(rec.dir, &stdio)()
	defer keepOwners(stdio)()
	cmd := rec.command("exec", append(args, id)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio[0], stdio[1], stdio[2]
	if o.Detach {
		if err := cmd.Run(); err != nil {
			return -1, fmt.Errorf("runsc exec failed (%v; runsc's message is above)", err)
		}
		return 0, nil
	}
	status, _, err = rec.waitForwarding(cmd, false, func(sig unix.Signal) []string {
		data, err := os.ReadFile(ipidFile)
		if err != nil {
			return nil // not started yet
		}
		return []string{"kill", "--pid", strings.TrimSpace(string(data)), id, strconv.Itoa(int(sig))}
	})
	return status, err
}

// confineDirName is the host directory in R/ID that the container sees as
// confine.Dir: the filter, and the mount point of the helper binary.
const confineDirName = "confine"

// execConfinement is what a mode's gVisor container carries for the
// processes exec'd into it later: the filter they load (nil: the mode runs
// without seccomp).
type execConfinement struct {
	filter []byte
}

// execConfinement returns the config runsc gets and, for a container in an
// isolation mode, how exec'd processes will be confined. runsc exec cannot
// give a process a seccomp filter or no_new_privs, so the config gains a
// read-only bind of R/ID/confine at confine.Dir, holding the container's
// filter compiled to BPF, and a read-only bind of this nucleus binary (the
// helper) inside it; the helper loads the filter in gVisor before it execs
// the command. The directory is itself a read-only mount point, so the
// sandbox can neither add to it nor rename it away and put its own in its
// place. A profile that cannot be compiled here is refused: the container's
// processes would otherwise run unconfined.
func (r *Engine) execConfinement(o engine.CreateOptions) (*specs.Spec, *execConfinement, error) {
	if o.Policy == nil || o.Policy.Mode == "" {
		return o.Spec, nil, nil
	}
	self, err := os.Executable()
	if err == nil {
		self, err = filepath.EvalSymlinks(self)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("--engine gvisor: the %s mode's exec confinement needs this nucleus binary's path: %w", o.Policy.Mode, err)
	}
	c := &execConfinement{}
	if o.Spec.Linux != nil && o.Spec.Linux.Seccomp != nil {
		if c.filter, err = seccomp.Compile(o.Spec.Linux.Seccomp); err != nil {
			return nil, nil, fmt.Errorf("--engine gvisor: the %s mode's seccomp profile cannot be compiled for processes exec'd into the container: %w", o.Policy.Mode, err)
		}
	}
	ro := []string{"bind", "ro", "nosuid", "nodev"}
	mounts := []specs.Mount{
		{Destination: confine.Dir, Type: "bind", Source: filepath.Join(engine.StateDir(r.Root, o.ID), confineDirName), Options: ro},
		{Destination: confine.Helper, Type: "bind", Source: self, Options: ro},
	}
	s := *o.Spec
	s.Mounts = append(append([]specs.Mount{}, o.Spec.Mounts...), mounts...)
	return &s, c, nil
}

// writeConfineDir makes R/ID/confine: the filter (when there is one) and
// the helper's mount point.
func writeConfineDir(dir string, c *execConfinement) error {
	d := filepath.Join(dir, confineDirName)
	if err := os.Mkdir(d, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(d, filepath.Base(confine.Helper)), nil, 0o555); err != nil {
		return err
	}
	if c.filter != nil {
		return os.WriteFile(filepath.Join(d, filepath.Base(confine.Filter)), c.filter, 0o444)
	}
	return nil
}

// confineExec gives a process exec'd into a mode's container the
// container's confinement, as the native engine's confineExec does: --cap
// refused, the container's own capabilities whatever the process asks for,
// no_new_privs and the seccomp filter, the last two set by the helper
// inside gVisor because runsc exec cannot.
func (g *gvisorRecord) confineExec(p *specs.Process, o engine.ExecOptions) error {
	if g.Mode == "" {
		return nil
	}
	if len(o.Caps) > 0 {
		return fmt.Errorf("exec --cap: container %s runs in %s mode, which grants no capabilities to exec'd processes", g.id, g.Mode)
	}
	if !g.ExecConfined || (g.ExecFilter != "" && g.ExecFilterSHA256 == "") {
		return fmt.Errorf("cannot exec in container %s: it runs in %s mode but was created without the exec confinement helper (by an older nucleus); refusing to run a process unconfined", g.id, g.Mode)
	}
	s, err := spec.Load(g.dir)
	if err != nil {
		return fmt.Errorf("exec in %s: %w", g.id, err)
	}
	p.Capabilities = s.Process.Capabilities
	p.NoNewPrivileges = true
	p.Args = confine.Args(g.ExecFilter, g.ExecFilterSHA256, p.Args)
	return nil
}

// gvisorExecProcess is the container's own process (from the config runsc
// got) with exec's overrides, as the native engine builds it.
func gvisorExecProcess(rec *gvisorRecord, o engine.ExecOptions) (*specs.Process, error) {
	if len(o.Args) == 0 {
		return nil, errors.New("exec: no command given (pass a command after the container id, or --process FILE)")
	}
	return engine.ProcessFromBundle(rec.id, rec.dir, o)
}
