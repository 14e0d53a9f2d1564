package spec

import (
	"strings"
	"testing"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The sets the engines that drive a runtime write must stay valid: an error
// here would stop every container they start.
func TestCapabilitiesOfEnginesAreValid(t *testing.T) {
	docker := []string{ // moby oci/caps defaults, containerd's populateDefaultUnixSpec
		"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
		"CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
	}
	podman := []string{ // containers/common default_capabilities
		"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_NET_BIND_SERVICE",
		"CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT",
	}
	// --privileged: every capability the engine knows, whatever the
	// kernel it runs on supports (libcontainer leaves out, with a warning,
	// the ones newer than cap_last_cap).
	var all []string
	for _, c := range capability.ListKnown() {
		all = append(all, "CAP_"+strings.ToUpper(c.String()))
	}
	for name, set := range map[string][]string{"docker/containerd": docker, "podman": podman, "privileged": all} {
		c := &specs.LinuxCapabilities{Bounding: set, Effective: set, Inheritable: set, Permitted: set, Ambient: set}
		if err := validateCapabilities("config.json", "process.", c); err != nil {
			t.Errorf("%s defaults refused: %v", name, err)
		}
	}
}
