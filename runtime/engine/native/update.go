package native

import (
	"errors"
	"fmt"
	"slices"

	"github.com/nucleus-run/nucleus/runtime/engine"
	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/intelrdt"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
)

// Update applies new resource limits to a created, running or paused
// container's live cgroup and records them in its state, with runc's
// semantics for which fields change (see runc's update.go).
func (r *Engine) Update(id string, res *specs.LinuxResources, o engine.UpdateOptions) error {
	return r.withLocked(id, func(c *libcontainer.Container) error { return applyUpdate(c, id, res, o) })
}

// applyUpdate lays res and o over the container's cgroup config and sets it.
func applyUpdate(c *libcontainer.Container, id string, res *specs.LinuxResources, o engine.UpdateOptions) error {
	if res == nil {
		res = engine.NewUpdateResources()
	}
	// A --resources file may omit whole sections.
	if res.Memory == nil {
		res.Memory = &specs.LinuxMemory{}
	}
	if res.CPU == nil {
		res.CPU = &specs.LinuxCPU{}
	}
	if res.BlockIO == nil {
		res.BlockIO = &specs.LinuxBlockIO{}
	}
	if res.Pids == nil {
		res.Pids = &specs.LinuxPids{}
	}
	config := c.Config()
	if config.Cgroups == nil || config.Cgroups.Resources == nil {
		return fmt.Errorf("update %s: container has no cgroup configuration", id)
	}
	cr := config.Cgroups.Resources

	if res.Memory.Limit != nil && *res.Memory.Limit == -1 && res.Memory.Swap == nil {
		// Avoids "unable to set swap limit without memory limit".
		zero := int64(0)
		res.Memory.Swap = &zero
	}
	if res.CPU.Idle != nil && res.CPU.Shares == nil {
		zero := uint64(0)
		res.CPU.Shares = &zero
	}
	//lint:ignore SA1019 accepted and ignored, as runc does
	if res.Memory.Kernel != nil || res.Memory.KernelTCP != nil {
		logrus.Warn("kernel memory settings are ignored and will be removed")
	}

	if res.BlockIO.Weight != nil {
		cr.BlkioWeight = *res.BlockIO.Weight
	}
	if res.BlockIO.LeafWeight != nil {
		cr.BlkioLeafWeight = *res.BlockIO.LeafWeight
	}
	for _, wd := range res.BlockIO.WeightDevice {
		cr.BlkioWeightDevice = upsertWeightDevice(cr.BlkioWeightDevice, wd)
	}
	for _, td := range res.BlockIO.ThrottleReadBpsDevice {
		cr.BlkioThrottleReadBpsDevice = upsertThrottleDevice(cr.BlkioThrottleReadBpsDevice, td)
	}
	for _, td := range res.BlockIO.ThrottleWriteBpsDevice {
		cr.BlkioThrottleWriteBpsDevice = upsertThrottleDevice(cr.BlkioThrottleWriteBpsDevice, td)
	}
	for _, td := range res.BlockIO.ThrottleReadIOPSDevice {
		cr.BlkioThrottleReadIOPSDevice = upsertThrottleDevice(cr.BlkioThrottleReadIOPSDevice, td)
	}
	for _, td := range res.BlockIO.ThrottleWriteIOPSDevice {
		cr.BlkioThrottleWriteIOPSDevice = upsertThrottleDevice(cr.BlkioThrottleWriteIOPSDevice, td)
	}

	// Quota and period: when only one is given keep the other's old value.
	var p uint64
	var q int64
	if res.CPU.Period != nil {
		p = *res.CPU.Period
	}
	if res.CPU.Quota != nil {
		q = *res.CPU.Quota
	}
	switch {
	case (p == 0 && q == 0) || (p != 0 && q != 0):
		cr.CpuPeriod, cr.CpuQuota = p, q
	case p != 0:
		cr.CpuPeriod = p
	default:
		cr.CpuQuota = q
	}
	cr.CpuBurst = res.CPU.Burst
	if res.CPU.Shares != nil {
		cr.CpuShares = *res.CPU.Shares
		cr.CpuWeight = cgroups.ConvertCPUSharesToCgroupV2Value(*res.CPU.Shares)
	}
	if res.CPU.RealtimePeriod != nil {
		cr.CpuRtPeriod = *res.CPU.RealtimePeriod
	}
	if res.CPU.RealtimeRuntime != nil {
		cr.CpuRtRuntime = *res.CPU.RealtimeRuntime
	}
	cr.CpusetCpus = res.CPU.Cpus
	cr.CpusetMems = res.CPU.Mems
	cr.CPUIdle = res.CPU.Idle
	if res.Memory.Limit != nil {
		cr.Memory = *res.Memory.Limit
	}
	if res.Memory.Reservation != nil {
		cr.MemoryReservation = *res.Memory.Reservation
	}
	if res.Memory.Swap != nil {
		cr.MemorySwap = *res.Memory.Swap
	}
	if res.Memory.CheckBeforeUpdate != nil {
		cr.MemoryCheckBeforeUpdate = *res.Memory.CheckBeforeUpdate
	}
	cr.PidsLimit = res.Pids.Limit
	cr.Unified = res.Unified

	if o.L3CacheSchema != "" && !intelrdt.IsCATEnabled() {
		return errors.New("update: Intel RDT/CAT: l3 cache schema is not enabled on this host")
	}
	if o.MemBwSchema != "" && !intelrdt.IsMBAEnabled() {
		return errors.New("update: Intel RDT/MBA: memory bandwidth schema is not enabled on this host")
	}
	if o.L3CacheSchema != "" || o.MemBwSchema != "" {
		if config.IntelRdt == nil {
			return errors.New("update: the container has no Intel RDT configuration to change")
		}
		if o.L3CacheSchema != "" {
			config.IntelRdt.L3CacheSchema = o.L3CacheSchema
		}
		if o.MemBwSchema != "" {
			config.IntelRdt.MemBwSchema = o.MemBwSchema
		}
	}
	// update cannot change device rules; don't rewrite them (as runc).
	config.Cgroups.SkipDevices = true
	if err := c.Set(config); err != nil {
		return fmt.Errorf("update %s: %w", id, err)
	}
	return nil
}

func upsertWeightDevice(devices []*cgroups.WeightDevice, wd specs.LinuxWeightDevice) []*cgroups.WeightDevice {
	for i, dev := range slices.Backward(devices) {
		if dev.Major != wd.Major || dev.Minor != wd.Minor {
			continue
		}
		if wd.Weight != nil {
			devices[i].Weight = *wd.Weight
		}
		if wd.LeafWeight != nil {
			devices[i].LeafWeight = *wd.LeafWeight
		}
		return devices
	}
	var weight, leafWeight uint16
	if wd.Weight != nil {
		weight = *wd.Weight
	}
	if wd.LeafWeight != nil {
		leafWeight = *wd.LeafWeight
	}
	return append(devices, cgroups.NewWeightDevice(wd.Major, wd.Minor, weight, leafWeight))
}

func upsertThrottleDevice(devices []*cgroups.ThrottleDevice, td specs.LinuxThrottleDevice) []*cgroups.ThrottleDevice {
	for i, dev := range slices.Backward(devices) {
		if dev.Major == td.Major && dev.Minor == td.Minor {
			devices[i].Rate = td.Rate
			return devices
		}
	}
	return append(devices, cgroups.NewThrottleDevice(td.Major, td.Minor, td.Rate))
}
