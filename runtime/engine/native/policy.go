package native

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/exeseal"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/nucleus-run/nucleus/mountcheck"
	"github.com/nucleus-run/nucleus/policy"
	"github.com/nucleus-run/nucleus/preexec"
	"github.com/nucleus-run/nucleus/runtime/engine"
	"github.com/nucleus-run/nucleus/seccomp"
	"github.com/nucleus-run/nucleus/spec"
)

// preExecRecord is what the pre-exec step needs, kept in the container's
// state dir so that processes exec'd later get the same confinement.
type preExecRecord struct {
	Mode policy.Mode `json:"mode"`
	// Landlock is nil when the mode runs without the pre-exec step.
	Landlock *policy.LandlockPlan `json:"landlock,omitempty"`
	// Seccomp is the compiled filter to load ("" when libcontainer
	// applies the config's profile itself), SeccompSHA256 its digest
	// when compiled: exec'd processes get the very program the
	// container started with, or none.
	Seccomp       string `json:"seccomp,omitempty"`
	SeccompSHA256 string `json:"seccomp_sha256,omitempty"`
	// OwnedUserNS: the container joined a user namespace nucleus created
	// with an unprivileged owner (package userns). Host root then has no
	// capability in it, so it can't prlimit the container's processes as
	// libcontainer would: the pre-exec step sets Rlimits instead, from
	// inside, for the init and for every exec'd process.
	OwnedUserNS bool                `json:"owned_userns,omitempty"`
	Rlimits     []specs.POSIXRlimit `json:"rlimits,omitempty"`
}

const preExecRecordName = "nucleus-preexec.json"

func (rec preExecRecord) save(stateDir string) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(stateDir, preExecRecordName), data, 0o600); err != nil {
		return fmt.Errorf("record pre-exec step: %w", err)
	}
	return nil
}

// loadPreExecRecord returns the container's record, or nil for a
// container started without an isolation mode.
func loadPreExecRecord(stateDir string) (*preExecRecord, error) {
	data, err := os.ReadFile(filepath.Join(stateDir, preExecRecordName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read pre-exec record: %w", err)
	}
	var rec preExecRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("read pre-exec record: %w", err)
	}
	return &rec, nil
}

