package native

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

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
// containers yet, not an error.
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
		c, err := libcontainer.Load(r.Root, e.Name())
		if err != nil {
			// A container half-created or half-deleted by a concurrent call.
			continue
		}
		s, err := containerState(c)
		if err != nil {
			continue
		}
		s.Owner = engine.OwnerName(info)
		out = append(out, *s)
	}
	return out, nil
}
