package native

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/nucleus-run/nucleus/isolation/host"
	"github.com/nucleus-run/nucleus/network"
	"github.com/nucleus-run/nucleus/opterr"
	"github.com/nucleus-run/nucleus/policy"
	"github.com/nucleus-run/nucleus/runtime/engine"
	"github.com/nucleus-run/nucleus/runtime/outcome"
	"github.com/nucleus-run/nucleus/seccomp"
	"github.com/nucleus-run/nucleus/spec"
	"github.com/nucleus-run/nucleus/userns"
)

// needsStaging: a container in an isolation mode always runs on a staged
// rootfs; any other only when its config asks for a user namespace whose
// root could not reach the bundle's rootfs (a bundle under a 0700
// directory), where libcontainer would fail.
func needsStaging(o engine.CreateOptions) bool {
	if o.Spec.Root == nil {
		return false
	}
	if o.Stage || (o.Policy != nil && o.Policy.Mode != "") {
		return true
	}
	if o.Spec.Linux == nil || len(o.Spec.Linux.UIDMappings) == 0 {
		return false
	}
	return host.UserNSBlocker(engine.RootfsPath(o.Bundle, o.Spec)) != ""
}

type action int

const (
	actCreate action = iota
	actRun
)

// Create sets up a container whose process waits for Start.
func (r *Engine) Create(o engine.CreateOptions) error {
	_, err := r.startContainer(o, actCreate, nil)
	return err
}

// Run creates and starts a container. Unless detached it streams stdio,
// forwards signals, waits for the process and removes the container; the
// returned status is the process's exit status (128+signal if killed).
func (r *Engine) Run(o engine.CreateOptions) (int, error) {
	return r.startContainer(o, actRun, nil)
}

var _ engine.RunReporter = (*Engine)(nil)

// RunReport is Run that also reports the init's pid and what the
// container's memory cgroup says of the run (OOM kills, peak use), read
// before the cgroup is removed.
func (r *Engine) RunReport(o engine.CreateOptions) (engine.RunInfo, error) {
	var info engine.RunInfo
	status, err := r.startContainer(o, actRun, &info)
	info.Status = status
	return info, err
}

