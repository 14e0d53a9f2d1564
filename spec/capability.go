package spec

import (
	"fmt"
	"strings"
	"sync"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// config.md: a capability that "cannot be mapped to a relevant kernel
// interface, or cannot be granted otherwise MUST be logged as a warning" and
// runtimes "SHOULD NOT fail" for one that cannot be granted. That covers a
// real capability this kernel or this host lacks (libcontainer warns and
// leaves it out). A name that is no Linux capability at all (CAP_TEST) is a
// typo in the config: no kernel could grant it, and a warning lost in a log
// would leave the container silently without what the author meant. It is
// refused before anything is created.
//
// The names are the full list moby/sys/capability knows (the kernel's, up to
// the newest), not the ones this kernel supports: a capability newer than
// this kernel still only warns. Built on first use: the container's init is
// this binary too, and it runs its last steps under the process's
// RLIMIT_AS, where every allocation it does not make counts.
var capNames = sync.OnceValue(func() map[string]bool {
	m := map[string]bool{}
	for _, c := range capability.ListKnown() {
		m["CAP_"+strings.ToUpper(c.String())] = true
	}
	return m
})

// IsCapability reports whether name is a Linux capability as config.json
// spells it (CAP_ and the upper-case name).
func IsCapability(name string) bool { return capNames()[name] }

// validateCapabilities checks every name in the five sets; prefix is the
// JSON path of the process object.
func validateCapabilities(file, prefix string, c *specs.LinuxCapabilities) error {
	if c == nil {
		return nil
	}
	sets := []struct {
		name  string
		names []string
	}{
		{"bounding", c.Bounding},
		{"effective", c.Effective},
		{"inheritable", c.Inheritable},
		{"permitted", c.Permitted},
		{"ambient", c.Ambient},
	}
	for _, s := range sets {
		for i, n := range s.names {
			if IsCapability(n) {
				continue
			}
			msg := fmt.Sprintf("%q: not a capability", n)
			if up := strings.ToUpper(n); IsCapability(up) {
				msg += fmt.Sprintf(" (did you mean %q?)", up)
			} else if IsCapability("CAP_" + up) {
				msg += fmt.Sprintf(" (did you mean %q?)", "CAP_"+up)
			} else {
				msg += " (see capabilities(7))"
			}
			return &FieldError{File: file, Field: fmt.Sprintf("%scapabilities.%s[%d]", prefix, s.name, i), Msg: msg}
		}
	}
	return nil
}
