package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/nucleus-run/nucleus/opterr"
	"github.com/nucleus-run/nucleus/runtime/engine"
	"github.com/nucleus-run/nucleus/supervise"
)

// supervisedExec runs o in a held sandbox through its supervisor (its pid
// 1, package supervise), which forks and execs it: no libcontainer load,
// no Go init in the container. ok is false when the supervisor is not the
// way (a container that is not a supervised sandbox, a request it does not
// run: another user, a terminal, a detached process, extra descriptors,
// capabilities; a sandbox that is paused or has ended): the caller then
// runs the runtime's own exec, which also reports why a sandbox can't
// take it. Closing cancel (nil: never) kills the command.
func (r *Runtime) supervisedExec(id string, o ExecOptions, cancel <-chan struct{}) (status int, ok bool, err error) {
	if o.Process != nil || o.Tty || o.Detach || len(o.Caps) > 0 || o.PidFile != "" || o.ConsoleSocket != "" ||
		o.PidfdSocket != "" || o.PreserveFDs > 0 || len(o.SubCgroups) > 0 || len(o.AdditionalGids) > 0 ||
		(o.NoNewPrivs != nil && !*o.NoNewPrivs) || len(o.Args) == 0 || !r.IsSandbox(id) {
		return -1, false, nil
	}
	rec, err := r.loadSandbox(id)
	if err != nil || !rec.Supervised {
		return -1, false, nil
	}
	req := supervise.Request{Args: o.Args, Env: mergeEnv(rec.ProcessEnv, o.Env), Cwd: o.Cwd, UID: rec.UID, GID: rec.GID}
	if req.Cwd == "" {
		req.Cwd = rec.Cwd
	}
	if !filepath.IsAbs(req.Cwd) {
		return -1, true, opterr.Errorf("cwd", "%q: not an absolute path", o.Cwd)
	}
	for _, e := range o.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return -1, true, opterr.Errorf("env", "%q: not KEY=VALUE", e)
		}
	}
	if o.User != "" {
		uid, gid, err := engine.ParseUser(o.User)
		if err != nil {
			return -1, true, err
		}
		if uid != rec.UID || (gid != nil && *gid != rec.GID) {
			return -1, false, nil
		}
	}
	if r.frozen(id) {
		return -1, false, nil
	}
	io, err := newPipedStdio(o.Stdio, rec.HostUID, rec.HostGID)
	if err != nil {
		return -1, true, err
	}
	defer io.close()
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, forwardedSignals...)
	defer signal.Stop(sigs)
	conn, err := supervise.Start(filepath.Join(r.sandboxDir(id), supervise.SocketName), req, io.child)
	if errors.Is(err, supervise.ErrUnavailable) || errors.Is(err, supervise.ErrUnsupported) {
		logrus.Debugf("exec %s: runc-style: %v", id, err)
		return -1, false, nil
	}
	if err != nil {
		return -1, true, fmt.Errorf("exec in %s: %w", id, err)
	}
	io.started()
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				_ = conn.Signal(s.(syscall.Signal))
			case <-cancel:
				_ = conn.Signal(unix.SIGKILL)
				cancel = nil
			case <-done:
				return
			}
		}
	}()
	status, err = conn.Wait()
	close(done)
	io.drain(sigs)
	return status, true, err
}

// forwardedSignals are those `nucleus exec` passes on to the command.
var forwardedSignals = []os.Signal{unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGALRM, unix.SIGCONT}

// frozen reports whether the container's freezer holds it (paused): its
// supervisor can't answer then. Read from the state libcontainer keeps,
// without loading the container.
func (r *Runtime) frozen(id string) bool {
	file, ok := r.freezerState(id)
	if !ok {
		return true // not ours to judge: the runtime's exec reports it
	}
	if file == "" {
		return false
	}
	b, err := os.ReadFile(file)
	if filepath.Base(file) == "cgroup.freeze" {
		return err == nil && strings.TrimSpace(string(b)) != "0"
	}
	return err != nil || strings.TrimSpace(string(b)) != "THAWED"
}

// freezerState is the file that says whether the container is frozen:
// freezer.state (cgroup v1) or cgroup.freeze (v2), "" when it has no
// freezer; ok is false when libcontainer's state can't be read.
func (r *Runtime) freezerState(id string) (file string, ok bool) {
	data, err := os.ReadFile(filepath.Join(r.Root, id, "state.json"))
	if err != nil {
		return "", false
	}
	var st struct {
		CgroupPaths map[string]string `json:"cgroup_paths"`
	}
	if json.Unmarshal(data, &st) != nil {
		return "", false
	}
	if p, ok := st.CgroupPaths["freezer"]; ok {
		return filepath.Join(p, "freezer.state"), true
	}
	if p, ok := st.CgroupPaths[""]; ok {
		return filepath.Join(p, "cgroup.freeze"), true
	}
	return "", true
}

