package native

import (
	"fmt"

	"github.com/opencontainers/runc/libcontainer/configs"

	"github.com/nucleus-run/nucleus/containerfs"
	"github.com/nucleus-run/nucleus/runtime/engine"
)

// FilesRoot holds the root filesystem of a created, running or paused
// container, as its init sees it, for copying files in and out.
func (r *Engine) FilesRoot(id string) (*containerfs.Root, error) {
	c, err := r.loadLive(id)
	if err != nil {
		return nil, err
	}
	st, err := c.State()
	if err != nil {
		return nil, fmt.Errorf("state of %s: %w", id, err)
	}
	root, err := containerfs.Open(containerfs.Process{
		Pid:       st.BaseState.InitProcessPid,
		StartTime: st.BaseState.InitProcessStartTime,
		UIDs:      idMap(st.BaseState.Config.UIDMappings),
		GIDs:      idMap(st.BaseState.Config.GIDMappings),
	})
	if err != nil {
		return nil, fmt.Errorf("container %s: %w (%w)", id, engine.ErrNotRunning, err)
	}
	return root, nil
}

func idMap(in []configs.IDMap) containerfs.IDMap {
	out := make(containerfs.IDMap, 0, len(in))
	for _, m := range in {
		out = append(out, containerfs.IDRange{Container: uint32(m.ContainerID), Host: uint32(m.HostID), Size: uint32(m.Size)})
	}
	return out
}
