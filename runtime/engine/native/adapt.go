package native

import (
	"slices"
	"strings"
	"sync"

	"github.com/moby/sys/capability"

	"github.com/opencontainers/runc/libcontainer/configs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/selinux/go-selinux"
	"github.com/sirupsen/logrus"
)

// Configs the runtime-spec allows but libcontainer 1.5 refuses are adapted
// here, on the way in, rather than by changing libcontainer.

// adaptSpec returns s with what specconv would turn into a config
// libcontainer refuses changed to its equivalent. s itself is not changed.
//
// A fifo device ("p") has no device number: config-linux.md gives major and
// minor as "REQUIRED unless type is p", and mknod(2) ignores them for
// S_IFIFO. libcontainer checks the number of every node it made against the
// config, so a fifo listed with one (8:666, say) fails the create; it is
// given 0:0, which is what the node it makes has.
func adaptSpec(s *specs.Spec) *specs.Spec {
	if s.Linux == nil || !slices.ContainsFunc(s.Linux.Devices, isNumberedFifo) {
		return s
	}
	out := *s
	linux := *s.Linux
	linux.Devices = slices.Clone(s.Linux.Devices)
	for i := range linux.Devices {
		if isNumberedFifo(linux.Devices[i]) {
			linux.Devices[i].Major, linux.Devices[i].Minor = 0, 0
		}
	}
	out.Linux = &linux
	return &out
}

func isNumberedFifo(d specs.LinuxDevice) bool {
	return d.Type == "p" && (d.Major != 0 || d.Minor != 0)
}

// adaptConfig changes, in the config specconv made, what libcontainer's
// validation refuses although the kernel would have done the same anyway:
//
//   - A bind mount with filesystem options (mode=755,size=1k): the kernel
//     ignores data on MS_BIND, libcontainer 1.5 refuses the mount (its
//     validator says so: "the kernel will completely ignore these flags").
//     runc 1.1 passed them and the kernel dropped them; so does nucleus,
//     with a warning.
//   - A mount label on a host without SELinux: libcontainer adds
//     context="..." to every mount, which such a kernel refuses (EINVAL).
//     There is nothing to label; it is dropped, as crun does.
//   - Capabilities nucleus cannot grant: see grantable.
func adaptConfig(config *configs.Config) {
	grantable(config.Capabilities)
	for _, m := range config.Mounts {
		if m.IsBind() && m.Data != "" {
			logrus.Warnf("mount %s: bind mounts take no filesystem options; %q ignored, as the kernel would", m.Destination, m.Data)
			m.Data = ""
		}
	}
	if config.MountLabel != "" && !selinux.GetEnabled() {
		logrus.Debugf("SELinux is off: mount label %q not applied", config.MountLabel)
		config.MountLabel = ""
	}
}

// grantable leaves out of c, with a warning, the capabilities that are not
// in nucleus's own bounding set. No process can give its children more than
// that set (the container's init inherits it, in a user namespace too), so
// libcontainer's capset failed the whole create with EPERM; config.md:
// "Runtimes SHOULD NOT fail if the container configuration requests
// capabilities that cannot be granted, for example, if the runtime operates
// in a restricted environment with limited capabilities" (nucleus in a
// container, or on a VM that withholds one). Names that are no capability
// were refused with the config (spec.Validate); any other unknown name is
// left to libcontainer, which warns about it.
func grantable(c *configs.Capabilities) {
	if c == nil {
		return
	}
	self, err := capability.NewPid2(0)
	if err == nil {
		err = self.Load()
	}
	if err != nil {
		logrus.Debugf("capabilities: cannot read nucleus's own bounding set (%v); left to libcontainer", err)
		return
	}
	var left []string
	keep := func(names []string) []string {
		return slices.DeleteFunc(slices.Clone(names), func(n string) bool {
			cp, known := capByName()[n]
			if !known || self.Get(capability.BOUNDING, cp) {
				return false
			}
			if !slices.Contains(left, n) {
				left = append(left, n)
			}
			return true
		})
	}
	c.Bounding, c.Effective, c.Inheritable = keep(c.Bounding), keep(c.Effective), keep(c.Inheritable)
	c.Permitted, c.Ambient = keep(c.Permitted), keep(c.Ambient)
	if len(left) > 0 {
		logrus.Warnf("capabilities %s: not in nucleus's own bounding set, so they cannot be granted; the process runs without them", strings.Join(left, ", "))
	}
}

// capByName is built on first use, not in the container's init (this binary
// too), which runs its last steps under the process's RLIMIT_AS.
var capByName = sync.OnceValue(func() map[string]capability.Cap {
	m := map[string]capability.Cap{}
	for _, c := range capability.ListKnown() {
		m["CAP_"+strings.ToUpper(c.String())] = c
	}
	return m
})
