// Package host measures what this host can enforce, once per command, for
// isolation.Prepare: Landlock's ABI, seccomp, user namespaces, and whether
// a rootfs is reachable by a user namespace's unprivileged root.
package host

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/nucleus-run/nucleus/policy"
	"github.com/opencontainers/runc/libcontainer/seccomp"
)

// Facts are what policy.Apply needs to know about this host.
type Facts struct {
	LandlockABI int  `json:"landlockABI"` // 0: no Landlock
	Seccomp     bool `json:"seccomp"`     // the build and kernel can apply seccomp
	UserNS      bool `json:"userns"`      // user namespaces can be created
}

// Probe measures the host's facts.
func Probe() Facts {
	var f Facts
	f.LandlockABI, f.Seccomp, f.UserNS = probe()
	return f
}

// probe measures what this host can enforce.
// NUCLEUS_DISABLE=landlock,seccomp,userns makes nucleus treat the host as
// lacking those features, so operators (and tests) can see how a mode
// degrades or refuses on such a host.
func probe() (landlockABI int, seccompOK, userNS bool) {
	landlockABI = policy.LandlockABI()
	seccompOK = seccomp.Enabled
	if _, err := os.Stat("/proc/self/ns/user"); err == nil {
		data, err := os.ReadFile("/proc/sys/user/max_user_namespaces")
		n, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		userNS = err == nil && n > 0
	}
	for _, f := range strings.Split(os.Getenv("NUCLEUS_DISABLE"), ",") {
		switch strings.TrimSpace(f) {
		case "landlock":
			landlockABI = 0
		case "seccomp":
			seccompOK = false
		case "userns":
			userNS = false
		}
	}
	return landlockABI, seccompOK, userNS
}

// UserNSBlocker explains why a user namespace can't be used for a bundle
// ("" if it can): its unprivileged root must be able to reach the rootfs,
// so every directory above it must be searchable by others.
func UserNSBlocker(rootfs string) string {
	abs, err := filepath.Abs(rootfs)
	if err != nil {
		return err.Error()
	}
	for dir := filepath.Dir(abs); ; dir = filepath.Dir(dir) {
		st, err := os.Stat(dir)
		if errors.Is(err, fs.ErrNotExist) {
			// Not made yet: the state dirs a staged rootfs lives in are
			// created searchable.
			continue
		}
		if err != nil {
			return err.Error()
		}
		if st.Mode().Perm()&0o001 == 0 {
			return fmt.Sprintf("the rootfs %s is not reachable by an unprivileged uid: %s is mode %04o (needs o+x)", abs, dir, st.Mode().Perm())
		}
		if dir == "/" {
			return ""
		}
	}
}

// Fixed is the fully featured host that configs written ahead of time
// (nucleus bundle, nucleus export) are planned for.
var Fixed = Facts{LandlockABI: 3, Seccomp: true, UserNS: true}

// Covers checks that this host can enforce what a config planned for
// planned needs, naming the first thing it lacks.
func (f Facts) Covers(planned Facts) error {
	switch {
	case planned.UserNS && !f.UserNS:
		return errors.New("the config was planned for a host with user namespaces; this host has none")
	case planned.Seccomp && !f.Seccomp:
		return errors.New("the config was planned for a host with seccomp; this build or kernel cannot apply it")
	}
	// Landlock is nucleus's own step at run time, not in the config: a
	// host without it runs the mode as the mode says (degraded, or
	// refused in the strict modes).
	return nil
}
