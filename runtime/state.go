package runtime

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/utils"
)

// State is what `state` prints and `list --format json` lists, field for
// field as runc prints it, since tools parse it.
type State struct {
	Version        string            `json:"ociVersion"`
	ID             string            `json:"id"`
	InitProcessPid int               `json:"pid"`
	Status         string            `json:"status"`
	Bundle         string            `json:"bundle"`
	Rootfs         string            `json:"rootfs"`
	Created        time.Time         `json:"created"`
	Annotations    map[string]string `json:"annotations,omitempty"`
	Owner          string            `json:"owner"`
}

// State reports one container's state.
func (r *Runtime) State(id string) (*State, error) {
	if r.isGvisor(id) {
		return r.gvisorState(id)
	}
	c, err := r.load(id)
	if err != nil {
		return nil, err
	}
	return containerState(c)
}

func containerState(c *libcontainer.Container) (*State, error) {
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
	return &State{
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
func (r *Runtime) List() ([]State, error) {
	entries, err := os.ReadDir(r.Root)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("list %s: %w", r.Root, err)
	}
	var out []State
	for _, e := range entries {
		if !e.IsDir() || isRuntimeDir(e.Name()) {
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
		s.Owner = ownerName(info)
		out = append(out, *s)
	}
	return append(out, r.gvisorList()...), nil
}

func ownerName(info fs.FileInfo) string {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	uid := strconv.Itoa(int(st.Uid))
	if u, err := user.LookupId(uid); err == nil {
		return u.Username
	}
	return "#" + uid
}

// isRuntimeDir tells nucleus's own directories under the root (sandboxes'
// private rootfs dirs, the gVisor engine's root) from containers' state
// dirs.
func isRuntimeDir(name string) bool {
	return name == gvisorRootName || strings.HasPrefix(name, privateRootfsPrefix)
}