// wrapPreExec makes process start through the pre-exec step: this very
// binary as a sealed read-only copy (never a path the container can reach
// or write), handed one record (package preexec) that names the other
// descriptors: the audit log, the compiled filter and, when given, the
// write end of a status pipe. scopeSignals is for the container's init
// only (see preexec.Record.ScopeSignals): an exec'd process must stay able
// to signal the init. reap, when set, is the mode whose name the step's
// reaper (preexec.ReapFlag) prints. It returns the descriptors to close once the process
// has started.
func (r *Engine) wrapPreExec(process *libcontainer.Process, id string, rec preExecRecord, scopeSignals, hold, deferLandlock bool, reap string, auditFile, status, supervisor *os.File) (closers []*os.File, err error) {
	lp := rec.Landlock
	pr := &preexec.Record{
		Strict: lp.Strict, ScopeSignals: scopeSignals, Hold: hold, DeferLandlock: deferLandlock && hold && supervisor != nil, MinABI: lp.MinABI, SelfFd: -1, AuditFd: -1, SeccompFd: -1, StatusFd: -1,
		ID: lp.ContainerID, Posture: lp.Posture, DegradedPosture: rec.Mode.DegradedPosture(),
		Read: lp.Read, Write: lp.Write, Devices: lp.Devices, Exec: lp.Exec, ExecRootExcept: lp.ExecRootExcept,
	}
	// Refuse an oversized policy before anything is opened.
	if err := pr.Check(); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			for _, c := range closers {
				c.Close()
			}
			closers = nil
		}
	}()
	add := func(f *os.File) int {
		process.ExtraFiles = append(process.ExtraFiles, f)
		return 2 + len(process.ExtraFiles)
	}
	self, err := exeseal.CloneSelfExe(r.stateDir(id))
	if err != nil {
		return nil, fmt.Errorf("seal nucleus binary for the Landlock step: %w", err)
	}
	closers = append(closers, self)
	pr.SelfFd = add(self)
	if auditFile != nil {
		pr.AuditFd = add(auditFile)
	}
	if rec.Seccomp != "" {
		if _, err := hex.Decode(pr.SeccompSHA256[:], []byte(rec.SeccompSHA256)); err != nil || len(rec.SeccompSHA256) != 64 {
			return closers, fmt.Errorf("pre-exec record: compiled seccomp filter %s has no valid SHA-256", rec.Seccomp)
		}
		f, err := seccomp.OpenProgram(rec.Seccomp)
		if err != nil {
			return closers, fmt.Errorf("compiled seccomp filter: %w", err)
		}
		closers = append(closers, f)
		pr.SeccompFd = add(f)
	}
	if status != nil {
		pr.StatusFd = add(status)
	}
	recFile, err := pr.File()
	if err != nil {
		return closers, err
	}
	closers = append(closers, recFile)
	recFd := add(recFile)
	args := []string{"/proc/self/fd/" + strconv.Itoa(pr.SelfFd), preexec.Command, preexec.RecordFlag + strconv.Itoa(recFd)}
	if supervisor != nil && hold {
		args = append(args, preexec.SupervisorFlag+strconv.Itoa(add(supervisor)))
	}
	if reap != "" && !hold {
		args = append(args, preexec.ReapFlag+reap)
	}
	for _, rl := range rec.Rlimits {
		t, ok := spec.RlimitNames[rl.Type]
		if !ok {
			return closers, fmt.Errorf("process.rlimits: unknown rlimit %q", rl.Type)
		}
		args = append(args, fmt.Sprintf("%s%d:%d:%d", preexec.RlimitFlag, t, rl.Soft, rl.Hard))
	}
	process.Args = append(append(args, "--"), process.Args...)
	return closers, nil
}

// stepStatus reads what the pre-exec step reported on the status pipe:
// true if it went on degraded. The step writes one byte and closes its
// end before the workload's exec; a step that died wrote nothing.
func stepStatus(rd *os.File) bool {
	defer rd.Close()
	_ = rd.SetReadDeadline(time.Now().Add(2 * time.Second))
	b, _ := io.ReadAll(rd)
	return bytes.Contains(b, []byte{'D'})
}

