package native

import (
	"errors"
	"fmt"
	"time"

	"github.com/nucleus-run/nucleus/runtime/engine"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// Start runs the user process of a created container. It holds the
// container's lock: two concurrent starts would both read the exec fifo,
// and the one that finds it already drained would wait forever for a
// writer that is gone.
func (r *Engine) Start(id string) error {
	return r.withLocked(id, func(c *libcontainer.Container) error {
		status, err := c.Status()
		if err != nil {
			return fmt.Errorf("status of %s: %w", id, err)
		}
		switch status {
		case libcontainer.Created:
			if err := applyDeferredRlimits(r.stateDir(id), c); err != nil {
				return fmt.Errorf("start %s: %w", id, err)
			}
			poststart := poststartHooks(r.stateDir(id), c)
			if err := c.Exec(); err != nil {
				return fmt.Errorf("start %s: %w", id, err)
			}
			if err := poststart(); err != nil {
				// runtime.md step 9: stop the container and go on
				// at step 12 (destroy, poststop hooks).
				if derr := killAndDestroy(r.Root, c); derr != nil {
					return fmt.Errorf("start %s: %w; then %w", id, err, derr)
				}
				return fmt.Errorf("start %s: %w (the container was stopped and removed)", id, err)
			}
			return nil
		case libcontainer.Stopped:
			return fmt.Errorf("cannot start container %s: %w", id, engine.ErrStopped)
		case libcontainer.Running:
			return fmt.Errorf("cannot start container %s: %w", id, engine.ErrRunning)
		default:
			return fmt.Errorf("cannot start container %s in the %s state", id, status)
		}
	})
}

// Kill sends sig to the container's init; with all, to every process in
// the container's cgroup.
func (r *Engine) Kill(id string, sig unix.Signal, all bool) error {
	c, err := r.load(id)
	if err != nil {
		return err
	}
	if all {
		return r.killAll(c, sig)
	}
	if err := c.Signal(sig); err != nil {
		if errors.Is(err, libcontainer.ErrNotRunning) {
			return fmt.Errorf("kill %s: %w", id, engine.ErrNotRunning)
		}
		return fmt.Errorf("kill %s: %w", id, err)
	}
	return nil
}

// killAll signals every process in the container, like runc's old
// `kill --all`, which containerd and podman still send.
func (r *Engine) killAll(c *libcontainer.Container, sig unix.Signal) error {
	pids, err := c.Processes()
	if err != nil || len(pids) == 0 {
		// No cgroup or no processes: fall back to init, and a stopped
		// container is not an error for --all, as in runc.
		err := c.Signal(sig)
		if err == nil || errors.Is(err, libcontainer.ErrNotRunning) {
			return nil
		}
		return fmt.Errorf("kill %s: %w", c.ID(), err)
	}
	return signalAllFrozen(c, sig)
}

// Delete removes a stopped (or, with force, any) container and all it holds:
// processes, cgroups and state. A forced delete of an id that does not exist
// succeeds, as containerd's cleanup expects; one whose state cannot be read
// (a create killed before state.json was written, a truncated or garbled
// state.json) is reclaimed: what runs in its cgroups is killed and every
// trace removed.
func (r *Engine) Delete(id string, force bool) error {
	unlock, err := r.lockContainer(id)
	if err != nil {
		if force && errors.Is(err, engine.ErrNotExist) {
			// No state dir: a create killed before making it made no
			// cgroup either (they come after), but maybe the staging.
			// Nothing else is touched: the id alone is no evidence that
			// a cgroup of that name is a container's.
			return engine.UnstageRootfs(r.Root, id)
		}
		return err
	}
	defer unlock()
	c, err := r.load(id)
	if err != nil {
		if force {
			return r.reclaim(id)
		}
		if errors.Is(err, engine.ErrNotExist) {
			// A directory without state.json whose create is over (we
			// hold its lock): a crashed create. Clean it.
			if err := r.reclaim(id); err != nil {
				return err
			}
		} else {
			err = fmt.Errorf("%w (nucleus delete --force %s removes it)", err, id)
		}
		return err
	}
	status, err := c.Status()
	if err != nil {
		if force {
			return r.reclaim(id)
		}
		return fmt.Errorf("status of %s: %w", id, err)
	}
	switch {
	case status == libcontainer.Stopped:
		err = destroy(r.Root, c)
	case status == libcontainer.Created || force:
		err = killAndDestroy(r.Root, c)
	case status == libcontainer.Paused:
		return fmt.Errorf("cannot delete container %s: %w (stop it first or use --force)", id, engine.ErrPaused)
	default:
		return fmt.Errorf("cannot delete container %s: %w (stop it first or use --force)", id, engine.ErrRunning)
	}
	if err != nil && force {
		// libcontainer's own removal failed part-way: finish it.
		logrus.Warnf("%v; removing what is left", err)
		return r.reclaim(id)
	}
	return err
}

// destroy removes the container, then runs its poststop hooks (read
// before the state dir that holds them goes).
func destroy(root string, c *libcontainer.Container) error {
	poststop := poststopHooks(engine.StateDir(root, c.ID()), c)
	if err := c.Destroy(); err != nil {
		return fmt.Errorf("delete %s: %w", c.ID(), err)
	}
	engine.ReleaseStaged(c.ID(), c.Config().Rootfs)
	poststop()
	return nil
}

// killAndDestroy SIGKILLs init and waits for it to be gone before removing
// the container. It watches a pidfd rather than polling: the init may be an
// orphan whose zombie the host's PID 1 reaps late, and a zombie is gone for
// our purposes.
func killAndDestroy(root string, c *libcontainer.Container) error {
	st, err := c.State()
	if err != nil {
		return fmt.Errorf("state of %s: %w", c.ID(), err)
	}
	pidfd := -1
	if pid := st.InitProcessPid; pid > 0 {
		if fd, err := unix.PidfdOpen(pid, 0); err == nil {
			pidfd = fd
			defer unix.Close(fd)
		}
	}
	if err := c.Signal(unix.SIGKILL); err != nil && !errors.Is(err, libcontainer.ErrNotRunning) {
		return fmt.Errorf("kill %s: %w", c.ID(), err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if status, err := c.Status(); err == nil && status == libcontainer.Stopped {
			return destroy(root, c)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("delete %s: init process still running 10s after SIGKILL", c.ID())
		}
		if pidfd >= 0 {
			fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
			_, _ = unix.Poll(fds, 100)
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// Pause freezes every process of the container.
func (r *Engine) Pause(id string) error {
	return r.withLocked(id, func(c *libcontainer.Container) error {
		if err := c.Pause(); err != nil {
			if errors.Is(err, libcontainer.ErrNotRunning) {
				return fmt.Errorf("pause %s: %w", id, engine.ErrNotRunning)
			}
			return fmt.Errorf("pause %s: %w", id, err)
		}
		return nil
	})
}

// Resume thaws a paused container.
func (r *Engine) Resume(id string) error {
	return r.withLocked(id, func(c *libcontainer.Container) error {
		if err := c.Resume(); err != nil {
			if errors.Is(err, libcontainer.ErrNotPaused) {
				return fmt.Errorf("resume %s: %w", id, engine.ErrNotPaused)
			}
			return fmt.Errorf("resume %s: %w", id, err)
		}
		return nil
	})
}
