package gvisor

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/runc/types"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/nucleus-run/nucleus/network"
	"github.com/nucleus-run/nucleus/opterr"
	"github.com/nucleus-run/nucleus/policy"
	"github.com/nucleus-run/nucleus/runtime/confine"
	"github.com/nucleus-run/nucleus/runtime/engine"
	"github.com/nucleus-run/nucleus/spec"
)

// start creates (and with actRun starts) a container under runsc: the
// bundle runsc gets is written under the state dir first, so the id is
// reserved for both engines, and every failure removes what was made.
func (r *Engine) start(o engine.CreateOptions, act action) (status int, retErr error) {
	if err := spec.ValidateID(o.ID); err != nil {
		return -1, err
	}
	if o.Spec == nil || o.Spec.Process == nil {
		return -1, errors.New("no config given")
	}
	detach := o.Detach || act == actCreate
	switch {
	case o.Hold:
		return -1, opterr.Errorf("engine", "gvisor: a held init (a long-lived sandbox without a command) runs in the native engine's pre-exec step; give the sandbox a command: %w", engine.ErrUnsupported)
	case o.Stdio != nil && !(detach && stdioFiles(o.Stdio)):
		return -1, opterr.Errorf("engine", "gvisor: streams other than nucleus's own stdio: %w", engine.ErrUnsupported)
	case os.Geteuid() != 0:
		return -1, opterr.Errorf("engine", "gvisor: needs root (nucleus does not drive rootless runsc)")
	case o.Policy != nil && (o.Policy.Landlock != nil || o.Policy.UserNS):
		// A plan made for the native engine: its Landlock pre-exec step
		// (the sealed nucleus binary as an extra fd) and user namespace
		// mapping are never handed to runsc.
		return -1, fmt.Errorf("--engine gvisor: the %s policy plan was made for the native engine (Landlock pre-exec step or user namespace); it must be made with policy.Options.Gvisor", o.Policy.Mode)
	case o.PreserveFDs > 0:
		return -1, &engine.OptionError{Option: "preserve-fds", Msg: "not supported by the gvisor engine (runsc gets only stdio)", Err: engine.ErrUnsupported}
	case o.PidfdSocket != "":
		return -1, &engine.OptionError{Option: "pidfd-socket", Msg: "not supported by the gvisor engine (the container's processes live in gVisor's kernel)", Err: engine.ErrUnsupported}
	case o.Keep && !detach:
		return -1, &engine.OptionError{Option: "keep", Msg: "not supported by the gvisor engine (runsc run removes the container); use create + start", Err: engine.ErrUnsupported}
	case o.Spec.Process.Terminal && !detach:
		return -1, fmt.Errorf("the gvisor engine: process.terminal with an attached run: %w; use --detach with --console-socket", engine.ErrUnsupported)
	}
	var err error
	if err := engine.CheckTerminal(o.Spec.Process.Terminal, detach, o.ConsoleSocket); err != nil {
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
	bridged := o.Network != nil && o.Network.Mode == network.ModeBridge
	if bridged {
		// runsc runs with the host's network stack (--network=host)
		// inside a namespace nucleus made and attached, whose veth the
		// firewall guards as any container's.
		resolv, err := network.WriteResolvConf(r.Root, o.ID)
		if err != nil {
			return -1, err
		}
		o.Spec = hostNetwork(o.Spec, resolv)
	} else if o.Network != nil {
		o.Spec = engine.WithNetMode(o.Spec, o.Network.Mode)
	}
	cfg, confinement, err := r.execConfinement(o)
	if err != nil {
		return -1, err
	}
	config, rootfs, err := GvisorConfig(bundle, cfg)
	if err != nil {
		return -1, err
	}
	flags := append([]string{"--root=" + r.runscRootDir()}, GvisorFlags(o.Spec)...)
	if r.SystemdCgroup {
		flags = append(flags, "--systemd-cgroup")
	}
	if o.Spec.Linux != nil && o.Spec.Linux.Seccomp != nil {
		if err := r.checkRunscSeccomp(runsc, o.Spec.Linux.Seccomp); err != nil {
			return -1, err
		}
	}
	var unlockStaging func()
	if o.Policy != nil && o.Policy.Mode != "" {
		// As on the native engine: runsc's gofer makes mount points (the
		// workspace's, the exec helper's) in the staged upper layer, never
		// in the user's bundle.
		staged, release, unlock, err := engine.StageRootfs(r.Root, o.ID, rootfs)
		if err != nil {
			return -1, err
		}
		// Held until R/ID reserves the id (or the create fails).
		unlockStaging = unlock
		defer func() {
			if unlockStaging != nil {
				unlockStaging()
			}
		}()
		defer func() {
			if retErr != nil {
				release()
			}
		}()
		rootfs = staged
	}
	started := time.Now()
	rec := &gvisorRecord{Runsc: runsc, Flags: flags, Bundle: bundle, Rootfs: rootfs, Created: time.Now().UTC(), OCIVersion: o.Spec.Version, id: o.ID, dir: engine.StateDir(r.Root, o.ID)}
	if confinement != nil {
		rec.Mode, rec.ExecConfined = o.Policy.Mode, true
		if confinement.filter != nil {
			sum := sha256.Sum256(confinement.filter)
			rec.ExecFilter, rec.ExecFilterSHA256 = confine.Filter, hex.EncodeToString(sum[:])
		}
	}
	if err := r.writeGvisorBundle(rec, config); err != nil {
		return -1, err
	}
	if unlockStaging != nil {
		unlockStaging()
		unlockStaging = nil
	}
	defer func() {
		if retErr != nil {
			o.Audit.Event("container_failed", map[string]any{"error": retErr.Error(), "engine": string(engine.Gvisor)})
			rec.cleanup(true)
		}
	}()
	if confinement != nil {
		// The mounts' source; written before runsc runs, removed with R/ID.
		if err := writeConfineDir(rec.dir, confinement); err != nil {
			return -1, fmt.Errorf("create %s: exec confinement: %w", o.ID, err)
		}
	}
	auditPlan(o, rec)
	stdio, closeStdio, err := runscStdio(!detach)
	if err != nil {
		return -1, err
	}
	defer closeStdio()
	if o.Stdio != nil {
		// Files (checked above), handed to runsc as they are.
		stdio = [3]*os.File{o.Stdio.In.(*os.File), o.Stdio.Out.(*os.File), o.Stdio.Err.(*os.File)}
	}
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
	if bridged {
		nsPath, err := network.PrepareNetNS(r.Root, o.ID)
		if err != nil {
			return -1, err
		}
		if _, err := network.AttachPath(r.Root, o.ID, o.Network, nsPath, o.Audit); err != nil {
			return -1, err
		}
		if cmd, err = inNetNS(cmd, nsPath); err != nil {
			return -1, err
		}
	}
	defer privateNull(rec.dir, &stdio)()
	defer keepOwners(stdio)()
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
func auditPlan(o engine.CreateOptions, rec *gvisorRecord) {
	plan := o.Policy
	if plan == nil || plan.Mode == "" {
		return
	}
	o.Audit.PlanEvents(o.Bundle, plan, map[string]any{"engine": string(engine.Gvisor)}, func(st policy.Step, fields map[string]any) bool {
		if st.Name == "seccomp_applied" {
			fields["enforced_by"] = "gvisor (runsc --oci-seccomp)"
			// runsc applies the profile to the container's process only;
			// say how exec'd processes get it.
			if rec.ExecFilter != "" {
				fields["exec"] = "exec'd processes load the same filter, with no_new_privs and no added capabilities, through nucleus " + confine.Command + " inside gVisor"
			}
		}
		return true
	})
}

// State is runsc's state of the container, in runc's shape.
func (r *Engine) State(id string) (*engine.State, error) {
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

// Start runs the created container's process.
func (r *Engine) Start(id string) error {
	rec, err := r.readGvisorRecord(id)
	if err != nil {
		return err
	}
	switch rec.status() {
	case "running":
		return fmt.Errorf("cannot start container %s: %w", id, engine.ErrRunning)
	case "paused":
		return fmt.Errorf("cannot start container %s: %w", id, engine.ErrPaused)
	case "stopped":
		return fmt.Errorf("cannot start container %s: %w", id, engine.ErrStopped)
	}
	_, err = rec.output("start", id)
	return err
}

// Kill signals the container's init (with all, every process) through
// runsc.
func (r *Engine) Kill(id string, sig unix.Signal, all bool) error {
	rec, err := r.readGvisorRecord(id)
	if err != nil {
		return err
	}
	if !all && rec.status() == "stopped" {
		return fmt.Errorf("kill %s: %w", id, engine.ErrNotRunning)
	}
	args := []string{id, strconv.Itoa(int(sig))}
	if all {
		args = append([]string{"--all"}, args...)
	}
	_, err = rec.output("kill", args...)
	return err
}

// pause freezes (or thaws) the sandbox.
func (r *Engine) pause(id string, pause bool) error {
	rec, err := r.readGvisorRecord(id)
	if err != nil {
		return err
	}
	sub := "resume"
	if pause {
		sub = "pause"
	}
	switch status := rec.status(); {
	case pause && status != "running":
		return fmt.Errorf("pause %s: %w", id, engine.ErrNotRunning)
	case !pause && status != "paused":
		return fmt.Errorf("resume %s: %w", id, engine.ErrNotPaused)
	}
	_, err = rec.output(sub, id)
	return err
}

// Delete removes the container and its runsc sandbox; with force, a
// running one too.
func (r *Engine) Delete(id string, force bool) error {
	unlock, err := engine.Lock(r.Root, id)
	if err != nil {
		if force && errors.Is(err, engine.ErrNotExist) {
			if r.runscHolds(id) {
				// The state dir is gone, runsc's sandbox is not.
				r.reclaim(id)
			}
			return nil
		}
		return err
	}
	defer unlock()
	rec, err := r.readGvisorRecord(id)
	if err != nil {
		if force && errors.Is(err, engine.ErrBrokenState) {
			logrus.Warnf("%v; removing the container", err)
			r.reclaim(id)
			return nil
		}
		return err
	}
	st, err := rec.state()
	if err != nil {
		if !force {
			return err
		}
		// runsc cannot say (removed, or broken): a forced delete still
		// removes what nucleus made.
		logrus.Warnf("delete %s: runsc state: %v; removing the container's files", id, err)
		rec.cleanup(true)
		return nil
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
				class := engine.ErrRunning
				if st.Status == "paused" {
					class = engine.ErrPaused
				}
				return fmt.Errorf("cannot delete container %s: %w (stop it first or use --force)", id, class)
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

// reclaim removes a container whose record is lost or broken: runsc's
// sandbox (its processes, cgroups and state, through runsc delete
// --force, which needs only runsc's root), the rootfs staging, R/ID.
func (r *Engine) reclaim(id string) {
	rec := r.reclaimRecord(id)
	var pid int
	if rec.Runsc != "" {
		if st, err := rec.state(); err == nil && st != nil {
			pid = st.Pid
		}
	}
	rec.cleanup(true)
	waitGone(pid)
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

// List lists the gVisor containers under the root, with one `runsc
// list`; nothing runs when no gVisor container was ever created here. A
// container whose record is broken, or whose state dir is gone while
// runsc holds it, is listed with StatusUnknown and the reason.
func (r *Engine) List() ([]engine.State, error) {
	if _, err := os.Stat(r.runscRootDir()); err != nil {
		return nil, nil
	}
	entries, err := os.ReadDir(r.Root)
	if err != nil {
		return nil, nil
	}
	var recs []*gvisorRecord
	var broken []engine.State
	for _, e := range entries {
		if !e.IsDir() || spec.ValidateID(e.Name()) != nil {
			continue
		}
		rec, err := r.readGvisorRecord(e.Name())
		if err == nil {
			recs = append(recs, rec)
			continue
		}
		if !errors.Is(err, engine.ErrBrokenState) || locked(engine.StateDir(r.Root, e.Name())) {
			continue // not gVisor's, or a delete is removing it
		}
		s := engine.State{ID: e.Name(), Status: engine.StatusUnknown, Error: err.Error(), Annotations: map[string]string{engine.Annotation: string(engine.Gvisor)}}
		if info, err := e.Info(); err == nil {
			s.Created, s.Owner = info.ModTime().UTC(), engine.OwnerName(info)
		}
		broken = append(broken, s)
	}
	broken = append(broken, r.orphans()...)
	if len(recs) == 0 {
		return broken, nil
	}
	byID := map[string]*runscState{}
	cmd := exec.Command(recs[0].Runsc, "--root="+r.runscRootDir(), "list", "--format", "json")
	if out, err := cmd.Output(); err == nil {
		var states []runscState
		if json.Unmarshal(out, &states) == nil {
			for i := range states {
				byID[states[i].ID] = &states[i]
			}
		}
	}
	var out []engine.State
	for _, rec := range recs {
		s := rec.toState(byID[rec.id])
		if info, err := os.Stat(rec.dir); err == nil {
			s.Owner = engine.OwnerName(info)
		}
		out = append(out, *s)
	}
	return append(out, broken...), nil
}

// orphans are the ids runsc holds under the root whose state dir is gone.
func (r *Engine) orphans() []engine.State {
	entries, _ := os.ReadDir(r.runscRootDir())
	var out []engine.State
	for _, e := range entries {
		id, rest, ok := strings.Cut(e.Name(), "_sandbox:")
		if !ok || rest != id+".state" || spec.ValidateID(id) != nil {
			continue
		}
		if _, err := os.Lstat(engine.StateDir(r.Root, id)); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		s := engine.State{ID: id, Status: engine.StatusUnknown, Annotations: map[string]string{engine.Annotation: string(engine.Gvisor)},
			Error: fmt.Sprintf("container %s: state dir %s: %v, while runsc holds the container (nucleus delete --force %s removes it)", id, engine.StateDir(r.Root, id), fs.ErrNotExist, id)}
		if info, err := e.Info(); err == nil {
			s.Created = info.ModTime().UTC()
		}
		out = append(out, s)
	}
	return out
}

// locked reports whether another process holds dir's flock (a delete).
func locked(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return true
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return true
	}
	_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return false
}

// Ps prints `runsc ps` for a gVisor container: its processes live in
// gVisor's kernel, not on the host, so host ps options do not apply.
func (r *Engine) Ps(id string, o engine.PsOptions, w io.Writer) error {
	if len(o.Args) > 0 {
		return fmt.Errorf("ps %s: ps options for a gvisor container: %w", id, engine.ErrUnsupported)
	}
	rec, err := r.readGvisorRecord(id)
	if err != nil {
		return err
	}
	out, err := rec.output("ps", "--format", o.Format, id)
	if err != nil {
		return err
	}
	_, err = w.Write(out)
	return err
}

// Stats is runsc's own `events --stats`, which prints runc's event
// shape from the sandbox's cgroup.
func (r *Engine) Stats(id string) (*types.Event, error) {
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

// Events emits a stats event every interval until the container
// stops (runsc's OOM notifications are not relayed).
func (r *Engine) Events(id string, interval time.Duration, emit func(*types.Event) error) error {
	if interval <= 0 {
		return errors.New("duration interval must be greater than 0")
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for range tick.C {
		if st, err := r.State(id); err != nil || st.Status == "stopped" {
			return nil
		}
		e, err := r.Stats(id)
		if err != nil {
			return err
		}
		if err := emit(e); err != nil {
			return err
		}
	}
	return nil
}

// stdioFiles reports whether every stream of s is a file, which a
// detached runsc can be handed.
func stdioFiles(s *engine.Stdio) bool {
	_, in := s.In.(*os.File)
	_, out := s.Out.(*os.File)
	_, errOut := s.Err.(*os.File)
	return in && out && errOut
}

// hostNetwork is s without a network namespace (runsc then takes the one
// it runs in) and with resolv at /etc/resolv.conf.
func hostNetwork(s *specs.Spec, resolv string) *specs.Spec {
	out := engine.WithNetMode(s, "host")
	out.Mounts = append(slices.Clone(out.Mounts), specs.Mount{Destination: "/etc/resolv.conf", Type: "bind", Source: resolv,
		Options: []string{"rbind", "ro", "nosuid", "nodev", "noexec"}})
	return out
}

// inNetNS runs cmd in the network namespace at nsPath, through nsenter
// (which execs it: the process is still runsc's).
func inNetNS(cmd *exec.Cmd, nsPath string) (*exec.Cmd, error) {
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		return nil, fmt.Errorf("the gvisor engine with --net bridge needs nsenter (util-linux): %w", err)
	}
	out := exec.Command(nsenter, append([]string{"--net=" + nsPath, "--", cmd.Path}, cmd.Args[1:]...)...)
	out.Env = cmd.Env
	return out, nil
}
