package runtime

// The gVisor engine: the same lifecycle, driven through Debian's runsc.
//
// Layout under --root R, for a container ID held by gVisor:
//
//	R/ID/gvisor.json   the record: runsc's path, the global flags used at
//	                   create (runsc needs them repeated on every command),
//	                   the user's bundle, the creation time
//	R/ID/config.json   the config handed to runsc (what `nucleus export` writes)
//	R/ID/rootfs        symlink to the bundle's rootfs
//	R/ID/exec-seccomp.bpf  in a mode: the compiled filter that processes
//	                   exec'd into the container load (see package confine)
//	R/@gvisor/         runsc --root: runsc's own state and locks
//
// runsc is found through $NUCLEUS_RUNSC (a path) or else "runsc" on PATH.
// Platform: ptrace unless $NUCLEUS_GVISOR_PLATFORM says otherwise (this
// runsc release has ptrace and kvm; no systrap).

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/opencontainers/runc/types"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/nucleus-run/nucleus/cachedir"
	"github.com/nucleus-run/nucleus/policy"
	"github.com/nucleus-run/nucleus/runtime/confine"
	"github.com/nucleus-run/nucleus/seccomp"
	"github.com/nucleus-run/nucleus/spec"
)

// RunscEnv names the runsc binary to use (a path); unset: runsc on PATH.
const RunscEnv = "NUCLEUS_RUNSC"

// GvisorPlatformEnv overrides the runsc platform (default ptrace).
const GvisorPlatformEnv = "NUCLEUS_GVISOR_PLATFORM"

// defaultGvisorPlatform: ptrace works everywhere; kvm needs a usable
// /dev/kvm (on a nested VM it can spin forever); systrap is newer than
// Debian 12's runsc (20221219).
const defaultGvisorPlatform = "ptrace"

// FindRunsc returns the runsc binary the gVisor engine drives, or an error
// naming what is missing.
func FindRunsc() (string, error) {
	if p := os.Getenv(RunscEnv); p != "" {
		st, err := os.Stat(p)
		if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return "", fmt.Errorf("gvisor engine: runsc not found: %s=%s is not an executable file (install Debian's runsc package or fix %s)", RunscEnv, p, RunscEnv)
		}
		return p, nil
	}
	p, err := exec.LookPath("runsc")
	if err != nil {
		return "", fmt.Errorf("gvisor engine: runsc not found on PATH (install Debian's runsc package, or set %s to its path)", RunscEnv)
	}
	return p, nil
}

// GvisorNetwork maps the config's network namespace to runsc's --network:
// a new namespace without a path is an empty one (none: loopback only,
// gVisor's own netstack); a namespace given by path is joined and its
// interfaces served by gVisor's netstack (sandbox); no network namespace
// means the host's network, which runsc passes through (host).
func GvisorNetwork(s *specs.Spec) string {
	if s.Linux == nil {
		return "host"
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			if ns.Path == "" {
				return "none"
			}
			return "sandbox"
		}
	}
	return "host"
}

// GvisorFlags are the runsc global flags (without --root) that a bundle
// with config s needs: platform, network and, when the config has a
// seccomp profile, --oci-seccomp (runsc ignores linux.seccomp without it).
func GvisorFlags(s *specs.Spec) []string {
	platform := os.Getenv(GvisorPlatformEnv)
	if platform == "" {
		platform = defaultGvisorPlatform
	}
	flags := []string{"--platform=" + platform, "--network=" + GvisorNetwork(s)}
	if s.Linux != nil && s.Linux.Seccomp != nil {
		flags = append(flags, "--oci-seccomp")
	}
	return flags
}

// GvisorConfig returns the config.json runsc gets for bundle's config s:
// the same config with root.path "rootfs" (the caller puts the rootfs, or
// a symlink to it, there) and relative bind sources made absolute against
// the original bundle. rootfs is the absolute original rootfs.
func GvisorConfig(bundle string, s *specs.Spec) (data []byte, rootfs string, err error) {
	if s.Root == nil || s.Root.Path == "" {
		return nil, "", fmt.Errorf("%s: root.path: missing", filepath.Join(bundle, spec.ConfigName))
	}
	c := *s
	root := *s.Root
	rootfs = root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(bundle, rootfs)
	}
	root.Path = "rootfs"
	c.Root = &root
	c.Mounts = make([]specs.Mount, len(s.Mounts))
	for i, m := range s.Mounts {
		if m.Source != "" && !filepath.IsAbs(m.Source) && isBindMount(m) {
			m.Source = filepath.Join(bundle, m.Source)
		}
		c.Mounts[i] = m
	}
	data, err = json.MarshalIndent(&c, "", "\t")
	return data, rootfs, err
}

