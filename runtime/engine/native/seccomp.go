package native

import (
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
)

// Without noNewPrivileges, libcontainer's init loads the seccomp filter
// early, while it still has CAP_SYS_ADMIN (the kernel's condition for a
// filter without no_new_privs), and then goes on to drop capabilities,
// change user, chdir and check with getcwd(2) that the working directory is
// inside the container. A profile that denies one of those syscalls (for the
// workload's sake: runtime-tools' linux_seccomp denies getcwd) stops the
// init itself, and the create fails. With noNewPrivileges the filter loads
// last, right before execve. So for such a profile nucleus sets
// noNewPrivileges, with a warning: the one change for the workload is that
// setuid and file capabilities cannot raise its privileges, and the
// alternative is no container at all.
//
// The list holds the calls whose failure stops the init, all of which any
// allowlist profile meant for containers allows (Docker's does).
var initAfterEarlySeccomp = []string{
	"getcwd", "chdir", "capget", "capset", "prctl", "setgroups",
	"setresuid", "setresgid", "getppid",
}

// lateSeccomp returns s with process.noNewPrivileges set when its seccomp
// profile would deny the init one of initAfterEarlySeccomp; s itself is
// not changed.
func lateSeccomp(s *specs.Spec) *specs.Spec {
	if s.Process == nil || s.Process.NoNewPrivileges || s.Linux == nil || s.Linux.Seccomp == nil {
		return s
	}
	denied := ""
	for _, name := range initAfterEarlySeccomp {
		if seccompMayDeny(s.Linux.Seccomp, name) {
			denied = name
			break
		}
	}
	if denied == "" {
		return s
	}
	logrus.Warnf("linux.seccomp denies %s, which the runtime's init makes after an early filter load: noNewPrivileges set so that the filter loads right before the process starts", denied)
	out := *s
	p := *s.Process
	p.NoNewPrivileges = true
	out.Process = &p
	return &out
}

// seccompMayDeny: the profile may return something other than allow for
// syscall name. A rule with argument conditions counts as denying.
func seccompMayDeny(sc *specs.LinuxSeccomp, name string) bool {
	allows := func(a specs.LinuxSeccompAction) bool {
		return a == specs.ActAllow || a == specs.ActLog
	}
	allowed := false
	for _, rule := range sc.Syscalls {
		if !slices.Contains(rule.Names, name) {
			continue
		}
		if !allows(rule.Action) || len(rule.Args) > 0 {
			return true
		}
		allowed = true
	}
	// An unconditional allow decides, whatever the default.
	return !allowed && !allows(sc.DefaultAction)
}
