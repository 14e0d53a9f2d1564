package native

import (
	"errors"
	"fmt"
	"os"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/manager"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/nucleus-run/nucleus/runtime/engine"
)

// signalAllFrozen signals every process in the container's cgroup with the
// cgroup frozen, so that nothing forks between listing and signalling (as
// runc 1.1's kill --all did), then thaws it again unless it was paused
// before; SIGKILL always thaws, since a frozen cgroup v1 task ignores it.
func signalAllFrozen(c *libcontainer.Container, sig unix.Signal) error {
	st, err := c.State()
	if err != nil {
		return fmt.Errorf("kill %s: %w", c.ID(), err)
	}
	status, _ := c.Status()
	wasPaused := status == libcontainer.Paused
	m, err := manager.NewWithPaths(c.Config().Cgroups, st.CgroupPaths)
	if err != nil {
		return fmt.Errorf("kill %s: cgroup: %w", c.ID(), err)
	}
	// Signal 0 only probes: nothing to hold still for.
	probe := sig == 0
	if !probe {
		if err := m.Freeze(cgroups.Frozen); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				// Deleted meanwhile (a delete --force racing this
				// kill): its cgroup is gone, and so are its processes.
				return fmt.Errorf("kill %s: %w", c.ID(), engine.ErrNotRunning)
			}
			logrus.Warnf("kill --all %s: freeze: %v", c.ID(), err)
		}
	}
	thaw := func() {
		if probe || (wasPaused && sig != unix.SIGKILL) {
			return
		}
		if err := m.Freeze(cgroups.Thawed); err != nil {
			logrus.Warnf("kill --all %s: thaw: %v", c.ID(), err)
		}
	}
	pids, err := m.GetAllPids()
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("kill %s: %w", c.ID(), engine.ErrNotRunning)
	}
	if err != nil {
		thaw()
		return fmt.Errorf("kill %s: list processes: %w", c.ID(), err)
	}
	for _, pid := range pids {
		if err := unix.Kill(pid, sig); err != nil && err != unix.ESRCH {
			thaw()
			return fmt.Errorf("kill %s: pid %d: %w", c.ID(), pid, err)
		}
	}
	thaw()
	return nil
}