// startContainer creates (and for actRun starts) the container; info, if
// given, is filled in when an attached run ends.
func (r *Engine) startContainer(o engine.CreateOptions, act action, info *engine.RunInfo) (status int, err error) {
	if err := spec.ValidateID(o.ID); err != nil {
		return -1, err
	}
	if o.Spec == nil || o.Spec.Process == nil {
		return -1, errors.New("no config (or no process in it) given")
	}
	var unlockStaging func()
	var owned bool
	var rlimits []specs.POSIXRlimit
	if needsStaging(o) {
		staged, release, unlock, stageErr := engine.StageRootfs(r.Root, o.ID, engine.RootfsPath(o.Bundle, o.Spec))
		if stageErr != nil {
			return -1, stageErr
		}
		unlockStaging = unlock
		defer func() {
			if unlockStaging != nil {
				unlockStaging()
			}
			if err != nil {
				release()
			}
		}()
		o.Spec.Root.Path = staged
		if uid, gid, ok := rootIDs(o.Spec); ok {
			if err := engine.GuardStaging(r.Root, o.ID, uid, gid); err != nil {
				return -1, err
			}
		}
		// Only with the pre-exec step, which sets the rlimits host root
		// no longer may (see preExecRecord.OwnedUserNS).
		if o.Policy != nil && o.Policy.UserNS && o.Policy.Landlock != nil {
			s, err := ownedUserNS(o.Spec, engine.StagedUserNS(r.Root, o.ID))
			if err != nil {
				return -1, fmt.Errorf("container %s: %w", o.ID, err)
			}
			if s != o.Spec {
				owned, rlimits = true, o.Spec.Process.Rlimits
				o.Spec = s
			}
		}
	}
	detach := o.Detach || act == actCreate
	if err := engine.CheckTerminal(o.Spec.Process.Terminal, detach, o.ConsoleSocket); err != nil {
		return -1, err
	}
	// The pre-exec step loads the compiled filter, when there is one,
	// instead of libcontainer compiling it in the container's init.
	var filter seccomp.Program
	if o.Policy != nil && o.Policy.Landlock != nil && o.Spec.Linux != nil && o.Spec.Linux.Seccomp != nil {
		prog, err := seccomp.Cached(o.Spec.Linux.Seccomp)
		switch {
		case err == nil:
			filter = prog
			o.Spec = withoutSeccomp(o.Spec)
		case !errors.Is(err, seccomp.ErrNotPrecompilable):
			return -1, err
		}
	}
	if bridged(o) {
		resolv, err := network.WriteResolvConf(r.Root, o.ID)
		if err != nil {
			return -1, err
		}
		o.Spec = withNetNS(o.Spec, resolv)
	} else if o.Network != nil {
		o.Spec = engine.WithNetMode(o.Spec, o.Network.Mode)
	}
	var deferred []specs.POSIXRlimit
	if o.Policy != nil && o.Policy.Landlock != nil {
		// The pre-exec step's Landlock domain can't exec the sealed
		// binary again: the limit is set on the waiting init.
		o.Spec, deferred = deferRlimits(o.Spec)
	} else {
		o.Spec = trampolineRlimits(o.Spec)
	}
	o.Spec = lateSeccomp(o.Spec)
	if o.Policy != nil && len(o.Policy.PodNetSysctls) > 0 {
		if err := writePodNetSysctls(o.Spec, o.Policy.PodNetSysctls); err != nil {
			return -1, fmt.Errorf("container %s: %w", o.ID, err)
		}
	}
	container, unlockState, err := r.newContainer(o)
	if err != nil {
		return -1, err
	}
	defer unlockState()
	if err := saveDeferredRlimits(r.stateDir(o.ID), deferred); err != nil {
		_ = destroy(r.Root, container)
		return -1, err
	}
	if unlockStaging != nil {
		// The container's state holds the id now; destroying it later
		// releases the staging.
		unlockStaging()
		unlockStaging = nil
	}
	p := &processRunner{
		root:            r.Root,
		container:       container,
		init:            true,
		detach:          detach,
		enableSubreaper: !o.NoSubreaper,
		shouldDestroy:   !o.Keep,
		pidFile:         o.PidFile,
		consoleSocket:   o.ConsoleSocket,
		stdio:           o.Stdio,
		pidfdSocket:     o.PidfdSocket,
		preserveFDs:     o.PreserveFDs,
		listenFDs:       activation.Files(false),
		killOnInterrupt: o.KillOnInterrupt,
		info:            info,
		onStart:         o.OnStart,
		unlockState:     unlockState,
	}
	if o.Policy != nil && o.Policy.Mode != "" {
		p.noTerminal = true
		return r.runWithPolicy(p, o, act, filter, owned, rlimits)
	}
	start := func(process *libcontainer.Process) error {
		if err := container.Start(process); err != nil {
			return err
		}
		if err := r.attachNetwork(o, process); err != nil {
			return err
		}
		if err := populate(o, process); err != nil {
			return err
		}
		if act == actCreate {
			return nil
		}
		if err := applyDeferredRlimits(r.stateDir(o.ID), container); err != nil {
			return err
		}
		poststart := poststartHooks(r.stateDir(o.ID), container)
		if err := container.Exec(); err != nil {
			return err
		}
		if err := poststart(); err != nil {
			// runtime.md step 9: the container stops; run's
			// error path removes it and runs the poststop hooks.
			terminate(process)
			return err
		}
		return nil
	}
	return p.run(o.Spec.Process, start)
}

func bridged(o engine.CreateOptions) bool {
	return o.Network != nil && o.Network.Mode == network.ModeBridge
}

// attachNetwork gives a bridged container its network while its init
// waits to exec the process, so the process starts with it.
func (r *Engine) attachNetwork(o engine.CreateOptions, process *libcontainer.Process) error {
	if !bridged(o) {
		return nil
	}
	pid, err := process.Pid()
	if err != nil {
		return err
	}
	if _, err = network.Attach(r.Root, o.ID, o.Network, pid, o.Audit); err != nil {
		// The init waits to exec the process: end it, or the caller
		// waits on its stdio forever.
		terminate(process)
		return err
	}
	return nil
}

