package policy

import (
	"errors"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/nucleus-run/nucleus/opterr"
)

// A user namespace cannot mount sysfs on a network namespace it does not
// own: --net host with the user namespace and a sysfs mount is refused up
// front, naming the flag; without the sysfs mount, or without a user
// namespace, it is planned.
func TestApplyNetHostSysfsInUserNS(t *testing.T) {
	withSysfs := func() *specs.Spec {
		s := baseSpec()
		s.Mounts = []specs.Mount{{Destination: "/sys", Type: "sysfs", Source: "sysfs"}}
		return s
	}
	o := allHost
	o.Mode, o.Net = ModeAgent, "host"
	_, _, err := Apply(withSysfs(), o)
	var oe *opterr.Error
	if err == nil || !errors.As(err, &oe) || oe.Option != "net" || !strings.Contains(err.Error(), "sysfs") {
		t.Fatalf("agent --net host with a sysfs mount: %v; want a --net option error naming sysfs", err)
	}
	if _, _, err := Apply(baseSpec(), o); err != nil {
		t.Errorf("agent --net host without a sysfs mount: %v", err)
	}
	o.HostUserNS = false
	if _, _, err := Apply(withSysfs(), o); err != nil {
		t.Errorf("agent --net host without user namespaces: %v", err)
	}
}
