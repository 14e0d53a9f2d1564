package spec

import (
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Default returns the config `nucleus spec` writes: runc's example (sh in a
// rootfs/ directory with its own pid, net, ipc, uts, mount and cgroup
// namespaces, runc's masked
// and read-only paths), optionally turned into a rootless one.
func Default(rootless bool) *specs.Spec {
	s := specconv.Example()
	s.Hostname = "nucleus"
	if rootless {
		specconv.ToRootless(s)
	}
	return s
}
