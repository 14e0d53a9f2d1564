package native

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nucleus-run/nucleus/opterr"
	"github.com/nucleus-run/nucleus/runtime/engine"
	"github.com/opencontainers/runc/libcontainer"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// criuTimeout bounds one CRIU dump or restore: CRIU talks to us over a
// socket pair, and a CRIU stuck on an unsupported kernel must turn into an
// error, never a hung client (podman and the shim wait on us).
const criuTimeout = 2 * time.Minute

// Checkpoint dumps a running container with CRIU into o.ImagePath and,
// unless it is left running (or this is a pre-dump), removes it.
func (r *Engine) Checkpoint(id string, o engine.CheckpointOptions) error {
	c, err := r.load(id)
	if err != nil {
		return err
	}
	status, err := c.Status()
	if err != nil {
		return fmt.Errorf("status of %s: %w", id, err)
	}
	if status == libcontainer.Created || status == libcontainer.Stopped {
		return fmt.Errorf("checkpoint %s: container cannot be checkpointed in %s state", id, status)
	}
	if err := criuUsable(); err != nil {
		return fmt.Errorf("checkpoint %s: %w", id, err)
	}
	opts, err := criuOpts(o)
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", id, err)
	}
	if err := withCriuTimeout(func() error { return c.Checkpoint(opts) }); err != nil {
		return fmt.Errorf("checkpoint %s: %w", id, criuError(err, opts))
	}
	if !opts.LeaveRunning && !opts.PreDump {
		if err := destroy(r.Root, c); err != nil {
			logrus.Warn(err)
		}
	}
	return nil
}

// Restore creates container o.ID from its bundle and restores its processes
// from a CRIU image. Attached (not o.Detach) it waits for the restored init
// and returns its exit status, as run does.
func (r *Engine) Restore(o engine.CreateOptions, co engine.CheckpointOptions) (int, error) {
	if o.Policy != nil && o.Policy.Mode != "" {
		// CRIU restores the processes as they were, without the pre-exec
		// step: a restored container would not have the mode's Landlock.
		return -1, fmt.Errorf("restore %s in %s mode: %w", o.ID, o.Policy.Mode, engine.ErrUnsupported)
	}
	if err := criuUsable(); err != nil {
		return -1, fmt.Errorf("restore %s: %w", o.ID, err)
	}
	if o.Spec == nil {
		return -1, errors.New("no config given")
	}
	var err error
	if co.ImagePath == "" {
		// runc's default is relative to the caller's directory.
		wd, err := os.Getwd()
		if err != nil {
			return -1, err
		}
		co.ImagePath = filepath.Join(wd, "checkpoint")
	}
	if co.ImagePath, err = filepath.Abs(co.ImagePath); err != nil {
		return -1, err
	}
	if co.WorkPath, err = engine.AbsPath(co.WorkPath); err != nil {
		return -1, err
	}
	opts, err := criuOpts(co)
	if err != nil {
		return -1, fmt.Errorf("restore %s: %w", o.ID, err)
	}
	if err := engine.CheckTerminal(o.Spec.Process.Terminal, o.Detach, o.ConsoleSocket); err != nil {
		return -1, err
	}
	container, unlockState, err := r.newContainer(o)
	if err != nil {
		return -1, err
	}
	defer unlockState()
	p := &processRunner{
		root:            r.Root,
		unlockState:     unlockState,
		container:       container,
		init:            true,
		detach:          o.Detach,
		enableSubreaper: !o.NoSubreaper,
		shouldDestroy:   true,
		pidFile:         o.PidFile,
		consoleSocket:   o.ConsoleSocket,
	}
	return p.run(o.Spec.Process, func(proc *libcontainer.Process) error {
		if err := withCriuTimeout(func() error { return container.Restore(proc, opts) }); err != nil {
			return fmt.Errorf("restore %s: %w", o.ID, criuError(err, opts))
		}
		return nil
	})
}