func isBindMount(m specs.Mount) bool {
	if m.Type == "bind" {
		return true
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}

// gvisorRecord is R/ID/gvisor.json.
type gvisorRecord struct {
	Runsc   string    `json:"runsc"`
	Flags   []string  `json:"flags"`
	Bundle  string    `json:"bundle"`
	Rootfs  string    `json:"rootfs"`
	Created time.Time `json:"created"`
	// OCIVersion is the config's, which `state` reports as the native
	// engine does (runsc would report its own spec version).
	OCIVersion string `json:"ociVersion"`
	// Mode is the isolation mode the container was created in ("": none).
	Mode policy.Mode `json:"mode,omitempty"`
	// ExecConfined says processes exec'd into a mode's container start
	// through the confinement helper mounted at create; ExecFilter is the
	// filter it loads (a path in the container; "" when the mode runs
	// without seccomp). A mode's container without it refuses exec.
	ExecConfined bool   `json:"execConfined,omitempty"`
	ExecFilter   string `json:"execFilter,omitempty"`

	id  string
	dir string
}

func (r *Runtime) gvisorRoot() string { return filepath.Join(r.Root, gvisorRootName) }

func (r *Runtime) readGvisorRecord(id string) (*gvisorRecord, error) {
	dir := r.stateDir(id)
	data, err := os.ReadFile(filepath.Join(dir, gvisorRecordName))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("container %s: %w", id, ErrNotExist)
		}
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	var rec gvisorRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("container %s: %s: %w", id, filepath.Join(dir, gvisorRecordName), err)
	}
	rec.id, rec.dir = id, dir
	return &rec, nil
}

// command builds `runsc <global flags> sub args...`. The global flags are
// repeated on every command: runsc does not remember them.
func (g *gvisorRecord) command(sub string, args ...string) *exec.Cmd {
	full := append(append(append([]string{}, g.Flags...), sub), args...)
	cmd := exec.Command(g.Runsc, full...)
	cmd.Env = runscEnv()
	return cmd
}

// output runs a runsc command that does not touch the container's stdio
// and turns a failure into one line naming runsc's own message.
func (g *gvisorRecord) output(sub string, args ...string) ([]byte, error) {
	cmd := g.command(sub, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), runscError(sub, g.id, err, stderr.Bytes())
	}
	return stdout.Bytes(), nil
}

func runscError(sub, id string, err error, stderr []byte) error {
	msg := strings.Join(strings.Fields(string(stderr)), " ")
	if msg == "" {
		msg = err.Error()
	}
	return fmt.Errorf("%s %s: runsc: %s", sub, id, msg)
}

// runscEnv is nucleus's environment without socket-activation variables:
// the native engine's extra fds are never handed to runsc.
func runscEnv() []string {
	env := os.Environ()
	out := env[:0]
	for _, e := range env {
		if strings.HasPrefix(e, "LISTEN_FDS=") || strings.HasPrefix(e, "LISTEN_PID=") || strings.HasPrefix(e, "LISTEN_FDNAMES=") {
			continue
		}
		out = append(out, e)
	}
	return out
}

// runscState is what `runsc state` prints.
type runscState struct {
	Version     string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Status      string            `json:"status"`
	Pid         int               `json:"pid"`
	Bundle      string            `json:"bundle"`
	Annotations map[string]string `json:"annotations"`
}

// runscStateOf returns runsc's state, or nil when runsc holds nothing for
// the id (never created, or removed by an attached run that ended).
func (g *gvisorRecord) state() (*runscState, error) {
	out, err := g.output("state", g.id)
	if err != nil {
		if strings.Contains(err.Error(), "does not exist") {
			return nil, nil
		}
		return nil, err
	}
	var st runscState
	if err := json.Unmarshal(out, &st); err != nil {
		return nil, fmt.Errorf("state %s: runsc printed no state JSON: %w", g.id, err)
	}
	return &st, nil
}

func (g *gvisorRecord) toState(st *runscState) *State {
	s := &State{
		Version: g.OCIVersion,
		ID:      g.id,
		Status:  "stopped",
		Bundle:  g.Bundle,
		Rootfs:  g.Rootfs,
		Created: g.Created,
	}
	if st != nil {
		s.Status = st.Status
		if st.Status != "stopped" && st.Pid > 0 {
			s.InitProcessPid = st.Pid
		}
	}
	s.Annotations = map[string]string{}
	if st != nil {
		for k, v := range st.Annotations {
			s.Annotations[k] = v
		}
	}
	s.Annotations[EngineAnnotation] = string(EngineGvisor)
	return s
}

// ---- create / run ----

