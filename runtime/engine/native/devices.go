package native

import (
	"strings"

	"github.com/opencontainers/cgroups"
	_ "github.com/opencontainers/cgroups/devices" // lets the cgroup manager program device rules
)

// config-linux.md says of linux.resources.devices: "The runtime MUST apply
// entries in the listed order." libcontainer's cgroup v1 device setter
// computes the net effect of the list and writes it sorted by device
// number, so the kernel's devices.list (which keeps the order rules were
// written in) shows the runtime's default entries (c *:* m...) ahead of the
// config's. For a new cgroup, nucleus writes the rules in the listed order
// instead, each to devices.allow or devices.deny as the kernel would apply
// them one by one; libcontainer's setter then runs on the result, finds
// nothing left to change, and makes its own check that the cgroup matches
// the list. A cgroup that already has rules (an update of a running
// container) goes to libcontainer's setter alone: its minimal transition
// never denies a running container a device it keeps.
func init() {
	setV1 := cgroups.DevicesSetV1
	if setV1 == nil {
		return
	}
	cgroups.DevicesSetV1 = func(path string, r *cgroups.Resources) error {
		if !r.SkipDevices && len(r.Devices) > 0 && freshDevicesCgroup(path) {
			for _, rule := range r.Devices {
				file := "devices.deny"
				if rule.Allow {
					file = "devices.allow"
				}
				if err := cgroups.WriteFile(path, file, rule.CgroupString()); err != nil {
					// libcontainer's setter below reports what it cannot
					// reach, with its own error.
					break
				}
			}
		}
		return setV1(path, r)
	}
}

// freshDevicesCgroup: a devices cgroup no rule was written to lists the
// one entry that allows everything.
func freshDevicesCgroup(path string) bool {
	list, err := cgroups.ReadFile(path, "devices.list")
	return err == nil && strings.TrimSpace(list) == "a *:* rwm"
}