// populate runs o.Populate while the init waits to exec the process.
func populate(o engine.CreateOptions, process *libcontainer.Process) error {
	if o.Populate == nil {
		return nil
	}
	pid, err := process.Pid()
	if err == nil {
		err = o.Populate(pid)
	}
	if err != nil {
		terminate(process)
	}
	return err
}

// withNetNS is s with a new network namespace (a plain bundle run with
// --net bridge may share the host's) and, if set, resolv at
// /etc/resolv.conf.
func withNetNS(s *specs.Spec, resolv string) *specs.Spec {
	out := engine.WithNetMode(s, network.ModeNone)
	if resolv != "" {
		out.Mounts = append(slices.Clone(out.Mounts), specs.Mount{Destination: "/etc/resolv.conf", Type: "bind", Source: resolv,
			Options: []string{"rbind", "ro", "nosuid", "nodev", "noexec"}})
	}
	return out
}

// newContainer turns the OCI config into libcontainer's and creates the
// container's state directory, locked (see unlockState) with a record of
// where its cgroups will be. specconv resolves relative paths against the
// working directory, where runc first moves into the bundle; the config's
// paths are made absolute instead, since a library must not move its
// caller.
func (r *Engine) newContainer(o engine.CreateOptions) (*libcontainer.Container, func(), error) {
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return nil, nil, fmt.Errorf("bundle %s: %w", o.Bundle, err)
	}
	s := adaptSpec(engine.WithAbsolutePaths(bundle, o.Spec))
	// An empty cgroupsPath would make libcontainer nest the container under
	// whatever cgroup nucleus itself happens to run in; place it at /<id>
	// in every hierarchy instead, like runc's documented default. Not for
	// rootless cgroups: libcontainer tolerates a cgroup it may not create
	// only when no path was asked for, as in runc.
	if !r.SystemdCgroup && !r.rootlessCgroups() && (s.Linux == nil || s.Linux.CgroupsPath == "") {
		// A config without a linux section is placed the same way.
		if s.Linux == nil {
			s.Linux = &specs.Linux{}
		}
		s.Linux.CgroupsPath = "/" + o.ID
	}
	config, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{
		CgroupName:       o.ID,
		UseSystemdCgroup: r.SystemdCgroup,
		NoPivotRoot:      o.NoPivot,
		NoNewKeyring:     o.NoNewKeyring,
		Spec:             s,
		RootlessEUID:     os.Geteuid() != 0,
		RootlessCgroups:  r.rootlessCgroups(),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", filepath.Join(bundle, spec.ConfigName), err)
	}
	adaptConfig(config)
	later := takeLaterHooks(config)
	// specconv names the bundle after the working directory, which is the
	// caller's: say which bundle it really is (state and ps report it).
	for i, l := range config.Labels {
		if strings.HasPrefix(l, "bundle=") {
			config.Labels[i] = "bundle=" + bundle
		}
	}
	c, err := libcontainer.Create(r.Root, o.ID, config)
	if err != nil {
		if errors.Is(err, libcontainer.ErrExist) || errors.Is(err, os.ErrExist) {
			return nil, nil, fmt.Errorf("container %s %w under %s", o.ID, engine.ErrExist, r.Root)
		}
		return nil, nil, fmt.Errorf("create container %s: %w", o.ID, err)
	}
	// Until its init runs and state.json is written, the container is
	// locked: a delete or a list then waits or passes over it, instead
	// of taking a create in progress for one that was killed.
	unlock, err := r.lockContainer(o.ID)
	if err != nil {
		return nil, nil, fmt.Errorf("create container %s: %w", o.ID, err)
	}
	if err := writeCgroupRecord(r.stateDir(o.ID), config.Cgroups); err != nil {
		unlock()
		_ = c.Destroy()
		return nil, nil, fmt.Errorf("create container %s: %w", o.ID, err)
	}
	if err := saveLaterHooks(r.stateDir(o.ID), later); err != nil {
		unlock()
		_ = c.Destroy()
		return nil, nil, fmt.Errorf("create container %s: %w", o.ID, err)
	}
	var once sync.Once
	return c, func() { once.Do(unlock) }, nil
}