func (r *Runtime) gvisorStart(o CreateOptions, act action) (status int, retErr error) {
	if err := spec.ValidateID(o.ID); err != nil {
		return -1, err
	}
	if o.Spec == nil || o.Spec.Process == nil {
		return -1, errors.New("no config given")
	}
	detach := o.Detach || act == actCreate
	switch {
	case os.Geteuid() != 0:
		return -1, errors.New("--engine gvisor: needs root (nucleus does not drive rootless runsc)")
	case o.Policy != nil && (o.Policy.Landlock != nil || o.Policy.UserNS):
		// A plan made for the native engine: its Landlock pre-exec step
		// (the sealed nucleus binary as an extra fd) and user namespace
		// mapping are never handed to runsc.
		return -1, fmt.Errorf("--engine gvisor: the %s policy plan was made for the native engine (Landlock pre-exec step or user namespace); it must be made with policy.Options.Gvisor", o.Policy.Mode)
	case o.PreserveFDs > 0:
		return -1, errors.New("--engine gvisor: --preserve-fds is not supported (runsc gets only stdio)")
	case o.PidfdSocket != "":
		return -1, errors.New("--engine gvisor: --pidfd-socket is not supported (the container's processes live in gVisor's kernel)")
	case o.Keep && !detach:
		return -1, errors.New("--engine gvisor: run --keep is not supported (runsc run removes the container); use create + start")
	case o.Spec.Process.Terminal && !detach:
		return -1, errors.New("--engine gvisor: process.terminal with an attached run is not supported; use --detach with --console-socket")
	}
	var err error
	if o.PidFile, err = absPath(o.PidFile); err != nil {
		return -1, fmt.Errorf("--pid-file: %w", err)
	}
	if o.ConsoleSocket, err = absPath(o.ConsoleSocket); err != nil {
		return -1, fmt.Errorf("--console-socket: %w", err)
	}
	if err := checkTerminal(o.Spec.Process.Terminal, detach, o.ConsoleSocket); err != nil {
		return -1, err
	}
	runsc, err := FindRunsc()
	if err != nil {
		return -1, err
	}
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return -1, fmt.Errorf("bundle %s: %w", o.Bundle, err)
	}
	cfg, confinement, err := r.gvisorExecConfinement(o)
	if err != nil {
		return -1, err
	}
	config, rootfs, err := GvisorConfig(bundle, cfg)
	if err != nil {
		return -1, err
	}
	flags := append([]string{"--root=" + r.gvisorRoot()}, GvisorFlags(o.Spec)...)
	if r.SystemdCgroup {
		flags = append(flags, "--systemd-cgroup")
	}
	if o.Spec.Linux != nil && o.Spec.Linux.Seccomp != nil {
		if err := r.checkRunscSeccomp(runsc, o.Spec.Linux.Seccomp); err != nil {
			return -1, err
		}
	}
	started := time.Now()
	rec := &gvisorRecord{Runsc: runsc, Flags: flags, Bundle: bundle, Rootfs: rootfs, Created: time.Now().UTC(), OCIVersion: o.Spec.Version, id: o.ID, dir: r.stateDir(o.ID)}
	if confinement != nil {
		rec.Mode, rec.ExecConfined = o.Policy.Mode, true
		if confinement.filter != nil {
			rec.ExecFilter = confine.Filter
		}
	}
	if err := r.writeGvisorBundle(rec, config); err != nil {
		return -1, err
	}
	defer func() {
		if retErr != nil {
			o.Audit.Event("container_failed", map[string]any{"error": retErr.Error(), "engine": string(EngineGvisor)})
			rec.cleanup(true)
		}
	}()
	if confinement != nil && confinement.filter != nil {
		// The mount's source; written before runsc runs, removed with R/ID.
		if err := os.WriteFile(filepath.Join(rec.dir, execFilterName), confinement.filter, 0o444); err != nil {
			return -1, fmt.Errorf("create %s: exec filter: %w", o.ID, err)
		}
	}
	auditPlan(o, rec)
	stdio, closeStdio, err := runscStdio(!detach)
	if err != nil {
		return -1, err
	}
	defer closeStdio()
	args := []string{"--bundle", rec.dir}
	if o.PidFile != "" {
		args = append(args, "--pid-file", o.PidFile)
	}
	if o.ConsoleSocket != "" {
		args = append(args, "--console-socket", o.ConsoleSocket)
	}
	sub := "create"
	if act == actRun {
		sub = "run"
		if detach {
			args = append(args, "--detach")
		}
	}
	cmd := rec.command(sub, append(args, o.ID)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio[0], stdio[1], stdio[2]
	if detach {
		if err := cmd.Run(); err != nil {
			return -1, fmt.Errorf("%s %s: runsc %s failed (%v; runsc's message is above)", sub, o.ID, sub, err)
		}
		return 0, nil
	}
	status, crashed, err := rec.waitForwarding(cmd, o.KillOnInterrupt, func(sig unix.Signal) []string {
		return []string{"kill", o.ID, strconv.Itoa(int(sig))}
	})
	if err != nil {
		return -1, err
	}
	rec.cleanup(crashed)
	o.Audit.Event("container_exited", map[string]any{"status": status, "duration_ms": time.Since(started).Milliseconds()})
	return status, nil
}