// runWithPolicy starts a container under an isolation mode: the workload
// runs behind the Landlock pre-exec step, mounts are read back and checked
// before the workload runs, and each step goes to the audit log.
//
// rlimits, when set, are the process's rlimits moved out of the config
// because the container joins a user namespace of its own (ownedUserNS):
// the pre-exec step sets them.
func (r *Engine) runWithPolicy(p *processRunner, o engine.CreateOptions, act action, filter seccomp.Program, owned bool, rlimits []specs.POSIXRlimit) (int, error) {
	c := p.container
	plan, audit := o.Policy, o.Audit
	started := time.Now()
	if o.Hold && plan.Landlock == nil {
		p.destroy()
		return -1, fmt.Errorf("container %s: a held init runs in the Landlock pre-exec step, which this container does not have (%w); give it a command", o.ID, engine.ErrUnsupported)
	}
	if plan.UserNS {
		// Container root cannot create mount points in a rootfs owned by
		// host root; make the ones the mode adds, as host root, now.
		if err := ensureMountpoints(c.Config().Rootfs, o.Spec); err != nil {
			p.destroy()
			return -1, err
		}
	}
	var closers []*os.File
	// The pre-exec step reports on a pipe whether it lost Landlock, so
	// that the events logged after it (container_exited) carry the
	// degraded posture its own events carry. Only a caller that waits
	// for the workload is still there to read it.
	var statusRd, statusWr *os.File
	if audit != nil && act == actRun && !o.Detach && plan.Landlock != nil {
		var err error
		if statusRd, statusWr, err = os.Pipe(); err != nil {
			p.destroy()
			return -1, fmt.Errorf("pre-exec status pipe: %w", err)
		}
		defer statusRd.Close()
		closers = append(closers, statusWr)
	}
	p.beforeStart = func(process *libcontainer.Process) error {
		audit.PlanEvents(o.Bundle, plan, nil, func(st policy.Step, _ map[string]any) bool {
			// The pre-exec step logs Landlock's outcome itself.
			return st.Name != "landlock_applied" || !st.Applied
		})
		// Processes exec'd into this container later get the same
		// confinement from this record.
		rec := preExecRecord{Mode: plan.Mode, OwnedUserNS: owned, Rlimits: rlimits}
		if filter.Path != "" {
			rec.Seccomp, rec.SeccompSHA256 = filter.Path, hex.EncodeToString(filter.Sum[:])
		}
		if plan.Landlock != nil {
			lp := *plan.Landlock
			lp.ContainerID, lp.Posture = o.ID, plan.Posture()
			rec.Landlock = &lp
			// Scoped signals: the workload can't signal (stop,
			// kill) the processes exec'd into the container later.
			// A detached container's init stays as the workload's
			// parent, to say on its stderr (the CRI log) when
			// seccomp killed it: no nucleus process waits to. Only
			// under the mode's own allowlist, which has the few
			// syscalls the parent makes under it; a user's profile
			// might not.
			var reap string
			if (act == actCreate || o.Detach) && filter.Path != "" && !plan.SeccompCustom {
				reap = string(plan.Mode)
			}
			c, err := r.wrapPreExec(process, o.ID, rec, true, o.Hold, o.DeferLandlock, reap, audit.File(), statusWr, o.Supervisor)
			closers = append(closers, c...)
			if err != nil {
				return err
			}
		}
		return rec.save(r.stateDir(o.ID))
	}
	p.afterStart = func(process *libcontainer.Process) {
		for _, c := range closers {
			c.Close()
		}
	}
	start := func(process *libcontainer.Process) error {
		if err := c.Start(process); err != nil {
			return err
		}
		pid, err := process.Pid()
		if err != nil {
			return err
		}
		if err := auditMounts(pid, o, audit); err != nil {
			if plan.Mode.Strict() {
				// The init waits to exec the workload: end it, or
				// the caller waits on its stdio forever.
				terminate(process)
				return err
			}
			logrus.Warn(err)
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
		audit.Event("container_started", nil)
		if err := applyDeferredRlimits(r.stateDir(o.ID), c); err != nil {
			return err
		}
		poststart := poststartHooks(r.stateDir(o.ID), c)
		if err := c.Exec(); err != nil {
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
	status, err := p.run(o.Spec.Process, start)
	if err != nil {
		audit.Event("container_failed", map[string]any{"error": err.Error()})
		return status, err
	}
	if act == actRun && !o.Detach {
		if statusRd != nil && stepStatus(statusRd) {
			audit.SetPosture(plan.Mode.DegradedPosture())
		}
		audit.Event("container_exited", map[string]any{"status": status, "duration_ms": time.Since(started).Milliseconds()})
	}
	return status, nil
}

// auditMounts reads the container's mounts back from the kernel and
// checks that every flag the config planned holds (package mountcheck).
// It runs while the process waits to exec the workload.
func auditMounts(pid int, o engine.CreateOptions, audit *policy.Audit) error {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		return fmt.Errorf("mount audit: %w", err)
	}
	mounts := mountcheck.Parse(string(data))
	found := mountcheck.Check(mounts, o.Spec)
	problems := make([]string, len(found))
	failed := make([]string, len(found))
	for i, p := range found {
		problems[i], failed[i] = p.String(), p.Mount
	}
	fields := map[string]any{"passed": len(found) == 0, "mounts": len(mounts), "problems": problems}
	if len(found) > 0 {
		fields["failed_mounts"] = failed
	}
	audit.Event("mount_audit", fields)
	if len(found) > 0 {
		return fmt.Errorf("mount audit failed: %s", strings.Join(problems, "; "))
	}
	return nil
}

// unescapeMountinfo decodes mountinfo's octal escapes.
func unescapeMountinfo(p string) string { return mountcheck.Unescape(p) }

// ensureMountpoints creates missing directories for the config's mounts in
// the (staged) rootfs, resolving every component inside it.
func ensureMountpoints(rootfs string, s *specs.Spec) error {
	for _, m := range s.Mounts {
		dest := filepath.Clean("/" + m.Destination)
		if _, err := os.Lstat(filepath.Join(rootfs, dest)); err == nil {
			continue
		}
		if fi, err := os.Stat(m.Source); err == nil && !fi.IsDir() && m.Type == "bind" {
			if err := mkfileIn(rootfs, dest); err != nil {
				return fmt.Errorf("create mount point %s in %s: %w", m.Destination, rootfs, err)
			}
			continue
		}
		if err := pathrs.MkdirAll(rootfs, dest, 0o755); err != nil {
			return fmt.Errorf("create mount point %s in %s: %w", m.Destination, rootfs, err)
		}
	}
	return nil
}

// mkfileIn creates the empty file dest (a file bind's mount point, such
// as /etc/resolv.conf) in rootfs, its directories resolved inside it.
func mkfileIn(rootfs, dest string) error {
	root, err := os.OpenFile(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer root.Close()
	dir, err := pathrs.MkdirAllHandle(root, filepath.Dir(dest), 0o755)
	if err != nil {
		return err
	}
	defer dir.Close()
	fd, err := unix.Openat(int(dir.Fd()), filepath.Base(dest), unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

// confineExec gives a process exec'd into a container started under an
// isolation mode the container's own confinement: its (empty or policy-kept)
// capabilities instead of the bundle's, no_new_privs, and the pre-exec step
// with the same Landlock rules and seccomp filter, in a Landlock domain of
// its own that the init's scoped signals can't reach.
func (r *Engine) confineExec(id string, p *specs.Process, o engine.ExecOptions, runner *processRunner) error {
	rec, err := loadPreExecRecord(r.stateDir(id))
	if err != nil || rec == nil {
		return err
	}
	if len(o.Caps) > 0 {
		return fmt.Errorf("exec --cap: container %s runs in %s mode, which grants no capabilities to exec'd processes", id, rec.Mode)
	}
	p.Capabilities = nil // libcontainer then uses the container's own
	p.NoNewPrivileges = true
	runner.noTerminal = true
	if rec.Landlock == nil {
		return nil
	}
	if rec.OwnedUserNS {
		// The exec'd process's own rlimits, else the container's: set by
		// the pre-exec step (see preExecRecord.OwnedUserNS).
		if len(p.Rlimits) > 0 {
			rec.Rlimits = p.Rlimits
		}
		p.Rlimits = nil
	}
	var closers []*os.File
	runner.beforeStart = func(process *libcontainer.Process) error {
		var err error
		// Not scoped: `nucleus exec ID kill -TERM 1` must reach the init.
		closers, err = r.wrapPreExec(process, id, *rec, false, false, false, "", nil, nil, nil)
		return err
	}
	runner.afterStart = func(*libcontainer.Process) {
		for _, c := range closers {
			c.Close()
		}
	}
	return nil
}

// SeccompInUse returns the compiled seccomp programs (cache paths) that the
// containers under the state root were started with: their later execs
// load the same program again, so a cache prune must keep it.
func SeccompInUse(root string) (map[string]bool, error) {
	inUse := map[string]bool{}
	entries, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return inUse, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state root %s: %w", root, err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		rec, err := loadPreExecRecord(filepath.Join(root, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("container %s: %w", e.Name(), err)
		}
		if rec != nil && rec.Seccomp != "" {
			inUse[rec.Seccomp] = true
		}
	}
	return inUse, nil
}