func criuOpts(o engine.CheckpointOptions) (*libcontainer.CriuOpts, error) {
	image := o.ImagePath
	if image == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, err
		}
		image = filepath.Join(wd, "checkpoint")
	}
	if err := os.MkdirAll(image, 0o700); err != nil {
		return nil, opterr.Errorf("image-path", "%w", err)
	}
	if o.ParentPath != "" {
		if filepath.IsAbs(o.ParentPath) {
			return nil, opterr.Errorf("parent-path", "must be relative")
		}
		real := filepath.Join(image, o.ParentPath)
		fi, err := os.Stat(real)
		if err == nil && !fi.IsDir() {
			err = &os.PathError{Op: "stat", Path: real, Err: unix.ENOTDIR}
		}
		if err != nil {
			return nil, fmt.Errorf("invalid --parent-path: %w", err)
		}
	}
	opts := &libcontainer.CriuOpts{
		ImagesDirectory:         image,
		WorkDirectory:           o.WorkPath,
		ParentImage:             o.ParentPath,
		LeaveRunning:            o.LeaveRunning,
		TcpEstablished:          o.TCPEstablished,
		TcpSkipInFlight:         o.TCPSkipInFlight,
		LinkRemap:               o.LinkRemap,
		ExternalUnixConnections: o.ExtUnixSk,
		ShellJob:                o.ShellJob,
		FileLocks:               o.FileLocks,
		PreDump:                 o.PreDump,
		AutoDedup:               o.AutoDedup,
		LazyPages:               o.LazyPages,
		StatusFd:                o.StatusFd,
		LsmProfile:              o.LsmProfile,
		LsmMountContext:         o.LsmMountContext,
		ManageCgroupsMode:       o.ManageCgroupsMode,
	}
	if ps := o.PageServer; ps != "" {
		addr, port, err := net.SplitHostPort(ps)
		if err != nil || addr == "" || port == "" {
			return nil, errors.New("use --page-server ADDRESS:PORT to specify the page server")
		}
		n, err := strconv.Atoi(port)
		if err != nil {
			return nil, opterr.Errorf("page-server", "%s: invalid port number", ps)
		}
		opts.PageServer = libcontainer.CriuPageServerInfo{Address: addr, Port: int32(n)}
	}
	// Network devices are not ours to checkpoint, as in runc.
	nsmask := unix.CLONE_NEWNET
	for _, ns := range o.EmptyNs {
		if specs.LinuxNamespaceType(ns) != specs.NetworkNamespace {
			return nil, opterr.Errorf("empty-ns", "namespace %q is not supported", ns)
		}
	}
	opts.EmptyNs = uint32(nsmask)
	return opts, nil
}

// criuUsable fails fast, with the reason, where CRIU is missing or cannot
// start on this kernel, rather than after a half-done dump.
func criuUsable() error {
	path, err := exec.LookPath("criu")
	if err != nil {
		return errors.New("criu not found on PATH: checkpoint/restore needs CRIU (Debian package criu)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "check").CombinedOutput()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return errors.New("`criu check` did not finish in 30s: CRIU cannot run on this host")
	}
	return fmt.Errorf("CRIU cannot checkpoint on this host (`criu check` failed: %s)", lastCriuError(string(out)))
}

// lastCriuError picks the most telling line of CRIU's output.
func lastCriuError(out string) string {
	var first, last string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if first == "" && strings.HasPrefix(line, "Error") {
			first = line
		}
		last = line
	}
	if first != "" {
		return first
	}
	if last == "" {
		return "no output"
	}
	return last
}

func withCriuTimeout(f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(criuTimeout):
		return fmt.Errorf("CRIU did not finish within %s", criuTimeout)
	}
}

// criuError adds the first error line of CRIU's log to err, so the one line
// the user sees says why.
func criuError(err error, opts *libcontainer.CriuOpts) error {
	dir := opts.WorkDirectory
	if dir == "" {
		dir = opts.ImagesDirectory
	}
	for _, name := range []string{"dump.log", "restore.log"} {
		f, ferr := os.Open(filepath.Join(dir, name))
		if ferr != nil {
			continue
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if line := sc.Text(); strings.Contains(line, "Error") {
				return fmt.Errorf("%w (%s: %s)", err, name, strings.TrimSpace(line))
			}
		}
	}
	return err
}