// auditPlan writes the plan's steps to the audit log, as the native engine
// does before the workload starts. Under gVisor, seccomp is enforced by
// gVisor's kernel (--oci-seccomp); Landlock and the user namespace are
// recorded by policy.Apply as substituted by gVisor's kernel boundary.
func auditPlan(o CreateOptions, rec *gvisorRecord) {
	plan := o.Policy
	if plan == nil || plan.Mode == "" {
		return
	}
	o.Audit.Event("container_created", map[string]any{"bundle": o.Bundle, "mode": plan.Mode, "engine": string(EngineGvisor)})
	for _, st := range plan.Steps {
		fields := map[string]any{"applied": st.Applied, "detail": st.Detail}
		if st.Name == "seccomp_applied" {
			fields["syscalls"] = plan.SeccompSyscalls
			fields["enforced_by"] = "gvisor (runsc --oci-seccomp)"
			// runsc applies the profile to the container's process only;
			// say how exec'd processes get it.
			if rec.ExecFilter != "" {
				fields["exec"] = "exec'd processes load the same filter, with no_new_privs and no added capabilities, through nucleus " + confine.Command + " inside gVisor"
			}
		}
		o.Audit.Event(st.Name, fields)
	}
}

// writeGvisorBundle reserves R/ID (mkdir: the same reservation the native
// engine makes, so ids are unique across engines) and writes the bundle
// runsc gets. The record goes last: a directory without it is a crashed
// create that `delete` removes.
func (r *Runtime) writeGvisorBundle(rec *gvisorRecord, config []byte) error {
	if err := os.MkdirAll(r.Root, 0o711); err != nil {
		return fmt.Errorf("--root %s: %w", r.Root, err)
	}
	if err := os.Mkdir(rec.dir, 0o711); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("container %s already exists under %s", rec.id, r.Root)
		}
		return fmt.Errorf("create container %s: %w", rec.id, err)
	}
	data, err := json.Marshal(rec)
	if err == nil {
		err = os.WriteFile(filepath.Join(rec.dir, spec.ConfigName), config, 0o600)
	}
	if err == nil {
		err = os.Symlink(rec.Rootfs, filepath.Join(rec.dir, "rootfs"))
	}
	if err == nil {
		err = os.MkdirAll(r.gvisorRoot(), 0o711)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(rec.dir, gvisorRecordName), data, 0o600)
	}
	if err != nil {
		os.RemoveAll(rec.dir)
		return fmt.Errorf("create container %s: %w", rec.id, err)
	}
	return nil
}

// cleanup removes everything of the container: with runscDelete, runsc's
// sandbox, state and lock files (after a failed create or a runsc that
// died), then R/ID. An attached run that ended normally skips
// the `runsc delete`: runsc run has removed its container already.
func (g *gvisorRecord) cleanup(runscDelete bool) {
	if runscDelete {
		if _, err := g.output("delete", "--force", g.id); err != nil {
			logrus.Warnf("remove gvisor container %s: %v", g.id, err)
		}
	}
	g.removeRunscFiles()
	if err := os.RemoveAll(g.dir); err != nil {
		logrus.Warnf("remove %s: %v", g.dir, err)
	}
	// runsc's root goes with its last container (a no-op while others
	// remain: the directory isn't empty then).
	if root := g.runscRoot(); root != "" {
		_ = os.Remove(root)
	}
}

// runscRoot is runsc's --root as recorded.
func (g *gvisorRecord) runscRoot() string {
	for _, f := range g.Flags {
		if v, ok := strings.CutPrefix(f, "--root="); ok {
			return v
		}
	}
	return ""
}

// removeRunscFiles removes the lock (and any stale state) files runsc
// leaves for a sandbox whose runsc process was killed.
func (g *gvisorRecord) removeRunscFiles() {
	root := g.runscRoot()
	if root == "" {
		return
	}
	matches, _ := filepath.Glob(filepath.Join(root, g.id+"_sandbox:*"))
	for _, m := range matches {
		os.Remove(m)
	}
}

// waitForwarding waits for an attached runsc run/exec, forwarding every
// signal nucleus gets to the container's process through `runsc kill`
// (runsc run and exec do not forward signals: a signal kills runsc and,
// with it, the sandbox). runsc runs in its own process group so that a
// terminal's or a group-wide signal reaches nucleus only, once.
// crashed reports that runsc itself was killed by a signal.
func (g *gvisorRecord) waitForwarding(cmd *exec.Cmd, killOnInterrupt bool, killArgs func(unix.Signal) []string) (status int, crashed bool, err error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Only the signals a caller sends to stop or poke a process: asking
	// for all of them costs a round trip to the runtime's signal-mask
	// thread per signal (1-3 ms, more than the rest of the handoff), and
	// there is no signal.Stop since nucleus exits right after.
	sigs := make(chan os.Signal, 128)
	signal.Notify(sigs, forwardedSignals...)
	if err := cmd.Start(); err != nil {
		return -1, false, fmt.Errorf("start runsc: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case s := <-sigs:
			sig, ok := s.(unix.Signal)
			if !ok {
				continue
			}
			if killOnInterrupt && (sig == unix.SIGINT || sig == unix.SIGTERM || sig == unix.SIGHUP) {
				sig = unix.SIGKILL
			}
			args := killArgs(sig)
			if args == nil {
				continue
			}
			go func() {
				if _, err := g.output(args[0], args[1:]...); err != nil {
					logrus.Debugf("forward signal %s: %v", unix.SignalName(sig), err)
				}
			}()
		case err := <-done:
			var ee *exec.ExitError
			if err != nil && !errors.As(err, &ee) {
				return -1, true, fmt.Errorf("runsc: %w", err)
			}
			ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
			if ws.Signaled() {
				// runsc itself died: its sandbox went with it.
				return 128 + int(ws.Signal()), true, nil
			}
			return ws.ExitStatus(), false, nil
		}
	}
}

