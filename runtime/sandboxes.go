package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/nucleus-run/nucleus/network/firewall"
	"github.com/nucleus-run/nucleus/policy"
	"github.com/nucleus-run/nucleus/preexec"
	"github.com/nucleus-run/nucleus/runtime/engine"
	"github.com/nucleus-run/nucleus/spec"
	"github.com/nucleus-run/nucleus/supervise"
	"github.com/nucleus-run/nucleus/workspace"
)

// A long-lived sandbox is a container started in a mode plus a record,
// <root>/@sandbox-<id>/sandbox.json, of what its later commands need: the
// process defaults `exec` applies, the copy-in-out workspaces `delete`
// writes back, and its deadline. No daemon watches it: its own init exits
// at the deadline, and the next command that lists the root removes it.

// sandboxRecordName is the record inside <root>/@sandbox-<id>.
const sandboxRecordName = "sandbox.json"

// errSandboxRecord: a sandbox's record can't be read (a full disk cut it
// short); a forced delete removes the sandbox without it.
var errSandboxRecord = errors.New("unreadable")

type sandboxRecord struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	// Deadline is when the sandbox expires (zero: never).
	Deadline time.Time `json:"deadline,omitempty"`
	Env      []string  `json:"env,omitempty"`
	Cwd      string    `json:"cwd,omitempty"`
	User     string    `json:"user,omitempty"`
	// Workspaces are the copy-in-out copies to write back on delete.
	Workspaces []workspace.Saved `json:"workspaces,omitempty"`
	AuditLog   string            `json:"audit_log,omitempty"`
	Posture    string            `json:"posture,omitempty"`
	// Supervised: the held init serves exec on supervisor.sock (package
	// supervise), running commands as UID:GID (the sandbox's user) with
	// ProcessEnv (the started process's whole environment) under them.
	Supervised bool     `json:"supervised,omitempty"`
	UID        uint32   `json:"uid,omitempty"`
	GID        uint32   `json:"gid,omitempty"`
	ProcessEnv []string `json:"process_env,omitempty"`
	// Pool is the warm pool the sandbox was made for; WorkspaceExec says
	// its placeholder workspace may be executed from (its Landlock rules
	// allow it), so a workspace bound over it is not mounted noexec.
	Pool          string `json:"pool,omitempty"`
	WorkspaceExec bool   `json:"workspace_exec,omitempty"`
	// HostUID and HostGID own the pipes of a supervised command.
	HostUID uint32 `json:"host_uid,omitempty"`
	HostGID uint32 `json:"host_gid,omitempty"`
}

func (r *Runtime) sandboxDir(id string) string {
	return filepath.Join(r.Root, engine.SandboxPrefix+id)
}