// processRunner starts one process (a container's init or an exec'd one),
// wires its stdio and, when attached, waits for it. It is runc's runner.
type processRunner struct {
	// root is the engine's root: destroying the container runs the
	// poststop hooks kept in its state dir there.
	root            string
	container       *libcontainer.Container
	init            bool
	detach          bool
	enableSubreaper bool
	shouldDestroy   bool
	pidFile         string
	consoleSocket   string
	stdio           *engine.Stdio
	// noTerminal keeps the caller's terminal from a detached process in
	// an isolation mode: a stdio descriptor that is a terminal is replaced
	// by /dev/null, so untrusted code can't read what the operator types
	// after nucleus returned, nor write escape sequences to it.
	noTerminal      bool
	pidfdSocket     string
	preserveFDs     int
	listenFDs       []*os.File
	subCgroupPaths  map[string]string
	killOnInterrupt bool
	// info, if set, receives the pid and the memory cgroup's report of
	// an attached run.
	info *engine.RunInfo
	// onStart, if set, is engine.CreateOptions.OnStart.
	onStart func(pid int) (stop func())
	// beforeStart, if set, adjusts the process after stdio and fds are
	// set up (the policy pre-exec step); afterStart runs once the start
	// was tried, started or not (it closes what beforeStart handed over).
	beforeStart func(*libcontainer.Process) error
	afterStart  func(*libcontainer.Process)
	// unlockState, if set, releases a new container's lock once its
	// start was tried (state.json is written by then, or the start
	// failed and the container is destroyed).
	unlockState func()
}

func (p *processRunner) run(config *specs.Process, start func(*libcontainer.Process) error) (status int, retErr error) {
	defer func() {
		if retErr != nil {
			p.destroy()
		}
	}()
	process, err := newProcess(config)
	if err != nil {
		return -1, err
	}
	process.LogLevel = strconv.Itoa(int(logrus.GetLevel()))
	process.Init = p.init
	process.SubCgroupPaths = p.subCgroupPaths
	if len(p.listenFDs) > 0 {
		process.Env = append(process.Env, "LISTEN_FDS="+strconv.Itoa(len(p.listenFDs)), "LISTEN_PID=1")
		process.ExtraFiles = append(process.ExtraFiles, p.listenFDs...)
	}
	baseFd := 3 + len(process.ExtraFiles)
	for i := baseFd; i < baseFd+p.preserveFDs; i++ {
		if _, err := unix.FcntlInt(uintptr(i), unix.F_GETFD, 0); err != nil {
			return -1, opterr.Errorf("preserve-fds", "fd %d (preserved fd %d of %d) is not open: %w", i, i-baseFd+1, p.preserveFDs, err)
		}
		process.ExtraFiles = append(process.ExtraFiles, os.NewFile(uintptr(i), "PreserveFD:"+strconv.Itoa(i)))
	}
	var signals *signalHandler
	if !p.detach {
		signals = newSignalHandler(p.enableSubreaper)
		signals.killOnInterrupt = p.killOnInterrupt
	}
	io, err := setupIO(process, p.container, config.Terminal, p.detach, p.consoleSocket, p.stdio, p.noTerminal)
	if err != nil {
		return -1, err
	}
	defer io.Close()
	if p.pidfdSocket != "" {
		closeConn, err := setupPidfdSocket(process, p.pidfdSocket)
		if err != nil {
			return -1, err
		}
		defer closeConn()
	}
	var startErr error
	if p.beforeStart != nil {
		startErr = p.beforeStart(process)
	}
	if startErr == nil {
		startErr = start(process)
	}
	if p.unlockState != nil {
		p.unlockState()
	}
	if p.afterStart != nil {
		p.afterStart(process)
	}
	if startErr != nil {
		return -1, startErr
	}
	if err := io.waitConsole(); err != nil {
		terminate(process)
		return -1, err
	}
	io.closePostStart()
	if p.pidFile != "" {
		if err := writePidFile(p.pidFile, process); err != nil {
			terminate(process)
			return -1, err
		}
	}
	if p.detach {
		return 0, nil
	}
	var stop func()
	if p.onStart != nil {
		pid, _ := process.Pid()
		stop = p.onStart(pid)
	}
	status, err = signals.forward(process, io)
	if stop != nil {
		stop()
	}
	if err != nil {
		terminate(process)
		return -1, err
	}
	if p.info != nil {
		p.info.Pid, _ = process.Pid()
		if st, err := p.container.State(); err == nil {
			p.info.OOMKills, p.info.PeakMemoryBytes = outcome.Memory(st.CgroupPaths)
		}
	}
	p.destroy()
	return status, nil
}