// forwardedSignals are relayed to the container's process by an attached
// gVisor run or exec (through `runsc kill`).
var forwardedSignals = []os.Signal{unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGTERM, unix.SIGUSR1, unix.SIGUSR2, unix.SIGALRM}

// runscStdio returns the stdio runsc gets. runsc writes a regular file
// from offset 0 unless it is in append mode, so a stdout or stderr that is
// a regular file without O_APPEND is reopened with it. An attached run
// whose stdin is a terminal gets a pipe instead: runsc runs in its own
// process group and must not read the terminal from the background.
func runscStdio(attached bool) ([3]*os.File, func(), error) {
	files := [3]*os.File{os.Stdin, os.Stdout, os.Stderr}
	var toClose []*os.File
	var copiers sync.WaitGroup
	closeAll := func() {
		for _, f := range toClose {
			f.Close()
		}
		copiers.Wait()
	}
	for i := 1; i <= 2; i++ {
		var st unix.Stat_t
		if unix.Fstat(i, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
			continue
		}
		fl, err := unix.FcntlInt(uintptr(i), unix.F_GETFL, 0)
		if err != nil || fl&unix.O_APPEND != 0 {
			continue
		}
		// runsc writes a regular file from offset 0. Attached, relay
		// through a pipe into our own descriptor, so the output lands at
		// the caller's offset, shared with whatever else writes there.
		// Detached (nobody stays to relay), hand runsc an O_APPEND copy.
		if attached {
			pr, pw, err := os.Pipe()
			if err != nil {
				closeAll()
				return files, nil, err
			}
			dst := files[i]
			copiers.Add(1)
			go func() {
				defer copiers.Done()
				_, _ = io.Copy(dst, pr)
				pr.Close()
			}()
			files[i] = pw
			toClose = append(toClose, pw)
			continue
		}
		f, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(i), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			closeAll()
			return files, nil, fmt.Errorf("reopen fd %d in append mode for runsc: %w", i, err)
		}
		files[i] = f
		toClose = append(toClose, f)
	}
	if attached {
		if _, err := unix.IoctlGetTermios(0, unix.TCGETS); err == nil {
			pr, pw, err := os.Pipe()
			if err != nil {
				closeAll()
				return files, nil, err
			}
			go func() { io.Copy(pw, os.Stdin); pw.Close() }()
			files[0] = pr
			toClose = append(toClose, pr)
		}
	}
	return files, closeAll, nil
}

// runscFeatures is what nucleus needs to know about a runsc binary before
// handing it a config that uses seccomp: its version and global flags.
type runscFeatures struct {
	Version string
	Flags   []string
}

// runscInfo asks runsc for its version and flags (`runsc --version`,
// `runsc flags`), cached in nucleus's cache dir per binary (path, size, mtime)
// so a start pays a stat and a small read, not two runsc runs.
func (r *Runtime) runscInfo(runsc string) (*runscFeatures, error) {
	st, err := os.Stat(runsc)
	if err != nil {
		return nil, fmt.Errorf("gvisor engine: runsc %s: %w", runsc, err)
	}
	key := fmt.Sprintf("%s %d %d", runsc, st.Size(), st.ModTime().UnixNano())
	dir, err := cachedir.Sub("")
	if err != nil {
		return nil, fmt.Errorf("gvisor engine: %w", err)
	}
	cache := filepath.Join(dir, "runsc-features.cache")
	if data, err := os.ReadFile(cache); err == nil {
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) >= 2 && lines[0] == key {
			return &runscFeatures{Version: lines[1], Flags: lines[2:]}, nil
		}
	}
	f := &runscFeatures{}
	out, _ := exec.Command(runsc, "--version").CombinedOutput()
	f.Version, _, _ = strings.Cut(strings.TrimSpace(string(out)), "\n")
	out, _ = exec.Command(runsc, "flags").CombinedOutput()
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if name, ok := strings.CutPrefix(line, "-"); ok {
			if fl := strings.Fields(name); len(fl) > 0 {
				f.Flags = append(f.Flags, fl[0])
			}
		}
	}
	if len(f.Flags) == 0 {
		return nil, fmt.Errorf("gvisor engine: %s flags: no flag list (is it runsc?)", runsc)
	}
	{
		tmp := cache + "." + strconv.Itoa(os.Getpid())
		data := key + "\n" + strings.ReplaceAll(f.Version, "\n", " ") + "\n" + strings.Join(f.Flags, "\n") + "\n"
		if os.WriteFile(tmp, []byte(data), 0o600) == nil {
			if os.Rename(tmp, cache) != nil {
				os.Remove(tmp)
			}
		}
	}
	return f, nil
}