// StartSandbox starts a long-lived sandbox and returns its id: its command
// (o.Args, or the config's) runs detached, or, with no command given, an
// init that holds the sandbox open for `nucleus exec` (native engine). Its
// stdout and stderr go to <root>/@sandbox-<id>/init.log.
func (r *Runtime) StartSandbox(o SandboxOptions) (string, error) {
	if !o.Detach {
		return "", errors.New("sandbox: StartSandbox starts a detached sandbox (Detach)")
	}
	if o.Tty {
		return "", &OptionError{Option: "tty", Msg: "a detached sandbox has no terminal; use nucleus exec -t ID CMD"}
	}
	if o.Timeout > 0 {
		return "", &OptionError{Option: "timeout", Msg: "applies to a one-shot sandbox; a detached one takes --ttl"}
	}
	if o.TTL < 0 {
		return "", &OptionError{Option: "ttl", Msg: fmt.Sprintf("%s: want a positive duration", o.TTL)}
	}
	r.SweepSandboxes()
	hold := len(o.Args) == 0
	if hold {
		o.Args = []string{preexec.HoldCommand, strconv.FormatInt(int64((o.TTL+time.Second-1)/time.Second), 10)}
	}
	st, err := r.setupSandbox(o)
	if err != nil {
		if st != nil && st.copyRoot != "" {
			r.removeWorkspaceCopies(st.o.ID)
		}
		return "", err
	}
	defer st.close()
	o = st.o
	rec := sandboxRecord{ID: o.ID, Created: time.Now().UTC(), Env: o.Env, Cwd: st.spec.Process.Cwd, User: o.User, AuditLog: o.AuditLog, Posture: st.plan.Posture()}
	// Only a held init in a mode with the pre-exec step supervises, and
	// only under the built-in seccomp allowlist, which allows what the
	// supervisor calls (a pinned profile of the user's may not: its held
	// init then only holds, and exec is runc-style).
	supervised := hold && o.Engine != EngineGvisor && st.plan.Landlock != nil && o.Policy.Seccomp == nil
	if supervised {
		rec.Supervised = true
		rec.UID, rec.GID = st.spec.Process.User.UID, st.spec.Process.User.GID
		rec.ProcessEnv = st.spec.Process.Env
		hu, hg, err := workloadHostIDs(st.spec, st.plan)
		if err != nil {
			if st.copyRoot != "" {
				r.removeWorkspaceCopies(o.ID)
			}
			return "", err
		}
		rec.HostUID, rec.HostGID = uint32(hu), uint32(hg)
	}
	if o.TTL > 0 {
		rec.Deadline = rec.Created.Add(o.TTL)
	}
	rec.Pool = o.Pool
	if o.Pool != "" {
		for _, w := range o.Policy.Workspaces {
			if w.Dest == PoolWorkspace {
				rec.WorkspaceExec = w.Exec
			}
		}
	}
	for _, c := range st.copies {
		if o.Pool == "" {
			rec.Workspaces = append(rec.Workspaces, c.Save())
		}
	}
	dir := r.sandboxDir(o.ID)
	cleanup := func() {
		os.RemoveAll(dir)
		if st.copyRoot != "" {
			r.removeWorkspaceCopies(o.ID)
		}
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			err = fmt.Errorf("sandbox %s %w under %s (nucleus delete %s removes it)", o.ID, ErrExist, r.Root, o.ID)
		} else {
			err = fmt.Errorf("sandbox %s: %w", o.ID, err)
		}
		if st.copyRoot != "" {
			r.removeWorkspaceCopies(o.ID)
		}
		return "", err
	}
	if err := writeJSONFile(filepath.Join(dir, sandboxRecordName), rec); err != nil {
		cleanup()
		return "", err
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		cleanup()
		return "", err
	}
	defer null.Close()
	log, err := os.OpenFile(filepath.Join(dir, "init.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		cleanup()
		return "", fmt.Errorf("sandbox %s: %w", o.ID, err)
	}
	defer log.Close()
	var sock *os.File
	if supervised {
		if sock, err = supervise.Listen(filepath.Join(dir, supervise.SocketName)); err != nil {
			cleanup()
			return "", err
		}
		defer sock.Close()
	}
	_, err = r.Run(CreateOptions{
		ID: o.ID, Bundle: o.Bundle, Spec: st.spec, Policy: st.plan, Audit: st.audit, Engine: o.Engine, Network: o.network(),
		Detach: true, Hold: hold, Stage: true, Stdio: &Stdio{In: null, Out: log, Err: log}, Supervisor: sock,
		DeferLandlock: o.Pool != "",
	})
	if err != nil {
		cleanup()
		return "", err
	}
	if supervised {
		if err := r.writeExecDefaults(&rec); err != nil {
			logrus.Warnf("sandbox %s: %v (exec takes the slower path)", o.ID, err)
		}
	}
	return o.ID, nil
}

// IsSandbox reports whether id is a long-lived sandbox.
func (r *Runtime) IsSandbox(id string) bool {
	if spec.ValidateID(id) != nil {
		return false
	}
	_, err := os.Lstat(filepath.Join(r.sandboxDir(id), sandboxRecordName))
	return err == nil
}

func (r *Runtime) loadSandbox(id string) (*sandboxRecord, error) {
	if err := spec.ValidateID(id); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(r.sandboxDir(id), sandboxRecordName))
	if err != nil {
		return nil, err
	}
	var rec sandboxRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("sandbox %s: record %s: %w: %w", id, filepath.Join(r.sandboxDir(id), sandboxRecordName), errSandboxRecord, err)
	}
	return &rec, nil
}