func (p *processRunner) destroy() {
	if p.shouldDestroy {
		if err := destroy(p.root, p.container); err != nil {
			logrus.Warn(err)
		}
	}
}

func terminate(p *libcontainer.Process) {
	_ = p.Signal(unix.SIGKILL)
	_, _ = p.Wait()
}

// writePidFile writes atomically (temp file + rename) so that a caller
// polling for the file never reads a partial pid.
func writePidFile(path string, process *libcontainer.Process) error {
	pid, err := process.Pid()
	if err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path))
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write pid file: %w", err)
	}
	return nil
}

func setupPidfdSocket(process *libcontainer.Process, sockpath string) (func(), error) {
	conn, err := net.Dial("unix", sockpath)
	if err != nil {
		return nil, opterr.Errorf("pidfd-socket", "%s: %w", sockpath, err)
	}
	socket, err := conn.(*net.UnixConn).File()
	if err != nil {
		conn.Close()
		return nil, opterr.Errorf("pidfd-socket", "%s: %w", sockpath, err)
	}
	process.PidfdSocket = socket
	return func() { conn.Close(); socket.Close() }, nil
}

// withoutSeccomp is s minus its seccomp section, for libcontainer when the
// pre-exec step loads the compiled filter instead.
// ownedUserNS creates the user namespace a mode asked for with the host
// uid its root maps to (policy.HostUID) as creator, pinned at path, and
// returns the spec changed to join it: the kernel charges the container's
// per-user counts (inotify instances, queued signals...) at the host level
// to that uid, never to host root (package userns). The mappings are
// left out of the returned spec: libcontainer reads them from the
// namespace it joins, and refuses a path with mappings that differ. So are
// the process's rlimits, which the pre-exec step sets (see
// preExecRecord.OwnedUserNS). A spec without a user namespace to create
// comes back as it is.
func ownedUserNS(s *specs.Spec, path string) (*specs.Spec, error) {
	if s.Linux == nil {
		return s, nil
	}
	i := slices.IndexFunc(s.Linux.Namespaces, func(ns specs.LinuxNamespace) bool {
		return ns.Type == specs.UserNamespace && ns.Path == ""
	})
	if i < 0 {
		return s, nil
	}
	if err := userns.Create(path, policy.HostUID, s.Linux.UIDMappings, s.Linux.GIDMappings); err != nil {
		return nil, err
	}
	out := *s
	linux := *s.Linux
	linux.Namespaces = slices.Clone(s.Linux.Namespaces)
	linux.Namespaces[i].Path = path
	linux.UIDMappings, linux.GIDMappings = nil, nil
	out.Linux = &linux
	process := *s.Process
	process.Rlimits = nil
	out.Process = &process
	return &out, nil
}

// rootIDs are the host uid and gid the container's root runs as: 0:0
// without a user namespace, else what the mappings give container id 0;
// not ok for a namespace joined by path, whose mappings are not in the
// config.
func rootIDs(s *specs.Spec) (uid, gid int, ok bool) {
	if s.Linux == nil || !slices.ContainsFunc(s.Linux.Namespaces, func(ns specs.LinuxNamespace) bool { return ns.Type == specs.UserNamespace }) {
		return 0, 0, true
	}
	host := func(ms []specs.LinuxIDMapping) (int, bool) {
		for _, m := range ms {
			if m.ContainerID == 0 && m.Size > 0 {
				return int(m.HostID), true
			}
		}
		return 0, false
	}
	uid, okU := host(s.Linux.UIDMappings)
	gid, okG := host(s.Linux.GIDMappings)
	return uid, gid, okU && okG
}

func withoutSeccomp(s *specs.Spec) *specs.Spec {
	out := *s
	linux := *s.Linux
	linux.Seccomp = nil
	out.Linux = &linux
	return &out
}