// oldRunscSeccompActions are the only seccomp actions runsc releases up to
// 20221219 (Debian 12's) can build a filter from; anything else
// (KILL_PROCESS, KILL_THREAD, LOG, NOTIFY) makes the sandbox fail to start.
var oldRunscSeccompActions = map[specs.LinuxSeccompAction]bool{
	specs.ActAllow: true, specs.ActErrno: true, specs.ActKill: true, specs.ActTrap: true, specs.ActTrace: true,
}

var runscDate = regexp.MustCompile(`(20[0-9]{6})`)

// checkRunscSeccomp refuses a config whose seccomp profile this runsc
// cannot enforce, before anything is created: runsc ignores linux.seccomp
// without --oci-seccomp, and an old runsc rejects newer actions only after
// it has set up a sandbox.
func (r *Runtime) checkRunscSeccomp(runsc string, sc *specs.LinuxSeccomp) error {
	f, err := r.runscInfo(runsc)
	if err != nil {
		return err
	}
	if !slices.Contains(f.Flags, "oci-seccomp") {
		return fmt.Errorf("gvisor engine: runsc at %s (%s) is too old: it has no --oci-seccomp, which the config's linux.seccomp needs to be enforced inside gVisor (refusing to run without it)", runsc, f.Version)
	}
	m := runscDate.FindString(f.Version)
	if m == "" || m > "20221219" {
		return nil // newer (or unknown): runsc reports what it can't do
	}
	bad := func(field string, a specs.LinuxSeccompAction) error {
		return fmt.Errorf("gvisor engine: runsc at %s (%s) is too old for linux.seccomp.%s %s: it enforces only SCMP_ACT_ALLOW, ERRNO, KILL, TRAP and TRACE (refusing rather than running unfiltered)", runsc, f.Version, field, a)
	}
	if !oldRunscSeccompActions[sc.DefaultAction] {
		return bad("defaultAction", sc.DefaultAction)
	}
	for i, rule := range sc.Syscalls {
		if !oldRunscSeccompActions[rule.Action] {
			return bad(fmt.Sprintf("syscalls[%d].action", i), rule.Action)
		}
	}
	return nil
}

// ---- the id-based commands ----

func (r *Runtime) gvisorState(id string) (*State, error) {
	rec, err := r.readGvisorRecord(id)
	if err != nil {
		return nil, err
	}
	st, err := rec.state()
	if err != nil {
		return nil, err
	}
	return rec.toState(st), nil
}

func (r *Runtime) gvisorStartCreated(id string) error {
	rec, err := r.readGvisorRecord(id)
	if err != nil {
		return err
	}
	_, err = rec.output("start", id)
	return err
}

func (r *Runtime) gvisorKill(id string, sig unix.Signal, all bool) error {
	rec, err := r.readGvisorRecord(id)
	if err != nil {
		return err
	}
	args := []string{id, strconv.Itoa(int(sig))}
	if all {
		args = append([]string{"--all"}, args...)
	}
	_, err = rec.output("kill", args...)
	return err
}

func (r *Runtime) gvisorPause(id string, pause bool) error {
	rec, err := r.readGvisorRecord(id)
	if err != nil {
		return err
	}
	sub := "resume"
	if pause {
		sub = "pause"
	}
	_, err = rec.output(sub, id)
	return err
}

func (r *Runtime) gvisorDelete(id string, force bool) error {
	unlock, err := r.lockContainer(id)
	if err != nil {
		if force && errors.Is(err, ErrNotExist) {
			return nil
		}
		return err
	}
	defer unlock()
	rec, err := r.readGvisorRecord(id)
	if err != nil {
		return err
	}
	st, err := rec.state()
	if err != nil {
		return err
	}
	var sandboxPid int
	if st != nil {
		sandboxPid = st.Pid
		args := []string{id}
		switch st.Status {
		case "stopped":
		case "created":
			args = []string{"--force", id}
		default:
			if !force {
				return fmt.Errorf("cannot delete container %s: it is %s (stop it first or use --force)", id, st.Status)
			}
			args = []string{"--force", id}
		}
		if _, err := rec.output("delete", args...); err != nil {
			return err
		}
	}
	waitGone(sandboxPid)
	rec.cleanup(false)
	return nil
}

