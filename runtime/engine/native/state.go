package native

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nucleus-run/nucleus/runtime/engine"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/utils"
)

// State reports one container's state.
func (r *Engine) State(id string) (*engine.State, error) {
	c, err := r.load(id)
	if err != nil {
		return nil, err
	}
	return containerState(c)
}

func containerState(c *libcontainer.Container) (*engine.State, error) {
	status, err := c.Status()
	if err != nil {
		return nil, fmt.Errorf("status of %s: %w", c.ID(), err)
	}
	st, err := c.State()
	if err != nil {
		return nil, fmt.Errorf("state of %s: %w", c.ID(), err)
	}
	pid := st.BaseState.InitProcessPid
	if status == libcontainer.Stopped {
		pid = 0
	}
	bundle, annotations := utils.Annotations(st.Config.Labels)
	return &engine.State{
		Version:        st.BaseState.Config.Version,
		ID:             st.BaseState.ID,
		InitProcessPid: pid,
		Status:         status.String(),
		Bundle:         bundle,
		Rootfs:         st.BaseState.Config.Rootfs,
		Created:        st.BaseState.Created,
		Annotations:    annotations,
	}, nil
}

// List reports every container under the root. A missing root means no
// containers yet, not an error. A container whose state cannot be read is
// reported too, with StatusUnknown and the reason, unless a create or a
// delete holds it (then it is half-made or half-gone, and passed over).
func (r *Engine) List() ([]engine.State, error) {
	entries, err := os.ReadDir(r.Root)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("list %s: %w", r.Root, err)
	}
	var out []engine.State
	for _, e := range entries {
		if !e.IsDir() || engine.IsRuntimeDir(e.Name()) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed while we listed
		}
		id := e.Name()
		c, err := r.load(id)
		var s *engine.State
		if err == nil {
			s, err = containerState(c)
		}
		if err != nil {
			if r.inFlux(id, info) {
				continue
			}
			if errors.Is(err, engine.ErrNotExist) {
				err = fmt.Errorf("container %s: state %s: %w (its create was interrupted; nucleus delete --force %s removes it)", id, r.stateFile(id), fs.ErrNotExist, id)
			}
			s = &engine.State{ID: id, Status: engine.StatusUnknown, Created: info.ModTime().UTC(), Error: err.Error()}
		}
		s.Owner = engine.OwnerName(info)
		out = append(out, *s)
	}
	return out, nil
}

// inFlux reports whether container id is being created or deleted right
// now (or is gone): a create holds the lock from just after it made the
// state dir until state.json is written, a delete while it removes it.
func (r *Engine) inFlux(id string, info fs.FileInfo) bool {
	f, err := os.Open(r.stateDir(id))
	if err != nil {
		return true
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return true
	}
	// A create between making the dir and locking it.
	return time.Since(info.ModTime()) < time.Second && !fileExists(r.stateFile(id))
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