// removeSandbox ends the long-lived sandbox id: it kills what still runs,
// writes its copy-in-out workspaces back and removes the container, the
// copies and the record. A write-back error is returned after everything
// else was removed, as a one-shot sandbox reports it.
func (r *Runtime) removeSandbox(id string) error {
	dir := r.sandboxDir(id)
	lock, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sandbox %s: %w", id, ErrNotExist)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("lock sandbox %s: %w", id, err)
	}
	rec, err := r.loadSandbox(id)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("sandbox %s: %w", id, ErrNotExist) // removed by another command meanwhile
	}
	if err != nil {
		return err
	}
	if err := r.engineFor(id).Delete(id, true); err != nil && !errors.Is(err, ErrNotExist) {
		return err
	}
	if err := r.releaseNetwork(id); err != nil {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	var audit *policy.Audit
	if rec.AuditLog != "" {
		if audit, err = policy.OpenAudit(rec.AuditLog, id, rec.Posture, false); err != nil {
			logrus.Warnf("sandbox %s: %v", id, err)
		}
	}
	var copies []*workspace.Copy
	for _, s := range rec.Workspaces {
		copies = append(copies, workspace.Resume(s, workspaceDropped(audit)))
	}
	backErr := copyBack(copies, audit)
	audit.Event("sandbox_removed", nil)
	audit.Close()
	if err := r.removeWorkspaceCopies(id); err != nil {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	return backErr
}

// SweepSandboxes removes every long-lived sandbox past its deadline (with
// its write-back) and returns what failed. Commands that list the root
// call it, so no daemon is needed to enforce a TTL.
func (r *Runtime) SweepSandboxes() []error {
	return r.sweep(false)
}

// Gc removes expired long-lived sandboxes and those whose command has
// exited, writing their workspaces back, and returns the ids removed.
func (r *Runtime) Gc() ([]string, error) {
	var removed []string
	errs := r.sweepWith(true, func(id string) { removed = append(removed, id) })
	// Published ports of containers killed without a delete would go
	// to whoever gets their address next.
	if err := firewall.SweepStale(); err != nil {
		logrus.Warnf("gc: stale published ports: %v", err)
	}
	return removed, errors.Join(errs...)
}

func (r *Runtime) sweep(stopped bool) []error { return r.sweepWith(stopped, nil) }

func (r *Runtime) sweepWith(stopped bool, done func(string)) []error {
	entries, err := os.ReadDir(r.Root)
	if err != nil {
		return nil
	}
	now := time.Now()
	var errs []error
	for _, e := range entries {
		if id, ok := strings.CutPrefix(e.Name(), engine.OneShotPrefix); ok && !e.IsDir() {
			if err := r.sweepOneShot(id, done); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		id, ok := strings.CutPrefix(e.Name(), engine.SandboxPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		rec, err := r.loadSandbox(id)
		if err != nil {
			continue // being created, or being removed
		}
		expired := !rec.Deadline.IsZero() && now.After(rec.Deadline)
		if !expired && !(stopped && r.sandboxStopped(id)) {
			continue
		}
		if err := r.removeSandbox(id); err != nil && !errors.Is(err, ErrNotExist) {
			logrus.Warnf("remove sandbox %s: %v", id, err)
			errs = append(errs, fmt.Errorf("sandbox %s: %w", id, err))
			continue
		}
		if done != nil {
			done(id)
		}
	}
	return errs
}

// sandboxStopped reports whether the sandbox's container is gone or
// stopped.
func (r *Runtime) sandboxStopped(id string) bool {
	st, err := r.engineFor(id).State(id)
	return err != nil || st.Status == "stopped"
}

// sandboxExecDefaults gives a process exec'd into a long-lived sandbox the
// sandbox's own environment, working directory and user unless the
// caller sets them.
func (r *Runtime) sandboxExecDefaults(id string, o *ExecOptions) error {
	if o.Process != nil {
		return nil
	}
	if !r.IsSandbox(id) {
		return nil
	}
	rec, err := r.loadSandbox(id)
	if err != nil {
		return err
	}
	o.Env = append(append([]string(nil), rec.Env...), o.Env...)
	if o.Cwd == "" {
		o.Cwd = rec.Cwd
	}
	if o.User == "" {
		o.User = rec.User
	}
	return nil
}

func writeJSONFile(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