// waitGone waits (up to 10 s) for a process to exit, so that delete
// returns with the sandbox gone, not merely signalled.
func waitGone(pid int) {
	if pid <= 0 {
		return
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	_, _ = unix.Poll(fds, 10000)
}

func (r *Runtime) gvisorExec(id string, o ExecOptions) (status int, retErr error) {
	switch {
	case o.PreserveFDs > 0:
		return -1, errors.New("--preserve-fds is not supported in a gvisor container")
	case o.PidfdSocket != "":
		return -1, errors.New("--pidfd-socket is not supported in a gvisor container")
	case len(o.SubCgroups) > 0:
		return -1, errors.New("--cgroup is not supported in a gvisor container")
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
		return -1, fmt.Errorf("cannot exec in container %s: it has stopped", id)
	case st.Status == "paused" && !o.IgnorePaused:
		return -1, fmt.Errorf("cannot exec in container %s: it is paused (resume it or pass --ignore-paused)", id)
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
	if o.PidFile, err = absPath(o.PidFile); err != nil {
		return -1, fmt.Errorf("--pid-file: %w", err)
	}
	if o.ConsoleSocket, err = absPath(o.ConsoleSocket); err != nil {
		return -1, fmt.Errorf("--console-socket: %w", err)
	}
	if err := checkTerminal(p.Terminal, o.Detach, o.ConsoleSocket); err != nil {
		return -1, err
	}
	if p.Terminal && !o.Detach {
		return -1, errors.New("--tty without --detach is not supported in a gvisor container; use --detach with --console-socket")
	}
	data, err := json.Marshal(p)
	if err != nil {
		return -1, err
	}
	tag := strconv.Itoa(os.Getpid())
	procFile := filepath.Join(rec.dir, "exec-"+tag+".json")
	ipidFile := filepath.Join(rec.dir, "exec-"+tag+".pid")
	if err := os.WriteFile(procFile, data, 0o600); err != nil {
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

// execFilterName is the compiled filter's file in R/ID.
const execFilterName = "exec-seccomp.bpf"

// execConfinement is what a mode's gVisor container carries for the
// processes exec'd into it later: the filter they load (nil: the mode runs
// without seccomp).
type execConfinement struct {
	filter []byte
}

// gvisorExecConfinement returns the config runsc gets and, for a container
// in an isolation mode, how exec'd processes will be confined. runsc exec
// cannot give a process a seccomp filter or no_new_privs, so the config
// gains two read-only binds: this nucleus binary (the helper) and the
// container's filter compiled to BPF, which the helper loads in gVisor
// before it execs the command. A profile that cannot be compiled here is
// refused: the container's processes would otherwise run unconfined.
func (r *Runtime) gvisorExecConfinement(o CreateOptions) (*specs.Spec, *execConfinement, error) {
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
	ro := []string{"bind", "ro", "nosuid", "nodev"}
	mounts := []specs.Mount{{Destination: confine.Helper, Type: "bind", Source: self, Options: ro}}
	if o.Spec.Linux != nil && o.Spec.Linux.Seccomp != nil {
		sc := o.Spec.Linux.Seccomp
		if c.filter, err = seccomp.Compile(sc); err != nil {
			return nil, nil, fmt.Errorf("--engine gvisor: the %s mode's seccomp profile cannot be compiled for processes exec'd into the container: %w", o.Policy.Mode, err)
		}
		mounts = append(mounts, specs.Mount{Destination: confine.Filter, Type: "bind", Source: filepath.Join(r.stateDir(o.ID), execFilterName), Options: ro})
	}
	s := *o.Spec
	s.Mounts = append(append([]specs.Mount{}, o.Spec.Mounts...), mounts...)
	return &s, c, nil
}

// confineExec gives a process exec'd into a mode's container the
// container's confinement, as the native engine's confineExec does: --cap
// refused, the container's own capabilities whatever the process asks for,
// no_new_privs and the seccomp filter, the last two set by the helper
// inside gVisor because runsc exec cannot.
func (g *gvisorRecord) confineExec(p *specs.Process, o ExecOptions) error {
	if g.Mode == "" {
		return nil
	}
	if len(o.Caps) > 0 {
		return fmt.Errorf("exec --cap: container %s runs in %s mode, which grants no capabilities to exec'd processes", g.id, g.Mode)
	}
	if !g.ExecConfined {
		return fmt.Errorf("cannot exec in container %s: it runs in %s mode but was created without the exec confinement helper (by an older nucleus); refusing to run a process unconfined", g.id, g.Mode)
	}
	s, err := spec.Load(g.dir)
	if err != nil {
		return fmt.Errorf("exec in %s: %w", g.id, err)
	}
	p.Capabilities = s.Process.Capabilities
	p.NoNewPrivileges = true
	p.Args = confine.Args(g.ExecFilter, p.Args)
	return nil
}

// gvisorExecProcess is the container's own process (from the config runsc
// got) with exec's overrides, as the native engine builds it.
func gvisorExecProcess(rec *gvisorRecord, o ExecOptions) (*specs.Process, error) {
	if len(o.Args) == 0 {
		return nil, errors.New("exec: no command given (pass a command after the container id, or --process FILE)")
	}
	return processFromBundle(rec.id, rec.dir, o)
}

// gvisorList lists the gVisor containers under the root, with one `runsc
// list`; nothing runs when no gVisor container was ever created here.
func (r *Runtime) gvisorList() []State {
	if _, err := os.Stat(r.gvisorRoot()); err != nil {
		return nil
	}
	entries, err := os.ReadDir(r.Root)
	if err != nil {
		return nil
	}
	var recs []*gvisorRecord
	for _, e := range entries {
		if !e.IsDir() || spec.ValidateID(e.Name()) != nil {
			continue
		}
		if rec, err := r.readGvisorRecord(e.Name()); err == nil {
			recs = append(recs, rec)
		}
	}
	if len(recs) == 0 {
		return nil
	}
	byID := map[string]*runscState{}
	cmd := exec.Command(recs[0].Runsc, "--root="+r.gvisorRoot(), "list", "--format", "json")
	if out, err := cmd.Output(); err == nil {
		var states []runscState
		if json.Unmarshal(out, &states) == nil {
			for i := range states {
				byID[states[i].ID] = &states[i]
			}
		}
	}
	var out []State
	for _, rec := range recs {
		s := rec.toState(byID[rec.id])
		if info, err := os.Stat(rec.dir); err == nil {
			s.Owner = ownerName(info)
		}
		out = append(out, *s)
	}
	return out
}

// GvisorPs prints `runsc ps` for a gVisor container and reports whether
// id is one (the processes live in gVisor's kernel, not on the host, so
// the host's ps cannot show them).
func (r *Runtime) GvisorPs(id, format string, psArgs []string, w io.Writer) (bool, error) {
	if !r.isGvisor(id) {
		return false, nil
	}
	if len(psArgs) > 0 {
		return true, fmt.Errorf("ps %s: ps options are not supported for a gvisor container", id)
	}
	rec, err := r.readGvisorRecord(id)
	if err != nil {
		return true, err
	}
	out, err := rec.output("ps", "--format", format, id)
	if err != nil {
		return true, err
	}
	_, err = w.Write(out)
	return true, err
}

// ---- export ----

// ExportOptions describe `nucleus export`.
type ExportOptions struct {
	// Bundle is the source bundle, Spec its loaded config.
	Bundle string
	Spec   *specs.Spec
	// Dir receives config.json, rootfs and runsc.flags; it must not exist
	// or be empty.
	Dir string
	// Copy copies the rootfs (cp -a) instead of symlinking it.
	Copy bool
}

// Export writes the bundle the gVisor engine hands to runsc: the same
// config.json byte for byte, a rootfs (symlink to the source rootfs, or a
// copy), and runsc.flags, the global flags nucleus would pass (one a
// line; add --root). It returns those flags.
func Export(o ExportOptions) ([]string, error) {
	if o.Spec == nil {
		return nil, errors.New("export: no config given")
	}
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	config, rootfs, err := GvisorConfig(bundle, o.Spec)
	if err != nil {
		return nil, err
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("export: %s is not empty", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	flags := GvisorFlags(o.Spec)
	if err := os.WriteFile(filepath.Join(dir, spec.ConfigName), config, 0o644); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "runsc.flags"), []byte(strings.Join(flags, "\n")+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	dst := filepath.Join(dir, "rootfs")
	if o.Copy {
		if out, err := exec.Command("cp", "-a", "--reflink=auto", rootfs, dst).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("export: copy %s: %v: %s", rootfs, err, bytes.TrimSpace(out))
		}
	} else if err := os.Symlink(rootfs, dst); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	return flags, nil
}

// gvisorStats is runsc's own `events --stats`, which prints runc's event
// shape from the sandbox's cgroup.
func (r *Runtime) gvisorStats(id string) (*types.Event, error) {
	rec, err := r.readGvisorRecord(id)
	if err != nil {
		return nil, err
	}
	out, err := rec.output("events", "--stats", id)
	if err != nil {
		return nil, err
	}
	var e types.Event
	if err := json.Unmarshal(out, &e); err != nil {
		return nil, fmt.Errorf("gvisor engine: runsc events --stats %s: %w", id, err)
	}
	return &e, nil
}

// gvisorEvents emits a stats event every interval until the container
// stops (runsc's OOM notifications are not relayed).
func (r *Runtime) gvisorEvents(id string, interval time.Duration, emit func(*types.Event) error) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for range tick.C {
		if st, err := r.gvisorState(id); err != nil || st.Status == "stopped" {
			return nil
		}
		e, err := r.gvisorStats(id)
		if err != nil {
			return err
		}
		if err := emit(e); err != nil {
			return err
		}
	}
	return nil
}
