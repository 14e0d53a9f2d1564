package native

import (
	"errors"
	"fmt"
	"time"

	"github.com/nucleus-run/nucleus/runtime/engine"
	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/intelrdt"
	"github.com/opencontainers/runc/types"
	"github.com/sirupsen/logrus"
)

// Stats returns one "stats" event for a container, read from its cgroup,
// in the JSON shape runc's `events --stats` prints.
func (r *Engine) Stats(id string) (*types.Event, error) {
	c, err := r.loadLive(id)
	if err != nil {
		return nil, err
	}
	return statsEvent(c)
}

// Events calls emit with a "stats" event every interval and an "oom" event
// whenever the container's cgroup reports one, until the container stops
// or its cgroup goes away, or emit returns an error.
func (r *Engine) Events(id string, interval time.Duration, emit func(*types.Event) error) error {
	if interval <= 0 {
		return errors.New("duration interval must be greater than 0")
	}
	c, err := r.loadLive(id)
	if err != nil {
		return err
	}
	oom, err := c.NotifyOOM()
	if err != nil {
		return fmt.Errorf("events %s: watch for OOM: %w", id, err)
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case _, ok := <-oom:
			if !ok {
				// The cgroup is gone: the container stopped.
				return nil
			}
			if err := emit(&types.Event{Type: "oom", ID: id}); err != nil {
				return err
			}
		case <-tick.C:
			if st, err := c.Status(); err == nil && st == libcontainer.Stopped {
				return nil
			}
			e, err := statsEvent(c)
			if err != nil {
				if st, _ := c.Status(); st == libcontainer.Stopped {
					return nil
				}
				logrus.Error(err)
				continue
			}
			if err := emit(e); err != nil {
				return err
			}
		}
	}
}

func (r *Engine) loadLive(id string) (*libcontainer.Container, error) {
	c, err := r.load(id)
	if err != nil {
		return nil, err
	}
	status, err := c.Status()
	if err != nil {
		return nil, fmt.Errorf("status of %s: %w", id, err)
	}
	if status == libcontainer.Stopped {
		return nil, fmt.Errorf("container %s: %w", id, engine.ErrNotRunning)
	}
	return c, nil
}

func statsEvent(c *libcontainer.Container) (*types.Event, error) {
	s, err := c.Stats()
	if err != nil {
		return nil, fmt.Errorf("stats of %s: %w", c.ID(), err)
	}
	return &types.Event{Type: "stats", ID: c.ID(), Data: convertStats(s)}, nil
}

// convertStats is runc's convertLibcontainerStats.
func convertStats(ls *libcontainer.Stats) *types.Stats {
	cg := ls.CgroupStats
	if cg == nil {
		return nil
	}
	var s types.Stats
	s.Pids.Current = cg.PidsStats.Current
	s.Pids.Limit = cg.PidsStats.Limit

	s.CPU.Usage.Kernel = cg.CpuStats.CpuUsage.UsageInKernelmode
	s.CPU.Usage.User = cg.CpuStats.CpuUsage.UsageInUsermode
	s.CPU.Usage.Total = cg.CpuStats.CpuUsage.TotalUsage
	s.CPU.Usage.Percpu = cg.CpuStats.CpuUsage.PercpuUsage
	s.CPU.Usage.PercpuKernel = cg.CpuStats.CpuUsage.PercpuUsageInKernelmode
	s.CPU.Usage.PercpuUser = cg.CpuStats.CpuUsage.PercpuUsageInUsermode
	s.CPU.Throttling.Periods = cg.CpuStats.ThrottlingData.Periods
	s.CPU.Throttling.ThrottledPeriods = cg.CpuStats.ThrottlingData.ThrottledPeriods
	s.CPU.Throttling.ThrottledTime = cg.CpuStats.ThrottlingData.ThrottledTime
	s.CPU.PSI = cg.CpuStats.PSI

	s.CPUSet = types.CPUSet(cg.CPUSetStats)

	s.Memory.Cache = cg.MemoryStats.Cache
	s.Memory.Kernel = memoryEntry(cg.MemoryStats.KernelUsage)
	s.Memory.KernelTCP = memoryEntry(cg.MemoryStats.KernelTCPUsage)
	s.Memory.Swap = memoryEntry(cg.MemoryStats.SwapUsage)
	s.Memory.Usage = memoryEntry(cg.MemoryStats.Usage)
	s.Memory.Raw = cg.MemoryStats.Stats
	s.Memory.PSI = cg.MemoryStats.PSI

	s.Blkio.IoServiceBytesRecursive = blkioEntries(cg.BlkioStats.IoServiceBytesRecursive)
	s.Blkio.IoServicedRecursive = blkioEntries(cg.BlkioStats.IoServicedRecursive)
	s.Blkio.IoQueuedRecursive = blkioEntries(cg.BlkioStats.IoQueuedRecursive)
	s.Blkio.IoServiceTimeRecursive = blkioEntries(cg.BlkioStats.IoServiceTimeRecursive)
	s.Blkio.IoWaitTimeRecursive = blkioEntries(cg.BlkioStats.IoWaitTimeRecursive)
	s.Blkio.IoMergedRecursive = blkioEntries(cg.BlkioStats.IoMergedRecursive)
	s.Blkio.IoTimeRecursive = blkioEntries(cg.BlkioStats.IoTimeRecursive)
	s.Blkio.SectorsRecursive = blkioEntries(cg.BlkioStats.SectorsRecursive)
	s.Blkio.PSI = cg.BlkioStats.PSI

	s.Hugetlb = make(map[string]types.Hugetlb)
	for k, v := range cg.HugetlbStats {
		s.Hugetlb[k] = types.Hugetlb{Usage: v.Usage, Max: v.MaxUsage, Failcnt: v.Failcnt}
	}

	if is := ls.IntelRdtStats; is != nil {
		if intelrdt.IsCATEnabled() && is.L3CacheInfo != nil {
			ci := types.L3CacheInfo(*is.L3CacheInfo)
			s.IntelRdt.L3CacheInfo = &ci
			s.IntelRdt.L3CacheSchemaRoot = is.L3CacheSchemaRoot
			s.IntelRdt.L3CacheSchema = is.L3CacheSchema
		}
		if intelrdt.IsMBAEnabled() && is.MemBwInfo != nil {
			mi := types.MemBwInfo(*is.MemBwInfo)
			s.IntelRdt.MemBwInfo = &mi
			s.IntelRdt.MemBwSchemaRoot = is.MemBwSchemaRoot
			s.IntelRdt.MemBwSchema = is.MemBwSchema
		}
		if intelrdt.IsMBMEnabled() {
			s.IntelRdt.MBMStats = is.MBMStats
		}
		if intelrdt.IsCMTEnabled() {
			s.IntelRdt.CMTStats = is.CMTStats
		}
		s.IntelRdt.Schemata = is.Schemata
	}
	s.NetworkInterfaces = ls.Interfaces
	return &s
}

func memoryEntry(c cgroups.MemoryData) types.MemoryEntry {
	return types.MemoryEntry{Limit: c.Limit, Usage: c.Usage, Max: c.MaxUsage, Failcnt: c.Failcnt}
}

func blkioEntries(c []cgroups.BlkioStatEntry) []types.BlkioEntry {
	out := make([]types.BlkioEntry, 0, len(c))
	for _, e := range c {
		out = append(out, types.BlkioEntry(e))
	}
	return out
}