// writeExecDefaults leaves, next to a supervised sandbox's socket, what a
// plain exec runs with, for the C fast path of `nucleus exec` (package
// fastexec). A sandbox whose exec the supervisor would not take as it is
// (its default user is another than its process's) gets none, and every
// exec then takes the Go path.
func (r *Runtime) writeExecDefaults(rec *sandboxRecord) error {
	if rec.User != "" {
		uid, gid, err := engine.ParseUser(rec.User)
		if err != nil || uid != rec.UID || (gid != nil && *gid != rec.GID) {
			return nil
		}
	}
	for _, e := range rec.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return nil
		}
	}
	freezer, ok := r.freezerState(rec.ID)
	if !ok || !filepath.IsAbs(rec.Cwd) {
		return nil
	}
	return supervise.WriteExecDefaults(r.sandboxDir(rec.ID), supervise.ExecDefaults{
		UID: rec.UID, GID: rec.GID, HostUID: rec.HostUID, HostGID: rec.HostGID,
		Cwd: rec.Cwd, Env: mergeEnv(rec.ProcessEnv, rec.Env), FreezerState: freezer,
	})
}

// pipedStdio gives a supervised command pipes of its own, owned by the
// sandbox's user (so that it can reopen /dev/stdout), copied to and from
// the caller's streams: the command never holds the caller's terminal or
// files. /dev/null is passed as it is.
type pipedStdio struct {
	child   [3]*os.File
	ours    []*os.File
	copiers sync.WaitGroup
	// outputs copy once the command holds its ends.
	outputs []func()
	input   func()
}

func newPipedStdio(s *Stdio, uid, gid uint32) (_ *pipedStdio, err error) {
	var in io.Reader = os.Stdin
	var out, errOut io.Writer = os.Stdout, os.Stderr
	if s != nil {
		in, out, errOut = s.In, s.Out, s.Err
		if out == nil {
			out = io.Discard
		}
		if errOut == nil {
			errOut = io.Discard
		}
	}
	p := &pipedStdio{}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	pipe := func() (*os.File, *os.File, error) {
		rd, wr, err := os.Pipe()
		if err != nil {
			return nil, nil, fmt.Errorf("exec stdio: %w", err)
		}
		p.ours = append(p.ours, rd, wr)
		for _, f := range []*os.File{rd, wr} {
			if err := f.Chown(int(uid), int(gid)); err != nil {
				return nil, nil, fmt.Errorf("exec stdio: %w", err)
			}
		}
		return rd, wr, nil
	}
	if in == nil || isDevNull(in) {
		null, err := os.Open(os.DevNull)
		if err != nil {
			return nil, err
		}
		p.ours = append(p.ours, null)
		p.child[0] = null
	} else {
		rd, wr, err := pipe()
		if err != nil {
			return nil, err
		}
		p.child[0] = rd
		p.input = func() {
			go func() {
				_, _ = io.Copy(wr, in)
				wr.Close()
			}()
		}
	}
	for i, w := range []io.Writer{out, errOut} {
		if isDevNull(w) || w == io.Discard {
			null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
			if err != nil {
				return nil, err
			}
			p.ours = append(p.ours, null)
			p.child[1+i] = null
			continue
		}
		rd, wr, err := pipe()
		if err != nil {
			return nil, err
		}
		p.child[1+i] = wr
		w := w
		p.copiers.Add(1)
		p.outputs = append(p.outputs, func() {
			go func() {
				defer p.copiers.Done()
				_, _ = io.Copy(w, rd)
			}()
		})
	}
	return p, nil
}

// started closes our copies of the command's ends and starts copying.
func (p *pipedStdio) started() {
	for _, f := range p.child {
		f.Close()
	}
	if p.input != nil {
		p.input()
	}
	for _, o := range p.outputs {
		o()
	}
}

// drain waits, once the command has ended, for its outputs to reach their
// end, for at most supervise.Drain: what it left running holding them is
// not the caller's to wait for (a pooled sandbox is destroyed right after;
// a long-lived one keeps it). A SIGINT, SIGTERM, SIGHUP or SIGQUIT ends the
// wait at once.
func (p *pipedStdio) drain(sigs <-chan os.Signal) {
	copied := make(chan struct{})
	go func() { p.copiers.Wait(); close(copied) }()
	timer := time.NewTimer(supervise.Drain)
	defer timer.Stop()
	for {
		select {
		case <-copied:
			return
		case <-timer.C:
			return
		case s := <-sigs:
			if s == unix.SIGINT || s == unix.SIGTERM || s == unix.SIGHUP || s == unix.SIGQUIT {
				return
			}
		}
	}
}

func (p *pipedStdio) close() {
	for _, f := range p.ours {
		f.Close()
	}
}

func isDevNull(v any) bool {
	f, ok := v.(*os.File)
	if !ok {
		return false
	}
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil {
		return false
	}
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == unix.Mkdev(1, 3)
}
