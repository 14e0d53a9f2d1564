package native

import (
	"slices"

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
func adaptConfig(config *configs.Config) {
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
